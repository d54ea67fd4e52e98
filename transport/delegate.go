package transport

import (
	"context"
	"errors"
)

// Delegates gives a step that runs on one host the connections of the run's other
// hosts, as Ansible's delegate_to does: the restart of web1's Tomcat must take web1 out
// of the balancers on web2 and on the HAProxy host before it stops. Each host is dialed
// once, on first use, by the run's own Dial (the same host-key rules), and reused until
// the run ends; the run closes it.
type Delegates interface {
	// Conn returns the connection to the named inventory host.
	Conn(ctx context.Context, host string) (Conn, error)
}

type delegatesKey struct{}

// WithDelegates returns a context that carries d to the steps run under it.
func WithDelegates(ctx context.Context, d Delegates) context.Context {
	return context.WithValue(ctx, delegatesKey{}, d)
}

// ErrNoDelegates is returned by Delegate outside a run that offers other hosts'
// connections (a step called directly, with a bare context).
var ErrNoDelegates = errors.New("this step needs other hosts' connections, and its run gives none (run it with runner.Run)")

// Delegate returns the connection to another host of the run that ctx belongs to.
func Delegate(ctx context.Context, host string) (Conn, error) {
	d, ok := ctx.Value(delegatesKey{}).(Delegates)
	if !ok || d == nil {
		return nil, ErrNoDelegates
	}
	return d.Conn(ctx, host)
}
