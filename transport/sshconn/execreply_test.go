package sshconn_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

// lateReplyServer is an SSH server on 127.0.0.1 that runs commands with sh -c, as
// sshd does, but answers an exec request that wants a reply only once the command's
// standard input has brought something: a client that waits for that answer before
// it writes never gets it. OpenSSH's sshd cannot be made to answer late, hence this
// server, built on x/crypto/ssh's server side; it serves one login key.
type lateReplyServer struct {
	testSSHServer

	mu          sync.Mutex
	execReplies []bool // per exec request: whether it wanted a reply
}

func startLateReplyServer(t *testing.T) *lateReplyServer {
	t.Helper()
	s := &lateReplyServer{}
	s.testSSHServer = startTestSSHServer(t, s.serve)
	return s
}

func (s *lateReplyServer) serve(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		go s.session(ch, creqs)
	}
}

func (s *lateReplyServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" || len(req.Payload) < 4 {
			req.Reply(false, nil)
			continue
		}
		s.mu.Lock()
		s.execReplies = append(s.execReplies, req.WantReply)
		s.mu.Unlock()
		line := string(req.Payload[4:])
		cmd := exec.Command("sh", "-c", line)
		stdin, _ := cmd.StdinPipe()
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		if err := cmd.Start(); err != nil {
			req.Reply(false, nil)
			return
		}
		go ssh.DiscardRequests(reqs)
		// The reply waits for the first byte of input.
		first := make([]byte, 1)
		n, _ := io.ReadFull(ch, first)
		if req.WantReply {
			req.Reply(true, nil)
		}
		stdin.Write(first[:n])
		io.Copy(stdin, ch)
		stdin.Close()
		status := make([]byte, 4)
		if err := cmd.Wait(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				binary.BigEndian.PutUint32(status, uint32(ee.ExitCode()))
			}
		}
		ch.SendRequest("exit-status", false, status)
		return
	}
}

// The channel's shell is started without waiting for the server's answer to the
// exec: the first commands go right behind it, one round trip earlier. Against a
// server that answers only once input has come, a client that waited would wait
// forever. (The command has input: a connection's first command without input runs in
// a session of its own, whose exec is answered by any server but this one.)
func TestTheChannelsShellStartsWithoutWaitingForTheServersAnswer(t *testing.T) {
	srv := startLateReplyServer(t)
	c, err := sshconn.Dial(context.Background(), sshconn.Config{Addr: srv.addr, User: "root",
		IdentityFiles: []string{srv.clientKey}, KnownHostsFile: srv.knownHosts, KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var out string
	go func() {
		var err error
		out, err = transport.OutputWithInput(ctx, c, "cat", strings.NewReader("over the channel\n"))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil || out != "over the channel\n" {
			t.Fatalf("got %q %v", out, err)
		}
	case <-time.After(15 * time.Second):
		// Not closed: a client stuck opening its channel holds it, and Close would wait.
		t.Fatal("no answer: the client waits for the server's answer to the exec before it writes the first command")
	}
	defer c.Close()
	if err := c.ChannelError(); err != nil {
		t.Errorf("the command did not go over the channel: %v", err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.execReplies) != 1 || srv.execReplies[0] {
		t.Errorf("exec requests (wanting a reply or not): %v, want one, wanting none", srv.execReplies)
	}
}
