package steps

import (
	"context"
	"errors"
	"fmt"

	"github.com/cauldron-go/cauldron/transport"
)

// Command runs a shell command line, for what no other step does (initdb, a one-off
// migration). Line and Unless are shell lines given as they are: build them with
// shell.Join.
//
// Its guards make it idempotent: when the Creates path exists, or the Unless line exits
// 0, it is converged. With no guard it reports a change at every check, and runs at
// every apply.
type Command struct {
	Name    string
	Line    string
	Creates string
	Unless  string
}

func (c Command) String() string {
	if c.Name != "" {
		return c.Name
	}
	return "command " + c.Line
}

// Validate rejects an empty Line and a relative Creates. A Command without a guard is
// valid but never converged (see the type's comment).
func (c Command) Validate() error {
	var errs []error
	if c.Line == "" {
		errs = append(errs, errors.New("Line: empty"))
	}
	if c.Creates != "" {
		errs = append(errs, checkAbsPath("Creates", c.Creates))
	}
	return errors.Join(errs...)
}

// PathsRead is the Creates path.
func (c Command) PathsRead() []PathRead {
	if c.Creates == "" {
		return nil
	}
	return []PathRead{{Path: c.Creates}}
}

// unlessScript prints done when Unless succeeds.
func (c Command) unlessScript() string {
	return "if ( " + c.Unless + " ) >/dev/null 2>&1 </dev/null; then echo done; exit 0; fi; "
}

// ScriptsRead is the test of Unless as the check runs it when Creates is missing or
// not given (Unless is a test: it must not change the host).
func (c Command) ScriptsRead() []string {
	if c.Unless == "" {
		return nil
	}
	return []string{c.unlessScript() + "echo run"}
}

// Check tests the guards in one command, or none when a prefetch (PrefetchPaths) says
// that the Creates path is there, or that it is not and there is no Unless.
func (c Command) Check(ctx context.Context, conn transport.Conn) (*Change, error) {
	why := "no guard"
	testCreates := c.Creates != ""
	if testCreates {
		if st, ok := prefetched(ctx, conn, c.Creates, false); ok {
			if st.Exists || st.DanglingLink {
				return nil, nil
			}
			testCreates = false
			why = guardReason(c)
		}
	}
	if testCreates || c.Unless != "" {
		var script string
		if testCreates {
			script = "if " + existsTest(c.Creates) + "; then echo done; exit 0; fi; "
		}
		if c.Unless != "" {
			script += c.unlessScript()
		}
		out, err := CheckOutput(ctx, conn, script+"echo run")
		if err != nil {
			return nil, fmt.Errorf("%s: guard: %w", c, err)
		}
		if out == "done\n" {
			return nil, nil
		}
		why = guardReason(c)
	}
	return &Change{
		Summary: fmt.Sprintf("run %s (%s)", c, why),
		Apply: func(ctx context.Context) error {
			if err := runLogged(ctx, conn, c.Line); err != nil {
				return fmt.Errorf("%s: %w", c, err)
			}
			return nil
		},
	}, nil
}

func guardReason(c Command) string {
	switch {
	case c.Creates != "" && c.Unless != "":
		return c.Creates + " is missing and the unless command failed"
	case c.Creates != "":
		return c.Creates + " is missing"
	}
	return "the unless command failed"
}
