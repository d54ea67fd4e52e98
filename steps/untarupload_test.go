package steps_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// countingConn counts the bytes a step sends a host: commands' input and files put.
type countingConn struct {
	transport.Conn
	sent atomic.Int64
}

func (c *countingConn) Run(ctx context.Context, cmd transport.Command) error {
	if cmd.Stdin != nil {
		cmd.Stdin = &countingInput{r: cmd.Stdin, n: &c.sent}
	}
	return c.Conn.Run(ctx, cmd)
}

func (c *countingConn) Put(ctx context.Context, f transport.File) error {
	r, _ := f.Reader()
	f.Body = &countingInput{r: r, n: &c.sent}
	return c.Conn.Put(ctx, f)
}

type countingInput struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingInput) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// writeTarball writes a tarball of jdk/bin/java and jdk/lib/modules (random bytes of
// the given size, so that gzip cannot shrink it), gzipped or not.
func writeTarball(t *testing.T, path string, modules int, gzipped bool) {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gzipped {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	body := make([]byte, modules)
	rand.Read(body)
	for _, f := range []struct {
		name string
		body []byte
	}{{"jdk/bin/java", []byte("#!/bin/sh\n")}, {"jdk/lib/modules", body}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// A time of its own, to the nanosecond, that the upload must give the host's copy.
	mt := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

// TestAnUntarWithAnUploadSendsTheArchiveOnceAndUnpacksItAsItArrives runs the step over
// the local transport: a tarball above a command frame's input (streamed by the
// transport's own way) and a small plain one (inside a frame, where a channel has one).
func TestAnUntarWithAnUploadSendsTheArchiveOnceAndUnpacksItAsItArrives(t *testing.T) {
	for _, tc := range []struct {
		name    string
		modules int
		gzipped bool
	}{
		{"a gzipped tarball of 3 MB", 3 << 20, true},
		{"a plain tarball of 10 kB", 10 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			src := filepath.Join(t.TempDir(), "jdk.tgz")
			writeTarball(t, src, tc.modules, tc.gzipped)
			srcInfo, _ := os.Stat(src)
			dir := t.TempDir()
			archive, tools := filepath.Join(dir, "setup", "jdk.tgz"), filepath.Join(dir, "tools")
			for _, d := range []string{filepath.Dir(archive), tools} {
				os.MkdirAll(d, 0o755)
			}
			dest := filepath.Join(tools, "jdk")
			u := steps.Untar{Upload: &steps.Upload{Src: src, Dest: archive, Mode: 0o640}, Dest: dest,
				StripComponents: 1, Creates: filepath.Join(dest, "bin", "java")}
			if err := steps.Validate(u); err != nil {
				t.Fatal(err)
			}
			if got, want := u.String(), "untar "+archive+" into "+dest; got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}

			host := &countingConn{Conn: local.New()}
			ch, err := u.Check(ctx, host)
			if err != nil || ch == nil {
				t.Fatalf("check: %+v, %v", ch, err)
			}
			contains(t, "summary", ch.Summary, "as it arrives")
			if err := ch.Apply(ctx); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if got := host.sent.Load(); got != srcInfo.Size() {
				t.Errorf("sent %d bytes, want the archive's %d once", got, srcInfo.Size())
			}
			if !bytes.Equal([]byte(readLocal(t, archive)), []byte(readLocal(t, src))) {
				t.Error("the archive on the host differs from the source")
			}
			fi, err := os.Stat(archive)
			if err != nil || fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(srcInfo.ModTime()) {
				t.Errorf("archive: %v, mode %v, time %v, want 0640 and %v", err, fi.Mode(), fi.ModTime(), srcInfo.ModTime())
			}
			if got := readLocal(t, filepath.Join(dest, "bin", "java")); got != "#!/bin/sh\n" {
				t.Errorf("bin/java: %q", got)
			}
			if fi, err := os.Stat(filepath.Join(dest, "lib", "modules")); err != nil || fi.Size() != int64(tc.modules) {
				t.Errorf("lib/modules: %v, %v", fi, err)
			}
			if again, err := u.Check(ctx, host); err != nil || again != nil {
				t.Fatalf("check after apply: %+v, %v", again, err)
			}
			for name, d := range map[string]string{"setup": filepath.Dir(archive), "tools": tools} {
				if got := entries(t, d); len(got) != 1 {
					t.Errorf("%s holds %q, want one entry (no temporary file left)", name, got)
				}
			}

			// The tree is there, the archive gone: the archive comes back, the tree is
			// not unpacked again.
			os.Remove(archive)
			os.WriteFile(filepath.Join(dest, "bin", "java"), []byte("kept\n"), 0o755)
			host.sent.Store(0)
			ch = localConverges(t, u, "create "+archive)
			if strings.Contains(ch.Summary, "unpack") || readLocal(t, filepath.Join(dest, "bin", "java")) != "kept\n" {
				t.Errorf("the tree was unpacked again: %s", ch.Summary)
			}

			// The archive is there, the tree gone: it is unpacked from the host's copy,
			// nothing crosses, and a drifted mode of the archive is put back too.
			os.RemoveAll(dest)
			os.Chmod(archive, 0o604)
			host.sent.Store(0)
			ch, err = u.Check(ctx, host)
			if err != nil || ch == nil {
				t.Fatalf("check: %+v, %v", ch, err)
			}
			contains(t, "summary", ch.Summary, "untar "+archive+" into "+dest+" ("+u.Creates+" is missing); "+archive+": mode 0604 -> 0640")
			if err := ch.Apply(ctx); err != nil {
				t.Fatal(err)
			}
			if host.sent.Load() != 0 {
				t.Errorf("sent %d bytes, want none", host.sent.Load())
			}
			if again, err := u.Check(ctx, host); err != nil || again != nil {
				t.Fatalf("check after apply: %+v, %v", again, err)
			}
		})
	}
}

func TestAnUntarWhoseUploadBreaksOffLeavesNeitherArchiveNorTree(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "jdk.tgz")
	writeTarball(t, src, 2<<20, true)
	whole, _ := os.ReadFile(src)
	os.WriteFile(src, whole[:len(whole)/2], 0o644)
	dir := t.TempDir()
	u := steps.Untar{Upload: &steps.Upload{Src: src, Dest: filepath.Join(dir, "jdk.tgz")}, Dest: filepath.Join(dir, "jdk"), StripComponents: 1}
	ch, err := u.Check(ctx, local.New())
	if err != nil || ch == nil {
		t.Fatalf("check: %+v, %v", ch, err)
	}
	if err := ch.Apply(ctx); err == nil {
		t.Fatal("half an archive unpacked without an error")
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Fatalf("left behind: %q", got)
	}
}

func TestAnUntarWithAnUploadElsewhereThanItsArchiveIsRefused(t *testing.T) {
	u := steps.Untar{Archive: "/opt/a.tgz", Upload: &steps.Upload{Src: "a.tgz", Dest: "/opt/b.tgz"}, Dest: "/opt/a"}
	if err := steps.Validate(u); err == nil || !strings.Contains(err.Error(), "is not Upload.Dest") {
		t.Fatalf("validate: %v", err)
	}
	u.Archive = ""
	u.Upload.Dest = "relative.tgz"
	if err := steps.Validate(u); err == nil || !strings.Contains(err.Error(), "Upload: ") {
		t.Fatalf("validate: %v", err)
	}
}
