package steps

import (
	"context"
	"fmt"

	"github.com/cauldron-go/cauldron/transport"
)

// Converge validates s, checks it on c and applies the change found, if any: the whole
// life of one step, for code that uses steps without a runner (and for tests).
func Converge(ctx context.Context, c transport.Conn, s Step) (changed bool, err error) {
	if err := Validate(s); err != nil {
		return false, err
	}
	ch, err := s.Check(ctx, c)
	if err != nil {
		return false, fmt.Errorf("check %s: %w", s, err)
	}
	if ch == nil {
		return false, nil
	}
	if ch.Apply == nil {
		return false, fmt.Errorf("check %s: found %q but gave nothing to apply", s, ch.Summary)
	}
	if err := ch.Apply(ctx); err != nil {
		return false, fmt.Errorf("apply %s: %w", s, err)
	}
	return true, nil
}
