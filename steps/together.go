package steps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cauldron-go/cauldron/transport"
)

// Together is one step made of steps that do not depend on one another: their checks
// run at the same time, and so do their applies, over the host's one connection. Two
// big transfers (a JDK's and a Tomcat's tarball) then travel side by side, and a
// short step runs while a long one streams, instead of each waiting for the one
// before. Give it only steps whose checks and applies would be the same in any order:
// none may build on another's change (an Untar and the File written into its tree
// must stay one after the other, as separate steps).
//
// It changes something when any of its steps does; its summary and diff are theirs,
// one after another in the order given. An apply runs every changed step to its end
// even when another fails, and returns all their errors: each step's change lands
// whole or not at all as it would alone. A Together that changed notifies the
// handlers of every step in it (Notify), the unchanged ones' too. It declares what
// its steps read (PathReader, UnitReader, PackageReader), so a runner reads them with
// the rest of the host's checks.
//
//	steps.Together(
//		steps.Untar{Upload: &jdk, Dest: "/home/gaia3d/tools/jdk-17", SendPlain: true},
//		steps.Untar{Upload: &tomcat, Dest: "/home/gaia3d/tools/mago3d-tomcat", SendPlain: true},
//	)
func Together(ss ...Step) Step { return together(slices.Clone(ss)) }

type together []Step

func (t together) String() string {
	names := make([]string, len(t))
	for i, s := range t {
		names[i] = "nil"
		if s != nil {
			names[i] = s.String()
		}
	}
	return "together: " + strings.Join(names, "; ")
}

// Validate rejects an empty Together and any step's own errors.
func (t together) Validate() error {
	if len(t) == 0 {
		return errors.New("Together: no steps")
	}
	var errs []error
	for i, s := range t {
		if s == nil {
			errs = append(errs, fmt.Errorf("Together: step %d is nil", i+1))
			continue
		}
		errs = append(errs, Validate(s))
	}
	return errors.Join(errs...)
}

// Check checks every step at once.
func (t together) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	changes := make([]*Change, len(t))
	errs := make([]error, len(t))
	var wg sync.WaitGroup
	for i, s := range t {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s == nil {
				errs[i] = fmt.Errorf("Together: step %d is nil", i+1)
				return
			}
			changes[i], errs[i] = s.Check(ctx, c)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var summaries, diffs []string
	var applies []func(context.Context) error
	for _, ch := range changes {
		if ch == nil {
			continue
		}
		summaries = append(summaries, ch.Summary)
		if ch.Diff != "" {
			diffs = append(diffs, ch.Diff)
		}
		applies = append(applies, ch.Apply)
	}
	if len(summaries) == 0 {
		return nil, nil
	}
	return &Change{
		Summary: strings.Join(summaries, "; "),
		Diff:    strings.Join(diffs, ""),
		Apply: func(ctx context.Context) error {
			errs := make([]error, len(applies))
			var wg sync.WaitGroup
			for i, apply := range applies {
				if apply == nil {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = apply(ctx)
				}()
			}
			wg.Wait()
			return errors.Join(errs...)
		},
	}, nil
}

// Notifies is every handler its steps notify.
func (t together) Notifies() []string {
	var names []string
	for _, s := range t {
		for _, n := range Notified(s) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// PathsRead is every path its steps declare they read.
func (t together) PathsRead() []PathRead { return readsOfAll(t).paths }

// UnitsRead is every unit its steps declare they read.
func (t together) UnitsRead() []string { return readsOfAll(t).units }

// PackagesRead is every package its steps declare they read.
func (t together) PackagesRead() []string { return readsOfAll(t).packages }

// ScriptsRead is every read-only line its steps declare their checks run.
func (t together) ScriptsRead() []string { return readsOfAll(t).scripts }

// JoinedReads is every joined read its steps declare their checks make.
func (t together) JoinedReads() []JoinedRead { return readsOfAll(t).joined }
