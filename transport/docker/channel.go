package docker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/channel"
	"github.com/cauldron-go/cauldron/transport/daemon"
	"github.com/cauldron-go/cauldron/transport/keeper"
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

	// The exec's hijacked connection under ch, its reader and the end of the
	// goroutine that demultiplexes it: what a persistent Conn hands to the keeper.
	raw       net.Conn
	br        *bufio.Reader
	demuxDone chan error

	// persist is how long the keeper may hold the shell idle after Close (0: it is
	// not kept), in keeperDir. resumed says ch took over a kept shell, replaced that
	// a fresh channel has replaced one that broke.
	persist   time.Duration
	keeperDir string
	resumed   bool
	replaced  bool
	// containerID is the container's id, asked of the engine before taking a kept
	// shell: the key of what the keeper keeps for it ("" when unknown: nothing kept).
	containerID string
}

// PersistEnv keeps every docker host's command channel for later runs when a Conn's
// WithPersist says 0: a duration such as "60s" (how long it may stay idle); "0" or
// "off" leaves it off.
const PersistEnv = "CAULDRON_DOCKER_PERSIST"

// PersistNotes is where a Conn says, once per process, that the keeper could not be
// used (the commands then go on as without it).
var PersistNotes io.Writer = os.Stderr

var keeperNoted, badPersistEnvNoted sync.Once

// WithPersist keeps c's command channel between runs, as a warm SSH connection keeps
// its shell: Close hands the exec's connection, its shell idle, to the keeper (a
// per-user background process, see package keeper) for at most idle, and the next
// Conn to the same container through the same engine takes it over instead of
// creating an exec and starting a shell. idle 0 leaves it to $CAULDRON_DOCKER_PERSIST,
// a negative idle turns it off; dir is the keeper's directory ("" for keeper.Dir()).
// A kept shell that prints or ends while kept (the container stopped) is dropped, and
// one that is found broken when taken is replaced by a fresh channel once. It implies
// WithChannel and returns c.
func (c *Conn) WithPersist(idle time.Duration, dir string) *Conn {
	c.WithChannel()
	if idle == 0 {
		idle = persistFromEnv()
	}
	if dir == "" {
		dir = keeper.Dir()
	}
	c.chans.mu.Lock()
	defer c.chans.mu.Unlock()
	c.chans.persist, c.chans.keeperDir = max(idle, 0), dir
	return c
}

func persistFromEnv() time.Duration {
	d, err := daemon.IdleFromEnv(PersistEnv)
	if err != nil {
		badPersistEnvNoted.Do(func() { fmt.Fprintf(PersistNotes, "cauldron: %v: no docker channel kept\n", err) })
	}
	return d
}

// keeperKey names the container's kept shell: the engine's socket and the container's
// id, not its name, so that a container made again under the same name never gets the
// old one's shell.
func (c *Conn) keeperKey() string { return "docker\n" + c.socket + "\n" + c.chans.containerID }

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
		if s.ch.Broken() == nil {
			return s.ch
		}
		if !s.resumed || s.replaced {
			s.off = true
			return nil
		}
		// A kept shell that broke (it ended as it was taken): a fresh one, once.
		s.ch.Close()
		s.ch, s.replaced = nil, true
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
	if ch := c.takeKept(ctx); ch != nil {
		return ch, nil
	}
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
	ch, err := c.startChannel(raw, br, "")
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

// takeKept resumes the shell the keeper keeps for the container, if c persists and
// has not replaced a kept shell already; nil when there is none to take. A kept shell
// of a paused container would take the first command and never answer, so the engine
// is asked first (one GET, no process in the container): the exec openChannel then
// makes says at once why it cannot run.
func (c *Conn) takeKept(ctx context.Context) *channel.Channel {
	s := &c.chans
	if s.persist <= 0 || s.replaced {
		return nil
	}
	eng, err := engineFor(ctx, c.socket)
	if err != nil {
		return nil
	}
	id, running, err := eng.runningID(ctx, c.container)
	if err != nil {
		return nil
	}
	s.containerID = id
	if !running {
		return nil
	}
	raw, token, ok, err := keeper.Take(ctx, s.keeperDir, c.keeperKey())
	if err != nil {
		keeperNoted.Do(func() { fmt.Fprintf(PersistNotes, "cauldron: no kept docker channel: %v\n", err) })
	}
	if !ok {
		return nil
	}
	ch, err := c.startChannel(raw, bufio.NewReaderSize(raw, 32<<10), token)
	if err != nil {
		raw.Close()
		return nil
	}
	s.resumed = true
	return ch
}

// startChannel runs a channel over the exec's connection raw, read through br: a new
// one (token "") or one resumed from a kept shell with its token. Called with
// c.chans.mu held.
func (c *Conn) startChannel(raw net.Conn, br *bufio.Reader, token string) (*channel.Channel, error) {
	stdout, stderr := channel.NewPipe(), channel.NewPipe()
	done := make(chan error, 1)
	go func() {
		err := demux(br, stdout, stderr)
		stdout.CloseWithError(err)
		stderr.CloseWithError(err)
		done <- err
	}()
	kill := func(id string) {
		kctx, kcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer kcancel()
		c.runExec(kctx, transport.Command{Line: channel.KillScript(id)})
	}
	var ch *channel.Channel
	var err error
	if token == "" {
		ch, err = channel.Open(raw, stdout, stderr, kill, raw.Close)
	} else {
		ch, err = channel.Resume(token, raw, stdout, stderr, kill, raw.Close)
	}
	if err != nil {
		return nil, err
	}
	c.chans.raw, c.chans.br, c.chans.demuxDone = raw, br, done
	return ch, nil
}

// park hands ch's shell, idle, to the keeper; false when it cannot be handed on (a
// command in flight, a broken channel), and the caller closes ch. Called with
// c.chans.mu held, ch no longer c's.
func (c *Conn) park(ch *channel.Channel) bool {
	s := &c.chans
	token, ok := ch.Detach()
	if !ok {
		return false
	}
	// Stop reading the engine's stream without taking a byte of it (a deadline in the
	// past ends the demultiplexer's read), so that the next reader starts at a frame.
	s.raw.SetReadDeadline(time.Unix(1, 0))
	err := <-s.demuxDone
	sc, isSyscall := s.raw.(syscall.Conn)
	if errors.Is(err, os.ErrDeadlineExceeded) && s.br.Buffered() == 0 && isSyscall && s.containerID != "" {
		s.raw.SetReadDeadline(time.Time{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := keeper.Park(ctx, s.keeperDir, c.keeperKey(), token, sc, s.persist)
		cancel()
		if err != nil {
			keeperNoted.Do(func() { fmt.Fprintf(PersistNotes, "cauldron: docker channel not kept: %v\n", err) })
		}
	}
	// The keeper holds a socket of its own when it took the shell; closing this one
	// ends the shell only when it did not.
	s.raw.Close()
	return true
}
