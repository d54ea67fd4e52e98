package recipes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cauldron-go/cauldron/shell"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// invalidStep stands where a step could not be built from its config, so that the
// recipe's Validate reports the mistake, naming the step, before anything connects.
type invalidStep struct {
	name string
	err  error
}

func (s invalidStep) String() string  { return s.name }
func (s invalidStep) Validate() error { return s.err }
func (s invalidStep) Check(context.Context, transport.Conn) (*steps.Change, error) {
	return nil, s.err
}

func ptr[T any](v T) *T { return &v }

// RestartAndWait restarts a unit and waits, on the host, until every URL answers with
// a success: a rolling restart must not move on to the next node while this one is
// still starting, or the sessions it should hand over are lost.
type RestartAndWait struct {
	Unit    string
	URLs    []string
	Timeout time.Duration
}

func (r RestartAndWait) String() string { return "restart " + r.Unit + " and wait until it serves" }

// Validate rejects a step without a unit or URLs.
func (r RestartAndWait) Validate() error {
	if r.Unit == "" || len(r.URLs) == 0 {
		return errors.New("RestartAndWait needs a Unit and at least one URL")
	}
	return nil
}

// Check always finds a change: a restart is an action, run when notified.
func (r RestartAndWait) Check(_ context.Context, c transport.Conn) (*steps.Change, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	probe := make([]string, len(r.URLs))
	for i, u := range r.URLs {
		probe[i] = shell.Join("curl", "-fsS", "-o", "/dev/null", "-m", "2", u)
	}
	// A deadline on the host's clock, in seconds: counting loops would let each slow
	// probe (up to curl's 2 s) stretch the timeout threefold.
	script := fmt.Sprintf("%s || exit; end=$(( $(date +%%s) + %d )); while :; do if %s; then exit 0; fi; "+
		"[ \"$(date +%%s)\" -lt \"$end\" ] || break; sleep 1; done; echo %s >&2; exit 1",
		shell.Join("systemctl", "restart", r.Unit), int(timeout.Seconds()), strings.Join(probe, " && "),
		shell.Quote(fmt.Sprintf("%s did not serve %s within %s", r.Unit, strings.Join(r.URLs, " and "), timeout)))
	return &steps.Change{
		Summary: "restart " + r.Unit + ", then wait for " + strings.Join(r.URLs, " and "),
		Apply: func(ctx context.Context) error {
			_, err := transport.Output(ctx, c, script)
			return err
		},
	}, nil
}
