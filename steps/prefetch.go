package steps

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"strconv"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// PathRead is a path a step's check reads: its state (there or not, kind, mode, owners,
// size, modification time) and, with Content, a regular file's content.
type PathRead struct {
	Path    string
	Content bool
}

// PathReader is a step that says up front which paths its check reads. A runner that
// checks many steps of a host at once reads all their paths in one command
// (PrefetchPaths) instead of one per step, each starting its own stat and cat on the
// host: on a converged host most checks then run no command at all. It is optional: a
// step without it, or a path it did not declare, is read by the check itself. Steps
// wrapped by Notify (or any step with an Unwrap() Step method) declare what they wrap
// declares.
type PathReader interface {
	PathsRead() []PathRead
}

type prefetchKey struct{}

// UnitReader is a step that says up front which systemd units its check asks
// systemd about (as PathReader does for paths): a runner asks about all of them in
// one systemctl call.
type UnitReader interface {
	UnitsRead() []string
}

// PackageReader is a step that says up front which system packages its check looks
// up (as PathReader does for paths): a runner looks them all up in one command.
type PackageReader interface {
	PackagesRead() []string
}

// declaredReads is what a step declares its check reads.
type declaredReads struct {
	paths           []PathRead
	units, packages []string
	scripts         []string
	joined          []JoinedRead
}

func (d declaredReads) empty() bool {
	return d.paths == nil && d.units == nil && d.packages == nil && d.scripts == nil && d.joined == nil
}

// readsOf is what s declares it reads, through every layer of wrapping; a step whose
// declaration panics (user code) declares nothing: its check reads for itself.
func readsOf(s Step) (d declaredReads) {
	defer func() {
		if recover() != nil {
			d = declaredReads{}
		}
	}()
	for s != nil {
		if r, ok := s.(PathReader); ok {
			d.paths = r.PathsRead()
		}
		if r, ok := s.(UnitReader); ok {
			d.units = r.UnitsRead()
		}
		if r, ok := s.(PackageReader); ok {
			d.packages = r.PackagesRead()
		}
		if r, ok := s.(ScriptReader); ok {
			d.scripts = r.ScriptsRead()
		}
		if r, ok := s.(JoinedReader); ok {
			d.joined = r.JoinedReads()
		}
		if !d.empty() {
			return
		}
		u, ok := s.(interface{ Unwrap() Step })
		if !ok {
			return
		}
		s = u.Unwrap()
	}
	return
}

// readsOfAll is what every one of ss declares it reads, together.
func readsOfAll(ss []Step) declaredReads {
	var all declaredReads
	for _, s := range ss {
		d := readsOf(s)
		all.paths = append(all.paths, d.paths...)
		all.units = append(all.units, d.units...)
		all.packages = append(all.packages, d.packages...)
		all.scripts = append(all.scripts, d.scripts...)
		all.joined = append(all.joined, d.joined...)
	}
	return all
}

// Prefetch starts reading what the checks of ss declare they read (PathReader,
// UnitReader, PackageReader, ScriptReader, JoinedReader), all in one command over c:
// their paths with one stat and one cat, their systemd units in one systemctl call,
// their packages in one lookup, their joined reads one line per Joiner, and each of
// their read-only lines in a subshell of the same shell (gather). It returns a
// context under which their checks over c take what they read from that answer
// (PrefetchPaths, CheckOutput and JoinedOutput say how). lines are further read-only
// lines to run in the same command, for a caller's own reads (CheckOutput takes
// them): a runner reads its own state of the host in that round trip too.
func Prefetch(ctx context.Context, c transport.Conn, ss []Step, lines ...string) context.Context {
	all := readsOfAll(ss)
	all.scripts = append(all.scripts, lines...)
	g := &gather{}
	var pf *prefetch
	if len(all.paths) > 0 {
		pf = newPrefetch(c, all.paths)
		pf.fetch = part(g, g.add(pf.script()))
	}
	var ul, pl *lookup
	if len(all.units) > 0 {
		ul = newLookup(c, all.units, parseUnits)
		ul.fetch = part(g, g.add(unitsScript(ul.unique)))
	}
	if len(all.packages) > 0 {
		pl = newLookup(c, all.packages, parsePackages)
		pl.fetch = part(g, g.add(packagesScript(pl.unique)))
	}
	joins := joinReads(g, all.joined)
	for _, l := range all.scripts {
		g.add(l)
	}
	if len(g.lines) == 0 {
		return ctx
	}
	g.start(ctx, c)
	if pf != nil {
		pf.start(ctx)
		ctx = context.WithValue(ctx, prefetchKey{}, pf)
	}
	if ul != nil {
		ul.start(ctx)
		ctx = context.WithValue(ctx, unitsKey{}, ul)
	}
	if pl != nil {
		pl.start(ctx)
		ctx = context.WithValue(ctx, packagesKey{}, pl)
	}
	if len(all.scripts) > 0 || len(joins) > 0 {
		ctx = context.WithValue(ctx, scriptsKey{}, &gatheredScripts{g: g, joins: joins})
	}
	return ctx
}

// part is the answer of line i of g, waited for.
func part(g *gather, i int) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return g.output(ctx, i) }
}

type unitsKey struct{}
type packagesKey struct{}

// lookup is one command answering for many names (units, packages), under way or done.
type lookup struct {
	conn   transport.Conn
	names  map[string]bool
	unique []string
	parse  func(string, []string) (map[string]string, error)
	// fetch gives the command's answer (a line of a gather).
	fetch func(context.Context) (string, error)
	done  chan struct{}
	// Set once done is closed: the answer by name, or the error that makes every
	// check ask for itself.
	answers map[string]string
	err     error
}

func newLookup(c transport.Conn, names []string, parse func(string, []string) (map[string]string, error)) *lookup {
	l := &lookup{conn: c, names: map[string]bool{}, parse: parse, done: make(chan struct{})}
	for _, n := range names {
		if !l.names[n] {
			l.names[n] = true
			l.unique = append(l.unique, n)
		}
	}
	return l
}

func (l *lookup) start(ctx context.Context) {
	go func() {
		defer close(l.done)
		out, err := l.fetch(ctx)
		if err == nil {
			l.answers, err = l.parse(out, l.unique)
		}
		l.err = err
	}()
}

// answer is what the lookup of ctx under key over c says of every one of names;
// false when there is none that holds them all, and the caller asks itself.
func answer(ctx context.Context, key any, c transport.Conn, names ...string) ([]string, bool) {
	l, _ := ctx.Value(key).(*lookup)
	if l == nil || !sameConn(l.conn, c) {
		return nil, false
	}
	for _, n := range names {
		if !l.names[n] {
			return nil, false
		}
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		return nil, false
	}
	if l.err != nil {
		return nil, false
	}
	out := make([]string, len(names))
	for i, n := range names {
		a, ok := l.answers[n]
		if !ok {
			return nil, false
		}
		out[i] = a
	}
	return out, true
}

// unitsScript asks systemd about every unit in one call: what Service's check asks
// about one, and each unit's Id to tell the answers apart.
func unitsScript(units []string) string {
	return "systemctl show -p Id -p UnitFileState -p ActiveState -- " + shell.Join(units...) + " 2>/dev/null || true"
}

// parseUnits splits systemctl show's answer into each unit's: blocks of properties,
// one per unit, told apart by Id. A unit whose answer says another Id (an alias) has
// none, and its check asks for itself.
func parseUnits(out string, units []string) (map[string]string, error) {
	answers := map[string]string{}
	for _, block := range strings.Split(out, "\n\n") {
		var id string
		for _, l := range strings.Split(block, "\n") {
			if v, ok := strings.CutPrefix(l, "Id="); ok {
				id = v
			}
		}
		if id != "" {
			answers[id] = strings.TrimSpace(block) + "\n"
		}
	}
	return answers, nil
}

// prefetch is one read of many paths in one command, under way or done.
type prefetch struct {
	conn     transport.Conn
	reads    map[string]bool // path -> content read too
	paths    []string
	contents []string
	// fetch gives the command's answer (prefetchScript's).
	fetch func(context.Context) (string, error)
	done  chan struct{}
	// Set once done is closed: states by path, or the error that makes every check
	// read for itself.
	states map[string]pathState
	err    error
}

func newPrefetch(c transport.Conn, reads []PathRead) *prefetch {
	pf := &prefetch{conn: c, reads: map[string]bool{}, done: make(chan struct{})}
	for _, r := range reads {
		content, seen := pf.reads[r.Path]
		if !seen {
			pf.paths = append(pf.paths, r.Path)
		}
		if r.Content && !content {
			pf.contents = append(pf.contents, r.Path)
		}
		pf.reads[r.Path] = content || r.Content
	}
	return pf
}

func (pf *prefetch) script() string { return prefetchScript(pf.paths, pf.contents) }

func (pf *prefetch) start(ctx context.Context) {
	go func() {
		defer close(pf.done)
		out, err := pf.fetch(ctx)
		if err == nil {
			pf.states, err = parsePrefetch(out, pf.paths, pf.contents)
		}
		pf.err = err
	}()
}

// PrefetchPaths starts reading the paths of reads on c, in one command, and returns a
// context under which a check over c that reads one of them takes its state from that
// read (waiting for it) instead of running a command of its own. When the read fails
// (a path that changes while it is read, a host without GNU stat), every check reads
// for itself, as without it.
//
// The states are those of the moment of the read, so give this context only to checks
// whose results count while nothing has changed the host since: the runner's checks
// made ahead, which it drops once a step changes something. Reads over another
// connection (a delegate's) are not affected.
func PrefetchPaths(ctx context.Context, c transport.Conn, reads []PathRead) context.Context {
	pf := newPrefetch(c, reads)
	g := &gather{}
	pf.fetch = part(g, g.add(pf.script()))
	g.start(ctx, c)
	pf.start(ctx)
	return context.WithValue(ctx, prefetchKey{}, pf)
}

// prefetchScript prints, for paths, a line of one flag per path (1 there, 3 there
// through a symbolic link, 2 a dangling symbolic link, 0 absent) and one stat line per path there; then, for contents, a line
// of flags (1 a regular file, 0 not), the content of every regular one, one after
// another, and a stat line of each again: a file that changed while it was read shows
// in the second stat, and then the content cannot be split exactly. Only stat and cat
// start, once each (stat twice): the tests are the shell's builtins.
//
// Where the host has gzip, gzip -1 takes cat's place (the flags line then starts with
// z, not x): one gzip member per file, in the same order. It costs the host what cat
// does (one program either way; compressing 40 KB is well under a millisecond) and
// sends a quarter of the bytes: a web node's converged gather answered 42 KB, 38 KB
// of it file contents (catalina.sh alone 24 KB), more than a new TCP connection's
// first window carries in one round trip.
func prefetchScript(paths, contents []string) string {
	quote := func(ps []string) string {
		q := make([]string, len(ps))
		for i, p := range ps {
			q[i] = shell.Quote(p)
		}
		return strings.Join(q, " ")
	}
	s := "e=; set --; for p in " + quote(paths) + `; do if [ -e "$p" ]; then if [ -L "$p" ]; then e=${e}3; else e=${e}1; fi; set -- "$@" "$p"; ` +
		`elif [ -L "$p" ]; then e=${e}2; else e=${e}0; fi; done; echo "x$e"; ` +
		`if [ $# -gt 0 ]; then stat -L -c '` + prefetchStat + `:%a:%U:%G:%F' -- "$@" || exit 1; fi`
	if len(contents) > 0 {
		s += "; f=; set --; for p in " + quote(contents) + `; do if [ -f "$p" ]; then f=${f}1; set -- "$@" "$p"; ` +
			`else f=${f}0; fi; done; ` +
			`if [ $# -gt 0 ] && command -v gzip >/dev/null 2>&1; then echo "z$f"; gzip -1 -c -f -- "$@" || exit 1; ` +
			`else echo "x$f"; if [ $# -gt 0 ]; then cat -- "$@" || exit 1; fi; fi; ` +
			`if [ $# -gt 0 ]; then stat -L -c '` + prefetchStat + `' -- "$@" || exit 1; fi`
	}
	return s
}

// prefetchStat is what tells a file that changed while it was read: inode, size,
// modification and change time.
const prefetchStat = "%i:%s:%.9Y:%.9Z"

// errChangedWhileRead is parsePrefetch's error for a path that changed between the
// reads of one prefetch.
var errChangedWhileRead = errors.New("a path changed while it was read")

func parsePrefetch(out string, paths, contents []string) (map[string]pathState, error) {
	line := func() (string, error) {
		l, rest, ok := strings.Cut(out, "\n")
		if !ok {
			return "", fmt.Errorf("prefetch: output ends early")
		}
		out = rest
		return l, nil
	}
	flags, err := line()
	if err != nil {
		return nil, err
	}
	if len(flags) != len(paths)+1 || flags[0] != 'x' {
		return nil, fmt.Errorf("prefetch: unexpected flags %q", flags)
	}
	states := map[string]pathState{}
	stamps := map[string]string{}
	for i, p := range paths {
		switch flags[i+1] {
		case '0':
			states[p] = pathState{}
		case '2':
			states[p] = pathState{DanglingLink: true}
		case '1', '3':
			l, err := line()
			if err != nil {
				return nil, err
			}
			f := strings.SplitN(l, ":", 8)
			if len(f) != 8 {
				return nil, fmt.Errorf("prefetch: unexpected stat line %q", l)
			}
			size, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("prefetch: unexpected size %q", f[1])
			}
			mode, err := strconv.ParseUint(f[4], 8, 32)
			if err != nil {
				return nil, fmt.Errorf("prefetch: unexpected mode %q", f[4])
			}
			stamps[p] = strings.Join(f[:4], ":")
			states[p] = pathState{Exists: true, Mode: fs.FileMode(mode), Owner: f[5], Group: f[6], Kind: f[7], Size: size, MTime: f[2], Link: flags[i+1] == '3'}
		default:
			return nil, fmt.Errorf("prefetch: unexpected flags %q", flags)
		}
	}
	if len(contents) == 0 {
		if out != "" {
			return nil, fmt.Errorf("prefetch: unexpected output after the stat lines")
		}
		return states, nil
	}
	flags, err = line()
	if err != nil {
		return nil, err
	}
	if len(flags) != len(contents)+1 || flags[0] != 'x' && flags[0] != 'z' {
		return nil, fmt.Errorf("prefetch: unexpected flags %q", flags)
	}
	compressed := flags[0] == 'z'
	var read []string
	for i, p := range contents {
		regular := states[p].isRegular()
		if (flags[i+1] == '1') != regular {
			return nil, fmt.Errorf("prefetch: %s: %w", p, errChangedWhileRead)
		}
		if regular {
			read = append(read, p)
		}
	}
	var members *gzipMembers
	if compressed {
		members = newGzipMembers(out)
	}
	for _, p := range read {
		st := states[p]
		if members != nil {
			content, err := members.next(st.Size)
			if err != nil {
				return nil, fmt.Errorf("prefetch: %s: %w", p, err)
			}
			st.Content = content
		} else {
			if int64(len(out)) < st.Size {
				return nil, fmt.Errorf("prefetch: %s: %w", p, errChangedWhileRead)
			}
			st.Content = []byte(out[:st.Size])
			out = out[st.Size:]
		}
		states[p] = st
	}
	if members != nil {
		out = members.rest()
	}
	for _, p := range read {
		l, err := line()
		if err != nil || l != stamps[p] {
			return nil, fmt.Errorf("prefetch: %s: %w", p, errChangedWhileRead)
		}
	}
	if out != "" {
		return nil, fmt.Errorf("prefetch: unexpected output after the second stat")
	}
	return states, nil
}

// prefetched is p's state from a PrefetchPaths read of ctx over c, with its content
// when withContent; false when there is none that holds it, and the caller reads p
// itself.
func prefetched(ctx context.Context, c transport.Conn, p string, withContent bool) (pathState, bool) {
	pf, _ := ctx.Value(prefetchKey{}).(*prefetch)
	if pf == nil || !sameConn(pf.conn, c) {
		return pathState{}, false
	}
	if content, ok := pf.reads[p]; !ok || withContent && !content {
		return pathState{}, false
	}
	select {
	case <-pf.done:
	case <-ctx.Done():
		return pathState{}, false
	}
	if pf.err != nil {
		return pathState{}, false
	}
	st, ok := pf.states[p]
	return st, ok
}

// sameConn tells whether a and b are the same connection; a connection of a type that
// cannot be compared is never the same.
func sameConn(a, b transport.Conn) bool {
	if a == nil || b == nil || reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.TypeOf(a).Comparable() {
		return false
	}
	return a == b
}

// gzipMembers reads gzip -c's output of many files, one member per file, from the
// start of a prefetch's answer, and leaves the rest (the second stat's lines).
type gzipMembers struct {
	r *strings.Reader // a ByteReader: the decompressor reads no byte past a member
	z *gzip.Reader
}

func newGzipMembers(out string) *gzipMembers { return &gzipMembers{r: strings.NewReader(out)} }

// next is the next member's content, which must be size bytes long (a file that changed
// while it was read is not).
func (m *gzipMembers) next(size int64) ([]byte, error) {
	var err error
	if m.z == nil {
		m.z, err = gzip.NewReader(m.r)
	} else {
		err = m.z.Reset(m.r)
	}
	if err != nil {
		return nil, fmt.Errorf("gzip member: %w", err)
	}
	m.z.Multistream(false)
	// One byte more than the file's size tells a file that grew.
	b, err := io.ReadAll(io.LimitReader(m.z, size+1))
	if err != nil {
		return nil, fmt.Errorf("gzip member: %w", err)
	}
	if int64(len(b)) != size {
		return nil, errChangedWhileRead
	}
	// The member's end, with its checksum, is read only by a read past its data.
	if n, err := m.z.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return nil, errChangedWhileRead
	}
	return b, nil
}

// rest is what follows the members read.
func (m *gzipMembers) rest() string {
	b, _ := io.ReadAll(m.r)
	return string(b)
}
