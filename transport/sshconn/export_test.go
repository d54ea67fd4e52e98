package sshconn

import (
	"io"
	"sync"

	"golang.org/x/crypto/ssh"
)

// CutConnectionHalfwayThroughUploads makes every later upload of c close c's TCP
// connection once half of the content has been read: a network cut mid-transfer.
func CutConnectionHalfwayThroughUploads(c *Conn) {
	c.uploadWrap = func(_ string, r io.Reader, size int) io.Reader {
		return &cuttingReader{r: r, left: size / 2, cut: func() { c.wire.Close() }}
	}
}

type cuttingReader struct {
	r    io.Reader
	left int
	cut  func()
	once sync.Once
}

func (r *cuttingReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		r.once.Do(r.cut)
	}
	n, err := r.r.Read(p)
	r.left -= n
	return n, err
}

// JumpHops is how Dial reads a ProxyJump spec: user@host:port of each hop.
func JumpHops(spec, user string) ([]string, error) {
	hops, err := parseProxyJump(spec, user)
	var out []string
	for _, h := range hops {
		out = append(out, h.user+"@"+h.addr)
	}
	return out, err
}

// RecordSFTPUploads makes c note the path of every later SFTP upload, and returns a
// function that lists them.
func RecordSFTPUploads(c *Conn) func() []string {
	var mu sync.Mutex
	var paths []string
	c.uploadWrap = func(path string, r io.Reader, _ int) io.Reader {
		mu.Lock()
		defer mu.Unlock()
		paths = append(paths, path)
		return r
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), paths...)
	}
}

// NoteWarmFallbacksTo sends the warm connection's notes to w, each again once, until
// the test ends.
func NoteWarmFallbacksTo(t interface{ Cleanup(func()) }, w io.Writer) {
	old := WarmNotes
	reset := func() { badEnvNoted, fallbackNoted, lostNoted = sync.Once{}, sync.Once{}, sync.Once{} }
	WarmNotes = w
	reset()
	t.Cleanup(func() { WarmNotes = old; reset() })
}

// LocalLegKeyExchange is the key exchange c's SSH connection to the warm daemon was
// made with; "" when c dialled the host directly.
func LocalLegKeyExchange(c *Conn) string {
	if !c.warm {
		return ""
	}
	return c.client.Conn.(ssh.AlgorithmsConnMetadata).Algorithms().KeyExchange
}
