package runner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
)

// A plan changes nothing, so there is no order to keep between the plays of different
// hosts: planConcurrently runs each host through its plays, in play order, at the same
// time as the other hosts (Parallel of them at once), instead of play after play as
// apply does (a database before the web nodes that use it). A play's Serial, which
// exists to keep a cluster serving while it changes, does not hold a plan back.
//
// The output stays what it would be played in order, the same from run to run: each
// host's lines of a play are kept until the host is through the play, and written after
// the play's header and the hosts listed before it in the play.
func (r *run) planConcurrently(ctx context.Context, plans []playPlan) {
	type block struct {
		done chan struct{}
		text string // written before done is closed
	}
	var blocks []*block
	// Per host, the play plans it is in and its block in each, in play order.
	type leg struct {
		p  playPlan
		hp hostPlan
		b  *block
	}
	legs := map[*hostState][]leg{}
	for _, p := range plans {
		header := &block{done: make(chan struct{}), text: r.mask.String(playHeader(p))}
		close(header.done)
		blocks = append(blocks, header)
		for _, hp := range p.hosts {
			b := &block{done: make(chan struct{})}
			blocks = append(blocks, b)
			legs[hp.state] = append(legs[hp.state], leg{p, hp, b})
		}
	}

	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for _, b := range blocks {
			<-b.done
			r.out.writeMasked(b.text)
		}
	}()

	slots := make(chan struct{}, r.o.Parallel)
	var wg sync.WaitGroup
	for _, st := range r.order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			for _, l := range legs[st] {
				var buf bytes.Buffer
				st.out = r.out.to(&buf)
				r.checkMaxFail(l.p)
				r.runHost(ctx, l.p, l.hp)
				st.out = r.out
				l.b.text = buf.String()
				close(l.b.done)
			}
		}()
	}
	wg.Wait()
	<-printed
}

func playHeader(p playPlan) string {
	names := make([]string, len(p.hosts))
	for i, hp := range p.hosts {
		names[i] = hp.state.host.Name
	}
	return fmt.Sprintf("\nPLAY %s  [%s]\n", p.name, strings.Join(names, " "))
}

// to is a progress like p that writes to w: a block of lines kept for later.
func (p *progress) to(w io.Writer) *progress {
	return &progress{w: w, mask: p.mask, color: p.color, hostWidth: p.hostWidth}
}

// writeMasked writes s, already masked, as one write.
func (p *progress) writeMasked(s string) {
	if s == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.w, s)
}
