// Package steps holds cauldron's unit of work, the Step, and the built-in steps.
//
// A step reads the host in Check and, when the host is not as the step wants it,
// returns a Change that says what is off (a one-line summary, and a unified diff for
// file content) and carries the Apply that makes exactly that change true. Check never
// modifies the host; Apply runs only for a change that Check found, so the plan shown
// is the plan applied.
package steps

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cauldron-go/cauldron/transport"
)

// Step is one idempotent piece of configuration.
type Step interface {
	// String names the step in progress lines and reports.
	String() string
	// Check reads the host through c and returns nil when it is converged, or the
	// change that Apply would make. It never modifies the host.
	Check(ctx context.Context, c transport.Conn) (*Change, error)
}

// Change is what Check found off and how to put it right.
type Change struct {
	// Summary is one line: what would change.
	Summary string `json:"summary"`
	// Diff is a unified diff of file content, when the change is to a file.
	Diff string `json:"diff,omitempty"`
	// Apply makes the change true. Runners call it at most once, and only in apply mode.
	Apply func(ctx context.Context) error `json:"-"`
}

// Validator is a step that can tell, before anything connects, that its values are
// wrong (an empty path, a bad user name, a port out of range).
type Validator interface {
	Validate() error
}

// Notifier is a step that asks for handlers to run when it changes something.
type Notifier interface {
	Notifies() []string
}

// Notify wraps s so that a change made by it notifies the named handlers.
func Notify(s Step, handlers ...string) Step {
	return notifying{Step: s, handlers: handlers}
}

type notifying struct {
	Step
	handlers []string
}

func (n notifying) Notifies() []string { return n.handlers }

func (n notifying) Validate() error { return Validate(n.Step) }

// Unwrap returns the wrapped step.
func (n notifying) Unwrap() Step { return n.Step }

// Notified lists the handlers s notifies, through every layer of wrapping (any step
// with an Unwrap() Step method): a step given to Notify twice notifies the handlers
// of both.
func Notified(s Step) []string {
	var names []string
	for s != nil {
		if n, ok := s.(Notifier); ok {
			names = append(names, n.Notifies()...)
		}
		u, ok := s.(interface{ Unwrap() Step })
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	return names
}

// Validate runs s's own validation, if it has one, and names s in the error.
func Validate(s Step) error {
	v, ok := s.(Validator)
	if !ok {
		return nil
	}
	if err := v.Validate(); err != nil {
		return fmt.Errorf("step %q: %w", s.String(), err)
	}
	return nil
}

// Handler is a step that runs once per host, after the recipe's steps, and only when a
// step that notifies it changed something (a restart, say).
type Handler struct {
	Name string
	Step Step
}

// Recipe is an ordered list of steps, built in plain Go, with the handlers they notify.
// Recipes compose: Include adds another recipe's steps and handlers.
type Recipe struct {
	Name     string
	steps    []Step
	handlers []Handler
}

// NewRecipe returns a recipe of the given steps, in order.
func NewRecipe(name string, s ...Step) *Recipe {
	return &Recipe{Name: name, steps: slices.Clone(s)}
}

// Add appends steps.
func (r *Recipe) Add(s ...Step) *Recipe {
	r.steps = append(r.steps, s...)
	return r
}

// Include appends every step of sub, and those of its handlers r does not have yet.
func (r *Recipe) Include(sub *Recipe) *Recipe {
	r.steps = append(r.steps, sub.steps...)
	for _, h := range sub.handlers {
		if !slices.ContainsFunc(r.handlers, func(x Handler) bool { return x.Name == h.Name }) {
			r.handlers = append(r.handlers, h)
		}
	}
	return r
}

// Handle declares a handler by name. Handlers run in the order they were declared.
func (r *Recipe) Handle(name string, s Step) *Recipe {
	r.handlers = append(r.handlers, Handler{Name: name, Step: s})
	return r
}

// Steps returns the recipe's steps in order.
func (r *Recipe) Steps() []Step { return slices.Clone(r.steps) }

// Handlers returns the recipe's handlers in order.
func (r *Recipe) Handlers() []Handler { return slices.Clone(r.handlers) }

// Validate checks every step's values and that every notified handler is declared, so
// that a recipe with a mistake fails before anything connects.
func (r *Recipe) Validate() error {
	var errs []error
	declared := map[string]bool{}
	for _, h := range r.handlers {
		if h.Name == "" || h.Step == nil {
			errs = append(errs, fmt.Errorf("recipe %q: a handler needs a name and a step", r.Name))
			continue
		}
		if declared[h.Name] {
			errs = append(errs, fmt.Errorf("recipe %q: handler %q declared twice", r.Name, h.Name))
		}
		declared[h.Name] = true
		errs = append(errs, Validate(h.Step))
	}
	for _, s := range r.steps {
		if s == nil {
			errs = append(errs, fmt.Errorf("recipe %q: a nil step", r.Name))
			continue
		}
		errs = append(errs, Validate(s))
		for _, name := range Notified(s) {
			if !declared[name] {
				errs = append(errs, fmt.Errorf("step %q notifies handler %q, which recipe %q does not declare", s, name, r.Name))
			}
		}
	}
	return errors.Join(errs...)
}

// Func is a step made of a name and a check function, for one-off custom steps.
type Func struct {
	Name      string
	CheckFunc func(ctx context.Context, c transport.Conn) (*Change, error)
}

func (f Func) String() string { return f.Name }

// Check calls CheckFunc.
func (f Func) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	return f.CheckFunc(ctx, c)
}

// Validate rejects a Func without a name or a check.
func (f Func) Validate() error {
	if f.Name == "" || f.CheckFunc == nil {
		return errors.New("a Func step needs a Name and a CheckFunc")
	}
	return nil
}
