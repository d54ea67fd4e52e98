package steps_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport/local"
)

// fakeCache writes plain-tar cache entries of 100 bytes each, by name, last used (their
// sum file's time) that long ago, and loose files of that age.
func fakeCache(t *testing.T, entries, loose map[string]time.Duration) string {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	write := func(name string, age time.Duration, size int) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	for name, lastUse := range entries {
		// The plain tar itself made long ago: the sum file's time is what counts.
		write(name+".tar", 90*24*time.Hour, 100)
		write(name+".tar.sha256", lastUse, 65)
	}
	for name, age := range loose {
		write(name, age, 10)
	}
	return dir
}

func TestThePlainTarCacheDropsEntriesUnusedForLongThenTheLeastRecentlyUsedOverItsSize(t *testing.T) {
	day := 24 * time.Hour
	used := map[string]time.Duration{"a": 40 * day, "b": 3 * day, "c": 2 * day, "d": time.Hour}
	for _, tc := range []struct {
		name      string
		unusedFor time.Duration
		maxBytes  int64
		keep      []string
		want      []string
	}{
		{"only the entry unused for longer than 30 days goes", 30 * day, 1 << 30, nil, []string{"b", "c", "d"}},
		{"then the least recently used while over 250 bytes", 30 * day, 250, nil, []string{"c", "d"}},
		{"an entry in use stays, even the oldest and over the size", 30 * day, 0, []string{"a"}, []string{"a"}},
		{"nothing is too old for a limit of 100 days", 100 * day, 1 << 30, nil, []string{"a", "b", "c", "d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fakeCache(t, used, nil)
			var keep []string
			for _, k := range tc.keep {
				keep = append(keep, filepath.Join(dir, k+".tar"))
			}
			if err := steps.PrunePlainTars(dir, tc.unusedFor, tc.maxBytes, keep...); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, w+".tar", w+".tar.sha256")
			}
			if got := entries(t, dir); !slices.Equal(got, want) {
				t.Errorf("the cache holds %q, want %q", got, want)
			}
		})
	}
}

func TestPruningThePlainTarCacheRemovesWhatAKilledRunLeftADayAgoOnly(t *testing.T) {
	day := 24 * time.Hour
	dir := fakeCache(t, map[string]time.Duration{"a": time.Hour}, map[string]time.Duration{
		".plain-1.tar": 2 * day, ".plain-2.tar": time.Minute, // one being written now
		".sum-1": 2 * day, ".sum-2": time.Minute,
		"b.tar.sha256": 2 * day, "c.tar.sha256": time.Minute, // a sum written a moment before its plain tar
	})
	if err := steps.PrunePlainTars(dir, 30*day, 1<<30); err != nil {
		t.Fatal(err)
	}
	want := []string{".plain-2.tar", ".sum-2", "a.tar", "a.tar.sha256", "c.tar.sha256"}
	if got := entries(t, dir); !slices.Equal(got, want) {
		t.Errorf("the cache holds %q, want %q", got, want)
	}
}

func TestSendingAPlainTarMarksItUsedAndPrunesTheCache(t *testing.T) {
	cache := fakeCache(t, map[string]time.Duration{"stale": 40 * 24 * time.Hour}, nil)
	src := filepath.Join(t.TempDir(), "jdk.tgz")
	writeTarball(t, src, 1<<20, true)
	start := time.Now().Add(-time.Second)
	newPlainHost(t, src, cache).apply(t, local.New())
	entry := cacheEntry(t, cache, src)
	if got := entries(t, cache); len(got) != 3 {
		t.Errorf("the cache holds %q, want only the plain tar just used, its sum and the proofs", got)
	}
	// Sent again later: its last use moves on, the plain tar itself stays as it was.
	plain, _ := os.Stat(entry)
	old := time.Now().Add(-10 * 24 * time.Hour)
	os.Chtimes(entry+".sha256", old, old)
	newPlainHost(t, src, cache).apply(t, local.New())
	if sum, err := os.Stat(entry + ".sha256"); err != nil || sum.ModTime().Before(start) {
		t.Errorf("the sum file's time (the entry's last use) is %v, %v; want now", sum.ModTime(), err)
	}
	if again, _ := os.Stat(entry); !os.SameFile(plain, again) || !again.ModTime().Equal(plain.ModTime()) {
		t.Error("the plain tar was made again or touched")
	}
}

func TestAPlainTarOpenWhileAnotherRunPrunesItIsReadWhole(t *testing.T) {
	src := filepath.Join(t.TempDir(), "jdk.tgz")
	writeTarball(t, src, 2<<20, true)
	cache := t.TempDir()
	f, size, err := steps.OpenPlainTar(src, cache)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entry := cacheEntry(t, cache, src)
	want := readLocal(t, entry+".sha256")
	// Another run, with a cache limit of nothing, removes every entry.
	if err := steps.PrunePlainTars(cache, 0, 0); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, cache); len(got) != 0 {
		t.Fatalf("the cache holds %q after pruning everything", got)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != strings.TrimSpace(want) {
		t.Fatalf("read %d of %d bytes (%v), sum %x, want %s", n, size, err, h.Sum(nil), want)
	}
	// The next use makes it again.
	g, _, err := steps.OpenPlainTar(src, cache)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	cacheEntry(t, cache, src)
}
