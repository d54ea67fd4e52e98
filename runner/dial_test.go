package runner_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
)

// A failed dial must give a nil transport.Conn, not an interface holding a nil
// *sshconn.Conn, which the runner would try to close.
func TestAFailedSSHDialIsAnErrorAndNoConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	h := &inventory.Host{Name: "gone", Address: "127.0.0.1", Transport: "ssh",
		SSH: inventory.SSH{Port: port, User: "root", KnownHosts: t.TempDir() + "/known_hosts"}}
	conn, err := runner.DialHost(context.Background(), h)
	if err == nil || conn != nil {
		t.Fatalf("got %#v, %v; want no connection and an error", conn, err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("the error does not name the address: %v", err)
	}
}
