package docker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/channel"
)

// What goes where: once WithChannel is called, every Run goes over the container's
// command channel (one exec running one shell, opened at the first Run, closed by
// Close, its standard input and multiplexed
// output on one hijacked connection) unless its standard input is larger than
// channel.MaxStdin (a large Put), which streams through an exec of its own, as does
// the kill of a cancelled command. A channel that breaks is not reopened: the
// commands the container never started, and every later one, get an exec each.

// channelOpenTimeout bounds opening the channel.
const channelOpenTimeout = 10 * time.Second

// chanState is a Conn's command channel.
type chanState struct {
	mu  sync.Mutex
	on  bool
	ch  *channel.Channel
	off bool
	err error
}

// WithChannel makes c run its commands over one long-lived exec (see above) and
// returns c. It is not the default because a channel holds a shell in the container
// and a connection to the engine until Close, and a Conn without one needs no Close.
func (c *Conn) WithChannel() *Conn {
	c.chans.mu.Lock()
	defer c.chans.mu.Unlock()
	c.chans.on = true
	return c
}

// ChannelError is why c runs its commands in execs of their own: nil while it has a
// working channel (or has not needed one yet).
func (c *Conn) ChannelError() error {
	c.chans.mu.Lock()
	defer c.chans.mu.Unlock()
	if c.chans.err != nil {
		return c.chans.err
	}
	if c.chans.ch != nil {
		return c.chans.ch.Broken()
	}
	return nil
}

// Pipelined says that a caller may start any number of commands at once
// (transport.Pipelined): true for a Conn made WithChannel, whose commands queue on the
// channel, or run in at most execsAtOnce execs once it is gone.
func (c *Conn) Pipelined() bool {
	c.chans.mu.Lock()
	defer c.chans.mu.Unlock()
	return c.chans.on
}

// Connect makes sure the container answers, as a dial would: for a Conn made
// WithChannel it opens the channel (whose start checks that the shell frames input
// exactly), else, or when the channel cannot be opened, it runs true in an exec. It is
// not counted in Traffic: like an SSH handshake, it comes before the first command.
func (c *Conn) Connect(ctx context.Context) error {
	if c.commandChannel(ctx) != nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.runExec(ctx, transport.Command{Line: "true"})
}

// Traffic is what c asked of the container so far (transport.Counter).
func (c *Conn) Traffic() transport.TrafficCounts { return c.traffic.Counts() }

func (c *Conn) commandChannel(ctx context.Context) *channel.Channel {
	s := &c.chans
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.on || s.off {
		return nil
	}
	if s.ch != nil {
		if s.ch.Broken() != nil {
			s.off = true
			return nil
		}
		return s.ch
	}
	ch, err := c.openChannel(ctx)
	if err != nil && ctx.Err() != nil {
		// The caller gave up, not the channel: the next Run tries again.
		return nil
	}
	if err != nil {
		s.off, s.err = true, fmt.Errorf("docker exec in %s: command channel: %w", c.container, err)
		return nil
	}
	s.ch = ch
	return ch
}

func (c *Conn) openChannel(ctx context.Context) (*channel.Channel, error) {
	ctx, cancel := context.WithTimeout(ctx, channelOpenTimeout)
	defer cancel()
	eng, err := engineFor(ctx, c.socket)
	if err != nil {
		return nil, err
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	id, err := eng.createExec(ctx, c.container, channel.Loop, true, token)
	if err != nil {
		return nil, err
	}
	// The connection lives as long as the channel: not bound to ctx.
	raw, br, err := eng.attachExec(context.Background(), id)
	if err != nil {
		return nil, err
	}
	stdout, stderr := channel.NewPipe(), channel.NewPipe()
	go func() {
		err := demux(br, stdout, stderr)
		stdout.CloseWithError(err)
		stderr.CloseWithError(err)
	}()
	kill := func(id string) {
		kctx, kcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer kcancel()
		c.runExec(kctx, transport.Command{Line: channel.KillScript(id)})
	}
	ch, err := channel.Open(raw, stdout, stderr, kill, raw.Close)
	if err != nil {
		raw.Close()
		return nil, err
	}
	// The channel breaks if the shell begins no command in time, and the self-test
	// goes right before the first command with input, in the same round trip: no one
	// waits for its verdict (see channel.Verify).
	channel.Verify(ch, channelOpenTimeout)
	return ch, nil
}
