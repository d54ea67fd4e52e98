// Package channeltest checks that a transport running commands over a command
// channel keeps the exact semantics of transport.Conn.Run. The host must be on this
// machine (an sshd on 127.0.0.1, a container), so that its /proc can be searched for
// traces of a secret, and the tests must run as root.
package channeltest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/transport"
)

// Run runs every check against a fresh connection from dial for each; channelErr says
// why a connection has no working channel (nil when it has one).
func Run(t *testing.T, dial func(t *testing.T) transport.Conn, channelErr func(transport.Conn) error) {
	checks := []struct {
		name string
		f    func(t *testing.T, c transport.Conn, channelErr func() error)
	}{
		{"ExitStatusAndStderrComeBackApart", exitStatusAndStderr},
		{"BinaryOutputComesBackByteForByte", binaryOutput},
		{"ASecretOnStdinLeavesNoTraceInArgsEnvOrFiles", secretOnStdin},
		{"ACommandThatReadsPartOfItsInputDoesNotEatTheNext", partialStdin},
		{"AThousandPipelinedCommandsEachGetTheirOwnResult", thousandPipelined},
		{"CancellingACommandKillsItAndTheChannelGoesOn", cancelMidCommand},
		{"ACommandCancelledWhileQueuedIsKilledWhenItStarts", cancelWhileQueued},
		{"ABrokenChannelLeavesLaterCommandsToSessionsOfTheirOwn", brokenChannel},
		{"ThirtyCommandsStartedAtOnceAfterABreakAllRun", manyAfterBreak},
	}
	for _, ck := range checks {
		t.Run(ck.name, func(t *testing.T) {
			c := dial(t)
			ck.f(t, c, func() error { return channelErr(c) })
		})
	}
}

func word(t *testing.T) string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func exitStatusAndStderr(t *testing.T, c transport.Conn, channelErr func() error) {
	tests := []struct {
		line, wantOut, wantErr string
		status                 int
	}{
		{"echo out; echo err >&2", "out\n", "err\n", 0},
		{"printf 'no newline'; printf 'err' >&2; exit 7", "no newline", "err", 7},
		{"echo gone >&2; kill -9 $$", "", "gone\n", 137},
		{"exit 255", "", "", 255},
		{"printf '\\n\\n'", "\n\n", "", 0},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		err := c.Run(context.Background(), transport.Command{Line: tt.line, Stdout: &out, Stderr: &errb})
		if got := transport.ExitStatus(err); got != tt.status {
			t.Errorf("%q: exit status %d (%v), want %d", tt.line, got, err, tt.status)
		}
		if out.String() != tt.wantOut || errb.String() != tt.wantErr {
			t.Errorf("%q: stdout %q stderr %q, want %q and %q", tt.line, out.String(), errb.String(), tt.wantOut, tt.wantErr)
		}
	}
	// Uncaptured stderr is the ExitError's tail.
	_, err := transport.Output(context.Background(), c, "echo the reason >&2; exit 3")
	var ee *transport.ExitError
	if !errors.As(err, &ee) || ee.Status != 3 || strings.TrimSpace(ee.Stderr) != "the reason" {
		t.Errorf("got %#v, want exit 3 with stderr %q", err, "the reason")
	}
	if err := channelErr(); err != nil {
		t.Errorf("the commands did not go over the channel: %v", err)
	}
}

func binaryOutput(t *testing.T, c transport.Conn, channelErr func() error) {
	in := make([]byte, 300<<10)
	rand.Read(in)
	// Bytes that look like the framing: newlines, and a line of hex like a token.
	in = append(in, []byte("\ncauldron-0123 0\n\n")...)
	var out bytes.Buffer
	if err := c.Run(context.Background(), transport.Command{Line: "cat", Stdin: bytes.NewReader(in), Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Errorf("got %d bytes back, want the %d sent", out.Len(), len(in))
	}
	if err := channelErr(); err != nil {
		t.Errorf("not over the channel: %v", err)
	}
}

func secretOnStdin(t *testing.T, c transport.Conn, channelErr func() error) {
	secret := "s3cret-" + word(t)
	done := make(chan error, 1)
	go func() {
		_, err := transport.OutputWithInput(context.Background(), c, `IFS= read -r x; sleep 2; [ -n "$x" ]`, strings.NewReader(secret+"\n"))
		done <- err
	}()
	// While the command holds it, search every process's arguments and environment.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if where := searchProc(secret); where != "" {
			t.Errorf("the secret is in %s", where)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// And every file written in the last minutes where a transport would stage input,
	// searched on the host with the secret on grep's fd 3, never in an argument.
	out, err := transport.OutputWithInput(context.Background(), c,
		`{ find /tmp /var/tmp /dev/shm "$HOME" -xdev -type f -mmin -3 -print0 2>/dev/null | xargs -0 -r grep -lsFf /dev/fd/3; } 3<&0; true`,
		strings.NewReader(secret+"\n"))
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("the secret is in files on the host: %q %v", out, err)
	}
	if err := channelErr(); err != nil {
		t.Errorf("not over the channel: %v", err)
	}
}

// searchProc is where in this machine's /proc (the host's processes are this kernel's)
// s appears, or "".
func searchProc(s string) string {
	self := fmt.Sprint(os.Getpid())
	paths, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range paths {
		if filepath.Base(p) == self {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			if b, err := os.ReadFile(filepath.Join(p, f)); err == nil && bytes.Contains(b, []byte(s)) {
				return filepath.Join(p, f)
			}
		}
	}
	return ""
}

func partialStdin(t *testing.T, c transport.Conn, channelErr func() error) {
	type run struct{ line, in, want string }
	runs := []run{{"head -c 3", "abcdef", "abc"}, {"true", "ignored\n", ""}, {"cat", "xyz", "xyz"}, {"cat", "", ""}}
	outs := make([]bytes.Buffer, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Run(context.Background(), transport.Command{Line: r.line, Stdin: strings.NewReader(r.in), Stdout: &outs[i]})
		}()
	}
	wg.Wait()
	for i, r := range runs {
		if errs[i] != nil || outs[i].String() != r.want {
			t.Errorf("%q with %q: got %q, %v; want %q", r.line, r.in, outs[i].String(), errs[i], r.want)
		}
	}
	if err := channelErr(); err != nil {
		t.Errorf("not over the channel: %v", err)
	}
}

func thousandPipelined(t *testing.T, c transport.Conn, channelErr func() error) {
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out, errb bytes.Buffer
			err := c.Run(context.Background(), transport.Command{
				Line: fmt.Sprintf("echo o%d; echo e%d >&2; exit %d", i, i, i%5), Stdout: &out, Stderr: &errb})
			if transport.ExitStatus(err) != i%5 || out.String() != fmt.Sprintf("o%d\n", i) || errb.String() != fmt.Sprintf("e%d\n", i) {
				errs <- fmt.Sprintf("command %d: %q %q %v", i, out.String(), errb.String(), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if err := channelErr(); err != nil {
		t.Errorf("not over the channel: %v", err)
	}
	if tc, ok := c.(transport.Counter); ok {
		if got := tc.Traffic(); got.Commands != n {
			t.Errorf("counted %+v, want %d commands", got, n)
		}
	}
}

func cancelMidCommand(t *testing.T, c transport.Conn, channelErr func() error) {
	mark := fmt.Sprint(3000 + time.Now().UnixNano()%1000)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	// A child that ignores its stdin and a parent shell: both must go.
	err := c.Run(ctx, transport.Command{Line: "sleep " + mark + " & sleep " + mark + "; wait", Stdin: strings.NewReader("x")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Run returned %s after its context ended", took)
	}
	// The next command runs on the same channel.
	var out bytes.Buffer
	if err := c.Run(context.Background(), transport.Command{Line: "echo next", Stdout: &out}); err != nil || out.String() != "next\n" {
		t.Fatalf("the next command: %q %v", out.String(), err)
	}
	if err := channelErr(); err != nil {
		t.Errorf("the channel did not survive the cancel: %v", err)
	}
	// The kill is a command of its own (a docker exec, an SSH session) given 10 s, and
	// a child forked after one attempt listed the processes is found by the next: 5 s
	// was too short for a docker exec on a loaded CI machine (session 10).
	for wait := time.Now().Add(15 * time.Second); ; {
		if where := searchProc("sleep\x00" + mark); where == "" {
			break
		} else if time.Now().After(wait) {
			t.Fatalf("the cancelled command still runs: %s", where)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func brokenChannel(t *testing.T, c transport.Conn, channelErr func() error) {
	if err := c.Run(context.Background(), transport.Command{Line: "true"}); err != nil {
		t.Fatal(err)
	}
	// The first command kills the channel's shell (its parent) while later ones wait
	// behind it: those never started, and run in sessions of their own.
	first := make(chan error, 1)
	go func() { first <- c.Run(context.Background(), transport.Command{Line: "sleep 0.3; kill -9 $PPID"}) }()
	time.Sleep(100 * time.Millisecond)
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 5)
	errs := make([]error, 5)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Run(context.Background(), transport.Command{Line: fmt.Sprintf("echo after%d", i), Stdout: &outs[i]})
		}()
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil || outs[i].String() != fmt.Sprintf("after%d\n", i) {
			t.Errorf("command %d after the break: %q %v", i, outs[i].String(), errs[i])
		}
	}
	if err := <-first; err == nil || transport.ExitStatus(err) != -1 {
		t.Errorf("the command that broke the channel: %v, want an error saying the channel broke", err)
	}
	if channelErr() == nil {
		t.Errorf("the channel is not reported broken")
	}
	var out bytes.Buffer
	if err := c.Run(context.Background(), transport.Command{Line: "echo later", Stdout: &out}); err != nil || out.String() != "later\n" {
		t.Errorf("a later command: %q %v", out.String(), err)
	}
}

// manyAfterBreak starts thirty commands at once on a connection whose channel broke, as
// a runner checking ahead over a transport.Pipelined connection does: the transport
// runs them another way, a few at a time, and every one runs (sshd refuses sessions
// beyond MaxSessions, ten by default, on one connection).
func manyAfterBreak(t *testing.T, c transport.Conn, channelErr func() error) {
	if p, ok := c.(transport.Pipelined); !ok || !p.Pipelined() {
		t.Fatalf("%T does not say it is Pipelined", c)
	}
	// A connection's first command may go another way than the channel (sshconn runs
	// it in a session of its own): the second kills the channel's shell.
	if err := c.Run(context.Background(), transport.Command{Line: "true"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background(), transport.Command{Line: "kill -9 $PPID"}); err == nil {
		t.Fatal("killing the channel's shell did not fail the command")
	}
	if channelErr() == nil {
		t.Fatal("the channel is not reported broken")
	}
	const n = 30
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Run(context.Background(), transport.Command{Line: fmt.Sprintf("sleep 0.2; echo at-once%d", i), Stdout: &outs[i]})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || outs[i].String() != fmt.Sprintf("at-once%d\n", i) {
			t.Errorf("command %d of %d started at once: %q %v", i, n, outs[i].String(), errs[i])
		}
	}
}

func cancelWhileQueued(t *testing.T, c transport.Conn, channelErr func() error) {
	if err := c.Run(context.Background(), transport.Command{Line: "true"}); err != nil {
		t.Fatal(err)
	}
	mark := fmt.Sprint(4000 + time.Now().UnixNano()%1000)
	ahead := make(chan error, 1)
	go func() { ahead <- c.Run(context.Background(), transport.Command{Line: "sleep 1"}) }()
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { queued <- c.Run(ctx, transport.Command{Line: "sleep " + mark}) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("the queued command: %v, want the context's error", err)
	}
	if err := <-ahead; err != nil {
		t.Fatalf("the command ahead: %v", err)
	}
	// It started after its cancel; it must not hold the channel for its whole sleep.
	next, cancelNext := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelNext()
	var out bytes.Buffer
	if err := c.Run(next, transport.Command{Line: "echo next", Stdout: &out}); err != nil || out.String() != "next\n" {
		t.Fatalf("the next command, behind the cancelled one: %q %v", out.String(), err)
	}
	if err := channelErr(); err != nil {
		t.Errorf("the channel did not survive: %v", err)
	}
}
