package lab

import (
	"bytes"
	"fmt"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// The lab inventory comes in two variants that differ only in how each host is reached:
// by docker exec, or over SSH to its port on 127.0.0.1 with the lab's key and strict
// host keys.

// inventoryHeader opens both files.
const inventoryHeader = "# The cauldron lab's inventory, written by lab.Up; it is rewritten when the lab changes.\n"

func (l *Lab) writeInventories() error {
	for _, v := range []struct {
		path      string
		transport string
	}{{l.DockerInventory, "docker"}, {l.SSHInventory, "ssh"}} {
		data, err := l.inventory(v.transport)
		if err != nil {
			return fmt.Errorf("lab inventory %s: %w", filepath.Base(v.path), err)
		}
		wrote, err := writeFileIfChanged(v.path, data, 0o600)
		if err != nil {
			return fmt.Errorf("lab inventory: %w", err)
		}
		if wrote {
			fmt.Fprintf(l.log, "lab: wrote %s\n", v.path)
		}
	}
	return nil
}

// inventory returns the inventory file for transport "docker" or "ssh".
func (l *Lab) inventory(transport string) ([]byte, error) {
	if l.Artifacts == nil {
		return nil, fmt.Errorf("no artifacts")
	}
	secret := func(name string) mapping {
		return mapping{{"from_file", secretsDir + "/" + name}}
	}
	apps := mapping{}
	for _, name := range AppNames {
		apps = append(apps, entry{name, l.Artifacts.Apps[name]})
	}
	vars := mapping{
		{"web_server", "apache"},
		{"tomcat_user", "gaia3d"},
		{"tomcat_password_hash", secret(secretTomcatPasswordHash)},
		{"ajp_secret", secret(secretAJP)},
		{"haproxy_stats_user", "admin"},
		{"haproxy_stats_password", secret(secretHAProxyStatsPassword)},
		{"db_name", "mago3d"},
		{"db_user", "mago3d"},
		{"db_password", secret(secretDBPassword)},
		{"artifacts", mapping{
			{"tomcat", l.Artifacts.Tomcat},
			{"jdk", l.Artifacts.JDK},
			{"apps", apps},
		}},
		{"haproxy_bind", "*"},
	}

	groups := mapping{}
	for _, g := range []string{"db", "tomcat", "web", "haproxy"} {
		var members []string
		for _, h := range l.Hosts {
			for _, hg := range h.Groups {
				if hg == g {
					members = append(members, h.Name)
				}
			}
		}
		groups = append(groups, entry{g, mapping{{"hosts", flow(members)}}})
	}

	hosts := mapping{}
	for _, h := range l.Hosts {
		host := mapping{{"address", h.Address}, {"transport", transport}}
		switch transport {
		case "docker":
			host = append(host, entry{"docker", mapping{{"container", h.Container}}})
		case "ssh":
			host = append(host, entry{"ssh", mapping{
				{"host", "127.0.0.1"},
				{"port", h.SSHPort},
				{"user", "root"},
				{"identity_file", l.KeyFile},
				{"known_hosts", l.KnownHostsFile},
			}})
		default:
			return nil, fmt.Errorf("unknown transport %q", transport)
		}
		if h.Node > 0 {
			host = append(host, entry{"vars", mapping{{"node", h.Node}}})
		}
		hosts = append(hosts, entry{h.Name, host})
	}

	var buf bytes.Buffer
	buf.WriteString(inventoryHeader)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(mapping{{"vars", vars}, {"groups", groups}, {"hosts", hosts}}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// mapping is a YAML mapping that keeps its keys in the order written.
type mapping []entry

type entry struct {
	key   string
	value any
}

func (m mapping) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, e := range m {
		var v yaml.Node
		if err := v.Encode(e.value); err != nil {
			return nil, fmt.Errorf("%s: %w", e.key, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: e.key}, &v)
	}
	// Small mappings of scalars read best on one line, as {from_file: ...}.
	if len(m) == 1 {
		if _, scalar := m[0].value.(string); scalar {
			n.Style = yaml.FlowStyle
		}
	}
	return n, nil
}

// flow is a list written on one line: [web1, web2].
type flow []string

func (f flow) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range f {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s})
	}
	return n, nil
}
