package lab

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Pause freezes every process of a host (docker pause), as a hung machine: its
// network stack still accepts connections, nothing answers. A paused host is fine.
func (l *Lab) Pause(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	fmt.Fprintf(l.log, "lab: pausing %s\n", h.Container)
	for attempt := 1; ; attempt++ {
		out, err := dockerOutput(ctx, "pause", h.Container)
		if err == nil || strings.Contains(out, "already paused") {
			return nil
		}
		// runc gives up when the cgroup does not reach FROZEN within its few tries (a
		// process in the middle of a fork or of I/O on a busy machine: "unable to
		// freeze") and thaws it again: the host ran on, so freezing it again is the
		// same fault, only later. Seen in a CI run at a moderate load.
		if !strings.Contains(out+err.Error(), "unable to freeze") || attempt == pauseAttempts || ctx.Err() != nil {
			return fmt.Errorf("lab pause %s: %w", name, err)
		}
		fmt.Fprintf(l.log, "lab: %s did not freeze (attempt %d), trying again\n", h.Container, attempt)
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab pause %s: %w", name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// pauseAttempts is how many times Pause asks docker to freeze a host that runc could
// not freeze.
const pauseAttempts = 10

// Unpause lets a paused host run again. A host that is not paused is fine.
func (l *Lab) Unpause(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	fmt.Fprintf(l.log, "lab: unpausing %s\n", h.Container)
	out, err := dockerOutput(ctx, "unpause", h.Container)
	if err != nil && !strings.Contains(out, "is not paused") {
		return fmt.Errorf("lab unpause %s: %w", name, err)
	}
	return nil
}
