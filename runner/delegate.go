package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/transport"
)

// delegates are the connections a step may open to the run's other hosts
// (transport.Delegate): dialed once per host with the run's own Dial, so the same
// host-key rules hold, shared by every step that asks, closed when the run ends. They
// are apart from the hosts' own connections, which only their host's goroutine uses.
type delegates struct {
	dial  func(ctx context.Context, h *inventory.Host) (transport.Conn, error)
	hosts map[string]*inventory.Host

	mu     sync.Mutex
	conns  map[string]*delegateConn
	closed bool
}

// delegateConn is one host's delegate connection; mu makes concurrent first uses dial once.
type delegateConn struct {
	mu   sync.Mutex
	conn transport.Conn
}

// newDelegates offers the hosts of every play of the run.
func (r *run) newDelegates() *delegates {
	d := &delegates{dial: r.dial, hosts: map[string]*inventory.Host{}, conns: map[string]*delegateConn{}}
	for _, st := range r.order {
		d.hosts[st.host.Name] = st.host
	}
	return d
}

// Conn dials host the first time it is asked for, and returns the same connection after.
func (d *delegates) Conn(ctx context.Context, host string) (transport.Conn, error) {
	h, ok := d.hosts[host]
	if !ok {
		return nil, fmt.Errorf("delegate to %q: not a host of this run", host)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, fmt.Errorf("delegate to %q: the run is over", host)
	}
	dc, ok := d.conns[host]
	if !ok {
		dc = &delegateConn{}
		d.conns[host] = dc
	}
	d.mu.Unlock()

	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.conn != nil {
		return dc.conn, nil
	}
	c, err := d.dial(ctx, h)
	if err == nil && c == nil {
		err = errors.New("dial returned no connection")
	}
	if err != nil {
		if c != nil {
			_ = c.Close() // a half-made connection; the dial error is what matters
		}
		return nil, fmt.Errorf("delegate to %s: connect: %w", host, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		_ = c.Close()
		return nil, fmt.Errorf("delegate to %q: the run is over", host)
	}
	dc.conn = c
	return c, nil
}

// close closes every delegate connection; the errors are warnings of the host.
func (d *delegates) close() map[string]error {
	d.mu.Lock()
	d.closed = true
	conns := d.conns
	d.mu.Unlock()
	errs := map[string]error{}
	for host, dc := range conns {
		dc.mu.Lock()
		if dc.conn != nil {
			if err := dc.conn.Close(); err != nil {
				errs[host] = err
			}
			dc.conn = nil
		}
		dc.mu.Unlock()
	}
	return errs
}

// closeDelegates closes d and records a failed close as a warning of its host.
func (r *run) closeDelegates(d *delegates) {
	for host, err := range d.close() {
		if st, ok := r.hosts[host]; ok {
			st.report.Warnings = append(st.report.Warnings, r.mask.String(fmt.Sprintf("close delegate connection: %v", err)))
		}
	}
}
