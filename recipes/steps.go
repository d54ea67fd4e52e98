package recipes

import (
	"context"
	"io/fs"

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

func fsMode(m uint32) fs.FileMode { return fs.FileMode(m) }

func ptr[T any](v T) *T { return &v }
