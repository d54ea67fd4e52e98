package steps

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
// user's cache folder ($XDG_CACHE_HOME or ~/.cache) + cauldron/plain-tar. Nothing
// prunes it: each archive ever sent plain leaves its plain tar there (272 MB for the
// lab's JDK). Removing the folder, or any file in it, is always safe: what is missing
// is made again when it is next needed.
func DefaultPlainTarCache() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("the plain-tar cache: %w", err)
	}
	return filepath.Join(dir, "cauldron", "plain-tar"), nil
}

// PlainTar returns the path and size of the plain tar of the gzipped archive src in the
// cache folder dir, decompressing it there first when the cache has no good copy. The
// hosts of one run share the work: a second call for the same archive waits for the
// first, and a cache entry proved good in this process is not read again unless it
// changed on disk (another device, inode, size, modification or change time).
func PlainTar(src, dir string) (string, int64, error) {
	plainTars.Lock()
	defer plainTars.Unlock()
	sum, err := plainTars.archiveSum(src)
	if err != nil {
		return "", 0, fmt.Errorf("the plain tar of %s: %w", src, err)
	}
	p := filepath.Join(dir, sum+".tar")
	if size, ok := plainTars.good(p); ok {
		return p, size, nil
	}
	size, err := decompressInto(src, dir, p)
	if err != nil {
		return "", 0, fmt.Errorf("the plain tar of %s: %w", src, err)
	}
	return p, size, nil
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
	id := fileID{size: info.Size(), mtime: info.ModTime()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino
		id.ctime = time.Unix(st.Ctim.Unix())
	}
	return id, nil
}

// good says whether the cache entry p is there with the content its sum file names.
func (m *plainTarMemo) good(p string) (int64, bool) {
	id, err := identify(p)
	if err != nil {
		return 0, false
	}
	if proved, ok := m.proved[p]; ok && proved == id {
		return id.size, true
	}
	want, err := os.ReadFile(p + ".sha256")
	if err != nil {
		return 0, false
	}
	got, err := FileSHA256(p)
	if err != nil || got != strings.TrimSpace(string(want)) {
		return 0, false
	}
	m.proved[p] = id
	return id.size, true
}

// decompressInto writes the gunzipped src as p (and its sum as p.sha256) through
// temporary files in dir renamed into place, so that a reader never sees half an entry;
// gzip's own checksum of the content is verified at the end of the stream.
func decompressInto(src, dir, p string) (int64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return 0, fmt.Errorf("%s is not gzipped: %w", src, err)
	}
	tmp, err := os.CreateTemp(dir, ".plain-*.tar")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(tmp, h), zr)
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("decompress %s: %w", src, err)
	}
	sum := []byte(hex.EncodeToString(h.Sum(nil)) + "\n")
	// The sum first: an entry found without its sum file is made again, and a sum
	// file beside an older entry would not match it.
	if err := writeAtomically(dir, p+".sha256", sum); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return 0, err
	}
	if id, err := identify(p); err == nil {
		plainTars.proved[p] = id
	}
	return size, nil
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
