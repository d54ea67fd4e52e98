package sshconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/channel"
)

// What goes where: every Run goes over the host's command channel (one session
// running one shell, as the become user, opened at the first Run that needs it) unless
// its standard input is larger than channel.MaxStdin, which streams through a session
// of its own, or it is the connection's first command and has no input, which runs in
// a session of its own as well (firstInOwnSession: one round trip less).
// Put's uploads go through SFTP and Read without Become through SFTP, as before; the
// commands they run (finishing a put, reading as root) go over the channel. The kill
// of a cancelled command and the sudo probe take a session of their own. A channel
// that breaks is not reopened: the commands the host never started, and every later
// one, run in sessions of their own.

// channelOpenTimeout bounds opening the channel (starting the shell, and sudo's
// password exchange).
const channelOpenTimeout = 10 * time.Second

// commandChannel returns the host's channel, opening it at the first call, or nil when
// there is none (it could not be opened, it broke, or Config.NoChannel).
func (c *Conn) commandChannel(ctx context.Context) *channel.Channel {
	c.chanMu.Lock()
	defer c.chanMu.Unlock()
	if c.cfg.NoChannel {
		return nil
	}
	client, gen, err := c.sshClient(ctx)
	if err != nil {
		return nil
	}
	c.clientMu.Lock()
	warm := c.warm && c.client == client
	c.clientMu.Unlock()
	if gen != c.chanGen {
		// The client was replaced (a lost warm connection): a new channel on the new one.
		if c.ch != nil {
			c.ch.Close()
		}
		c.ch, c.chanOff, c.chanErr, c.chanGen = nil, false, nil, gen
		c.chPark, c.chReused, c.chRenewed = nil, false, false
	}
	if c.chanOff {
		return nil
	}
	if c.ch != nil {
		if c.ch.Broken() == nil {
			return c.ch
		}
		if !c.chReused || c.chRenewed {
			c.chanOff = true
			return nil
		}
		// A shell taken over from an earlier run that broke (it ended while parked):
		// one new shell instead.
		c.ch.Close()
		c.ch, c.chPark, c.chReused, c.chRenewed = nil, nil, false, true
	}
	ch, err := c.openChannel(ctx, client, warm)
	if err != nil && ctx.Err() != nil {
		// The caller gave up, not the channel: the next Run tries again.
		return nil
	}
	if err != nil {
		c.chanOff = true
		c.chanErr = err
		return nil
	}
	c.ch = ch
	return ch
}

// ChannelError is why the connection runs its commands in sessions of their own: nil
// while it has a working channel (or has not needed one yet).
func (c *Conn) ChannelError() error {
	c.chanMu.Lock()
	defer c.chanMu.Unlock()
	if c.chanErr != nil {
		return c.chanErr
	}
	if c.ch != nil {
		return c.ch.Broken()
	}
	return nil
}

// openChannel starts the shell and has channel.Verify watch it: the check that it
// frames input exactly (a host without GNU head does not) goes before the first
// command with input, and no one waits for its verdict.
func (c *Conn) openChannel(ctx context.Context, client *ssh.Client, warm bool) (*channel.Channel, error) {
	ctx, cancel := context.WithTimeout(ctx, channelOpenTimeout)
	defer cancel()
	line := shell.Join("sh", "-c", channel.Loop)
	var sudo *sudoMode
	if c.becomes() {
		mode, err := c.sudoMode(ctx)
		if err != nil {
			return nil, err
		}
		line, _ = mode.wrap(channel.Loop)
		if mode.password != "" {
			sudo = mode
		}
	}
	kill := c.killByExecID
	if warm && sudo == nil {
		ch, err := c.openWarmShell(ctx, client, line, kill)
		if !errors.Is(err, errNoWarmShell) {
			return ch, err
		}
	}
	// The shell is started without waiting for sshd's answer (exec with want-reply
	// off): the frames written right behind the request reach it, as sshd handles a
	// channel's messages in order, and one round trip less goes by before the first
	// answers. A server that refuses the exec answers nothing: Verify then breaks the
	// channel when the shell begins no command in time, and the commands go another way.
	sch, reqs, err := client.OpenChannel("session", nil)
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	c.traffic.Wait()
	go ssh.DiscardRequests(reqs)
	if _, err := sch.SendRequest("exec", false, ssh.Marshal(struct{ Command string }{line})); err != nil {
		sch.Close()
		return nil, fmt.Errorf("start the shell: %w", err)
	}
	in := channelStdin{sch}
	errPipe := channel.NewPipe()
	var gate *sudoGate
	var stderr io.Writer = errPipe
	if sudo != nil {
		gate = newSudoGate(sudo, in, errPipe)
		stderr = gate
	}
	go func() {
		io.Copy(stderr, sch.Stderr())
		errPipe.Close()
	}()
	if gate != nil {
		select {
		case <-gate.started:
		case <-ctx.Done():
			sch.Close()
			return nil, fmt.Errorf("sudo did not start the shell: %w", ctx.Err())
		}
	}
	ch, err := channel.Open(in, sch, errPipe, kill, sch.Close)
	if err != nil {
		sch.Close()
		return nil, err
	}
	// The channel breaks if the shell begins no command in time, and the self-test
	// goes right before the first command with input, in the same round trip: no one
	// waits for its verdict (see channel.Verify).
	channel.Verify(ch, channelOpenTimeout)
	return ch, nil
}

// errNoWarmShell: the warm daemon does not serve command channels' shells.
var errNoWarmShell = errors.New("the warm daemon keeps no shells")

// openWarmShell opens the command channel as a warm daemon's shell (warmshell.go):
// one an earlier run left idle, or a new one. c.chanMu is held.
func (c *Conn) openWarmShell(ctx context.Context, client *ssh.Client, line string, kill func(string)) (*channel.Channel, error) {
	sch, reqs, err := client.OpenChannel(shellChannelType, ssh.Marshal(shellLine{line}))
	if err != nil {
		var oe *ssh.OpenChannelError
		if errors.As(err, &oe) && oe.Reason == ssh.UnknownChannelType {
			return nil, errNoWarmShell
		}
		return nil, fmt.Errorf("open session: %w", err)
	}
	go ssh.DiscardRequests(reqs)
	out := bufio.NewReader(sch)
	header := make(chan string, 1)
	go func() {
		h, _ := out.ReadString('\n')
		header <- h
	}()
	var h string
	select {
	case h = <-header:
	case <-ctx.Done():
		sch.Close()
		return nil, fmt.Errorf("the warm daemon did not give a shell: %w", ctx.Err())
	}
	errPipe := channel.NewPipe()
	go func() {
		io.Copy(errPipe, sch.Stderr())
		errPipe.Close()
	}()
	var ch *channel.Channel
	token, reused := strings.CutPrefix(strings.TrimSuffix(h, "\n"), "reused ")
	switch {
	case reused:
		ch, err = channel.Resume(token, channelStdin{sch}, out, errPipe, kill, sch.Close)
	case h == "new\n":
		// The daemon opened a session on the host for it: a round trip.
		c.traffic.Wait()
		ch, err = channel.Open(channelStdin{sch}, out, errPipe, kill, sch.Close)
	default:
		err = fmt.Errorf("the warm daemon gave no shell (%q)", h)
	}
	if err != nil {
		sch.Close()
		return nil, err
	}
	c.chReused = reused
	c.chPark = func(token string) bool {
		ok, err := sch.SendRequest(parkRequest, true, ssh.Marshal(struct{ Token string }{token}))
		return ok && err == nil
	}
	channel.Verify(ch, channelOpenTimeout)
	return ch, nil
}

// Traffic is what the connection asked of the host so far (transport.Counter).
func (c *Conn) Traffic() transport.TrafficCounts { return c.traffic.Counts() }

// channelStdin is a session channel as the shell's standard input: Close sends EOF
// and leaves the channel open for the shell's last output.
type channelStdin struct{ ssh.Channel }

func (c channelStdin) Close() error { return c.CloseWrite() }
