package steps_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// plainHost is a folder standing for a host's file system, with the seed's setup/ and
// tools/ in it, and an Untar that sends the plain tar of src there.
type plainHost struct {
	archive, dest string
	untar         steps.Untar
}

func newPlainHost(t *testing.T, src, cache string) plainHost {
	t.Helper()
	dir := t.TempDir()
	h := plainHost{archive: filepath.Join(dir, "setup", "jdk.tgz"), dest: filepath.Join(dir, "tools", "jdk")}
	for _, d := range []string{filepath.Dir(h.archive), filepath.Dir(h.dest)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.untar = steps.Untar{Upload: &steps.Upload{Src: src, Dest: h.archive, Mode: 0o640}, Dest: h.dest,
		StripComponents: 1, Creates: filepath.Join(h.dest, "bin", "java"), SendPlain: true, CacheDir: cache}
	return h
}

// apply checks and applies h's Untar over c and returns the bytes sent.
func (h plainHost) apply(t *testing.T, c transport.Conn) int64 {
	t.Helper()
	ctx := context.Background()
	if err := steps.Validate(h.untar); err != nil {
		t.Fatal(err)
	}
	host := &countingConn{Conn: c}
	ch, err := h.untar.Check(ctx, host)
	if err != nil || ch == nil {
		t.Fatalf("check: %+v, %v", ch, err)
	}
	contains(t, "summary", ch.Summary, "its plain tar unpacked into "+h.dest)
	if err := ch.Apply(ctx); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if again, err := h.untar.Check(ctx, host); err != nil || again != nil {
		t.Fatalf("check after apply: %+v, %v", again, err)
	}
	return host.sent.Load()
}

// cacheEntry is the cache's plain tar of src, which must be there with its sum file.
func cacheEntry(t *testing.T, cache, src string) string {
	t.Helper()
	sum, err := steps.FileSHA256(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(cache, sum+".tar")
	want, err := os.ReadFile(p + ".sha256")
	if err != nil {
		t.Fatalf("the cache has no sum beside its plain tar: %v (holds %q)", err, entries(t, cache))
	}
	if got, err := steps.FileSHA256(p); err != nil || got != strings.TrimSpace(string(want)) {
		t.Fatalf("the cached plain tar's sum is %s, its sum file says %s (%v)", got, want, err)
	}
	return p
}

func TestAnUntarThatSendsPlainUnpacksTheControllersPlainTarAndKeepsTheArchive(t *testing.T) {
	src := filepath.Join(t.TempDir(), "jdk.tgz")
	writeTarball(t, src, 3<<20, true)
	srcInfo, _ := os.Stat(src)
	cache := t.TempDir()

	first := newPlainHost(t, src, cache)
	sent := first.apply(t, local.New())
	entry := cacheEntry(t, cache, src)
	plain, _ := os.Stat(entry)
	if want := srcInfo.Size() + plain.Size(); sent != want {
		t.Errorf("sent %d bytes, want the archive's %d and its plain tar's %d once each", sent, srcInfo.Size(), plain.Size())
	}
	if !bytes.Equal([]byte(readLocal(t, first.archive)), []byte(readLocal(t, src))) {
		t.Error("the archive on the host differs from the source")
	}
	if fi, err := os.Stat(first.archive); err != nil || fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(srcInfo.ModTime()) {
		t.Errorf("archive: %v, %v; want mode 0640 and time %v", fi, err, srcInfo.ModTime())
	}
	if got := readLocal(t, filepath.Join(first.dest, "bin", "java")); got != "#!/bin/sh\n" {
		t.Errorf("bin/java: %q", got)
	}
	if fi, err := os.Stat(filepath.Join(first.dest, "lib", "modules")); err != nil || fi.Size() != 3<<20 {
		t.Errorf("lib/modules: %v, %v", fi, err)
	}
	for _, d := range []string{filepath.Dir(first.archive), filepath.Dir(first.dest)} {
		if got := entries(t, d); len(got) != 1 {
			t.Errorf("%s holds %q, want one entry (no temporary file left)", d, got)
		}
	}

	// A second host is served from the cache: the plain tar is not made again.
	second := newPlainHost(t, src, cache)
	second.apply(t, local.New())
	if again, _ := os.Stat(entry); !os.SameFile(plain, again) || !again.ModTime().Equal(plain.ModTime()) {
		t.Error("the plain tar was made again for the second host")
	}
	if got := entries(t, cache); len(got) != 3 {
		t.Errorf("the cache holds %q, want the plain tar, its sum and the proofs only", got)
	}
	if readLocal(t, filepath.Join(second.dest, "lib", "modules")) != readLocal(t, filepath.Join(first.dest, "lib", "modules")) {
		t.Error("the second host's tree differs from the first's")
	}
}

func TestACorruptPlainTarInTheCacheIsMadeAgainNotSent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, entry string)
	}{
		{"a byte changed in place, the file's size and times as they were", func(t *testing.T, entry string) {
			fi, _ := os.Stat(entry)
			f, err := os.OpenFile(entry, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Inside lib/modules' content: tar would unpack it without a word.
			if _, err := f.WriteAt([]byte{'X', 'X', 'X', 'X'}, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			f.Close()
			os.Chtimes(entry, fi.ModTime(), fi.ModTime())
			// As a new process would see it: the entry is proved again.
			steps.ForgetProvedPlainTars()
		}},
		{"cut short", func(t *testing.T, entry string) {
			fi, _ := os.Stat(entry)
			if err := os.Truncate(entry, fi.Size()-100<<10); err != nil {
				t.Fatal(err)
			}
		}},
		{"its sum file gone", func(t *testing.T, entry string) {
			os.Remove(entry + ".sha256")
			steps.ForgetProvedPlainTars()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "jdk.tgz")
			writeTarball(t, src, 1<<20, true)
			cache := t.TempDir()
			first := newPlainHost(t, src, cache)
			first.apply(t, local.New())
			want := readLocal(t, filepath.Join(first.dest, "lib", "modules"))

			tc.corrupt(t, cacheEntry(t, cache, src))
			second := newPlainHost(t, src, cache)
			second.apply(t, local.New())
			if readLocal(t, filepath.Join(second.dest, "lib", "modules")) != want {
				t.Fatal("the host unpacked the corrupt plain tar")
			}
			cacheEntry(t, cache, src)
		})
	}
}

func TestALaterRunTakesTheArchiveAndThePlainTarAnEarlierOneHashedWithoutReadingThemAgain(t *testing.T) {
	for _, tc := range []struct {
		name string
		// between runs, after the first; wantHashes is what the second run reads whole
		between    func(t *testing.T, src, cache string)
		wantHashes int
		modules    string
	}{
		{"nothing changed", func(*testing.T, string, string) {}, 0, "first build\n"},
		{"another build of the archive, of the same name, size and time", func(t *testing.T, src, _ string) {
			writeStoredTarball(t, src, bytes.Repeat([]byte("other build\n"), 1<<16))
		}, 1, "other build\n"},
		{"the proofs cut short", func(t *testing.T, _, cache string) {
			p := filepath.Join(cache, "proofs.json")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(p, b[:len(b)/2], 0o600)
		}, 2, "first build\n"},
		{"the proofs gone", func(t *testing.T, _, cache string) { os.Remove(filepath.Join(cache, "proofs.json")) }, 2, "first build\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "jdk.tgz")
			writeStoredTarball(t, src, bytes.Repeat([]byte("first build\n"), 1<<16))
			cache := t.TempDir()
			newPlainHost(t, src, cache).apply(t, local.New())
			tc.between(t, src, cache)
			want := readLocal(t, src)

			steps.ForgetProvedPlainTars() // a new process
			before := steps.PlainTarHashes()
			second := newPlainHost(t, src, cache)
			second.apply(t, local.New())
			if got := steps.PlainTarHashes() - before; got != tc.wantHashes {
				t.Errorf("the second run read %d files whole to hash them, want %d", got, tc.wantHashes)
			}
			if readLocal(t, second.archive) != want {
				t.Error("the second host's archive is not the source")
			}
			if got := readLocal(t, filepath.Join(second.dest, "lib", "modules")); !strings.HasPrefix(got, tc.modules) {
				t.Errorf("the second host got %.20q..., want the build of %q", got, tc.modules)
			}
			cacheEntry(t, cache, src)
			// And a third run takes what the second proved.
			steps.ForgetProvedPlainTars()
			before = steps.PlainTarHashes()
			newPlainHost(t, src, cache).apply(t, local.New())
			if got := steps.PlainTarHashes() - before; got != 0 {
				t.Errorf("the third run read %d files whole to hash them, want 0", got)
			}
		})
	}
}

func TestAnotherArchiveOfTheSameNameSizeAndTimeGetsItsOwnPlainTar(t *testing.T) {
	src := filepath.Join(t.TempDir(), "jdk.tgz")
	writeStoredTarball(t, src, bytes.Repeat([]byte("first build\n"), 1<<16))
	before, _ := os.Stat(src)
	cache := t.TempDir()
	first := newPlainHost(t, src, cache)
	first.apply(t, local.New())

	// Another build of the same name, size and time to the nanosecond.
	writeStoredTarball(t, src, bytes.Repeat([]byte("other build\n"), 1<<16))
	after, _ := os.Stat(src)
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("the second archive is %d bytes of %v, want the first's %d of %v", after.Size(), after.ModTime(), before.Size(), before.ModTime())
	}
	second := newPlainHost(t, src, cache)
	second.apply(t, local.New())
	if got := readLocal(t, filepath.Join(second.dest, "lib", "modules")); !strings.HasPrefix(got, "other build\n") {
		t.Fatalf("the second archive's host got %.20q..., not the second build", got)
	}
	if got := entries(t, cache); len(got) != 5 {
		t.Errorf("the cache holds %q, want a plain tar and a sum for each archive, and the proofs", got)
	}
	cacheEntry(t, cache, src)
}

// writeStoredTarball writes a gzipped tarball of jdk/bin/java and jdk/lib/modules
// (modules) without compression, so that its size depends on the lengths only, with
// writeTarball's time.
func writeStoredTarball(t *testing.T, path string, modules []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		body []byte
	}{{"jdk/bin/java", []byte("#!/bin/sh\n")}, {"jdk/lib/modules", modules}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.body)
	}
	if err := errors.Join(tw.Close(), zw.Close(), os.WriteFile(path, buf.Bytes(), 0o644)); err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func TestAnUntarThatSendsPlainOfABrokenArchiveFailsAndUnpacksNothing(t *testing.T) {
	src := filepath.Join(t.TempDir(), "jdk.tgz")
	writeTarball(t, src, 2<<20, true)
	whole, _ := os.ReadFile(src)
	if err := os.WriteFile(src, whole[:len(whole)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	h := newPlainHost(t, src, cache)
	ch, err := h.untar.Check(context.Background(), local.New())
	if err != nil || ch == nil {
		t.Fatalf("check: %+v, %v", ch, err)
	}
	err = ch.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "decompress "+src) {
		t.Fatalf("apply: %v, want the error of decompressing %s", err, src)
	}
	if got := entries(t, filepath.Dir(h.dest)); len(got) != 0 {
		t.Errorf("tools/ holds %q, want nothing", got)
	}
	// The archive may have arrived (it is the source, byte for byte), never half of it.
	for _, e := range entries(t, filepath.Dir(h.archive)) {
		if e != filepath.Base(h.archive) {
			t.Errorf("setup/ holds %q", e)
		}
	}
	if got := entries(t, cache); len(got) != 0 {
		t.Errorf("the cache holds %q, want nothing", got)
	}
}

func TestAnUntarThatSendsPlainConvergesADebianHost(t *testing.T) {
	needHost(t)
	src := filepath.Join(t.TempDir(), "jdk.tgz")
	writeTarball(t, src, 2<<20, true)
	sh(t, "rm -rf /opt/plain && mkdir -p /opt/plain/setup /opt/plain/tools && id nobody >/dev/null")
	u := steps.Untar{Upload: &steps.Upload{Src: src, Dest: "/opt/plain/setup/jdk.tgz", Owner: "nobody", Mode: 0o640},
		Dest: "/opt/plain/tools/jdk", StripComponents: 1, Creates: "/opt/plain/tools/jdk/bin/java", Owner: "nobody",
		SendPlain: true, CacheDir: t.TempDir()}
	ch := converges(t, u)
	contains(t, "summary", ch.Summary, "its plain tar unpacked into /opt/plain/tools/jdk")
	sum, _ := steps.FileSHA256(src)
	got := sh(t, "sha256sum /opt/plain/setup/jdk.tgz; stat -c '%U %a %s' /opt/plain/setup/jdk.tgz /opt/plain/tools/jdk/lib/modules; "+
		"cat /opt/plain/tools/jdk/bin/java; ls -A /opt/plain/setup; ls -A /opt/plain/tools")
	want := sum + "  /opt/plain/setup/jdk.tgz\nnobody 640 " + sizeOf(t, src) + "\nnobody 755 2097152\n#!/bin/sh\njdk.tgz\njdk\n"
	if got != want {
		t.Fatalf("on the host:\n%s\nwant:\n%s", got, want)
	}
	sh(t, "rm -rf /opt/plain")
}

func sizeOf(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(fi.Size(), 10)
}

// A host on the control machine (here the local transport; the lab's containers) is
// sent the tarball's plain tar, decompressed once into the cache, beside the tarball.
func ExampleUntar_sendPlain() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cauldron-untar-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "jdk-17.tar.gz") // on the control machine
	if err := writeTarGz(src, map[string]string{"jdk-17.0.2/bin/java": "#!/bin/sh\n"}); err != nil {
		log.Fatal(err)
	}
	cache := filepath.Join(dir, "plain-tar") // by default steps.DefaultPlainTarCache()

	setup, tools := filepath.Join(dir, "setup"), filepath.Join(dir, "tools")
	jdk := steps.Untar{Upload: &steps.Upload{Src: src, Dest: filepath.Join(setup, "jdk-17.tar.gz"), Mode: 0o640},
		Dest: filepath.Join(tools, "jdk-17"), StripComponents: 1, Creates: filepath.Join(tools, "jdk-17", "bin", "java"),
		SendPlain: true, CacheDir: cache}
	host := local.New()
	for _, s := range []steps.Step{steps.Dir{Path: setup}, steps.Dir{Path: tools}, jdk, jdk} {
		changed, err := steps.Converge(ctx, host, s)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: changed %v\n", strings.Replace(s.String(), dir, "…", -1), changed)
	}
	cached, _ := filepath.Glob(filepath.Join(cache, "*.tar"))
	fmt.Println("plain tars in the cache:", len(cached))
	// Output:
	// dir …/setup: changed true
	// dir …/tools: changed true
	// untar …/setup/jdk-17.tar.gz into …/tools/jdk-17: changed true
	// untar …/setup/jdk-17.tar.gz into …/tools/jdk-17: changed false
	// plain tars in the cache: 1
}
