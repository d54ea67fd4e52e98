package recipes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// ReloadHAProxy reloads HAProxy and returns once it listens on every port its config
// binds. `systemctl reload` returns as soon as the master has been signalled: a port
// already bound goes on being served by the old workers (a seamless reload), but a port
// the config binds for the first time (every port, on a first deploy) refuses
// connections until the new worker has started: a deploy that ends then leaves the site
// refusing its first requests (the likely cause of 1,600 requests reset at the start of
// a load check begun right after a first deploy, session 8).
type ReloadHAProxy struct {
	// Unit is HAProxy's unit, "haproxy.service" when empty.
	Unit string
	// Ports are the TCP ports the config binds.
	Ports []int
	// Timeout bounds the wait; 0 means 30 seconds.
	Timeout time.Duration
}

func (r ReloadHAProxy) unit() string {
	if r.Unit == "" {
		return "haproxy.service"
	}
	return r.Unit
}

func (r ReloadHAProxy) String() string {
	return "reload " + r.unit() + " and wait until it listens on its ports"
}

// Validate rejects ports out of range.
func (r ReloadHAProxy) Validate() error {
	for _, p := range r.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("ReloadHAProxy: port %d is not a TCP port", p)
		}
	}
	if r.Timeout < 0 {
		return errors.New("ReloadHAProxy: Timeout must not be negative")
	}
	return nil
}

// Check always returns the reload.
func (r ReloadHAProxy) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	reload, err := steps.Reload{Name: r.unit()}.Check(ctx, c)
	if err != nil {
		return nil, err
	}
	return &steps.Change{Summary: reload.Summary, Apply: func(ctx context.Context) error {
		if err := reload.Apply(ctx); err != nil {
			return err
		}
		timeout := r.Timeout
		if timeout == 0 {
			timeout = 30 * time.Second
		}
		return waitFor(ctx, timeout, func() error { return listening(ctx, c, r.Ports) })
	}}, nil
}

// listening is nil once the host has a listening TCP socket (IPv4 or IPv6, any
// address) on each port: read from /proc/net, which every Linux host has, with no tool
// to install and no connection that HAProxy would log.
func listening(ctx context.Context, c transport.Conn, ports []int) error {
	if len(ports) == 0 {
		return nil
	}
	// Columns: sl local_address rem_address st ...; st 0A is LISTEN.
	out, err := transport.Output(ctx, c, `cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "0A" { print $2 }'`)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, local := range strings.Fields(out) {
		if i := strings.LastIndexByte(local, ':'); i >= 0 {
			have[strings.ToUpper(local[i+1:])] = true
		}
	}
	var missing []string
	for _, p := range ports {
		if !have[fmt.Sprintf("%04X", p)] {
			missing = append(missing, fmt.Sprint(p))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("nothing listens on port %s", strings.Join(missing, ", "))
	}
	return nil
}
