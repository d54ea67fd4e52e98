package sshconn_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

// plainSFTPServer is an SSH server on 127.0.0.1 whose SFTP subsystem is pkg/sftp's
// server, which does not announce limits@openssh.com, as OpenSSH's before 8.6 and
// other servers do not: a client may send it packets of 32 KiB and no more. It
// records the longest packet a client sent it.
type plainSFTPServer struct {
	testSSHServer

	mu      sync.Mutex
	longest int
}

func startPlainSFTPServer(t *testing.T) *plainSFTPServer {
	t.Helper()
	s := &plainSFTPServer{}
	s.testSSHServer = startTestSSHServer(t, s.serve)
	return s
}

func (s *plainSFTPServer) serve(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for req := range creqs {
				// "sftp" as an SSH string: the subsystem request's payload.
				if req.Type != "subsystem" || !bytes.Equal(req.Payload, append([]byte{0, 0, 0, 4}, "sftp"...)) {
					req.Reply(false, nil)
					continue
				}
				req.Reply(true, nil)
				go ssh.DiscardRequests(creqs)
				srv, err := sftp.NewServer(struct {
					io.Reader
					io.WriteCloser
				}{&packetMeter{r: ch, s: s}, ch})
				if err == nil {
					srv.Serve()
				}
				return
			}
		}()
	}
}

// packetMeter reads an SFTP stream and notes its longest packet.
type packetMeter struct {
	r    io.Reader
	s    *plainSFTPServer
	head []byte
	left int // bytes of the current packet's body still to come
}

func (m *packetMeter) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	for b := p[:n]; len(b) > 0; {
		if m.left > 0 {
			k := min(m.left, len(b))
			m.left, b = m.left-k, b[k:]
			continue
		}
		k := min(4-len(m.head), len(b))
		m.head, b = append(m.head, b[:k]...), b[k:]
		if len(m.head) == 4 {
			m.left = int(binary.BigEndian.Uint32(m.head))
			m.head = m.head[:0]
			m.s.mu.Lock()
			m.s.longest = max(m.s.longest, m.left)
			m.s.mu.Unlock()
		}
	}
	return n, err
}

// The big writes are for servers that say they take them: to one that does not, an
// upload goes in packets of 32 KiB, whole.
func TestUploadsToAServerWithoutOpenSSHsLimitsGoInPacketsOf32KiB(t *testing.T) {
	srv := startPlainSFTPServer(t)
	c, err := sshconn.Dial(context.Background(), sshconn.Config{Addr: srv.addr, User: "root",
		IdentityFiles: []string{srv.clientKey}, KnownHostsFile: srv.knownHosts, KeepAlive: -1, NoChannel: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := filepath.Join(t.TempDir(), "big")
	content := bytes.Repeat([]byte("0123456789abcdef"), 64*1024) // 1 MiB
	if err := c.Put(context.Background(), transport.File{Path: p, Content: content, Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the file has %d bytes (%v), want the %d sent", len(got), err, len(content))
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	// A write packet: type, id, handle, offset, the data's length and the data.
	if limit := 32*1024 + 1 + 4 + 4 + 256 + 8 + 4; srv.longest > limit {
		t.Errorf("the longest SFTP packet had %d bytes, more than the %d a 32 KiB write makes", srv.longest, limit)
	}
}
