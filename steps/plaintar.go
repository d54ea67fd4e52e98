package steps

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The plain-tar cache: a gzipped archive that Untar sends many hosts (SendPlain) is
// decompressed once on the control machine, not once per host per deploy. An entry is
// named by the sha256 of the gzipped archive (<sum>.tar) and keeps the sha256 of its
// own content beside it (<sum>.tar.sha256), written when it was made: an entry is used
// only when its content still has that sum, so a cached file that was cut short or
// changed on disk is made again, never sent. A different archive, even of the same
// name, size and time, has another sum and so another entry.

// DefaultPlainTarCache is where Untar keeps the plain tars when CacheDir is empty: the
// user's cache folder ($XDG_CACHE_HOME or ~/.cache) + cauldron/plain-tar. Each use
// prunes it (see PrunePlainTars): entries unused for DefaultPlainTarUnusedFor go, then
// the least recently used while the whole is over DefaultPlainTarMaxBytes. Removing the
// folder, or any file in it, is always safe: what is missing is made again when it is
// next needed, and a run that has a plain tar open reads it whole all the same.
func DefaultPlainTarCache() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("the plain-tar cache: %w", err)
	}
	return filepath.Join(dir, "cauldron", "plain-tar"), nil
}

// The cache's limits when Untar uses it (see PrunePlainTars).
const (
	DefaultPlainTarUnusedFor = 30 * 24 * time.Hour
	DefaultPlainTarMaxBytes  = 4 << 30
)

// PlainTar returns the path and size of the plain tar of the gzipped archive src in the
// cache folder dir, as OpenPlainTar does. Another run's pruning may remove the file
// before it is opened: OpenPlainTar does not have that gap.
func PlainTar(src, dir string) (string, int64, error) {
	f, size, err := OpenPlainTar(src, dir)
	if err != nil {
		return "", 0, err
	}
	p := f.Name()
	return p, size, f.Close()
}

// OpenPlainTar returns the plain tar of the gzipped archive src in the cache folder
// dir, open for reading from its start, and its size, decompressing it there first
// when the cache has no good copy; it then prunes the cache (PrunePlainTars, with the
// default limits, never this entry). The file is proved good once open, so another
// run pruning it meanwhile takes nothing from the reader. The hosts of one run share
// the work: a second call for the same archive waits for the first, and a cache entry
// proved good in this process is not read again unless it changed on disk (another
// device, inode, size, modification or change time).
func OpenPlainTar(src, dir string) (*os.File, int64, error) {
	plainTars.Lock()
	defer plainTars.Unlock()
	sum, err := plainTars.archiveSum(src)
	if err != nil {
		return nil, 0, fmt.Errorf("the plain tar of %s: %w", src, err)
	}
	p := filepath.Join(dir, sum+".tar")
	f, size, ok := plainTars.openGood(p)
	if !ok {
		if f, size, err = decompressInto(src, dir, p); err != nil {
			return nil, 0, fmt.Errorf("the plain tar of %s: %w", src, err)
		}
	}
	// The sum file's time is the entry's last use, which pruning reads: the plain tar's
	// own times stay as they were, part of what proves it unchanged.
	now := time.Now()
	_ = os.Chtimes(p+".sha256", now, now)
	_ = PrunePlainTars(dir, DefaultPlainTarUnusedFor, DefaultPlainTarMaxBytes, p)
	return f, size, nil
}

// PrunePlainTars removes from the plain-tar cache folder dir the entries (a plain tar
// and its sum file) last used more than unusedFor ago, then, least recently used
// first, entries while the plain tars together exceed maxBytes; never keep (entries'
// paths). An entry's last use is its sum file's modification time. It also removes
// what a run killed while writing the cache left: temporary files and lone sum files
// a day old. A run reading an entry removed meanwhile reads it whole all the same (it
// has it open); one about to use it finds it missing and makes it again.
func PrunePlainTars(dir string, unusedFor time.Duration, maxBytes int64, keep ...string) error {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("prune the plain-tar cache: %w", err)
	}
	type entry struct {
		path    string
		size    int64
		lastUse time.Time
	}
	var entries []entry
	var errs []error
	remove := func(p string) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	now := time.Now()
	names := map[string]bool{}
	for _, de := range des {
		names[de.Name()] = true
	}
	for _, de := range des {
		name, p := de.Name(), filepath.Join(dir, de.Name())
		info, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		switch {
		case strings.HasPrefix(name, ".plain-") || strings.HasPrefix(name, ".sum-"):
			if now.Sub(info.ModTime()) > 24*time.Hour {
				remove(p)
			}
		case strings.HasSuffix(name, ".tar.sha256"):
			if !names[strings.TrimSuffix(name, ".sha256")] && now.Sub(info.ModTime()) > 24*time.Hour {
				remove(p)
			}
		case strings.HasSuffix(name, ".tar"):
			e := entry{path: p, size: info.Size(), lastUse: info.ModTime()}
			if sum, err := os.Stat(p + ".sha256"); err == nil {
				e.lastUse = sum.ModTime()
			}
			entries = append(entries, e)
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return a.lastUse.Compare(b.lastUse) })
	var total int64
	for _, e := range entries {
		total += e.size
	}
	for _, e := range entries {
		if slices.Contains(keep, e.path) || (now.Sub(e.lastUse) <= unusedFor && total <= maxBytes) {
			continue
		}
		// The plain tar first: its sum file alone is never taken for an entry.
		remove(e.path)
		remove(e.path + ".sha256")
		total -= e.size
	}
	if len(errs) > 0 {
		return fmt.Errorf("prune the plain-tar cache: %w", errors.Join(errs...))
	}
	return nil
}

// plainTars serialises the cache's use in this process and remembers the entries it
// proved good, by the identity they had then.
var plainTars = &plainTarMemo{proved: map[string]fileID{}}

type plainTarMemo struct {
	sync.Mutex
	proved map[string]fileID     // cache entry -> the identity it was proved good at
	sums   map[string]archiveSum // archive -> its sum and the identity it had then
}

type archiveSum struct {
	id  fileID
	sum string
}

// archiveSum is the sha256 of the archive src, taken again only when its identity
// changed since (the key must never be stale): the hosts of a run share one reading of
// the archive instead of each hashing it (about 0.15 s for a JDK of 141 MB).
func (m *plainTarMemo) archiveSum(src string) (string, error) {
	id, err := identify(src)
	if err != nil {
		return "", err
	}
	if a, ok := m.sums[src]; ok && a.id == id {
		return a.sum, nil
	}
	sum, err := FileSHA256(src)
	if err != nil {
		return "", err
	}
	if m.sums == nil {
		m.sums = map[string]archiveSum{}
	}
	m.sums[src] = archiveSum{id: id, sum: sum}
	return sum, nil
}

// fileID is what changes when a file is replaced or written to.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime time.Time
}

func identify(p string) (fileID, error) {
	info, err := os.Stat(p)
	if err != nil {
		return fileID{}, err
	}
	return identity(info), nil
}

func identity(info fs.FileInfo) fileID {
	id := fileID{size: info.Size(), mtime: info.ModTime()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino
		id.ctime = time.Unix(st.Ctim.Unix())
	}
	return id
}

// openGood opens the cache entry p when it is there with the content its sum file
// names, proved on the open file.
func (m *plainTarMemo) openGood(p string) (*os.File, int64, bool) {
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, false
	}
	if size, ok := m.proveOpen(p, f); ok {
		return f, size, true
	}
	f.Close()
	return nil, 0, false
}

func (m *plainTarMemo) proveOpen(p string, f *os.File) (int64, bool) {
	info, err := f.Stat()
	if err != nil {
		return 0, false
	}
	id := identity(info)
	if proved, ok := m.proved[p]; ok && proved == id {
		return id.size, true
	}
	want, err := os.ReadFile(p + ".sha256")
	if err != nil {
		return 0, false
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil || hex.EncodeToString(h.Sum(nil)) != strings.TrimSpace(string(want)) {
		return 0, false
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, false
	}
	m.proved[p] = id
	return id.size, true
}

// decompressInto writes the gunzipped src as p (and its sum as p.sha256) through
// temporary files in dir renamed into place, so that a reader never sees half an entry;
// gzip's own checksum of the content is verified at the end of the stream. It returns
// p open for reading from its start.
func decompressInto(src, dir, p string) (*os.File, int64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, err
	}
	in, err := os.Open(src)
	if err != nil {
		return nil, 0, err
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return nil, 0, fmt.Errorf("%s is not gzipped: %w", src, err)
	}
	tmp, err := os.CreateTemp(dir, ".plain-*.tar")
	if err != nil {
		return nil, 0, err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(tmp, h), zr)
	if err != nil {
		return nil, 0, fmt.Errorf("decompress %s: %w", src, err)
	}
	sum := []byte(hex.EncodeToString(h.Sum(nil)) + "\n")
	// The sum first: an entry found without its sum file is made again, and a sum
	// file beside an older entry would not match it.
	if err := writeAtomically(dir, p+".sha256", sum); err != nil {
		return nil, 0, err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return nil, 0, err
	}
	done = true
	// The file written is the one returned, whatever happens to its name meanwhile.
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		return nil, 0, err
	}
	if info, err := tmp.Stat(); err == nil {
		plainTars.proved[p] = identity(info)
	}
	return tmp, size, nil
}

func writeAtomically(dir, p string, b []byte) error {
	f, err := os.CreateTemp(dir, ".sum-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, bytes.NewReader(b))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}
