// Package recipes builds the seed's cluster out of steps: a PostgreSQL host, Tomcat nodes
// with session clustering, Apache with mod_jk (or Nginx) in front of them, and HAProxy in
// front of those. Each recipe is an ordinary function from a typed config to a
// *steps.Recipe, usable on its own from Go; Cluster puts them together from an inventory.
package recipes

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
)

// Vars are the inventory variables the cluster recipes read. Node, Heap, HAProxyBind
// and HAProxyExtra are each host's own (host over group over global); every other one
// is cluster-wide: it may be set globally, on a group or on hosts, but every host of the
// cluster that sees it must see the same value. A variable no recipe reads is refused
// (see DeclareVars), and so is a bad value, at its file, line and key, before anything
// connects. Secrets (SecretVars) come from files or the environment through the
// inventory's from_file / from_env, never from the inventory text.
type Vars struct {
	// WebServer is "apache" (mod_jk, the default) or "nginx".
	WebServer string `yaml:"web_server"`

	TomcatUser         string `yaml:"tomcat_user"`
	TomcatPasswordHash string `yaml:"tomcat_password_hash"`
	// Heap is the JVM's heap, for both -Xms and -Xmx ("512m").
	Heap string `yaml:"heap"`
	// Membership is how the Tomcat nodes find each other: "static" (the default: every
	// node of the inventory listed, pinged over TCP), "multicast" (the runbook's; see
	// configs.Multicast for why it is not the default) or "none". With static, a node
	// added to the inventory changes every node's server.xml: each one is restarted
	// through the drained restart, one at a time, and the new node, which lists them
	// all, is a member of the others' clusters from its start (they answer its start
	// message) even before they restart. Changing between multicast and static on a
	// running cluster cannot be rolled: the first node restarted finds no member that
	// speaks its membership, and the rollout stops at the joined gate; stop every
	// Tomcat and deploy instead.
	Membership string `yaml:"session_membership"`
	// Replication is when a session change goes to the other nodes: "written" (the
	// default: on the request's thread, written to every other node's connection before
	// the answer, not acknowledged), "async" (right after the answer; the runbook's) or
	// "sync" (before the answer, acknowledged); see configs.Replication. Written is the
	// default because it alone met issue 7's bar under load for a node killed, frozen or
	// cut off (async lost the last answered update about one fault run in four; sync
	// failed the healthy node's requests while it waited for a hung one), at the latency
	// of async. configs.Cluster's zero value stays the runbook's async.
	Replication string `yaml:"session_replication"`
	// Node numbers a Tomcat host from 1: its jvmRoutes are admin<Node> and user<Node>.
	Node      int    `yaml:"node"`
	AJPSecret string `yaml:"ajp_secret"`

	HAProxyStatsUser     string `yaml:"haproxy_stats_user"`
	HAProxyStatsPassword string `yaml:"haproxy_stats_password"`
	// HAProxyBind is the address HAProxy's frontends bind ("*" or empty: every address).
	HAProxyBind string `yaml:"haproxy_bind"`
	// HAProxyExtra are raw lines added to haproxy.cfg's defaults section, as they are.
	HAProxyExtra []string `yaml:"haproxy_extra"`

	DBName     string `yaml:"db_name"`
	DBUser     string `yaml:"db_user"`
	DBPassword string `yaml:"db_password"`
	DBPort     int    `yaml:"db_port"`
	// PostgresVersion is the major version Debian's postgresql package installs.
	PostgresVersion string `yaml:"postgres_version"`

	// ClusterCheckPath is the apps' page that says whether a node has joined its session
	// cluster and received the sessions (JSON: members, stateTransferred), which a
	// drained restart waits for before it puts the node back; "none" skips that gate.
	ClusterCheckPath string `yaml:"cluster_check_path"`

	// Artifacts are the seed's setup files, on the control machine.
	Artifacts Artifacts `yaml:"artifacts"`
}

// Artifacts are the files the Tomcat nodes are set up from.
type Artifacts struct {
	// Tomcat is a Tomcat tarball in the upstream layout (one top folder).
	Tomcat string `yaml:"tomcat"`
	// JDK is a JDK tarball (one top folder, named like jdk-17...).
	JDK string `yaml:"jdk"`
	// Apps maps each app's folder name (mago3d-admin, mago3d-user) to its WAR.
	Apps map[string]string `yaml:"apps"`
}

// defaults fills what the inventory left out with the runbook's values.
func (v *Vars) defaults() {
	set := func(p *string, def string) {
		if *p == "" {
			*p = def
		}
	}
	set(&v.WebServer, "apache")
	set(&v.TomcatUser, "gaia3d")
	set(&v.Heap, "512m")
	set(&v.Membership, "static")
	set(&v.HAProxyStatsUser, "admin")
	set(&v.DBName, "mago3d")
	set(&v.DBUser, "mago3d")
	set(&v.PostgresVersion, "15")
	set(&v.ClusterCheckPath, "/cluster.json")
	if v.ClusterCheckPath == "none" {
		v.ClusterCheckPath = ""
	}
	if v.DBPort == 0 {
		v.DBPort = 5432
	}
	if v.HAProxyBind == "*" {
		v.HAProxyBind = ""
	}
}

// HostVars decodes h's variables as h sees them, with defaults filled in; it does not
// check them. The cluster's recipes use Topology.Vars, which does.
func HostVars(h *inventory.Host) (Vars, error) {
	var v Vars
	if err := h.Vars.Decode(&v); err != nil {
		return v, fmt.Errorf("host %s: %w", h.Name, err)
	}
	v.defaults()
	return v, nil
}

// The inventory groups the cluster is made of.
const (
	GroupDB      = "db"
	GroupTomcat  = "tomcat"
	GroupWeb     = "web"
	GroupHAProxy = "haproxy"
)

// Topology is the cluster as an inventory describes it.
type Topology struct {
	DB       *inventory.Host
	Tomcats  []*inventory.Host
	Webs     []*inventory.Host
	HAProxys []*inventory.Host
	// Cluster is what every config file is built from: one node per Tomcat host.
	Cluster configs.Cluster
	// Global are the cluster-wide values, read from every host's view, checked, and
	// with defaults filled in.
	Global Vars
	// hostVars are each cluster host's variables: Global with its own per-host ones.
	hostVars map[string]Vars
}

// NewTopology reads the cluster's shape from inv: its db, tomcat, web and haproxy
// groups, and each Tomcat host's node number. Nothing here assumes two nodes.
func NewTopology(inv *inventory.Inventory) (*Topology, error) {
	var errs []error
	group := func(name string) []*inventory.Host {
		hs, err := inv.GroupHosts(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: the cluster needs a group %q: %w", inv.File, name, err))
		} else if len(hs) == 0 {
			errs = append(errs, fmt.Errorf("%s: group %q has no hosts", inv.File, name))
		}
		return hs
	}
	t := &Topology{Tomcats: group(GroupTomcat), Webs: group(GroupWeb), HAProxys: group(GroupHAProxy)}
	if dbs := group(GroupDB); len(dbs) > 1 {
		errs = append(errs, fmt.Errorf("%s: group %q has %d hosts; the cluster has one database host", inv.File, GroupDB, len(dbs)))
	} else if len(dbs) == 1 {
		t.DB = dbs[0]
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := t.readVars(inv); err != nil {
		return nil, err
	}
	global := t.Global
	membership, err := parseMembership(global.Membership)
	if err != nil {
		return nil, fmt.Errorf("%s: session_membership: %w", inv.File, err)
	}
	if global.Replication == "" {
		global.Replication = "written"
		t.Global.Replication = global.Replication
	}
	replication, err := configs.ParseReplication(global.Replication)
	if err != nil {
		return nil, fmt.Errorf("%s: session_replication: %w", inv.File, err)
	}
	var nodes []configs.Node
	seen := map[int]string{}
	for _, h := range t.Tomcats {
		v := t.hostVars[h.Name]
		if v.Node < 1 {
			errs = append(errs, fmt.Errorf("%s: host %s: the Tomcat host needs a var node: N (a number from 1, unique in the cluster)", inv.File, h.Name))
			continue
		}
		if other, dup := seen[v.Node]; dup {
			errs = append(errs, fmt.Errorf("%s: hosts %s and %s both have node: %d", inv.File, other, h.Name, v.Node))
			continue
		}
		seen[v.Node] = h.Name
		if h.Address == "" {
			errs = append(errs, fmt.Errorf("%s: host %s: a Tomcat host needs an address on the cluster network", inv.File, h.Name))
		}
		nodes = append(nodes, configs.Node{Name: h.Name, Address: h.Address, Index: v.Node})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(nodes, func(a, b configs.Node) int { return a.Index - b.Index })
	home := "/home/" + global.TomcatUser
	tomcatHome := home + "/tools/mago3d-tomcat"
	t.Cluster = configs.Cluster{
		Nodes: nodes, Apps: configs.DefaultApps(tomcatHome), AJPSecret: global.AJPSecret,
		Membership: membership, Replication: replication, TomcatHome: tomcatHome,
	}
	if err := t.Cluster.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", inv.File, err)
	}
	return t, nil
}

func parseMembership(s string) (configs.Membership, error) {
	switch s {
	case "multicast":
		return configs.Multicast, nil
	case "static":
		return configs.Static, nil
	case "none":
		return configs.NoReplication, nil
	}
	return 0, fmt.Errorf("%q is not multicast, static or none", s)
}

// node returns the cluster node of a Tomcat host.
func (t *Topology) node(h *inventory.Host) (configs.Node, error) {
	for _, n := range t.Cluster.Nodes {
		if n.Name == h.Name {
			return n, nil
		}
	}
	return configs.Node{}, fmt.Errorf("host %s is not in group %q", h.Name, GroupTomcat)
}

// Plays returns the whole cluster in dependency order: the database, then the Tomcat
// nodes, then the web servers, then HAProxy; the hosts of one play run in parallel.
func (t *Topology) Plays() []runner.Play {
	return []runner.Play{
		{Name: "postgresql", Hosts: []*inventory.Host{t.DB}, Recipe: t.postgresRecipe},
		// Restarts roll: one node at a time, each serving again before the next
		// restarts, so the sessions it holds are handed over instead of lost.
		{Name: "tomcat", Hosts: t.Tomcats, Recipe: t.tomcatRecipe, RollingHandlers: true},
		{Name: "web", Hosts: t.Webs, Recipe: t.webRecipe},
		{Name: "haproxy", Hosts: t.HAProxys, Recipe: t.haproxyRecipe},
	}
}

// Cluster returns the plays that build the whole cluster an inventory describes.
func Cluster(inv *inventory.Inventory) ([]runner.Play, error) {
	t, err := NewTopology(inv)
	if err != nil {
		return nil, err
	}
	return t.Plays(), nil
}

// rendered turns a config model into file content, failing at plan time on a mistake.
func rendered(f configs.File) (steps.Content, error) {
	b, err := f.Render()
	if err != nil {
		return nil, err
	}
	return steps.Bytes(b), nil
}
