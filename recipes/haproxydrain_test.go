package recipes_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// startHAProxy runs a real haproxy on the loopback with an admin socket and one server
// web1 (a test web server) in backends user and admin; it returns the socket.
func startHAProxy(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed")
	}
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("perl is not installed")
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	t.Cleanup(web.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	backend := web.Listener.Addr().String()
	cfg := fmt.Sprintf(`global
    stats socket %s mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend user
    bind %s
    default_backend user
backend user
    option httpchk GET /health
    server web1 %s check inter 500ms
backend admin
    option httpchk GET /health
    server web1 %s check inter 500ms
`, sock, front, backend, backend)
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", file)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for range 50 {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("haproxy made no admin socket")
	return ""
}

func TestAWebHostIsDrainedThenPutInMaintAndBackThroughHAProxysSocket(t *testing.T) {
	sock := startHAProxy(t)
	h := &recipes.HAProxyServer{Host: "lb", Socket: sock, Backends: []string{"user", "admin"}, Server: "web1", Timeout: 5 * time.Second}
	var seen []string
	record := func(ctx context.Context) error {
		st, err := h.Stats(ctx)
		if err != nil {
			return err
		}
		// "UP 1/3" is up, one check into going down: the state is the first word.
		word := func(b string) string { return strings.Fields(st[b][0] + " ?")[0] }
		seen = append(seen, word("user")+"/"+word("admin"))
		return nil
	}
	actions := []func(ctx context.Context) error{record, h.TakeOut, record, h.PutBack, func(ctx context.Context) error {
		time.Sleep(1500 * time.Millisecond) // a health check or two
		return record(ctx)
	}}
	step := steps.Func{Name: "drain web1 in HAProxy and back", CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) {
		return &steps.Change{Summary: "drain", Apply: func(ctx context.Context) error {
			for _, a := range actions {
				if err := a(ctx); err != nil {
					return err
				}
			}
			return nil
		}}, nil
	}}
	hosts := []*inventory.Host{{Name: "web1", Transport: "local"}, {Name: "lb", Transport: "local"}}
	_, err := runner.Run(context.Background(), []runner.Play{
		{Name: "web", Hosts: hosts[:1], Recipe: func(*inventory.Host) (*steps.Recipe, error) { return steps.NewRecipe("web", step), nil }},
		{Name: "lb", Hosts: hosts[1:], Recipe: func(*inventory.Host) (*steps.Recipe, error) { return steps.NewRecipe("lb"), nil }},
	}, runner.Options{Mode: runner.Apply, Dial: runner.DialHost})
	if err != nil {
		t.Fatal(err)
	}
	want := "[UP/UP MAINT/MAINT UP/UP]"
	if fmt.Sprint(seen) != want {
		t.Errorf("web1's status before, taken out and put back: %v, want %s", seen, want)
	}
}

func TestTakingOutAServerHAProxyDoesNotHaveNamesIt(t *testing.T) {
	sock := startHAProxy(t)
	h := &recipes.HAProxyServer{Host: "lb", Socket: sock, Backends: []string{"user"}, Server: "web9"}
	var got error
	step := steps.Func{Name: "drain web9", CheckFunc: func(context.Context, transport.Conn) (*steps.Change, error) {
		return &steps.Change{Summary: "drain", Apply: func(ctx context.Context) error { got = h.TakeOut(ctx); return nil }}, nil
	}}
	hosts := []*inventory.Host{{Name: "web1", Transport: "local"}, {Name: "lb", Transport: "local"}}
	if _, err := runner.Run(context.Background(), []runner.Play{
		{Name: "web", Hosts: hosts, Recipe: func(h *inventory.Host) (*steps.Recipe, error) {
			if h.Name == "lb" {
				return steps.NewRecipe("lb"), nil
			}
			return steps.NewRecipe("web", step), nil
		}},
	}, runner.Options{Mode: runner.Apply, Dial: runner.DialHost}); err != nil {
		t.Fatal(err)
	}
	if got == nil || !strings.Contains(got.Error(), "user/web9") {
		t.Errorf("TakeOut of an unknown server: %v, want an error naming user/web9", got)
	}
}
