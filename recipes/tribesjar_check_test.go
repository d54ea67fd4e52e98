package recipes_test

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// commandCounter counts the commands run over a connection.
type commandCounter struct {
	transport.Conn
	runs atomic.Int32
}

func (c *commandCounter) Run(ctx context.Context, cmd transport.Command) error {
	c.runs.Add(1)
	return c.Conn.Run(ctx, cmd)
}

func jarWith(t *testing.T, entries map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for name, body := range entries {
		w, err := z.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestTheTribesJarsCheckReadsTheHashFromTheJarInTheHostsOneGatheredCommand(t *testing.T) {
	classes := map[string]string{"io/cauldron/tribes/A.class": "\xca\xfe\xba\xbe\x00\x00"}
	withHash := func(h string) map[string]string {
		m := map[string]string{"META-INF/cauldron-sources.sha256": h + "\n"}
		for k, v := range classes {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name string
		jar  []byte // nil: no jar
		want string // "" for converged, else in the change's summary
	}{
		{"no jar", nil, "the jar is absent"},
		{"a jar of these sources", jarWith(t, withHash(recipes.TribesSourcesHash())), ""},
		{"a jar of other sources", jarWith(t, withHash("0123")), "built from other sources (0123)"},
		{"a jar without the entry", jarWith(t, classes), "built from other sources (no hash)"},
		{"bytes that are no jar", []byte("PK\x03\x04 not really\x00\n"), "built from other sources (no hash)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			if err := os.MkdirAll(filepath.Join(home, "lib"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.jar != nil {
				if err := os.WriteFile(filepath.Join(home, "lib", recipes.TribesJarName), tc.jar, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			step := recipes.TribesJar{JavaHome: "/usr/lib/jvm/java-17", TomcatHome: home, Owner: "root"}
			for _, gathered := range []bool{true, false} {
				conn := &commandCounter{Conn: local.New()}
				ctx := context.Background()
				if gathered {
					ctx = steps.Prefetch(ctx, conn, []steps.Step{step})
				}
				change, err := step.Check(ctx, conn)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case tc.want == "" && change != nil:
					t.Errorf("gathered %v: %q, want converged", gathered, change.Summary)
				case tc.want != "" && (change == nil || !strings.Contains(change.Summary, tc.want)):
					t.Errorf("gathered %v: %+v, want a change saying %q", gathered, change, tc.want)
				}
				if n := conn.runs.Load(); n != 1 {
					t.Errorf("gathered %v: %d commands, want 1", gathered, n)
				}
			}
		})
	}
}
