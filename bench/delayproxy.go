package bench

import (
	"net"
	"sync"
	"time"
)

// delayProxy forwards TCP connections from 127.0.0.1 to a target, holding every
// chunk of bytes for a fixed time in each direction: a slow network in user space,
// for machines whose kernel has no netem. A round trip through it takes 2×oneWay more.
// It does not drop anything: TCP would hide a loss behind a retransmission anyway, and
// that cost cannot be faked faithfully above TCP.
type delayProxy struct {
	ln     net.Listener
	target string
	oneWay time.Duration

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startDelayProxy(target string, oneWay time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, target: target, oneWay: oneWay, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Port is where the proxy listens on 127.0.0.1.
func (p *delayProxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Close stops listening, cuts every connection and waits for its goroutines.
func (p *delayProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *delayProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client)
		p.track(server)
		p.wg.Add(2)
		go p.pipe(server, client)
		go p.pipe(client, server)
	}
}

type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each chunk written oneWay after it was read, in order, and
// without holding back what comes after it: the delay is latency, not a bandwidth cap.
func (p *delayProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	queue := make(chan chunk, 4096)
	go func() {
		defer close(queue)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				queue <- chunk{data: buf[:n], due: time.Now().Add(p.oneWay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range queue {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	// Pass the end on: a half-closed connection stays half-closed.
	if t, ok := dst.(*net.TCPConn); ok {
		_ = t.CloseWrite()
	} else {
		dst.Close()
	}
	for range queue { // drain, so that the reader ends
	}
}
