package sshconn_test

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cauldron-go/cauldron/transport/sshconn"
)

// globalRequest is what the server saw of one global request from the client.
type globalRequest struct {
	name      string
	wantReply bool
}

// announcingServer is an SSH server that announces its host keys after
// authentication, as OpenSSH's sshd does (hostkeys-00@openssh.com, no reply
// wanted), asks the client a question that wants a reply, and reports the global
// requests the client sends. sshd cannot report what it received, hence this server.
func announcingServer(t *testing.T, got chan<- globalRequest, answered chan<- bool) testSSHServer {
	t.Helper()
	return startTestSSHServer(t, func(nc net.Conn, cfg *ssh.ServerConfig) {
		defer nc.Close()
		sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
		if err != nil {
			return
		}
		go func() {
			for nch := range chans {
				nch.Reject(ssh.Prohibited, "no sessions here")
			}
		}()
		go func() {
			for r := range reqs {
				got <- globalRequest{r.Type, r.WantReply}
				if r.WantReply {
					r.Reply(false, nil)
				}
			}
		}()
		if _, _, err := sc.SendRequest("hostkeys-00@openssh.com", false, nil); err != nil {
			return
		}
		ok, _, err := sc.SendRequest("a-question@example.org", true, nil)
		answered <- err == nil && !ok
		sc.Wait()
	})
}

// sshd sends the first session's confirmation behind its announcement of its host
// keys, and with Nagle's algorithm on it waits for the announcement's
// acknowledgement: the client answers the announcement at once with a request that
// wants no reply, which carries that acknowledgement back. Requests that want a
// reply still get "no", and only the announcement is answered.
func TestTheClientAnswersTheServersHostKeyAnnouncementAtOnce(t *testing.T) {
	got := make(chan globalRequest, 10)
	answered := make(chan bool, 1)
	srv := announcingServer(t, got, answered)
	c, err := sshconn.Dial(context.Background(), sshconn.Config{Addr: srv.addr, User: "root",
		IdentityFiles: []string{srv.clientKey}, KnownHostsFile: srv.knownHosts, KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case r := <-got:
		if r != (globalRequest{"keepalive@openssh.com", false}) {
			t.Errorf("the client sent %+v, want keepalive@openssh.com wanting no reply", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client sent nothing after the announcement")
	}
	select {
	case ok := <-answered:
		if !ok {
			t.Error("the question that wants a reply got no \"no\"")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the question that wants a reply got no answer")
	}
	select {
	case r := <-got:
		t.Errorf("the client sent %+v as well: only the announcement is answered", r)
	case <-time.After(200 * time.Millisecond):
	}
}
