package steps_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// probe is a user's own step whose check runs one read-only line through
// steps.CheckOutput and declares it: converged when the line prints want.
type probe struct {
	name, line, want string
}

func (p probe) String() string { return "probe " + p.name }

func (p probe) ScriptsRead() []string { return []string{p.line} }

func (p probe) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	out, err := steps.CheckOutput(ctx, c, p.line)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if out == p.want {
		return nil, nil
	}
	return &steps.Change{Summary: fmt.Sprintf("%q -> %q", out, p.want), Apply: func(context.Context) error { return nil }}, nil
}

// Lines that misbehave each in their own way (an exit, a failure, a syntax error, a
// variable or set -- of their own, output with no last newline, a here-document)
// answer in a gather exactly as they do alone, and leave the others' answers alone.
func TestDeclaredReadsAnswerInOneCommandAsEachWouldAlone(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "motd")
	if err := os.WriteFile(file, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ss := []steps.Step{
		probe{"exit", "echo one; exit 0; echo never", "one\n"},
		probe{"failure", "echo half; echo 'it broke' >&2; exit 4", ""},
		probe{"syntax error", "if then fi (", ""},
		probe{"variable", "x=${x:-unset}; echo $x; x=set", "unset\n"},
		probe{"set --", "set -- a b c; echo $#", "3\n"},
		probe{"no last newline", "printf abc", "abc"},
		probe{"here-document", "cat <<'EOS'\nline 1\n  line 2\nEOS", "line 1\n  line 2\n"},
		probe{"stdin", "cat; echo end", "end\n"},
		probe{"again", "x=${x:-unset}; echo $x; x=set", "unset\n"},
		steps.File{Path: file, Content: steps.Text("hello\n")},
		steps.Command{Name: "guarded", Line: "false", Unless: "test -e " + file},
		steps.Command{Name: "unguarded", Line: "false", Unless: "test -e " + file + ".missing"},
	}
	ctx := context.Background()
	own := map[string]string{}
	for _, s := range ss {
		own[s.String()] = outcome(s.Check(ctx, local.New()))
	}
	c := &recordingConn{Conn: local.New()}
	pctx := steps.Prefetch(ctx, c, ss)
	for _, s := range ss {
		if got := outcome(s.Check(pctx, c)); got != own[s.String()] {
			t.Errorf("%s: in the gather %q, alone %q", s, got, own[s.String()])
		}
	}
	// The gather, then the two lines that did not end with status 0, again by
	// themselves for their errors.
	if n := c.commands(); n != 3 {
		t.Errorf("%d checks ran %d commands, want 3:\n%s", len(ss), n, strings.Join(c.lines, "\n---\n"))
	}
	for _, want := range []string{"exit status 4", "it broke"} {
		if got := own["probe failure"]; !strings.Contains(got, want) {
			t.Errorf("the failing line's own error %q does not say %q", got, want)
		}
	}
}

// A gather whose command fails as a whole (here: the host is gone) costs nothing but
// that command: every check then runs its own line and reports its own error.
func TestAFailedGatherLeavesEachCheckToRunItsOwnLine(t *testing.T) {
	ss := []steps.Step{probe{"a", "echo a", "a\n"}, probe{"b", "echo b", "b\n"}}
	c := &failingConn{Conn: local.New(), fail: 1}
	ctx := steps.Prefetch(context.Background(), c, ss)
	for _, s := range ss {
		if got := outcome(s.Check(ctx, c)); got != "converged" {
			t.Errorf("%s: %s", s, got)
		}
	}
	if c.runs != 3 {
		t.Errorf("ran %d commands, want 3 (the failed gather, then one line each)", c.runs)
	}
}

// failingConn fails its first fail commands.
type failingConn struct {
	transport.Conn
	fail, runs int
}

func (c *failingConn) Run(ctx context.Context, cmd transport.Command) error {
	c.runs++
	if c.runs <= c.fail {
		return errors.New("connection lost")
	}
	return c.Conn.Run(ctx, cmd)
}

// What a user's own step does to have its read run with the host's other reads: it
// declares the line (ScriptsRead) and reads it through CheckOutput.
func ExampleCheckOutput() {
	ss := []steps.Step{
		probe{name: "kernel", line: "uname -s", want: "Linux\n"},
		probe{name: "shell", line: "test -x /bin/sh && echo yes", want: "yes\n"},
	}
	c := &recordingConn{Conn: local.New()}
	ctx := steps.Prefetch(context.Background(), c, ss)
	for _, s := range ss {
		fmt.Println(s, outcome(s.Check(ctx, c)))
	}
	fmt.Println("commands:", c.commands())
	// Output:
	// probe kernel converged
	// probe shell converged
	// commands: 1
}

// echoes joins reads that print their query: one printf for them all, each answer
// after a line of its own that marks it. With broken set, a joined line of more than one
// read fails, as a joined psql fails on any statement's error.
type echoes struct{ broken bool }

func (e echoes) Join(queries []string) (string, func(string) ([]string, error)) {
	line := ""
	for _, q := range queries {
		line += "echo '#'; echo " + q + "; "
	}
	if e.broken && len(queries) > 1 {
		line += "exit 1"
	}
	return line, func(out string) ([]string, error) {
		parts := strings.Split(out, "#\n")
		if len(parts) != len(queries)+1 || parts[0] != "" {
			return nil, fmt.Errorf("unexpected %q", out)
		}
		return parts[1:], nil
	}
}

// echoRead is a step whose check makes one joined read.
type echoRead struct {
	j    echoes
	word string
}

func (e echoRead) String() string { return "echo " + e.word }

func (e echoRead) JoinedReads() []steps.JoinedRead {
	return []steps.JoinedRead{{Joiner: e.j, Query: e.word}}
}

func (e echoRead) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	out, err := steps.JoinedOutput(ctx, c, e.j, e.word)
	if err != nil {
		return nil, err
	}
	if out != e.word+"\n" {
		return nil, fmt.Errorf("read %q for %q", out, e.word)
	}
	return nil, nil
}

// Reads of one Joiner share one line, each taking its own answer; when the joined line
// fails, each read runs alone, through the same Join.
func TestJoinedReadsShareOneLineAndRunAloneWhenItFails(t *testing.T) {
	for _, tc := range []struct {
		j        echoes
		commands int
	}{
		{echoes{}, 1},
		{echoes{broken: true}, 5}, // the joined line, then each of the 4 checks alone
	} {
		ss := []steps.Step{echoRead{tc.j, "one"}, echoRead{tc.j, "two"}, echoRead{tc.j, "three"}, echoRead{tc.j, "two"}}
		c := &recordingConn{Conn: local.New()}
		ctx := steps.Prefetch(context.Background(), c, ss)
		for _, s := range ss {
			if got := outcome(s.Check(ctx, c)); got != "converged" {
				t.Errorf("broken %v: %s: %s", tc.j.broken, s, got)
			}
		}
		if n := c.commands(); n != tc.commands {
			t.Errorf("broken %v: %d commands, want %d:\n%s", tc.j.broken, n, tc.commands, strings.Join(c.lines, "\n"))
		}
	}
}

// Reads longer together than one argument to exec may be (Linux: 128 KiB) go in a few
// commands instead of one that the host could not start, each answering as alone.
func TestAGatherTooLongForOneCommandLineGoesInSeveral(t *testing.T) {
	var ss []steps.Step
	for i := range 40 {
		// 5 KiB of line each, 200 KiB in all.
		ss = append(ss, probe{fmt.Sprint(i), fmt.Sprintf(": '%s'; echo %d", strings.Repeat("x", 5<<10), i), fmt.Sprintf("%d\n", i)})
	}
	c := &recordingConn{Conn: local.New()}
	ctx := steps.Prefetch(context.Background(), c, ss)
	for _, s := range ss {
		if got := outcome(s.Check(ctx, c)); got != "converged" {
			t.Errorf("%s: %s", s, got)
		}
	}
	if n := c.commands(); n < 4 || n > 6 {
		t.Errorf("40 reads of 5 KiB ran %d commands, want 4 to 6", n)
	}
	for _, l := range c.lines {
		if len(l) > 128<<10 {
			t.Errorf("a command line of %d bytes", len(l))
		}
	}
}
