package sshconn

import (
	"io"
	"sync"
)

// CutConnectionHalfwayThroughUploads makes every later upload of c close c's TCP
// connection once half of the content has been read: a network cut mid-transfer.
func CutConnectionHalfwayThroughUploads(c *Conn) {
	c.uploadWrap = func(r io.Reader, size int) io.Reader {
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
