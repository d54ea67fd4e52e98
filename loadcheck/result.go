package loadcheck

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Result is what a load check saw.
type Result struct {
	Started  time.Time
	Duration time.Duration
	Users    int
	// Requests counts every request made, failed ones included.
	Requests int
	// FailedTotal is the number of failed requests; Failed splits it by kind
	// ("timeout", "connection", "bad answer", "cookie", "status 503"...).
	FailedTotal int
	Failed      map[string]int
	// Failures are the failed requests in the order they happened (the first 10,000).
	Failures []Failure
	// Broken counts answers whose count was not the one before plus one (a lost or
	// reordered session update); Lost counts sessions that began again at 1.
	Broken int
	Lost   int
	// Breaks are the broken and lost counts in the order they happened (the first 10,000).
	Breaks []Break
	// Late counts requests that got no answer (a timeout, a 504) and were done all the
	// same, seen only after later requests were answered: a host that hung does what
	// it held when it wakes. Not a broken count (the request was done once), but an
	// answer the user never got.
	Late int
	// Replayed counts answers the app gave to a request it had counted already (the same
	// Idempotency-Key): a balancer passed the request to a node again, and the app did
	// not count it twice.
	Replayed int
	// Nodes counts the good answers by the node that gave them (user1, admin2...).
	Nodes map[string]int
	// Sessions counts the sessions begun (one per user, and one more per lost session).
	Sessions int
	// P50, P99 and Max are the latencies of the good answers.
	P50, P99, Max time.Duration
}

// OK tells that no request failed and no count broke or was lost.
func (r *Result) OK() bool { return r.FailedTotal == 0 && r.Broken == 0 && r.Lost == 0 }

// Err says what went wrong, nil when OK.
func (r *Result) Err() error {
	if r.OK() {
		return nil
	}
	return fmt.Errorf("load check: %d of %d requests failed (%s), %d counts broken, %d sessions lost",
		r.FailedTotal, r.Requests, r.kinds(), r.Broken, r.Lost)
}

// FailuresBetween counts the failed requests from..to of the given methods (all methods
// when none are given).
func (r *Result) FailuresBetween(from, to time.Time, methods ...string) int {
	n := 0
	for _, f := range r.Failures {
		if !f.At.Before(from) && f.At.Before(to) && (len(methods) == 0 || slices.Contains(methods, f.Method)) {
			n++
		}
	}
	return n
}

// Share is each node's percentage of the good answers.
func (r *Result) Share() map[string]float64 {
	total := 0
	for _, n := range r.Nodes {
		total += n
	}
	out := map[string]float64{}
	for node, n := range r.Nodes {
		out[node] = 100 * float64(n) / float64(total)
	}
	return out
}

// Line is the numbers on one line, as the live line and the summary print them.
func (r *Result) Line() string {
	return fmt.Sprintf("requests=%d failed=%d broken=%d lost=%d p50=%s p99=%s nodes=%s",
		r.Requests, r.FailedTotal, r.Broken, r.Lost, ms(r.P50), ms(r.P99), r.shares())
}

// String is the summary: the numbers, the failures by kind, and the first few
// failures and breaks.
func (r *Result) String() string {
	var b strings.Builder
	rate := 0.0
	if r.Duration > 0 {
		rate = float64(r.Requests) / r.Duration.Seconds()
	}
	fmt.Fprintf(&b, "load check: %d users, %s, %d requests (%.0f/s), %d sessions\n",
		r.Users, r.Duration.Round(100*time.Millisecond), r.Requests, rate, r.Sessions)
	fmt.Fprintf(&b, "  failed  %d%s\n", r.FailedTotal, parens(r.kinds()))
	fmt.Fprintf(&b, "  broken  %d counts, %d sessions lost, %d unanswered requests done late\n", r.Broken, r.Lost, r.Late)
	if r.Replayed > 0 {
		fmt.Fprintf(&b, "  replayed %d requests a balancer passed again, answered without counting twice\n", r.Replayed)
	}
	fmt.Fprintf(&b, "  latency p50 %s, p99 %s, max %s\n", ms(r.P50), ms(r.P99), ms(r.Max))
	fmt.Fprintf(&b, "  nodes   %s\n", r.shares())
	for i, f := range r.Failures {
		if i == 5 {
			fmt.Fprintf(&b, "  ... %d more failures\n", r.FailedTotal-5)
			break
		}
		fmt.Fprintf(&b, "  failure at +%s: %s user %d %s: %s: %s\n", ms(f.At.Sub(r.Started)), f.Site, f.User, f.Method, f.Kind, f.Detail)
	}
	for i, k := range r.Breaks {
		if i == 5 {
			fmt.Fprintf(&b, "  ... %d more broken or lost counts\n", r.Broken+r.Lost-5)
			break
		}
		what := "broken"
		if k.Lost {
			what = "lost"
		}
		fmt.Fprintf(&b, "  %s\n", k.describe(what, r.Started))
	}
	return b.String()
}

func (r *Result) kinds() string {
	keys := make([]string, 0, len(r.Failed))
	for k := range r.Failed {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, r.Failed[k])
	}
	return strings.Join(parts, ", ")
}

func (r *Result) shares() string {
	share := r.Share()
	keys := make([]string, 0, len(share))
	for k := range share {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%.0f%%", k, share[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func parens(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// ms prints a duration in milliseconds with one decimal.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// describe is one break on one line: when, whose session, which node before and after.
func (k Break) describe(what string, started time.Time) string {
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return "+" + ms(t.Sub(started))
	}
	return fmt.Sprintf("%s at %s: %s user %d: count %d after %d (%d unanswered between, %d unanswered not yet seen done, last seen done late %s); session %s on %s (began %s, last answer %s) -> %s on %s",
		what, at(k.At), k.Site, k.User, k.After, k.Before, k.Unanswered, k.Pending, at(k.LateAt),
		orDash(k.SessionBefore), orDash(k.NodeBefore), at(k.Began), at(k.Previous), orDash(k.Session), orDash(k.Node))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
