package lab

import (
	"context"
	"fmt"
	"strings"
)

// Pause freezes every process of a host (docker pause), as a hung machine: its
// network stack still accepts connections, nothing answers. A paused host is fine.
func (l *Lab) Pause(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	fmt.Fprintf(l.log, "lab: pausing %s\n", h.Container)
	out, err := dockerOutput(ctx, "pause", h.Container)
	if err != nil && !strings.Contains(out, "already paused") {
		return fmt.Errorf("lab pause %s: %w", name, err)
	}
	return nil
}

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
