package runner

// Durable handlers. A restart notified by a change must not be lost when the
// controller dies between the change and the restart (a SIGKILL, a lost laptop lid):
// the next run would find the file converged, notify nothing, and the service would
// run the old configuration for good. So the runner writes a pending mark on the host
// before it applies a change that notifies a handler, one small file per (play,
// handler) under the host's state directory, and removes it only once that handler
// ran successfully. Every run, apply or plan, reads the marks when it connects to the
// host and treats the handlers they name as notified ("pending from an earlier run").
//
// The state directory is, first of these that is set:
//   - Options.StateDir(host);
//   - the host's inventory variable cauldron_state_dir (an absolute path);
//   - /var/lib/cauldron when the commands run as root on the host (become included),
//     and ${XDG_STATE_HOME:-$HOME/.local/state}/cauldron for any other user.
//
// The marks live in its pending/ sub-directory.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// StateDirVar is the inventory variable that sets a host's state directory, where the
// runner keeps the handlers still owed to the host.
const StateDirVar = "cauldron_state_dir"

// pendingSubdir is where, under the state directory, the pending marks are.
const pendingSubdir = "pending"

// notifiedEarlier is what a handler's NotifiedBy says for a mark from an earlier run.
const notifiedEarlier = "(pending from an earlier run)"

// defaultStateDir is the shell that sets d to the state directory of whoever runs the
// commands on the host. The effective uid is the shell's own, read from its
// /proc/self/status with builtins: id -u would start a process on every host in every
// run (about 1 ms of a converged host's CPU); id is for a host without /proc.
const defaultStateDir = `u=; if [ -r /proc/self/status ]; then while IFS='	 ' read -r k r e x; do ` +
	`if [ "$k" = Uid: ]; then u=$e; break; fi; done </proc/self/status; fi; [ -n "$u" ] || u=$(id -u); ` +
	`if [ "$u" = 0 ]; then d=/var/lib/cauldron; ` +
	`else d="${XDG_STATE_HOME:-$HOME/.local/state}/cauldron"; fi`

// pendingMark is the content of one mark: what to run, and since when it is owed.
type pendingMark struct {
	Play    string    `json:"play"`
	Handler string    `json:"handler"`
	Step    string    `json:"notified_by"`
	Since   time.Time `json:"since"`
}

// pendingState is what one host's marks are, once read.
type pendingState struct {
	done chan struct{} // closed once read
	// dir is the pending directory on the host, resolved there.
	dir string
	// marks are the handlers owed, by play name and handler name.
	marks map[string]map[string]bool
	err   error
	// written says which marks this run wrote or found, by play and handler name.
	written  map[string]bool
	dirReady bool
	// reported is set once a failed read was reported, so it is reported once.
	reported bool
	// needed says which marks a change made in this run, or an earlier run, needs; a
	// mark written for a change whose apply then failed is not (see withdraw).
	needed map[string]bool

	// What the read needs, and that it runs once (start).
	ctx        context.Context
	conn       transport.Conn
	configured string
	script     string
	begin      sync.Once
	started    atomic.Bool
}

// configuredStateDir is the state directory the controller knows for h, "" when the
// host decides, or an error naming the inventory line of a bad value.
func configuredStateDir(o Options, h *inventory.Host) (string, error) {
	if o.StateDir != nil {
		if d := o.StateDir(h); d != "" {
			if !path.IsAbs(d) || strings.ContainsAny(d, "\n\x00") {
				return "", fmt.Errorf("host %q: the state directory %q is not an absolute path", h.Name, d)
			}
			return path.Clean(d), nil
		}
	}
	v, ok := h.Vars.Lookup(StateDirVar)
	if !ok {
		return "", nil
	}
	d, isString := v.Value.(string)
	if !isString || !path.IsAbs(d) || strings.ContainsAny(d, "\n\x00") {
		return "", &inventory.Error{File: v.File, Line: v.Line, Path: StateDirVar, Msg: "want an absolute path on the host, such as /var/lib/cauldron"}
	}
	return path.Clean(d), nil
}

// newPending is the host's marks over c, to be read (start) in the background: a
// converged host's checks need not wait for them, only its first mark and its
// handlers do. ctx is the run's: the read serves every play.
func newPending(ctx context.Context, c transport.Conn, configured string) *pendingState {
	return &pendingState{done: make(chan struct{}), marks: map[string]map[string]bool{}, written: map[string]bool{}, needed: map[string]bool{},
		ctx: ctx, conn: c, configured: configured, script: pendingScript(configured)}
}

// pendingScript prints the state directory first, then one mark per line: a mark is
// one line of JSON. It starts no process while there is no mark (a loop of
// builtins): cat runs only for a mark found.
func pendingScript(configured string) string {
	set := defaultStateDir
	if configured != "" {
		set = "d=" + shell.Quote(configured)
	}
	return set + `; printf '%s\n' "$d"; [ -d "$d/` + pendingSubdir + `" ] || exit 0; ` +
		`for f in "$d/` + pendingSubdir + `"/*.pending; do [ -f "$f" ] && { cat "$f"; echo; }; done; exit 0`
}

// line is the read's command line while it has not started: the first checks made
// ahead on the host carry it in their gather (steps.Prefetch), so a converged host
// costs one command; "" once the read started.
func (ps *pendingState) line() string {
	if ps.started.Load() {
		return ""
	}
	return ps.script
}

// start starts the read, once. gathered, when not nil, is the context of a gather
// that carries the read's line (line): its answer is taken from there, waited for as
// long as the run lasts (not as long as those checks do); a gather that did not
// answer it leaves the read to run alone, as it does without one.
func (ps *pendingState) start(gathered context.Context) {
	ps.begin.Do(func() {
		ps.started.Store(true)
		go func() {
			defer close(ps.done)
			ps.err = ps.read(gathered)
		}()
	})
}

func (ps *pendingState) read(gathered context.Context) error {
	ctx := ps.ctx
	if gathered != nil {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(context.WithoutCancel(gathered))
		defer cancel(nil)
		defer context.AfterFunc(ps.ctx, func() { cancel(context.Cause(ps.ctx)) })()
	}
	out, err := steps.CheckOutput(ctx, ps.conn, ps.script)
	if err != nil {
		return fmt.Errorf("read the pending handlers: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	if sc.Scan() {
		ps.dir = path.Join(sc.Text(), pendingSubdir)
	}
	if ps.configured != "" {
		ps.dir = path.Join(ps.configured, pendingSubdir)
	}
	if !path.IsAbs(ps.dir) {
		return fmt.Errorf("read the pending handlers: the host named no absolute state directory (got %q)", ps.dir)
	}
	var bad []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var m pendingMark
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.Play == "" || m.Handler == "" {
			bad = append(bad, line)
			continue
		}
		if ps.marks[m.Play] == nil {
			ps.marks[m.Play] = map[string]bool{}
		}
		ps.marks[m.Play][m.Handler] = true
		ps.written[markKey(m.Play, m.Handler)] = true
		ps.needed[markKey(m.Play, m.Handler)] = true
	}
	if len(bad) > 0 {
		return fmt.Errorf("read the pending handlers in %s: %d unreadable mark(s), first: %q", ps.dir, len(bad), bad[0])
	}
	return sc.Err()
}

// wait waits until the marks are read, starting the read if no checks did; it
// returns the read's error.
func (ps *pendingState) wait(ctx context.Context) error {
	ps.start(nil)
	select {
	case <-ps.done:
		return ps.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// owed lists the handlers of play the host owes from an earlier run.
func (ps *pendingState) owed(play string) map[string]bool { return ps.marks[play] }

func markKey(play, handler string) string { return play + "\x00" + handler }

// markFile is the mark's file name: a hash, as play and handler names are free text.
func (ps *pendingState) markFile(play, handler string) string {
	sum := sha256.Sum256([]byte(markKey(play, handler)))
	return path.Join(ps.dir, hex.EncodeToString(sum[:12])+".pending")
}

// mark records, on the host, that handler of play is owed, before the change that
// notifies it is applied. A mark this run already wrote or found is not written again.
func (ps *pendingState) mark(ctx context.Context, c transport.Conn, play, handler, step string) error {
	if err := ps.wait(ctx); err != nil {
		return err
	}
	if ps.written[markKey(play, handler)] {
		return nil
	}
	if !ps.dirReady {
		line := "umask 077; mkdir -p " + shell.Quote(ps.dir)
		if _, err := transport.Output(ctx, c, line); err != nil {
			return fmt.Errorf("create %s: %w", ps.dir, err)
		}
		ps.dirReady = true
	}
	content, err := json.Marshal(pendingMark{Play: play, Handler: handler, Step: step, Since: time.Now().UTC().Round(time.Second)})
	if err != nil {
		return err
	}
	if err := c.Put(ctx, transport.File{Path: ps.markFile(play, handler), Content: append(content, '\n'), Mode: 0o600}); err != nil {
		return err
	}
	ps.written[markKey(play, handler)] = true
	return nil
}

// confirm says that a change notifying handler of play was made: its mark is needed.
func (ps *pendingState) confirm(play, handler string) { ps.needed[markKey(play, handler)] = true }

// withdraw removes the mark written for a change whose apply failed, unless another
// change needs it: as in Ansible, a step that failed notifies nothing (a validated
// file the validator rejected was never installed). An apply that was interrupted
// (cancelled) keeps its mark, as it may have changed the host half-way.
func (ps *pendingState) withdraw(ctx context.Context, c transport.Conn, play, handler string) error {
	if ps.needed[markKey(play, handler)] {
		return nil
	}
	return ps.clear(ctx, c, play, handler)
}

// clear removes the mark of handler of play, once the handler ran.
func (ps *pendingState) clear(ctx context.Context, c transport.Conn, play, handler string) error {
	if !ps.written[markKey(play, handler)] {
		return nil
	}
	f := ps.markFile(play, handler)
	if _, err := transport.Output(ctx, c, "rm -f "+shell.Quote(f)); err != nil {
		return fmt.Errorf("remove the pending mark %s: %w", f, err)
	}
	delete(ps.written, markKey(play, handler))
	delete(ps.needed, markKey(play, handler))
	if m := ps.marks[play]; m != nil {
		delete(m, handler)
	}
	return nil
}
