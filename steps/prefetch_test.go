package steps_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// recordingConn is a real local connection that notes every command line it runs.
type recordingConn struct {
	transport.Conn
	mu    sync.Mutex
	lines []string
}

func (c *recordingConn) Run(ctx context.Context, cmd transport.Command) error {
	c.mu.Lock()
	c.lines = append(c.lines, cmd.Line)
	c.mu.Unlock()
	return c.Conn.Run(ctx, cmd)
}

func (c *recordingConn) commands() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

// prefetchCases are steps on paths of every kind, converged or not, in dir: a check
// that takes the paths' state from a prefetch must find exactly what the step's own
// reads find.
func prefetchCases(t *testing.T, dir string) []steps.Step {
	t.Helper()
	p := func(name string) string { return filepath.Join(dir, name) }
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(p(name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p(name), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("same", "a\nb\n", 0o644)
	write("other", "old\n", 0o644)
	write("mode", "m\n", 0o644)
	write("empty", "", 0o600)
	write("binary", "\x00\x01no newline", 0o644)
	write("lines", "x=1\n", 0o644)
	write("src", "uploaded\n", 0o644)
	for _, d := range []string{"dir", "dirmode"} {
		if err := os.Mkdir(p(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, to := range map[string]string{"link": p("same"), "dangling": p("nowhere"), "uploadlink": p("src")} {
		if err := os.Symlink(to, p(link)); err != nil {
			t.Fatal(err)
		}
	}
	// An upload made before: same size and time as its source.
	write("uploaded", "uploaded\n", 0o644)
	info, err := os.Stat(p("src"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p("uploaded"), time.Now(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	return []steps.Step{
		steps.File{Path: p("same"), Content: steps.Text("a\nb\n")},
		steps.File{Path: p("other"), Content: steps.Text("new\n")},
		steps.File{Path: p("mode"), Content: steps.Text("m\n"), Mode: 0o600},
		steps.File{Path: p("empty"), Content: steps.Text(""), Mode: 0o600},
		steps.File{Path: p("binary"), Content: steps.Bytes([]byte("\x00\x01no newline"))},
		steps.File{Path: p("absent"), Content: steps.Text("x\n")},
		steps.File{Path: p("link"), Content: steps.Text("a\nb\n")},
		steps.File{Path: p("dangling"), Content: steps.Text("d\n")},
		steps.File{Path: p("dir"), Content: steps.Text("not a dir\n")},
		// procfs gives content that stat does not count: the prefetch cannot split it.
		steps.File{Path: "/proc/sys/kernel/ostype", Content: steps.Text("Linux\n")},
		steps.LineInFile{Path: p("lines"), Regexp: `^x=`, Line: "x=1"},
		steps.LineInFile{Path: p("lines"), Regexp: `^y=`, Line: "y=2"},
		steps.Dir{Path: p("dir"), Mode: 0o755},
		steps.Dir{Path: p("dirmode"), Mode: 0o700},
		steps.Dir{Path: p("newdir")},
		steps.Dir{Path: p("same")},
		steps.Upload{Src: p("src"), Dest: p("uploaded")},
		steps.Upload{Src: p("src"), Dest: p("uploadlink")},
		steps.Upload{Src: p("src"), Dest: p("notyet")},
		steps.Notify(steps.File{Path: p("same"), Content: steps.Text("a\nb\n")}, "restart"),
		steps.Command{Line: "true", Creates: p("same")},
		steps.Command{Line: "true", Creates: p("dangling")},
		steps.Command{Line: "true", Creates: p("absent")},
		steps.Command{Name: "unless holds", Line: "true", Creates: p("absent"), Unless: "true"},
		steps.Command{Name: "unless fails", Line: "true", Creates: p("absent"), Unless: "false"},
	}
}

// outcome is a check's result as a plan shows it.
func outcome(ch *steps.Change, err error) string {
	switch {
	case err != nil:
		return "error: " + err.Error()
	case ch == nil:
		return "converged"
	}
	return "change: " + ch.Summary + "\n" + ch.Diff
}

// hosts are the two ways a prefetch reads contents: with gzip on the host (one gzip
// member per file) and without (cat).
var hosts = []struct {
	name  string
	setUp func(t *testing.T)
}{
	{"a host with gzip", func(t *testing.T) {
		if _, err := exec.LookPath("gzip"); err != nil {
			t.Skip("no gzip here")
		}
	}},
	{"a host without gzip", withoutGzip},
}

// withoutGzip makes PATH a directory of links to every program of the usual
// directories but gzip, as on a host without it.
func withoutGzip(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.Name() != "gzip" {
				os.Symlink(filepath.Join(d, e.Name()), filepath.Join(dir, e.Name())) // the first of a name wins
			}
		}
	}
	t.Setenv("PATH", dir)
	if _, err := exec.LookPath("gzip"); err == nil {
		t.Fatal("gzip still found")
	}
}

func TestAPrefetchedCheckFindsWhatTheStepsOwnReadFinds(t *testing.T) {
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			h.setUp(t)
			ctx := context.Background()
			ss := prefetchCases(t, t.TempDir())
			c := &recordingConn{Conn: local.New()}
			pctx := steps.Prefetch(ctx, c, ss)
			for _, s := range ss {
				own := outcome(s.Check(ctx, c))
				prefetched := outcome(s.Check(pctx, c))
				if prefetched != own {
					t.Errorf("%s: with the prefetch %q, its own read %q", s, prefetched, own)
				}
			}
		})
	}
}

func TestConvergedFilesDirsUploadsAndCreatesGuardsAreCheckedWithTheirPrefetchAlone(t *testing.T) {
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			h.setUp(t)
			ctx := context.Background()
			var converged []steps.Step
			for _, s := range prefetchCases(t, t.TempDir()) {
				if ch, err := s.Check(ctx, local.New()); err == nil && ch == nil && !strings.HasPrefix(s.String(), "file /proc") && !strings.HasPrefix(s.String(), "unless") {
					converged = append(converged, s)
				}
			}
			if len(converged) < 8 {
				t.Fatalf("only %d converged cases", len(converged))
			}
			c := &recordingConn{Conn: local.New()}
			pctx := steps.Prefetch(ctx, c, converged)
			for _, s := range converged {
				if ch, err := s.Check(pctx, c); err != nil || ch != nil {
					t.Errorf("%s: %s", s, outcome(ch, err))
				}
			}
			if n := c.commands(); n != 1 {
				t.Errorf("%d converged checks ran %d commands, want the prefetch's one:\n%s", len(converged), n, strings.Join(c.lines, "\n"))
			}
		})
	}
}

func TestAPrefetchServesOnlyChecksOverItsOwnConnection(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := steps.File{Path: path, Content: steps.Text("after\n")}
	own := &recordingConn{Conn: local.New()}
	pctx := steps.PrefetchPaths(ctx, own, []steps.PathRead{{Path: path, Content: true}, {Path: dir}})
	// The prefetch reads "before"; then the file changes: a check over another
	// connection (a delegate's) must read it for itself.
	if ch, err := s.Check(pctx, own); err != nil || ch == nil {
		t.Fatalf("over the prefetch's connection: %s, want the change from before", outcome(ch, err))
	}
	if err := os.WriteFile(path, []byte("after\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := &recordingConn{Conn: local.New()}
	if ch, err := s.Check(pctx, other); err != nil || ch != nil {
		t.Errorf("over another connection: %s, want converged", outcome(ch, err))
	}
	if other.commands() != 1 {
		t.Errorf("over another connection: %d commands, want its own read", other.commands())
	}
}

// A converged web host checks two services and two package lists: with a prefetch, one
// systemctl and one package lookup answer them all, as each check's own would, both
// in one command.
func TestAHostsServicesAndPackagesAreEachLookedUpOnce(t *testing.T) {
	needHost(t)
	sh(t, `cat > /usr/local/sbin/systemctl <<'EOS'
#!/bin/sh
echo x >> /tmp/cauldron-systemctl-calls
exec /usr/bin/systemctl "$@"
EOS
chmod 0755 /usr/local/sbin/systemctl; rm -f /tmp/cauldron-systemctl-calls`)
	t.Cleanup(func() { sh(t, "rm -f /usr/local/sbin/systemctl /tmp/cauldron-systemctl-calls") })
	ss := []steps.Step{
		steps.Service{Name: "dbus", Enabled: new(true), State: steps.Started},
		steps.Service{Name: "cauldron-nosuch", Enabled: new(true), State: steps.Started},
		steps.Notify(steps.Service{Name: "cauldron-nosuch.service", Enabled: new(false), State: steps.Stopped}, "x"),
		steps.Service{Name: "dbus.socket", State: steps.Started},
		steps.Packages{Names: []string{"coreutils", "bash"}},
		steps.Packages{Names: []string{"dash", "cauldron-nosuch"}},
		steps.Packages{Names: []string{"libc6:amd64"}},
	}
	ctx := context.Background()
	var own []string
	for _, s := range ss {
		own = append(own, outcome(s.Check(ctx, host)))
	}
	sh(t, "rm -f /tmp/cauldron-systemctl-calls")
	c := &recordingConn{Conn: host}
	pctx := steps.Prefetch(ctx, c, ss)
	for i, s := range ss {
		if got := outcome(s.Check(pctx, c)); got != own[i] {
			t.Errorf("%s: with the prefetch %q, its own check %q", s, got, own[i])
		}
	}
	if got := strings.Count(sh(t, "cat /tmp/cauldron-systemctl-calls 2>/dev/null; true"), "x"); got != 1 {
		t.Errorf("the checks ran systemctl %d times, want 1", got)
	}
	if n := c.commands(); n != 1 {
		t.Errorf("%d checks ran %d commands, want 1 (the units' and the packages' lookups together):\n%s", len(ss), n, strings.Join(c.lines, "\n"))
	}
}

// banner is a user's own step: it checks a File of its own making and declares the
// same path, so a runner's prefetch answers its check too.
type banner struct{ path, text string }

func (b banner) String() string { return "banner " + b.path }

func (b banner) file() steps.File {
	return steps.File{Path: b.path, Content: steps.Text(b.text + "\n")}
}

func (b banner) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	return b.file().Check(ctx, c)
}

func (b banner) PathsRead() []steps.PathRead { return b.file().PathsRead() }

// What a runner does before it checks a host's steps at once: one command reads
// every path they declare, and their checks answer from it.
func ExamplePrefetch() {
	dir, _ := os.MkdirTemp("", "prefetch")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "motd"), []byte("hello\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "issue"), []byte("old\n"), 0o644)
	ss := []steps.Step{
		banner{path: filepath.Join(dir, "motd"), text: "hello"},
		steps.File{Path: filepath.Join(dir, "issue"), Content: steps.Text("new\n")},
		steps.Dir{Path: dir},
	}
	c := &recordingConn{Conn: local.New()}
	ctx := steps.Prefetch(context.Background(), c, ss)
	for i, s := range ss {
		ch, err := s.Check(ctx, c)
		name := []string{"motd", "issue", "dir"}[i]
		switch {
		case err != nil:
			fmt.Println(name, "error:", err)
		case ch == nil:
			fmt.Println(name, "converged")
		default:
			fmt.Println(name, "would change:", strings.Fields(ch.Summary)[0])
		}
	}
	fmt.Println("commands on the host:", c.commands())
	// Output:
	// motd converged
	// issue would change: update
	// dir converged
	// commands on the host: 1
}
