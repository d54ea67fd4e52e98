package steps

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// ScriptReader is a step that says up front the command lines its check runs only to
// read the host: no input, no change, a status of 0 when it could read. A runner that
// checks many steps of a host at once runs every such line of them (and their paths,
// units and packages) in one command, and the check takes its line's answer through
// CheckOutput instead of starting a command of its own. It is optional, as
// PathReader is: a line not declared, or one whose gathered run did not end with
// status 0, is run by CheckOutput itself, so an error reads as it always did.
type ScriptReader interface {
	ScriptsRead() []string
}

type scriptsKey struct{}

// CheckOutput is transport.Output for a check's read-only line: the answer from the
// gather under ctx when it ran line over c (ScriptReader) with status 0, else line
// run now. Only for reads: the answer is that of the moment of the gather.
func CheckOutput(ctx context.Context, c transport.Conn, line string) (string, error) {
	if s, _ := ctx.Value(scriptsKey{}).(*gatheredScripts); s != nil && sameConn(s.g.conn, c) {
		if i, ok := s.g.index[line]; ok {
			if out, err := s.g.output(ctx, i); err == nil {
				return out, nil
			}
		}
	}
	return transport.Output(ctx, c, line)
}

type gatheredScripts struct {
	g     *gather
	joins map[Joiner]*joinedGroup
}

// Joiner joins reads of one kind into one read-only line: where each read alone
// would start a client of its own (a psql, and a server backend for it), the joined
// line starts one for them all. Joiners that are equal (==) join their reads
// together, so a Joiner is a small comparable value.
type Joiner interface {
	// Join is the line that answers every one of queries, and how to split its
	// standard output into their answers, in the order given. Join of one query is
	// how that query is read alone.
	Join(queries []string) (line string, split func(out string) ([]string, error))
}

// JoinedRead is one read of a check that can share a line with the others of its
// Joiner on the host.
type JoinedRead struct {
	Joiner Joiner
	Query  string
}

// JoinedReader is a step that says up front the joined reads its check makes
// (through JoinedOutput): a runner joins those of all the host's steps, per Joiner,
// and runs the lines with the host's other reads (Prefetch).
type JoinedReader interface {
	JoinedReads() []JoinedRead
}

// joinedGroup is the reads of one Joiner in a gather: its line's index and how to
// split its answer.
type joinedGroup struct {
	line    int
	queries map[string]int
	split   func(string) ([]string, error)
}

// joinReads adds one line per Joiner of reads to g.
func joinReads(g *gather, reads []JoinedRead) map[Joiner]*joinedGroup {
	var order []Joiner
	queries := map[Joiner][]string{}
	for _, r := range reads {
		if r.Joiner == nil || !reflect.TypeOf(r.Joiner).Comparable() {
			continue
		}
		if _, ok := queries[r.Joiner]; !ok {
			order = append(order, r.Joiner)
		}
		if !slices.Contains(queries[r.Joiner], r.Query) {
			queries[r.Joiner] = append(queries[r.Joiner], r.Query)
		}
	}
	groups := map[Joiner]*joinedGroup{}
	for _, j := range order {
		line, split, ok := join(j, queries[j])
		if !ok {
			continue // its reads are each read alone
		}
		jg := &joinedGroup{line: g.add(line), queries: map[string]int{}, split: split}
		for i, q := range queries[j] {
			jg.queries[q] = i
		}
		groups[j] = jg
	}
	return groups
}

// join is j.Join(queries); false when that panics (a user's Joiner).
func join(j Joiner, queries []string) (line string, split func(string) ([]string, error), ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	line, split = j.Join(queries)
	return line, split, split != nil
}

// JoinedOutput is a check's joined read: its answer from the line a gather under ctx
// ran over c for j's reads, when that line ended with status 0; else query read
// alone (j's Join of it), and that read's error.
func JoinedOutput(ctx context.Context, c transport.Conn, j Joiner, query string) (string, error) {
	if s, _ := ctx.Value(scriptsKey{}).(*gatheredScripts); s != nil && sameConn(s.g.conn, c) && reflect.TypeOf(j).Comparable() {
		if jg := s.joins[j]; jg != nil {
			if i, ok := jg.queries[query]; ok {
				if out, err := s.g.output(ctx, jg.line); err == nil {
					if answers, err := jg.split(out); err == nil && len(answers) == len(jg.queries) {
						return answers[i], nil
					}
				}
			}
		}
	}
	line, split := j.Join([]string{query})
	out, err := transport.Output(ctx, c, line)
	if err != nil {
		return "", err
	}
	answers, err := split(out)
	if err != nil {
		return "", err
	}
	if len(answers) != 1 {
		return "", fmt.Errorf("%d answers to one read", len(answers))
	}
	return answers[0], nil
}

// gather is many read-only command lines run as one command on a host, under way or
// done. Each line runs in a subshell of the one shell, with its own exit, variables
// and positional parameters: instead of one command each, which over a command
// channel is a subshell and an exec of sh each (the exec is the dearer half), and
// over a transport without one a session or a docker exec each.
type gather struct {
	conn  transport.Conn
	lines []string
	index map[string]int // line -> its index in lines
	done  chan struct{}
	// Set once done is closed: each line's output, status, or the error of the
	// command that carried it.
	outs     []string
	statuses []int
	errs     []error
}

// errGatheredStatus is a gathered line's error when it did not end with status 0: its
// reader runs it again by itself, for the error it reports.
var errGatheredStatus = errors.New("the gathered line did not end with status 0")

// add adds line to those g runs and returns its index; a line already there is run
// once.
func (g *gather) add(line string) int {
	if i, ok := g.index[line]; ok {
		return i
	}
	if g.index == nil {
		g.index = map[string]int{}
	}
	g.index[line] = len(g.lines)
	g.lines = append(g.lines, line)
	return len(g.lines) - 1
}

// maxGatherLine bounds one gathered command's line: Linux refuses an argument longer
// than 128 KiB (MAX_ARG_STRLEN) to exec, and the line is sh -c's argument on the host.
// Lines beyond it go in further commands; a single line longer than it runs alone.
const maxGatherLine = 64 << 10

// start runs g's lines over c in the background: one line as it is, more in as few
// commands as maxGatherLine allows (gatherScript), those at the same time.
func (g *gather) start(ctx context.Context, c transport.Conn) {
	g.conn, g.done = c, make(chan struct{})
	g.outs, g.statuses = make([]string, len(g.lines)), make([]int, len(g.lines))
	var chunks [][]int
	size := 0
	for i, l := range g.lines {
		n := len(shell.Quote(l)) + 100
		if len(chunks) == 0 || size+n > maxGatherLine {
			chunks, size = append(chunks, nil), 0
		}
		chunks[len(chunks)-1] = append(chunks[len(chunks)-1], i)
		size += n
	}
	g.errs = make([]error, len(g.lines))
	var wg sync.WaitGroup
	for _, chunk := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.run(ctx, c, chunk); err != nil {
				for _, i := range chunk {
					g.errs[i] = err
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(g.done)
	}()
}

// run runs the lines of g at indexes in one command and keeps their answers.
func (g *gather) run(ctx context.Context, c transport.Conn, indexes []int) error {
	if len(indexes) == 1 {
		out, err := transport.Output(ctx, c, g.lines[indexes[0]])
		g.outs[indexes[0]] = out
		return err
	}
	token, err := gatherToken()
	if err != nil {
		return err
	}
	lines := make([]string, len(indexes))
	for k, i := range indexes {
		lines[k] = g.lines[i]
	}
	out, err := transport.Output(ctx, c, gatherScript(token, lines))
	if err != nil {
		return err
	}
	outs, statuses, err := parseGather(out, token, len(lines))
	if err != nil {
		return err
	}
	for k, i := range indexes {
		g.outs[i], g.statuses[i] = outs[k], statuses[k]
	}
	return nil
}

// output waits for line i's answer: its standard output when it ended with status 0.
func (g *gather) output(ctx context.Context, i int) (string, error) {
	select {
	case <-g.done:
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	if g.errs[i] != nil {
		return "", g.errs[i]
	}
	if g.statuses[i] != 0 {
		return "", fmt.Errorf("status %d: %w", g.statuses[i], errGatheredStatus)
	}
	return g.outs[i], nil
}

func gatherToken() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "cauldron-gather-" + hex.EncodeToString(b), nil
}

// gatherScript runs each of lines in a subshell through eval, so that a line's exit,
// variables, set -- and even a syntax error stay its own, with no input and its
// standard error dropped (a line that fails is run again by itself), and ends each
// one's output with "\n<token> <index> <status>\n". The token is random, so no
// line's output can end another's early by chance.
func gatherScript(token string, lines []string) string {
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "( eval %s ) </dev/null 2>/dev/null; printf '\\n%%s %%d\\n' '%s %d' \"$?\"", shell.Quote(l), token, i)
	}
	return b.String()
}

func parseGather(out, token string, n int) (outs []string, statuses []int, err error) {
	for i := range n {
		end := "\n" + token + " " + strconv.Itoa(i) + " "
		k := strings.Index(out, end)
		if k < 0 {
			return nil, nil, fmt.Errorf("gather: the answer of line %d of %d is missing", i+1, n)
		}
		outs = append(outs, out[:k])
		status, rest, ok := strings.Cut(out[k+len(end):], "\n")
		s, err := strconv.Atoi(status)
		if !ok || err != nil {
			return nil, nil, fmt.Errorf("gather: unexpected status %q of line %d", status, i+1)
		}
		statuses = append(statuses, s)
		out = rest
	}
	if out != "" {
		return nil, nil, errors.New("gather: unexpected output after the last line")
	}
	return outs, statuses, nil
}
