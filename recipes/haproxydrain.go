package recipes

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// HAProxyServer takes a whole web host out of HAProxy through its runtime API (the
// admin-level stats socket), for when the host itself goes (its web server restarts,
// the host reboots): state drain (no new connections; those open finish), then maint
// once its current sessions are 0. PutBack sets it ready. A Tomcat restart does not
// need it: the web host's balancer sends that node's traffic to the other Tomcats.
type HAProxyServer struct {
	// Host is the HAProxy host, as the inventory names it.
	Host string
	// Socket is the stats socket with level admin (configs: /run/haproxy/admin.sock).
	Socket string
	// Backends are the backends the server is in; Server is its name there.
	Backends []string
	Server   string
	// Timeout bounds the wait for its sessions to end; 0 means 30 seconds.
	Timeout time.Duration

	absent bool
}

func (h *HAProxyServer) String() string { return "HAProxy on " + h.Host }

// haproxyCommand sends one runtime API command on the socket and prints the answer.
// Perl is there on every Debian host (perl-base); socat often is not.
const haproxyCommand = `use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or exit 3; ` +
	`local $/; my $cmd = <STDIN>; print $s $cmd; shutdown($s, 1); print <$s>;`

// ask sends cmd; errAbsent when HAProxy or its socket is not there (yet).
func (h *HAProxyServer) ask(ctx context.Context, c transport.Conn, cmd string) (string, error) {
	var out strings.Builder
	var stderr strings.Builder
	err := c.Run(ctx, transport.Command{
		Line:  "test -S " + shell.Quote(h.Socket) + " || exit 3; perl -e " + shell.Quote(haproxyCommand) + " " + shell.Quote(h.Socket),
		Stdin: strings.NewReader(cmd + "\n"), Stdout: &out, Stderr: &stderr,
	})
	if transport.ExitStatus(err) == 3 {
		return "", errAbsent
	}
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w %s", h, cmd, err, stderr.String())
	}
	return out.String(), nil
}

// setState sets the server's admin state in every backend; HAProxy answers nothing on
// success and a message on a mistake.
func (h *HAProxyServer) setState(ctx context.Context, c transport.Conn, state string) error {
	for _, b := range h.Backends {
		out, err := h.ask(ctx, c, "set server "+b+"/"+h.Server+" state "+state)
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(out); s != "" {
			return fmt.Errorf("%s: set server %s/%s state %s: %s", h, b, h.Server, state, s)
		}
	}
	return nil
}

// Stats returns the server's "status" and "scur" (current sessions) in each backend, from
// show stat.
func (h *HAProxyServer) Stats(ctx context.Context) (map[string][2]string, error) {
	c, err := transport.Delegate(ctx, h.Host)
	if err != nil {
		return nil, err
	}
	return h.stats(ctx, c)
}

func (h *HAProxyServer) stats(ctx context.Context, c transport.Conn) (map[string][2]string, error) {
	out, err := h.ask(ctx, c, "show stat")
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("%s: show stat: %v: %.200s", h, err, out)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	st, sc := col["status"], col["scur"]
	if st == 0 || sc == 0 {
		return nil, fmt.Errorf("%s: show stat has no status or scur column", h)
	}
	res := map[string][2]string{}
	for _, row := range rows[1:] {
		if len(row) > max(st, sc) && row[1] == h.Server {
			res[row[0]] = [2]string{row[st], row[sc]}
		}
	}
	for _, b := range h.Backends {
		if _, ok := res[b]; !ok {
			return nil, fmt.Errorf("%s: no server %s in backend %s", h, h.Server, b)
		}
	}
	return res, nil
}

// InFront says whether HAProxy answers on its socket with the server in every backend.
func (h *HAProxyServer) InFront(ctx context.Context) (bool, error) {
	c, err := transport.Delegate(ctx, h.Host)
	if err != nil {
		return false, err
	}
	_, err = h.stats(ctx, c)
	if errors.Is(err, errAbsent) {
		return false, nil
	}
	return err == nil, err
}

// OthersInRotation is nil when every backend of the server has another server UP.
func (h *HAProxyServer) OthersInRotation(ctx context.Context) error {
	c, err := transport.Delegate(ctx, h.Host)
	if err != nil {
		return err
	}
	out, err := h.ask(ctx, c, "show stat")
	if err != nil {
		return err
	}
	up := map[string]bool{}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return fmt.Errorf("%s: show stat: %v", h, err)
	}
	st := slices.Index(rows[0], "status")
	for _, row := range rows[1:] {
		if st > 0 && len(row) > st && row[1] != h.Server && row[1] != "FRONTEND" && row[1] != "BACKEND" && strings.HasPrefix(row[st], "UP") {
			up[row[0]] = true
		}
	}
	for _, b := range h.Backends {
		if !up[b] {
			return fmt.Errorf("%s: backend %s has no other server UP", h, b)
		}
	}
	return nil
}

// TakeOut drains the server, waits until it has no sessions, then puts it in maint.
func (h *HAProxyServer) TakeOut(ctx context.Context) error {
	c, err := transport.Delegate(ctx, h.Host)
	if err != nil {
		return err
	}
	if err := h.setState(ctx, c, "drain"); err != nil {
		if errors.Is(err, errAbsent) {
			h.absent = true
			return nil
		}
		return err
	}
	timeout := h.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	err = waitFor(ctx, timeout, func() error {
		st, err := h.stats(ctx, c)
		if err != nil {
			return err
		}
		for b, v := range st {
			if v[1] != "0" {
				return fmt.Errorf("%s: %s/%s still has %s sessions", h, b, h.Server, v[1])
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return h.setState(ctx, c, "maint")
}

// PutBack sets the server ready: health checks resume and it takes traffic once they pass.
func (h *HAProxyServer) PutBack(ctx context.Context) error {
	if h.absent {
		return nil
	}
	c, err := transport.Delegate(ctx, h.Host)
	if err != nil {
		return err
	}
	return h.setState(ctx, c, "ready")
}
