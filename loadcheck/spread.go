package loadcheck

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Spread opens n new sessions on the site, one after another, each from a new user,
// and counts them by the node that answered. Every one must answer with count 1.
func Spread(ctx context.Context, s Site, n int) (map[string]int, error) {
	if n < 1 || n > 100000 {
		return nil, fmt.Errorf("spread: %d sessions: want 1 to 100000", n)
	}
	o := Options{Sites: []Site{s}, Users: 1, Duration: MaxDuration}
	if err := o.fill(); err != nil {
		return nil, err
	}
	seen := map[string]int{}
	for range n {
		u, err := newUser(0, s, o)
		if err != nil {
			return nil, err
		}
		o := u.ask(ctx)
		u.client.CloseIdleConnections()
		if o.f != nil {
			return seen, fmt.Errorf("spread on %s: %s: %s", s.URL, o.f.Kind, o.f.Detail)
		}
		if o.b != nil {
			return seen, fmt.Errorf("spread on %s: a new session began at count %d on %s", s.URL, o.b.After, o.node)
		}
		seen[o.node]++
	}
	return seen, nil
}

// Even checks a spread of new sessions over the nodes: with two nodes each must have
// between 40% and 60%; with more, each within 10 points of a fair share. Every node
// must be in the spread.
func Even(seen map[string]int, nodes []string) error {
	total := 0
	for _, c := range seen {
		total += c
	}
	if total == 0 || len(nodes) == 0 {
		return fmt.Errorf("spread: no sessions or no nodes")
	}
	fair := 100 / float64(len(nodes))
	var bad []string
	for _, node := range nodes {
		pct := 100 * float64(seen[node]) / float64(total)
		if math.Abs(pct-fair) > 10 {
			bad = append(bad, fmt.Sprintf("%s has %.0f%%", node, pct))
		}
	}
	for node := range seen {
		if !slices.Contains(nodes, node) {
			bad = append(bad, fmt.Sprintf("%s is not one of %v", node, nodes))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return fmt.Errorf("spread of %d new sessions is uneven (fair share %.0f%% ± 10): %s (all: %v)", total, fair, strings.Join(bad, ", "), seen)
	}
	return nil
}
