// Package sshconn is the transport for hosts reached over SSH: one SSH connection per
// host, its commands pipelined over one session running one shell (the command
// channel: channel.go, package channel; a session per command where it cannot serve),
// files written through SFTP (when the host is configured to become root, uploaded
// through SFTP to a private directory and installed by one sudo command). sudo's
// password goes to sudo's prompt only, never to a command's input. With Config.Persist
// (or $CAULDRON_SSH_PERSIST) the authenticated connection is kept warm between runs by
// a per-user background process (warm.go), as OpenSSH's ControlPersist does, and so
// is the command channel's shell (warmshell.go).
package sshconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/channel"
)

// Config says how to reach one host.
type Config struct {
	// Addr is host:port to dial; a missing port means 22.
	Addr string
	User string
	// IdentityFiles are unencrypted private key files (ed25519, rsa, ecdsa). An
	// encrypted key belongs in the agent.
	IdentityFiles []string
	// UseAgent also offers the keys of the agent at $SSH_AUTH_SOCK.
	UseAgent bool
	// KnownHostsFile holds the trusted host keys; empty means ~/.ssh/known_hosts.
	KnownHostsFile string
	// AcceptNewHostKey appends the key of a host that KnownHostsFile does not know,
	// like OpenSSH's StrictHostKeyChecking=accept-new. A changed key is always refused.
	AcceptNewHostKey bool
	// ProxyJump is "[user@]host[:port][,more]" as OpenSSH takes it. Jump hosts are
	// checked against the same known_hosts and offered the same keys; a jump host
	// without a user is logged into as User.
	ProxyJump string
	// DialTimeout bounds the TCP dial and SSH handshake of each hop; 0 means 10s.
	DialTimeout time.Duration
	// Become runs every command and file write as root through sudo. It does nothing
	// when User is root.
	Become bool
	// BecomePassword gives sudo's password; nil when sudo needs none. It is called at
	// most once per Conn, and only when sudo asks for a password.
	BecomePassword func() (string, error)
	// KeepAlive is how often an idle connection asks the server whether it is still
	// there (keepalive@openssh.com); a server that does not answer within the same time
	// has its connection closed, so a command waiting on a dead host fails instead of
	// hanging. 0 means 15 s; a negative value turns it off.
	KeepAlive time.Duration
	// NoChannel runs every command in a session of its own instead of over the host's
	// command channel (see channel.go).
	NoChannel bool
	// Persist keeps the host's authenticated connection warm between runs in a
	// per-user background process (warm.go) that exits after Persist without a run;
	// 0 means as $CAULDRON_SSH_PERSIST says (off when unset), negative off.
	Persist time.Duration
	// PersistDir is the warm daemon's socket directory; empty means
	// $XDG_RUNTIME_DIR/cauldron-ssh, else cauldron-ssh-<uid> in the temporary directory.
	PersistDir string

	// agentSock, when set, is the agent to use instead of $SSH_AUTH_SOCK (the warm
	// daemon's dial for a run).
	agentSock string
}

// Conn is an open SSH connection to one host. It is safe for concurrent use.
type Conn struct {
	cfg  Config
	name string // user@addr, for messages

	// clientMu guards client and wire, which a warm connection replaces by a direct
	// one when the warm daemon dies (see redialIfLost).
	clientMu sync.Mutex
	redialMu sync.Mutex // held while a lost warm client is replaced
	client   *ssh.Client
	jumps    []*ssh.Client // the hops before client, in dial order
	wire     net.Conn      // the first hop's TCP connection (the daemon's socket when warm)
	// warm: client is the warm daemon's relay; lost is closed when it ended; gen counts
	// the replacements, so that the channel and SFTP made on an old client are dropped.
	warm bool
	lost chan struct{}
	gen  int
	// hostKey and hostRemote are the key the host presented and its address, for the
	// warm daemon's re-check before it reuses the connection.
	hostKey    ssh.PublicKey
	hostRemote net.Addr

	mu      sync.Mutex
	sftp    *sftp.Client
	ids     map[string]int // "u:name" / "g:name" -> id
	sudo    *sudoMode
	sudoErr error // a refusal by sudo, remembered
	closed  bool
	// closing is set when Close begins: a lost warm client is then not replaced.
	closing atomic.Bool
	// stopKeepAlive ends the keepalive goroutine; nil when there is none.
	stopKeepAlive chan struct{}
	uploadDir     string // the login user's private directory for become uploads

	// The command channel (channel.go): ch once opened; chanOff when it cannot be
	// used (chanErr says why, when it failed to open).
	chanMu  sync.Mutex
	ch      *channel.Channel
	chanOff bool
	chanErr error
	chanGen int // the client generation ch was opened on
	// chPark, when ch is a warm daemon's shell (warmshell.go), asks the daemon to keep
	// the shell for the next run; chReused says ch took over a parked shell, and
	// chRenewed that a new shell replaced one taken over that broke (once).
	chPark    func(token string) bool
	chReused  bool
	chRenewed bool
	// firstGone is set once the connection's first command has gone (see
	// firstInOwnSession).
	firstGone bool
	sftpGen   int // the client generation sftp was started on
	traffic   transport.Traffic
	// sessions bounds the commands that run in sessions of their own (see runSession).
	sessions chan struct{}

	// uploadWrap, when set (by tests), wraps the reader of every SFTP upload to path.
	uploadWrap func(path string, r io.Reader, size int) io.Reader
}

var _ transport.Conn = (*Conn)(nil)

// Dial connects and authenticates to cfg.Addr, through the jump hosts if any. It
// gives up when ctx is done.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if cfg.User == "" {
		return nil, fmt.Errorf("ssh %s: no user given", cfg.Addr)
	}
	addr, err := withPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s@%s: %w", cfg.User, cfg.Addr, err)
	}
	cfg.Addr = addr
	name := cfg.User + "@" + cfg.Addr
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.KnownHostsFile == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("ssh %s: find known_hosts: %w", name, err)
		}
		cfg.KnownHostsFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	hops, err := parseProxyJump(cfg.ProxyJump, cfg.User)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: proxy jump: %w", name, err)
	}
	hops = append(hops, hop{user: cfg.User, addr: cfg.Addr})
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 15 * time.Second
	}

	if idle := cfg.persist(); idle > 0 {
		c, err := dialWarm(ctx, cfg, idle)
		if err == nil {
			return c, nil
		}
		var hostErr *warmHostError
		if errors.As(err, &hostErr) {
			return nil, fmt.Errorf("ssh %s: %w", name, hostErr.err)
		}
		noteOnce(&fallbackNoted, fmt.Sprintf("cauldron: no warm SSH connection (%v): dialling directly", err))
	}
	return dialDirect(ctx, cfg, hops)
}

// newConn is a Conn not connected yet.
func newConn(cfg Config) *Conn {
	c := &Conn{cfg: cfg, name: cfg.User + "@" + cfg.Addr, ids: map[string]int{}, sessions: make(chan struct{}, sessionsAtOnce)}
	if cfg.KeepAlive > 0 {
		c.stopKeepAlive = make(chan struct{})
		go c.keepAlive(cfg.KeepAlive)
	}
	return c
}

// dialDirect dials the host through its jump hosts.
func dialDirect(ctx context.Context, cfg Config, hops []hop) (*Conn, error) {
	c := newConn(cfg)
	if err := c.connect(ctx, hops); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// connect dials the hops and makes the last one c's client.
func (c *Conn) connect(ctx context.Context, hops []hop) error {
	cfg, name := c.cfg, c.name
	auth, err := newAuth(cfg)
	if err != nil {
		return fmt.Errorf("ssh %s: %w", name, err)
	}
	// The agent signs during each handshake only; no channel is forwarded to it.
	defer auth.close()

	var prev *ssh.Client
	var jumps []*ssh.Client
	var first net.Conn
	for i, h := range hops {
		client, wire, check, err := dialHop(ctx, cfg, auth, h, prev)
		if err != nil {
			for j := len(jumps) - 1; j >= 0; j-- {
				jumps[j].Close()
			}
			if i < len(hops)-1 {
				return fmt.Errorf("ssh %s: through jump host %s@%s: %w", name, h.user, h.addr, err)
			}
			return fmt.Errorf("ssh %s: %w", name, err)
		}
		if i == 0 {
			first = wire
		}
		if i < len(hops)-1 {
			jumps = append(jumps, client)
		} else {
			c.clientMu.Lock()
			c.client, c.wire, c.jumps = client, first, jumps
			c.hostKey, c.hostRemote = check.key, check.remote
			c.clientMu.Unlock()
		}
		prev = client
	}
	return nil
}

// sshClient is the client to open channels on. A warm connection whose daemon died is
// replaced here by a direct one (once; said once per process); the commands that were
// in flight on it have failed.
func (c *Conn) sshClient(ctx context.Context) (*ssh.Client, int, error) {
	c.clientMu.Lock()
	client, gen, warm, lost := c.client, c.gen, c.warm, c.lost
	c.clientMu.Unlock()
	if !warm || c.closing.Load() {
		return client, gen, nil
	}
	select {
	case <-lost:
	default:
		return client, gen, nil
	}
	// One caller dials; the others wait for its client.
	c.redialMu.Lock()
	defer c.redialMu.Unlock()
	c.clientMu.Lock()
	if c.client != client || !c.warm {
		defer c.clientMu.Unlock()
		return c.client, c.gen, nil
	}
	c.clientMu.Unlock()
	noteOnce(&lostNoted, fmt.Sprintf("cauldron: the warm SSH connection to %s was lost: dialling directly", c.name))
	hops, _ := parseProxyJump(c.cfg.ProxyJump, c.cfg.User)
	hops = append(hops, hop{user: c.cfg.User, addr: c.cfg.Addr})
	if err := c.connect(ctx, hops); err != nil {
		return nil, gen, err // still lost: the next command tries again
	}
	client.Close()
	c.clientMu.Lock()
	defer c.clientMu.Unlock()
	c.warm = false
	c.gen++
	return c.client, c.gen, nil
}

// lostWarm says whether client, which just failed, is a warm daemon's connection that
// ended (waiting a moment for its end to be seen), so that a new client is to be had.
func (c *Conn) lostWarm(client *ssh.Client) bool {
	c.clientMu.Lock()
	replaced, warm, lost := c.client != client, c.warm, c.lost
	c.clientMu.Unlock()
	if replaced {
		return true
	}
	if !warm || c.closing.Load() {
		return false
	}
	select {
	case <-lost:
		return true
	case <-time.After(2 * time.Second):
		return false
	}
}

// watchClient closes c.lost when the warm daemon's connection ends.
func (c *Conn) watchClient() {
	c.lost = make(chan struct{})
	client, lost := c.client, c.lost
	go func() {
		client.Wait()
		close(lost)
	}()
}

// keepAlive asks the server every interval whether it is there, and closes the
// connection when it does not answer in time.
func (c *Conn) keepAlive(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.stopKeepAlive:
			return
		case <-t.C:
		}
		answered := make(chan error, 1)
		c.clientMu.Lock()
		client, wire, warm := c.client, c.wire, c.warm
		c.clientMu.Unlock()
		if client == nil {
			continue
		}
		go func() {
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case <-c.stopKeepAlive:
			return
		case err := <-answered:
			if err == nil {
				continue
			}
		case <-time.After(interval):
		}
		// No answer: close the wire, so that every session on it fails now.
		if wire != nil {
			wire.Close()
		}
		if !warm {
			return
		}
	}
}

// dialHop opens the TCP connection to h (directly, or from prev) and runs the SSH
// handshake over it, both bounded by ctx and cfg.DialTimeout.
func dialHop(ctx context.Context, cfg Config, auth *auth, h hop, prev *ssh.Client) (*ssh.Client, net.Conn, *hostKeyCheck, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()

	var wire net.Conn
	var err error
	if prev == nil {
		var d net.Dialer
		wire, err = d.DialContext(ctx, "tcp", h.addr)
	} else {
		wire, err = prev.DialContext(ctx, "tcp", h.addr)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dial %s: %w", h.addr, ctxCause(ctx, cfg, err))
	}

	check, err := newHostKeyCheck(cfg.KnownHostsFile, cfg.AcceptNewHostKey, h.addr)
	if err != nil {
		wire.Close()
		return nil, nil, nil, err
	}
	sshCfg := &ssh.ClientConfig{
		User:              h.user,
		Auth:              auth.methods,
		HostKeyCallback:   check.callback,
		HostKeyAlgorithms: check.algorithms,
		Timeout:           cfg.DialTimeout,
	}

	// A handshake has no context of its own: closing the connection is what stops it.
	stop := context.AfterFunc(ctx, func() { wire.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(wire, h.addr, sshCfg)
	if !stop() {
		if err == nil {
			cc.Close()
		}
		wire.Close()
		return nil, nil, nil, fmt.Errorf("handshake with %s: %w", h.addr, ctxCause(ctx, cfg, ctx.Err()))
	}
	if err != nil {
		wire.Close()
		if check.err != nil {
			return nil, nil, nil, check.err
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, nil, nil, fmt.Errorf("the server refused every key offered (%s): %w", auth.describe, err)
		}
		return nil, nil, nil, fmt.Errorf("handshake with %s@%s: %w", h.user, h.addr, err)
	}
	return ssh.NewClient(cc, chans, acknowledgeAnnouncements(cc, reqs)), wire, check, nil
}

// acknowledgeAnnouncements passes the server's global requests on, and answers its
// announcement of its host keys (hostkeys-00@openssh.com, which wants no reply) with
// a request that wants none either (keepalive@openssh.com; sshd ignores a request it
// does not know that wants no reply) at once. Why: sshd sends the announcement right
// after authentication, and the confirmation of the first session opened goes out
// behind it. sshd's socket has Nagle's algorithm on (it sets TCP_NODELAY for a pty
// only), so the confirmation waits until the announcement is acknowledged, and this
// end's kernel delays an acknowledgement it has no data to carry on (up to 40 ms; 44
// ms measured). The request carries it back as soon as the announcement is read.
func acknowledgeAnnouncements(cc ssh.Conn, in <-chan *ssh.Request) <-chan *ssh.Request {
	out := make(chan *ssh.Request)
	go func() {
		defer close(out)
		for r := range in {
			if r.Type == hostKeysAnnouncement {
				go cc.SendRequest(announcementAcknowledgement, false, nil)
			}
			out <- r
		}
	}()
	return out
}

// The server's announcement of its host keys (OpenSSH's PROTOCOL, 2.5), and what
// answers it.
const (
	hostKeysAnnouncement        = "hostkeys-00@openssh.com"
	announcementAcknowledgement = "keepalive@openssh.com"
)

// ctxCause says "timed out after …" when the per-hop timeout, not the caller, ended ctx.
func ctxCause(ctx context.Context, cfg Config, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %s: %w", cfg.DialTimeout, err)
	}
	return err
}

// withPort adds :22 to an address without a port.
func withPort(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("no address given")
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr, nil
	}
	h, p, err := splitHostPort(addr)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(h, p), nil
}

// String is user@host:port.
func (c *Conn) String() string { return c.name }

// Run runs cmd.Line with sh -c on the host (as root through sudo when Become is set),
// over the command channel when it can (see channel.go), else in a session of its own.
// When ctx is done it kills the command (SIGKILL) and returns ctx.Err() without
// waiting for the host.
func (c *Conn) Run(ctx context.Context, cmd transport.Command) error {
	defer c.traffic.Begin()()
	if c.firstInOwnSession(cmd) {
		c.traffic.Wait() // opening its session, as the channel's would be
		return c.runFirst(ctx, cmd)
	}
	return channel.RunOrOwn(ctx, c.commandChannel(ctx), cmd, c.runSession)
}

// runFirst runs the connection's first command in a session of its own (see
// firstInOwnSession) with CAULDRON_EXEC_ID in its environment, as the channel runs
// its commands: sshd delivers a cancelled command's signal to its shell only, so the
// kill of its children goes by that mark (channel.KillScript), as on the channel. The
// mark is set by the command's own shell (no process more); its line follows on a
// line of its own.
func (c *Conn) runFirst(ctx context.Context, cmd transport.Command) error {
	release, err := c.takeSession(ctx)
	if err != nil {
		return err
	}
	defer release()
	id := "first-" + randomHex()
	line := shell.Join("sh", "-c", "CAULDRON_EXEC_ID="+id+"; export CAULDRON_EXEC_ID\n"+cmd.Line)
	err = c.run(ctx, cmd.Line, line, nil, nil, cmd.Stdout, cmd.Stderr)
	if ctx.Err() != nil {
		go c.killByExecID(id)
	}
	return err
}

// killByExecID kills, in a session of its own, every process on the host whose
// environment holds CAULDRON_EXEC_ID=id (channel.KillScript): a cancelled command and
// its children.
func (c *Conn) killByExecID(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.runSession(ctx, transport.Command{Line: channel.KillScript(id)})
}

// takeSession waits for one of the sessionsAtOnce a Conn may run at once; release
// gives it back.
func (c *Conn) takeSession(ctx context.Context) (release func(), err error) {
	select {
	case c.sessions <- struct{}{}:
		return func() { <-c.sessions }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ownSessionMaxLine bounds the line of a first command run in a session of its own:
// sh -c takes it as one argument, and Linux refuses an argument over 128 KiB.
const ownSessionMaxLine = 32 << 10

// firstInOwnSession says whether cmd, the connection's first command if no other went
// before it, runs in a session of its own instead of opening the command channel.
// Why: sshd opens a session's window only once its command has started, so the
// channel's first frame waits a round trip after the exec (open, exec and window,
// frame and answer: 3 round trips), where a command of its own answers its exec (2).
// A converged host's one command (its checks' gather) then costs 2 round trips, and
// the host starts one process less (no loop shell). The commands after it open the
// channel. Not for a command with input (it would wait for the window too), through
// sudo (the channel's shell is where sudo's probe and password go), on a warm
// connection (its parked shell answers at once), or with a long line.
func (c *Conn) firstInOwnSession(cmd transport.Command) bool {
	c.chanMu.Lock()
	defer c.chanMu.Unlock()
	if c.firstGone {
		return false
	}
	c.firstGone = true
	if c.cfg.NoChannel || c.ch != nil || cmd.Stdin != nil || c.becomes() || len(cmd.Line) > ownSessionMaxLine {
		return false
	}
	c.clientMu.Lock()
	defer c.clientMu.Unlock()
	return !c.warm
}

// sessionsAtOnce bounds the commands that run in sessions of their own at once: sshd
// allows ten sessions on a connection by default (MaxSessions), the command channel
// and SFTP may hold one each, and a session just closed here may still count there
// for a moment (see newSession). A caller may start any number of commands at
// once (Pipelined): over the channel they queue on the host, and once the channel is
// gone, here.
const sessionsAtOnce = 6

// Pipelined says that a caller may start any number of commands at once
// (transport.Pipelined): true unless the connection was made without a channel
// (Config.NoChannel), whose callers keep to a few at once as before.
func (c *Conn) Pipelined() bool { return !c.cfg.NoChannel }

// runSession runs cmd in a session of its own, at most sessionsAtOnce at a time.
func (c *Conn) runSession(ctx context.Context, cmd transport.Command) error {
	release, err := c.takeSession(ctx)
	if err != nil {
		return err
	}
	defer release()
	line := shell.Join("sh", "-c", cmd.Line)
	var password string
	var sudo *sudoMode
	if c.becomes() {
		mode, err := c.sudoMode(ctx)
		if err != nil {
			return err
		}
		line, password = mode.wrap(cmd.Line)
		if password != "" {
			sudo = mode
		}
	}
	err = c.run(ctx, cmd.Line, line, sudo, cmd.Stdin, cmd.Stdout, cmd.Stderr)
	if password != "" && err != nil {
		err = redact(err, password)
	}
	return err
}

// run runs line in a new session. sudo, when not nil, is the password mode of a line
// it wrapped: the password goes to sudo's prompt only, and stdin to the command only
// once it runs. shown is the line as the caller gave it, for an ExitError.
func (c *Conn) run(ctx context.Context, shown, line string, sudo *sudoMode, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sess, err := c.newSession(ctx)
	if err != nil {
		return fmt.Errorf("ssh %s: open session: %w", c.name, err)
	}
	defer sess.Close()

	sess.Stdout = stdout
	var tail transport.TailBuffer
	if stderr != nil {
		sess.Stderr = stderr
	} else {
		sess.Stderr = &tail
	}
	// Our own copier feeds stdin, so that a cancelled Run need not wait for a
	// caller's reader that blocks.
	var in io.WriteCloser
	if stdin != nil || sudo != nil {
		if in, err = sess.StdinPipe(); err != nil {
			return fmt.Errorf("ssh %s: stdin: %w", c.name, err)
		}
	}
	var gate *sudoGate
	if sudo != nil {
		gate = newSudoGate(sudo, in, sess.Stderr)
		sess.Stderr = gate
	}
	if err := sess.Start(line); err != nil {
		return fmt.Errorf("ssh %s: start command: %w", c.name, err)
	}
	ended := make(chan struct{})
	defer close(ended)
	if in != nil {
		go func() {
			defer in.Close()
			if gate != nil {
				select {
				case <-gate.started:
				case <-ended:
					return
				}
			}
			if stdin != nil {
				io.Copy(in, stdin)
			}
		}()
	}

	done := make(chan error, 1)
	go func() {
		err := sess.Wait()
		if gate != nil {
			gate.flush()
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		// OpenSSH delivers the signal to the command's process; closing the channel
		// then stops our side whatever the server does.
		// We do not wait for the server to confirm: over a dead link it never would. A
		// few bytes in flight may still reach Stdout/Stderr after Run returns.
		sess.Signal(ssh.SIGKILL)
		sess.Close()
		return ctx.Err()
	}
	if err == nil {
		return nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		status, msg := ee.ExitStatus(), tail.String()
		if sig := ee.Signal(); sig != "" {
			status = 128 + signalNumber(sig)
			msg = strings.TrimSpace(msg + "\nkilled by signal " + sig)
		}
		return &transport.ExitError{Line: shown, Status: status, Stderr: msg}
	}
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) {
		return fmt.Errorf("ssh %s: command ended without an exit status (connection lost?): %w", c.name, err)
	}
	return fmt.Errorf("ssh %s: run command: %w", c.name, err)
}

// newSession opens a session, and tries again, a few times and briefly, when the
// server refuses to open it: sshd counts a session closed only once it has processed
// the close, so sessions opened right after others ended can find MaxSessions still
// full. A refused session ran nothing.
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, error) {
	for attempt := 1; ; attempt++ {
		client, _, err := c.sshClient(ctx)
		if err != nil {
			return nil, err
		}
		sess, err := client.NewSession()
		if err != nil && attempt < 6 && c.lostWarm(client) {
			continue // dialled directly at the next sshClient
		}
		var refused *ssh.OpenChannelError
		if err == nil || !errors.As(err, &refused) || attempt == 6 {
			return sess, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
}

// Close closes the SFTP client, removes the upload directory and closes the
// connection and its jump hosts.
func (c *Conn) Close() error {
	c.closing.Store(true)
	// Before c.mu: opening the channel holds chanMu, then c.mu (sudoMode).
	c.chanMu.Lock()
	if c.ch != nil {
		// A warm daemon's shell left idle is kept for the next run.
		if c.chPark != nil {
			if token, ok := c.ch.Detach(); ok {
				c.chPark(token)
			}
		}
		c.ch.Close()
	}
	c.chanOff = true
	c.chanMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.stopKeepAlive != nil {
		close(c.stopKeepAlive)
	}
	var errs []error
	if c.sftp != nil {
		if err := c.sftp.Close(); err != nil && !errors.Is(err, io.EOF) {
			errs = append(errs, fmt.Errorf("close sftp: %w", err))
		}
		c.sftp = nil
	}
	if c.uploadDir != "" {
		// Best effort: the directory is private and holds nothing once uploads are done.
		c.run(context.Background(), "", shell.Join("rm", "-rf", "--", c.uploadDir), nil, nil, nil, nil)
		c.uploadDir = ""
	}
	if err := c.closeClients(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("ssh %s: close: %w", c.name, errors.Join(errs...))
	}
	return nil
}

func (c *Conn) closeClients() error {
	var errs []error
	all := append([]*ssh.Client{}, c.jumps...)
	if c.client != nil {
		all = append(all, c.client)
	}
	for i := len(all) - 1; i >= 0; i-- {
		if err := all[i].Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func signalNumber(name string) int {
	n := map[string]int{"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "ABRT": 6, "FPE": 8, "KILL": 9,
		"USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15}[name]
	if n == 0 {
		return 127 // 128+127 = 255, what OpenSSH's client reports for an unknown end
	}
	return n
}
