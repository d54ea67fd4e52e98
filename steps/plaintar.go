package steps

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
//
// Proving an entry reads it whole (272 MB for the lab's JDK), and finding it hashes the
// archive (141 MB): together 0.5-0.8 s of the controller's CPU, before the first byte
// of the plain tar could leave, in every run. The cache's proofs.json keeps what was
// proved and hashed, each with the identity the file had then (device, inode, size,
// modification and change time, to the nanosecond): a later run takes a file of the
// same identity as proved, and reads again any other. Writing to a file, truncating,
// replacing or renaming it changes its change time, which no user can set back; what
// the proofs do not catch is a disk that changes a file's bytes under the file system.
// A proofs.json lost, cut short or written by two runs at once costs only reading the
// files again.

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
	plainTars.load(dir)
	hashed := plainTars.hashes
	// By its absolute path, the key of its proof for the runs to come.
	if abs, err := filepath.Abs(src); err == nil {
		src = abs
	}
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
	if plainTars.hashes != hashed || !ok {
		// Best effort: without it the next run reads the files again.
		_ = plainTars.save(dir)
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
	removed := 0
	for _, e := range entries {
		if slices.Contains(keep, e.path) || (now.Sub(e.lastUse) <= unusedFor && total <= maxBytes) {
			continue
		}
		// The plain tar first: its sum file alone is never taken for an entry.
		remove(e.path)
		remove(e.path + ".sha256")
		total -= e.size
		removed++
	}
	// The proofs of entries gone are no use, but harmless while others remain: the
	// next run's save leaves them out.
	if len(entries) > 0 && removed == len(entries) {
		remove(filepath.Join(dir, proofsFile))
	}
	if len(errs) > 0 {
		return fmt.Errorf("prune the plain-tar cache: %w", errors.Join(errs...))
	}
	return nil
}

// plainTars serialises the cache's use in this process and remembers the entries it
// proved good, by the identity they had then.
var plainTars = &plainTarMemo{proved: map[string]fileID{}, entries: map[string]archiveSum{}}

type plainTarMemo struct {
	sync.Mutex
	proved map[string]fileID     // cache entry -> the identity it was proved good at
	sums   map[string]archiveSum // archive -> its sum and the identity it had then
	loaded map[string]bool       // cache folders whose proofs.json was read
	// entries are the cache entries proved, by this run or (from proofs.json) an
	// earlier one, each with its content's sum and the identity it had then.
	entries map[string]archiveSum
	// hashes counts the files read whole to hash them (tests).
	hashes int
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
	m.hashes++
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
	// Proved by an earlier run, against the sum its sum file still holds.
	if e, ok := m.entries[p]; ok && e.id == id && e.sum == strings.TrimSpace(string(want)) {
		m.proved[p] = id
		return id.size, true
	}
	m.hashes++
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil || hex.EncodeToString(h.Sum(nil)) != strings.TrimSpace(string(want)) {
		return 0, false
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, false
	}
	m.proved[p] = id
	m.entries[p] = archiveSum{id: id, sum: strings.TrimSpace(string(want))}
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
		plainTars.entries[p] = archiveSum{id: identity(info), sum: strings.TrimSpace(string(sum))}
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

// proofsFile is the name, in the cache folder, of the proofs a run leaves the next.
const proofsFile = "proofs.json"

// proofs is proofs.json: what was hashed, by path, with the identity it had then.
type proofs struct {
	Entries  map[string]proof `json:"entries"`  // cache entry (base name) -> its content's sum
	Archives map[string]proof `json:"archives"` // archive (absolute path) -> its sum
}

type proof struct {
	Sum   string `json:"sha256"`
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime_ns"`
	CTime int64  `json:"ctime_ns"`
}

func proofOf(a archiveSum) proof {
	return proof{Sum: a.sum, Dev: a.id.dev, Ino: a.id.ino, Size: a.id.size, MTime: a.id.mtime.UnixNano(), CTime: a.id.ctime.UnixNano()}
}

func (p proof) archiveSum() archiveSum {
	return archiveSum{sum: p.Sum, id: fileID{dev: p.Dev, ino: p.Ino, size: p.Size, mtime: time.Unix(0, p.MTime), ctime: time.Unix(0, p.CTime)}}
}

// load reads dir's proofs.json once per process; what this process proved itself
// stays. A file that is missing or cannot be read is no proof of anything.
func (m *plainTarMemo) load(dir string) {
	if m.loaded[dir] {
		return
	}
	if m.loaded == nil {
		m.loaded = map[string]bool{}
	}
	m.loaded[dir] = true
	b, err := os.ReadFile(filepath.Join(dir, proofsFile))
	if err != nil {
		return
	}
	var ps proofs
	if json.Unmarshal(b, &ps) != nil {
		return
	}
	if m.sums == nil {
		m.sums = map[string]archiveSum{}
	}
	for src, p := range ps.Archives {
		if _, ok := m.sums[src]; !ok && filepath.IsAbs(src) && len(p.Sum) == 64 {
			m.sums[src] = p.archiveSum()
		}
	}
	for name, p := range ps.Entries {
		e := filepath.Join(dir, filepath.Base(name))
		if _, ok := m.entries[e]; !ok && len(p.Sum) == 64 {
			m.entries[e] = p.archiveSum()
		}
	}
}

// save writes dir's proofs.json: its entries and the archives whose entries it holds,
// those still there with the identity proved.
func (m *plainTarMemo) save(dir string) error {
	ps := proofs{Entries: map[string]proof{}, Archives: map[string]proof{}}
	for p, e := range m.entries {
		if filepath.Dir(p) != dir {
			continue
		}
		if id, err := identify(p); err != nil || id != e.id {
			continue
		}
		ps.Entries[filepath.Base(p)] = proofOf(e)
	}
	for src, a := range m.sums {
		if _, ok := ps.Entries[a.sum+".tar"]; !ok || !filepath.IsAbs(src) {
			continue
		}
		if id, err := identify(src); err != nil || id != a.id {
			continue
		}
		ps.Archives[src] = proofOf(a)
	}
	b, err := json.MarshalIndent(ps, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomically(dir, filepath.Join(dir, proofsFile), append(b, '\n'))
}
