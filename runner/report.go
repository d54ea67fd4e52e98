package runner

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/cauldron-go/cauldron/transport"
)

// Mode says whether a run only checks (Plan) or also makes the changes (Apply).
type Mode int

const (
	// Plan checks every step and shows what would change, with diffs; it changes nothing
	// and runs no handler.
	Plan Mode = iota
	// Apply checks every step and applies the changes it finds.
	Apply
)

func (m Mode) String() string {
	switch m {
	case Plan:
		return "plan"
	case Apply:
		return "apply"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// MarshalText writes the mode as "plan" or "apply" in JSON reports.
func (m Mode) MarshalText() ([]byte, error) {
	if m != Plan && m != Apply {
		return nil, fmt.Errorf("runner: unknown mode %d", int(m))
	}
	return []byte(m.String()), nil
}

// Status is what happened to one step or handler on one host.
type Status string

const (
	StatusOK          Status = "ok"           // the host was already as the step wants it
	StatusChanged     Status = "changed"      // the step changed the host
	StatusWouldChange Status = "would change" // plan mode: the step would change the host
	StatusFailed      Status = "failed"       // check or apply returned an error
	StatusSkipped     Status = "skipped"      // the step did not run; Reason says why
	StatusWouldRun    Status = "would run"    // plan mode: a notified handler that apply mode would run
	StatusPending     Status = "pending"      // a notified handler that did not run because the run stopped
)

// Report is everything a run did, host by host. Every secret given in Options.Secrets
// is already masked in it.
type Report struct {
	Mode  Mode      `json:"mode"`
	Start time.Time `json:"start"`
	// Duration is the wall time of the whole run.
	Duration   time.Duration `json:"-"`
	DurationMS int64         `json:"duration_ms"`
	// Cancelled is set when the caller's context ended the run early.
	Cancelled bool `json:"cancelled,omitempty"`
	// Stopped says why the run stopped before its end (fail-fast, max fail percent).
	Stopped string `json:"stopped,omitempty"`
	// Hosts in the order they first appear in the plays.
	Hosts []*HostReport `json:"hosts"`
}

// HostReport is what happened on one host across every play.
type HostReport struct {
	Host   string `json:"host"`
	Counts Counts `json:"counts"`
	// Failed is set when a step or handler failed on the host, or it could not be reached.
	Failed bool `json:"failed"`
	// Unreachable is set when dialing the host failed; Error says why.
	Unreachable bool   `json:"unreachable,omitempty"`
	Error       string `json:"error,omitempty"`
	// Warnings are problems that did not fail the host (closing its connection, say).
	Warnings []string `json:"warnings,omitempty"`
	// Traffic is how many commands the run sent the host and in how many round trips
	// (transport.Traffic defines both), across every play; nil when the transport does
	// not count.
	Traffic *transport.TrafficCounts `json:"traffic,omitempty"`
	// ConnectMS is how long connecting to the host took (the dial, SSH's handshake,
	// docker's check that the container answers): time the round trips do not count.
	ConnectMS int64           `json:"connect_ms,omitempty"`
	Steps     []StepResult    `json:"steps"`
	Handlers  []HandlerResult `json:"handlers,omitempty"`
}

// Counts are the recap numbers of one host. Handlers that ran are counted with the
// steps; in plan mode a step that would change counts as changed.
type Counts struct {
	OK      int `json:"ok"`
	Changed int `json:"changed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	// Unreachable is 1 when the host could not be connected to: it failed, although
	// no step of it did.
	Unreachable int `json:"unreachable"`
}

// StepResult is one step on one host.
type StepResult struct {
	Play    string `json:"play"`
	Step    string `json:"step"`
	Status  Status `json:"status"`
	Summary string `json:"summary,omitempty"`
	Diff    string `json:"diff,omitempty"`
	Error   string `json:"error,omitempty"`
	// Reason says why a step was skipped.
	Reason string `json:"reason,omitempty"`
	// AfterChange is set in a plan on a step that would change (or failed its check)
	// after an earlier step of the same host would change: it was checked against the
	// host as it is now, without that earlier change, so its summary and diff may not
	// be what apply finds (apply checks again, after the earlier change is made).
	AfterChange bool `json:"after_change,omitempty"`
	// StartMS is when the step began (its check, which may run ahead of the steps
	// before it), in milliseconds since the run's Start; a step that did not run has
	// the time it was skipped.
	StartMS   int64 `json:"start_ms"`
	ElapsedMS int64 `json:"elapsed_ms"`
}

// HandlerResult is one notified handler on one host.
type HandlerResult struct {
	Play    string `json:"play"`
	Handler string `json:"handler"`
	Step    string `json:"step"`
	Status  Status `json:"status"`
	// NotifiedBy names the steps whose change notified the handler.
	NotifiedBy []string `json:"notified_by"`
	// AfterFailure is set when the handler ran (or would run) although a step of the
	// same play failed on the host: what was changed before the failure still needs it.
	AfterFailure bool `json:"after_failure,omitempty"`
	// FromEarlierRun is set when an earlier run changed the host for this handler and
	// stopped before the handler ran: the host keeps a mark of it until it runs.
	FromEarlierRun bool   `json:"from_earlier_run,omitempty"`
	Summary        string `json:"summary,omitempty"`
	Error          string `json:"error,omitempty"`
	Reason         string `json:"reason,omitempty"`
	// StartMS is when the handler began (or was found owed, when it did not run), in
	// milliseconds since the run's Start.
	StartMS   int64 `json:"start_ms"`
	ElapsedMS int64 `json:"elapsed_ms"`
}

// Failed reports whether any host failed.
func (r *Report) Failed() bool {
	for _, h := range r.Hosts {
		if h.Failed {
			return true
		}
	}
	return false
}

// Changed is the number of steps and handlers that changed something (in plan mode:
// would change something) on every host together.
func (r *Report) Changed() int {
	n := 0
	for _, h := range r.Hosts {
		n += h.Counts.Changed
	}
	return n
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write run report: %w", err)
	}
	return nil
}

func (c *Counts) add(s Status) {
	switch s {
	case StatusOK:
		c.OK++
	case StatusChanged, StatusWouldChange:
		c.Changed++
	case StatusFailed:
		c.Failed++
	case StatusSkipped:
		c.Skipped++
	}
}
