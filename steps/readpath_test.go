package steps_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// mentions is a user's own step: converged when the file at path mentions word. It
// declares what its check reads, and reads it through steps.ReadPath.
type mentions struct{ path, word string }

func (m mentions) String() string { return m.path + " mentions " + m.word }

func (m mentions) PathsRead() []steps.PathRead {
	return []steps.PathRead{{Path: m.path, Content: true}}
}

func (m mentions) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	st, err := steps.ReadPath(ctx, c, m.path, true)
	if err != nil {
		return nil, err
	}
	if st.Regular() && strings.Contains(string(st.Content), m.word) {
		return nil, nil
	}
	return &steps.Change{Summary: "append " + m.word + " to " + m.path, Apply: func(ctx context.Context) error {
		_, err := transport.Output(ctx, c, "printf '%s\\n' "+shell.Quote(m.word)+" >> "+shell.Quote(m.path))
		return err
	}}, nil
}

// A step of your own that declares the paths its check reads and reads them with
// ReadPath is checked from the host's one gather, as cauldron's own steps are.
func ExampleReadPath() {
	dir, _ := os.MkdirTemp("", "readpath")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "motd"), []byte("welcome\n"), 0o644)
	ss := []steps.Step{
		mentions{filepath.Join(dir, "motd"), "welcome"},
		mentions{filepath.Join(dir, "motd"), "maintenance"},
		mentions{filepath.Join(dir, "issue"), "welcome"},
	}
	for _, gathered := range []bool{false, true} {
		c := &recordingConn{Conn: local.New()}
		ctx := context.Background()
		if gathered {
			ctx = steps.Prefetch(ctx, c, ss)
		}
		var converged int
		for _, s := range ss {
			if ch, err := s.Check(ctx, c); err == nil && ch == nil {
				converged++
			}
		}
		fmt.Printf("gathered %v: %d of 3 converged, commands on the host: %d\n", gathered, converged, c.commands())
	}
	// Output:
	// gathered false: 1 of 3 converged, commands on the host: 3
	// gathered true: 1 of 3 converged, commands on the host: 1
}

func TestReadPathFindsFromTheGatherExactlyWhatItsOwnReadFinds(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(p("file"), []byte("content\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("empty"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p("dir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p("file"), p("link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p("gone"), p("dangling")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		withContent   bool
		exists, isReg bool
		content       string
	}{
		{"file", true, true, true, "content\n"},
		{"file", false, true, true, ""},
		{"empty", true, true, true, ""},
		{"dir", true, true, false, ""},
		{"link", true, true, true, "content\n"},
		{"dangling", true, false, false, ""},
		{"absent", true, false, false, ""},
	} {
		t.Run(fmt.Sprintf("%s, content %v", tc.name, tc.withContent), func(t *testing.T) {
			step := readsOne{path: p(tc.name), content: tc.withContent}
			own := &recordingConn{Conn: local.New()}
			alone, err := steps.ReadPath(context.Background(), own, step.path, tc.withContent)
			if err != nil {
				t.Fatal(err)
			}
			c := &recordingConn{Conn: local.New()}
			ctx := steps.Prefetch(context.Background(), c, []steps.Step{step})
			gathered, err := steps.ReadPath(ctx, c, step.path, tc.withContent)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(alone, gathered) {
				t.Errorf("read alone %+v, from the gather %+v", alone, gathered)
			}
			if own.commands() != 1 || c.commands() != 1 {
				t.Errorf("commands: alone %d, gathered %d (the gather's); want 1 and 1", own.commands(), c.commands())
			}
			if gathered.Exists != tc.exists || gathered.Regular() != tc.isReg || string(gathered.Content) != tc.content {
				t.Errorf("got %+v; want exists %v, regular %v, content %q", gathered, tc.exists, tc.isReg, tc.content)
			}
		})
	}
}

// readsOne declares one path, as a step of a user's would.
type readsOne struct {
	path    string
	content bool
}

func (r readsOne) String() string { return "reads " + r.path }
func (r readsOne) PathsRead() []steps.PathRead {
	return []steps.PathRead{{Path: r.path, Content: r.content}}
}
func (r readsOne) Check(context.Context, transport.Conn) (*steps.Change, error) { return nil, nil }
