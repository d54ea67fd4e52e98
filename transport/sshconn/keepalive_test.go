package sshconn_test

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cauldron-go/cauldron/transport"
)

// freezingProxy forwards TCP to a real sshd until it is frozen, then drops every byte
// silently: a network cut as the client sees it, with no RST or FIN. It stands in for
// the network, a neighbour of the transport under test.
type freezingProxy struct {
	addr   string
	frozen atomic.Bool
}

func startFreezingProxy(t *testing.T, target string) *freezingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &freezingProxy{addr: ln.Addr().String()}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			t.Cleanup(func() { client.Close(); server.Close() })
			go p.pipe(server, client)
			go p.pipe(client, server)
		}
	}()
	return p
}

func (p *freezingProxy) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestACommandOnAHostThatStopsAnsweringFailsInsteadOfHanging(t *testing.T) {
	srv := startSSHD(t)
	proxy := startFreezingProxy(t, srv.Addr)
	cfg := srv.config(t)
	cfg.Addr = proxy.addr
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, cfg.KnownHostsFile, knownhosts.Line([]string{proxy.addr}, srv.HostKeys["ed25519"])+"\n", 0o600)
	cfg.KeepAlive = 200 * time.Millisecond
	c := dial(t, cfg)
	if _, err := transport.Output(context.Background(), c, "true"); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		done <- c.Run(context.Background(), transport.Command{Line: "echo started; sleep 3600", Stdout: freezeOn("started", proxy)})
	}()
	select {
	case err := <-done:
		var ee *transport.ExitError
		if err == nil || errors.As(err, &ee) {
			t.Fatalf("got %v, want a connection error", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the command still waits on a host that stopped answering")
	}
}

// freezeOn freezes the proxy once the command has said word, so the cut happens
// while the command runs.
func freezeOn(word string, p *freezingProxy) io.Writer {
	return writerFunc(func(b []byte) (int, error) {
		if string(b) != "" && containsWord(b, word) {
			p.frozen.Store(true)
		}
		return len(b), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func containsWord(b []byte, w string) bool {
	return len(b) >= len(w) && string(b[:len(w)]) == w
}
