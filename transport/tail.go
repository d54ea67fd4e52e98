package transport

import "sync"

// TailBuffer keeps the last Max bytes written to it (4096 when Max is 0): the end of a
// command's standard error, which is where it says what went wrong, without holding
// all of it. It is safe for concurrent use.
type TailBuffer struct {
	Max int

	mu  sync.Mutex
	buf []byte
	cut bool
}

func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	limit := t.Max
	if limit <= 0 {
		limit = 4096
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > limit {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-limit:]...)
		t.cut = true
	}
	return len(p), nil
}

// String is what was kept, after "…" when earlier bytes were dropped.
func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cut {
		return "…" + string(t.buf)
	}
	return string(t.buf)
}
