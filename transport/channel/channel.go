// Package channel runs many commands over one long-lived shell on a host: the
// controller writes framed commands to the shell's standard input, several at once
// (pipelined), and the shell runs them one after another and frames their output and
// exit status back, in order. One SSH session or one docker exec then carries a whole
// host's checks, instead of one session or exec (a new shell, a runc start) each.
//
// The shell on the host is sh running Loop. A frame is a mark line "<token>f\n", a
// header line "<lines> <stdin length or -1> <id>\n", then the command line followed by
// a newline (so <lines> lines: the line's own newlines and that one), then the stdin
// bytes. The loop reads the mark, the header and the command's lines with the read
// builtin, which never reads past a newline and keeps every other byte of a line as it
// is (NUL aside: a line holding NUL never goes over the channel, as it could not be an
// argument of sh -c either); it starts no process to read a command. The stdin bytes
// it reads with head -c (GNU head reads no further than the count), so a command that
// reads none or part of its input never eats the next frame: the rest of its input is
// drained after it exits. The mark is how the loop knows the frame before was read
// exactly: a head that reads past its count (not GNU's) leaves the loop looking at
// something else than a mark, and it exits before it runs anything more, so the
// commands after go another way (the channel breaks; see ErrNotStarted) instead of
// running from a misread frame. So no round trip waits for a test of the host's head
// before the first command with input: Verify runs one beside it (and none on a
// channel whose commands have no input). Input travels only inside the channel: it is
// never in a file, an argument or the environment on the host.
//
// On standard output each command is framed by "<token>s\n" before and
// "\n<token> <status>\n" after; on standard error by "\n<token>\n" after. The token
// is random, sent as the first line of input, so it appears in no argument either.
// Every command runs with CAULDRON_EXEC_ID=<id> in its environment, so that a
// cancelled command and its children can be found and killed (KillScript) while the
// channel goes on with the next command.
package channel

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// Loop is the shell program the host runs (sh -c Loop). It needs GNU head (for -c
// that stops at the count) for commands with input and, for KillScript, /proc. Its own
// stderr goes to /dev/null (the shell's "Killed" notes are not a command's output);
// each command runs in a subshell that moves fd 3, the channel's stderr, to its own fd
// 2 before it execs sh -c with the command, so no redirection of the loop is in force
// while it waits. Reading a command with read instead of $(head -c N) saves two
// processes per command: the loop's own CPU per command, measured on this machine with
// 300 lines as long as the lab's converged checks' (230 bytes on average), is 1.0-1.1
// ms instead of 2.0-2.6 ms. (eval in the subshell instead of exec sh -c would cost 0.3
// ms, but $$, $PPID and the kill of a cancelled command by its environment would no
// longer be those of sh -c.)
const Loop = `exec 3>&2 2>/dev/null
IFS= read -r t || exit 0
while IFS= read -r k && [ "$k" = "${t}f" ] && IFS=' ' read -r c m i; do
l=; while [ "$c" -gt 0 ] && IFS= read -r x; do l="$l$x
"; c=$((c-1)); done
[ "$c" = 0 ] || exit 0
l=${l%?}
printf '%ss\n' "$t"
if [ "$m" -ge 0 ]; then
head -c "$m" | { (exec 2>&3 3>&-; export CAULDRON_EXEC_ID=$i; exec sh -c "$l"); s=$?; cat >/dev/null; exit $s; }
else
(exec 2>&3 3>&- </dev/null; export CAULDRON_EXEC_ID=$i; exec sh -c "$l")
fi
s=$?
printf '\n%s %d\n' "$t" "$s"
printf '\n%s\n' "$t" >&3
done`

// KillScript is the command line that kills, with SIGKILL, every process whose
// environment holds CAULDRON_EXEC_ID=id: a cancelled command and its children. Its own
// environment does not hold it, so it never kills itself.
//
// One grep reads every process's environment (GNU grep's -z takes each NUL-ended
// variable as a line): a tr and a grep per process took 13 s on a 2-core machine with
// 132 processes, a load average of 17 and the lab's containers (fork is slow there),
// past the kill's 10 s, and the cancelled command held its channel for its whole run
// (a CI run on a fresh machine). A grep without -z (BusyBox) takes the old loop.
func KillScript(id string) string {
	want := shell.Quote("CAULDRON_EXEC_ID=" + id)
	return `if printf 'a\0' | grep -qzx a 2>/dev/null; then ` +
		`for f in $(grep -lzxF ` + want + ` /proc/[0-9]*/environ 2>/dev/null); do p=${f%/environ}; kill -9 "${p#/proc/}" 2>/dev/null; done; ` +
		`else for p in /proc/[0-9]*; do ` +
		`tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qxF ` + want +
		` && kill -9 "${p#/proc/}" 2>/dev/null; done; fi; true`
}

// MaxStdin is the most standard input a command may give to go over the channel; a
// command with more (a file streamed in) is the caller's to run another way.
const MaxStdin = 1 << 20

// ErrBroken is wrapped by the error of a command the channel could not run because it
// broke (the shell ended, the stream failed). Errors wrapping ErrNotStarted name
// commands the host never started, safe to run another way.
var (
	ErrBroken     = errors.New("command channel broken")
	ErrNotStarted = errors.New("the command did not start")
)

// Channel is one shell on a host running framed commands in order. It is safe for
// concurrent use: concurrent Runs are pipelined.
type Channel struct {
	token string
	// idPrefix starts the ids of this Channel's commands: random per Channel, so that a
	// shell taken over from an earlier run (Resume) never sees an id twice.
	idPrefix string
	in       io.WriteCloser
	// stdout and stderr are the shell's outputs, read from start on.
	stdout, stderr io.Reader
	kill           func(id string)
	close          func() error

	wmu sync.Mutex // frames are written whole, one at a time

	mu      sync.Mutex
	calls   []*call // written and not finished, in order
	broken  error
	seq     int
	outDone bool
	errDone bool
	closed  chan struct{}

	// Verify's state: the self-test waits for the first command with input.
	verify        int
	verifyTimeout time.Duration
	// firstWrite is closed once the first frame is written, firstBegun once the
	// shell has begun a command.
	firstWrite, firstBegun chan struct{}
}

// Verify's states.
const (
	verifyNone    = iota // Verify was not called
	verifyOnInput        // the self-test starts before the first command with input
	verifyStarted        // it has started
)

type call struct {
	line   string
	id     string
	stdout io.Writer
	stderr io.Writer
	tail   transport.TailBuffer

	started bool
	begun   chan struct{} // closed when started is set
	status  int
	outEnd  bool
	errEnd  bool
	dropped bool // the caller gave up (cancelled): output goes nowhere
	done    chan error
}

// Open starts a channel on a shell that runs Loop: in is its standard input, stdout
// and stderr its outputs (stderr may be nil when the transport merges them, which it
// must not). kill, called in the background for a cancelled command, kills it by id
// (running KillScript another way); close ends the shell and its transport.
func Open(in io.WriteCloser, stdout, stderr io.Reader, kill func(id string), closeFn func() error) (*Channel, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	ch, err := newChannel("cauldron-"+hex.EncodeToString(b[:]), in, stdout, stderr, kill, closeFn)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(in, ch.token+"\n"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBroken, err)
	}
	ch.start()
	return ch, nil
}

// Resume takes over a shell running Loop that an earlier Channel left idle (see
// Detach) with its token: the shell waits for its next frame, so commands go at once,
// with no round trip to start a shell. A shell that has ended breaks the channel:
// the commands written to it fail with ErrNotStarted.
func Resume(token string, in io.WriteCloser, stdout, stderr io.Reader, kill func(id string), closeFn func() error) (*Channel, error) {
	if !strings.HasPrefix(token, "cauldron-") || strings.ContainsAny(token, " \n") {
		return nil, fmt.Errorf("%w: not a channel's token", ErrBroken)
	}
	ch, err := newChannel(token, in, stdout, stderr, kill, closeFn)
	if err != nil {
		return nil, err
	}
	ch.start()
	return ch, nil
}

func newChannel(token string, in io.WriteCloser, stdout, stderr io.Reader, kill func(id string), closeFn func() error) (*Channel, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return &Channel{token: token, idPrefix: hex.EncodeToString(b[:]), in: in, stdout: stdout, stderr: stderr, kill: kill,
		close: closeFn, closed: make(chan struct{}), firstWrite: make(chan struct{}), firstBegun: make(chan struct{})}, nil
}

func (ch *Channel) start() {
	go ch.readOut(ch.stdout)
	go ch.readErr(ch.stderr)
}

// ErrDetached breaks a channel that Detach handed its shell on.
var ErrDetached = errors.New("command channel detached")

// Detach hands the shell on, idle, for a later Resume: when no command is in flight
// and the channel works, it takes no more commands (they fail with ErrNotStarted)
// and returns the shell's token and true; the caller then keeps the shell's streams
// open for the next Channel, whose commands are framed with the same token. Otherwise
// it returns false and changes nothing: the caller closes the channel. The token is
// no secret (it keeps commands' output from passing for the channel's marks), but it
// goes only where the shell goes.
func (ch *Channel) Detach() (token string, ok bool) {
	ch.wmu.Lock()
	defer ch.wmu.Unlock()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.broken != nil || len(ch.calls) > 0 {
		return "", false
	}
	ch.broken = ErrDetached
	close(ch.closed)
	return ch.token, true
}

// Broken is the error that broke the channel, or nil while it works.
func (ch *Channel) Broken() error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.broken
}

// Close ends the shell: commands in flight fail with ErrBroken.
func (ch *Channel) Close() error {
	ch.fail(fmt.Errorf("%w: closed", ErrBroken))
	ch.wmu.Lock()
	ch.in.Close()
	ch.wmu.Unlock()
	if ch.close != nil {
		return ch.close()
	}
	return nil
}

// Run runs c over the channel with the semantics of transport.Conn.Run: nil for exit
// 0, a *transport.ExitError with the stderr tail otherwise. Its Stdin is read whole
// first (at most MaxStdin bytes, else an error before anything is sent). When ctx
// ends, the command is killed on the host in the background and Run returns ctx's
// error at once; the channel goes on. An error wrapping ErrNotStarted means the host
// never saw the command.
func (ch *Channel) Run(ctx context.Context, c transport.Command) error {
	return ch.run(ctx, c, nil)
}

// run is Run; begun, when not nil, receives the channel closed when the command
// begins on the host, before the command is written.
func (ch *Channel) run(ctx context.Context, c transport.Command, begun chan<- <-chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := prepare(c)
	if err != nil {
		return err
	}
	if p.input >= 0 {
		ch.verifyBeforeInput()
	}
	if begun != nil {
		begun <- p.cl.begun
	}
	if err := ch.writeFrames(p); err != nil {
		return err
	}
	return ch.wait(ctx, p.cl)
}

// pending is a command ready to be written: its call and its frame's input (-1: none).
type pending struct {
	cl    *call
	input int
	stdin []byte
}

// prepare reads c's standard input whole and checks that the shell can read c.
func prepare(c transport.Command) (pending, error) {
	p := pending{input: -1}
	if c.Stdin != nil {
		b, err := io.ReadAll(io.LimitReader(c.Stdin, MaxStdin+1))
		if err != nil {
			return p, fmt.Errorf("read standard input: %w", err)
		}
		if len(b) > MaxStdin {
			return p, fmt.Errorf("standard input over %d bytes: not sent over the channel", MaxStdin)
		}
		p.stdin, p.input = b, len(b)
	}
	if strings.IndexByte(c.Line, 0) >= 0 {
		return p, fmt.Errorf("a command line holding a NUL byte cannot be read by the channel's shell (%w)", ErrNotStarted)
	}
	p.cl = &call{line: c.Line, stdout: c.Stdout, stderr: c.Stderr, done: make(chan error, 1), begun: make(chan struct{})}
	return p, nil
}

// writeFrames writes the frames of ps one after another, in one hold of the write lock:
// no other command's frame goes between them. An error means none was written; a
// failed write breaks the channel, and the calls end with that.
func (ch *Channel) writeFrames(ps ...pending) error {
	ch.wmu.Lock()
	defer ch.wmu.Unlock()
	ch.mu.Lock()
	if ch.broken != nil {
		err := ch.broken
		ch.mu.Unlock()
		return fmt.Errorf("%w (%w)", err, ErrNotStarted)
	}
	var frames []byte
	for _, p := range ps {
		ch.seq++
		p.cl.id = ch.idPrefix + "-" + strconv.Itoa(ch.seq)
		ch.calls = append(ch.calls, p.cl)
		frames = fmt.Appendf(frames, "%sf\n%d %d %s\n", ch.token, strings.Count(p.cl.line, "\n")+1, p.input, p.cl.id)
		frames = append(frames, p.cl.line...)
		frames = append(frames, '\n')
		frames = append(frames, p.stdin...)
	}
	first := ch.seq == len(ps)
	ch.mu.Unlock()
	_, werr := ch.in.Write(frames)
	if first {
		close(ch.firstWrite)
	}
	if werr != nil {
		ch.fail(fmt.Errorf("%w: write: %v", ErrBroken, werr))
	}
	return nil
}

// wait waits for cl's end, or for ctx's: then the command is killed on the host in
// the background.
func (ch *Channel) wait(ctx context.Context, cl *call) error {
	select {
	case err := <-cl.done:
		return err
	case <-ctx.Done():
		ch.mu.Lock()
		cl.dropped = true
		ch.mu.Unlock()
		if ch.kill != nil {
			go ch.killDropped(cl)
		}
		return ctx.Err()
	}
}

// killDropped kills a command its caller gave up on, once it has started (one queued
// behind others may start much later), and again until it has ended: the kill finds
// a process by its environment, which a command has only once it has exec'd.
func (ch *Channel) killDropped(cl *call) {
	select {
	case <-cl.begun:
	case <-cl.done:
		return
	}
	for range 40 {
		ch.kill(cl.id)
		select {
		case <-cl.done:
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// fail breaks the channel: every command in flight ends with err, wrapping
// ErrNotStarted for those the host never started.
func (ch *Channel) fail(err error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.broken != nil {
		return
	}
	ch.broken = err
	close(ch.closed)
	for _, cl := range ch.calls {
		if cl.started {
			cl.done <- fmt.Errorf("%w; it may have run on the host", err)
		} else {
			cl.done <- fmt.Errorf("%w (%w)", err, ErrNotStarted)
		}
	}
	ch.calls = nil
}

// finishLocked ends cl when both its stdout and stderr ends have arrived. ch.mu is held.
func (ch *Channel) finishLocked(cl *call) {
	if !cl.outEnd || !cl.errEnd {
		return
	}
	if len(ch.calls) > 0 && ch.calls[0] == cl {
		ch.calls = ch.calls[1:]
	}
	if cl.status == 0 {
		cl.done <- nil
		return
	}
	cl.done <- &transport.ExitError{Line: cl.line, Status: cl.status, Stderr: cl.tail.String()}
}

// currentLocked is the first call whose stdout (out) or stderr (!out) has not ended.
func (ch *Channel) currentLocked(out bool) *call {
	for _, cl := range ch.calls {
		if out && !cl.outEnd || !out && !cl.errEnd {
			return cl
		}
	}
	return nil
}

// readOut splits standard output into the commands' outputs.
func (ch *Channel) readOut(r io.Reader) {
	start := []byte(ch.token + "s\n")
	end := []byte("\n" + ch.token + " ")
	var buf []byte
	chunk := make([]byte, 32<<10)
	inside := false
	for {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			if !inside {
				if len(buf) < len(start) {
					break
				}
				if !bytes.HasPrefix(buf, start) {
					ch.fail(fmt.Errorf("%w: unexpected output %q", ErrBroken, firstBytes(buf)))
					return
				}
				buf = buf[len(start):]
				ch.mu.Lock()
				if cl := ch.currentLocked(true); cl != nil {
					cl.started = true
					close(cl.begun)
				}
				select {
				case <-ch.firstBegun:
				default:
					close(ch.firstBegun)
				}
				ch.mu.Unlock()
				inside = true
				continue
			}
			i := bytes.Index(buf, end)
			if i < 0 {
				// Pass on all but what may be the start of the end marker.
				keep := heldBack(buf, end)
				ch.write(true, buf[:len(buf)-keep])
				buf = append(buf[:0], buf[len(buf)-keep:]...)
				break
			}
			nl := bytes.IndexByte(buf[i+len(end):], '\n')
			if nl < 0 {
				ch.write(true, buf[:i])
				buf = append(buf[:0], buf[i:]...)
				break
			}
			ch.write(true, buf[:i])
			status, perr := strconv.Atoi(string(buf[i+len(end) : i+len(end)+nl]))
			buf = buf[i+len(end)+nl+1:]
			inside = false
			ch.mu.Lock()
			if cl := ch.currentLocked(true); cl != nil {
				cl.outEnd, cl.status = true, status
				if perr != nil {
					cl.status = -1
				}
				ch.finishLocked(cl)
			}
			ch.mu.Unlock()
		}
		if err != nil {
			ch.streamEnded(true, errOrEOF(err), fmt.Errorf("%w: standard output: %v", ErrBroken, errOrEOF(err)))
			return
		}
	}
}

// readErr splits standard error into the commands' error outputs.
func (ch *Channel) readErr(r io.Reader) {
	end := []byte("\n" + ch.token + "\n")
	var buf []byte
	chunk := make([]byte, 32<<10)
	for {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			i := bytes.Index(buf, end)
			if i < 0 {
				keep := heldBack(buf, end)
				ch.write(false, buf[:len(buf)-keep])
				buf = append(buf[:0], buf[len(buf)-keep:]...)
				break
			}
			ch.write(false, buf[:i])
			buf = buf[i+len(end):]
			ch.mu.Lock()
			if cl := ch.currentLocked(false); cl != nil {
				cl.errEnd = true
				ch.finishLocked(cl)
			}
			ch.mu.Unlock()
		}
		if err != nil {
			ch.streamEnded(false, errOrEOF(err), fmt.Errorf("%w: standard error: %v", ErrBroken, errOrEOF(err)))
			return
		}
	}
}

// streamGrace is how long a stream that ended at EOF waits for the other to end too
// before the channel breaks.
const streamGrace = 5 * time.Second

// streamEnded notes that standard output (out) or standard error ended (cause), err
// being what breaks the channel. The
// shell ends both when it exits, and what the other still holds (the end marks of the
// last command, written just before) is read first: only then, or after streamGrace,
// or at once for an error other than EOF, does the channel break.
func (ch *Channel) streamEnded(out bool, cause, err error) {
	ch.mu.Lock()
	if out {
		ch.outDone = true
	} else {
		ch.errDone = true
	}
	both := ch.outDone && ch.errDone
	ch.mu.Unlock()
	if both || !errors.Is(cause, io.EOF) {
		ch.fail(err)
		return
	}
	time.AfterFunc(streamGrace, func() { ch.fail(err) })
}

// write passes output to the current command of its stream.
func (ch *Channel) write(out bool, p []byte) {
	if len(p) == 0 {
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	cl := ch.currentLocked(out)
	if cl == nil || cl.dropped {
		return
	}
	if out {
		if cl.stdout != nil {
			cl.stdout.Write(p)
		}
		return
	}
	cl.tail.Write(p)
	if cl.stderr != nil {
		cl.stderr.Write(p)
	}
}

func errOrEOF(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}

func firstBytes(b []byte) string {
	return strings.ToValidUTF8(string(b[:min(len(b), 80)]), "?")
}

// RunOrOwn runs cmd over ch when it can, and otherwise with own, the transport's way of
// running a command by itself (a session, an exec): when there is no channel (ch nil),
// when the input is larger than a frame carries (MaxStdin), or when the channel broke
// before the command started. Every transport with a channel runs commands through it.
func RunOrOwn(ctx context.Context, ch *Channel, cmd transport.Command, own func(context.Context, transport.Command) error) error {
	if ch == nil {
		return own(ctx, cmd)
	}
	small, rest, fits, err := Buffer(cmd.Stdin)
	if err != nil {
		return err
	}
	if !fits {
		cmd.Stdin = rest
		return own(ctx, cmd)
	}
	framed := cmd
	if cmd.Stdin != nil {
		framed.Stdin = bytes.NewReader(small)
	}
	err = ch.Run(ctx, framed)
	if errors.Is(err, ErrNotStarted) && ctx.Err() == nil {
		cmd.Stdin = rest
		return own(ctx, cmd)
	}
	return err
}

// Buffer reads r (nil for none) up to MaxStdin bytes. fits says all of it was read
// into small; either way rest reads the whole input again, for the caller to run the
// command another way.
func Buffer(r io.Reader) (small []byte, rest io.Reader, fits bool, err error) {
	if r == nil {
		return nil, nil, true, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxStdin+1))
	if err != nil {
		return nil, nil, false, fmt.Errorf("read standard input: %w", err)
	}
	if len(b) > MaxStdin {
		return nil, io.MultiReader(bytes.NewReader(b), r), false, nil
	}
	return b, bytes.NewReader(b), true, nil
}

// Verify watches the channel: in the background, it breaks the channel when the
// shell has not begun its first command within timeout of its writing (a server that
// refused to start the shell, a shell that cannot read its frames), and it starts
// SelfTest right before the first command with input (the only frames head reads),
// breaking the channel when the test fails or has no answer within timeout (a head
// that waits for more than its count): the commands not started by then go another
// way. Call it before the channel takes other commands. No one waits for it: the
// frame marks already keep a misread frame from running (see the package doc), and
// the commands go in the same round trip as the test; Verify makes a host whose head
// is not exact stop using the channel at once, with the reason. A channel whose
// commands have no input runs no self-test: it saves the host the test's processes
// (about 15) on every connection.
func Verify(ch *Channel, timeout time.Duration) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.verify != verifyNone {
		return
	}
	ch.verify, ch.verifyTimeout = verifyOnInput, timeout
	go ch.watchFirstAnswer(timeout)
}

// watchFirstAnswer breaks the channel when its first command written has not begun
// within timeout.
func (ch *Channel) watchFirstAnswer(timeout time.Duration) {
	select {
	case <-ch.firstWrite:
	case <-ch.closed:
		return
	}
	select {
	case <-ch.firstBegun:
	case <-ch.closed:
	case <-time.After(timeout):
		ch.fail(fmt.Errorf("%w: the shell began no command within %s of the first", ErrBroken, timeout))
	}
}

// verifyBeforeInput starts the self-test when Verify asked for it and no command with
// input has gone yet; its frames are written before it returns.
func (ch *Channel) verifyBeforeInput() {
	ch.mu.Lock()
	if ch.verify != verifyOnInput {
		ch.mu.Unlock()
		return
	}
	ch.verify = verifyStarted
	timeout := ch.verifyTimeout
	ch.mu.Unlock()
	// The test may wait behind a long command (an install): its time runs from when
	// the host begins it.
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan (<-chan struct{}), 1)
	verdict := startSelfTest(ctx, ch, first)
	go func() {
		defer cancel()
		var begun <-chan struct{}
		select {
		case begun = <-first:
		case <-ch.closed:
			return
		}
		select {
		case <-begun:
		case <-ch.closed:
			return
		}
		timer := time.AfterFunc(timeout, cancel)
		err := verdict()
		timer.Stop()
		if err != nil && ch.Broken() == nil {
			ch.fail(fmt.Errorf("%w: %v", ErrBroken, err))
		}
	}()
}

// SelfTest checks that the shell frames input exactly: a command that reads part of
// its input, one that reads none, and one that reads all, pipelined.
func SelfTest(ctx context.Context, ch *Channel) error {
	return startSelfTest(ctx, ch, nil)()
}

// startSelfTest writes SelfTest's frames, in order, and returns the wait for its
// verdict; first, when not nil, receives the channel closed when the first begins.
func startSelfTest(ctx context.Context, ch *Channel, first chan<- <-chan struct{}) (verdict func() error) {
	type probe struct{ line, in, want string }
	probes := []probe{{"head -c 2", "abcd", "ab"}, {"echo ok", "zz", "ok\n"}, {"cat", "xy\n", "xy\n"}}
	errs := make([]error, len(probes))
	outs := make([]bytes.Buffer, len(probes))
	ps := make([]pending, len(probes))
	for i, p := range probes {
		ps[i], _ = prepare(transport.Command{Line: p.line, Stdin: strings.NewReader(p.in), Stdout: &outs[i]})
	}
	if first != nil {
		first <- ps[0].cl.begun
	}
	// In one write: a command another goroutine sends meanwhile (a long install)
	// must not go between the probes, or the test's time runs out behind it while the
	// head is fine.
	werr := ch.writeFrames(ps...)
	var wg sync.WaitGroup
	for i := range ps {
		if werr != nil {
			errs[i] = werr
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = ch.wait(ctx, ps[i].cl)
		}()
	}
	return func() error {
		wg.Wait()
		for i, p := range probes {
			if errs[i] != nil || outs[i].String() != p.want {
				return fmt.Errorf("command channel self-test: %q with input %q gave %q (%v), want %q: the host's head may not stop at its count",
					p.line, p.in, outs[i].String(), errs[i], p.want)
			}
		}
		return nil
	}
}

// heldBack is the length of the longest end of buf that begins marker: output that
// may be the start of a marker, kept until more comes; the rest flows on at once.
func heldBack(buf, marker []byte) int {
	for k := min(len(buf), len(marker)-1); k > 0; k-- {
		if bytes.Equal(buf[len(buf)-k:], marker[:k]) {
			return k
		}
	}
	return 0
}
