package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// Move renames From to To on the host (an unpacked apache-tomcat-10.1.x to /opt/tomcat).
// It is done when To exists and From does not. When both exist it stops rather than
// guess which one is wanted.
type Move struct {
	From string
	To   string
}

func (m Move) String() string { return "move " + m.From + " to " + m.To }

// Validate rejects relative paths and a move onto itself.
func (m Move) Validate() error {
	err := errors.Join(checkAbsPath("From", m.From), checkAbsPath("To", m.To))
	if err == nil && m.From == m.To {
		err = errors.New("To: same path as From")
	}
	return err
}

// Check tests both paths in one command.
func (m Move) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	out, err := transport.Output(ctx, c, "a=0; b=0; "+existsTest(m.From)+" && a=1; "+existsTest(m.To)+" && b=1; echo $a$b")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m, err)
	}
	switch strings.TrimSpace(out) {
	case "01":
		return nil, nil
	case "11":
		return nil, fmt.Errorf("%s: both exist, refusing to guess which one is wanted", m)
	}
	// "00" may be fine in a plan: an earlier step (an Untar) makes From; Apply says so.
	return &Change{
		Summary: "move " + m.From + " to " + m.To,
		Apply: func(ctx context.Context) error {
			if _, err := transport.Output(ctx, c, shell.Join("mv", "-T", "--", m.From, m.To)); err != nil {
				return fmt.Errorf("%s: %w", m, err)
			}
			return nil
		},
	}, nil
}
