package inventory

import (
	"fmt"
	"sort"
)

// Host returns the host called name.
func (inv *Inventory) Host(name string) (*Host, bool) {
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return nil, false
}

// Group returns the group called name.
func (inv *Inventory) Group(name string) (*Group, bool) {
	for _, g := range inv.Groups {
		if g.Name == name {
			return g, true
		}
	}
	return nil, false
}

// GroupHosts returns the hosts of the group called name, in the order the group lists
// them. "all" is every host, in file order, unless the file defines a group of that name.
func (inv *Inventory) GroupHosts(name string) ([]*Host, error) {
	g, ok := inv.Group(name)
	if !ok {
		if name == "all" {
			return append([]*Host(nil), inv.Hosts...), nil
		}
		var names []string
		for _, g := range inv.Groups {
			names = append(names, g.Name)
		}
		return nil, fmt.Errorf("%s: unknown group %q%s", inv.File, name, suggest(name, names))
	}
	hosts := make([]*Host, 0, len(g.Hosts))
	for _, hn := range g.Hosts {
		h, ok := inv.Host(hn)
		if !ok {
			// Only an Inventory built or edited by hand gets here: Parse checks group members.
			return nil, fmt.Errorf("%s: group %q: unknown host %q", inv.File, name, hn)
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// Secrets returns every secret value the inventory resolved (from_file, from_env, become
// passwords), each once and longest first, so that masking them in output replaces a
// secret before any shorter one inside it. It never holds an empty string: Parse
// rejects empty secrets.
func (inv *Inventory) Secrets() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range inv.secrets {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
