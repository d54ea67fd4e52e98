// Package inventory loads the YAML file that says which hosts a recipe runs on, how to
// reach each one, and the variables recipes read from it.
//
// The file has three sections, all optional but hosts:
//
//	vars:                  # global variables, free-form values
//	  tomcat_user: gaia3d
//	  ajp_secret: {from_file: secrets/ajp}                # a secret, read from a file ...
//	  stats_password: {from_env: CAULDRON_STATS_PASSWORD} # ... or the environment
//	groups:
//	  tomcat: {hosts: [web1, web2], vars: {heap: 512m}}
//	hosts:
//	  web1:
//	    address: 172.30.0.11   # the address other hosts use to reach it
//	    transport: ssh         # ssh (the default), docker or local
//	    ssh: {host: 127.0.0.1, port: 2211, user: root, identity_file: ~/.ssh/id_ed25519,
//	          known_hosts: known_hosts, host_key: strict, proxy_jump: bastion,
//	          become: true, become_password_env: SUDO_PASS,
//	          persist: 60s}    # keep the connection warm between runs (see sshconn.Config.Persist)
//	    docker: {container: cauldron-web1,   # default: the host name
//	             persist: 60s}   # keep its command channel between runs (see docker.Conn.WithPersist)
//	    vars: {node: 1}
//
// Relative paths are relative to the inventory file. A host's Vars are the globals,
// overlaid by each of its groups in file order, overlaid by its own. SSH values the file
// leaves empty come from ~/.ssh/config (see LoadOptions). Every mistake found is reported,
// each as an *Error naming file, line and key path; no error ever holds a secret's value.
package inventory

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// Inventory is a loaded inventory file.
type Inventory struct {
	// File is the path it was loaded from, used in error messages.
	File string
	// Hosts in the order the file lists them.
	Hosts []*Host
	// Groups in the order the file lists them.
	Groups []*Group
	// Vars are the global variables.
	Vars Vars

	// secrets are the resolved secret values, for Secrets.
	secrets []string
	// dir is the inventory file's directory, absolute when it could be made so, for
	// LocalPath.
	dir string
}

// Group is a named set of hosts with variables of its own.
type Group struct {
	Name  string
	Hosts []string
	Vars  Vars
}

// Host is one machine and how to reach it.
type Host struct {
	Name string
	// Address is the host's address on the network the cluster shares: what other
	// hosts use to reach it (a Tomcat node's AJP connector, a database's listener).
	Address string
	// Transport is "ssh", "docker" or "local".
	Transport string
	SSH       SSH
	Docker    Docker
	// Groups the host is in, in file order.
	Groups []string
	// Vars are the host's variables merged: host over group over global.
	Vars Vars
}

// SSH says how to reach a host over SSH. Values left empty come from ~/.ssh/config.
type SSH struct {
	// Host is where to connect, when it is not Address (a port published on 127.0.0.1).
	Host          string
	Port          int
	User          string
	IdentityFiles []string
	// KnownHosts is the known_hosts file; empty means ~/.ssh/known_hosts.
	KnownHosts string
	// HostKey is "strict" (the default: an unknown host key stops the host) or
	// "accept-new" (an unknown key is added to KnownHosts; a changed key still stops it).
	HostKey   string
	ProxyJump string
	// Become runs every command and file write as root through sudo.
	Become bool
	// BecomePasswordEnv and BecomePasswordFile name where sudo's password is read from;
	// the password itself never appears in the inventory.
	BecomePasswordEnv  string
	BecomePasswordFile string
	// Persist keeps the host's SSH connection warm between runs for this long without
	// a run (sshconn.Config.Persist; "persist: 60s"); 0 leaves it to
	// $CAULDRON_SSH_PERSIST, -1 ("persist: off") turns it off.
	Persist time.Duration
}

// Docker says how to reach a host by docker exec.
type Docker struct {
	Container string
	// Persist keeps the host's command channel (its exec and shell) between runs for
	// this long without a run (docker.Conn.WithPersist; "persist: 60s"); 0 leaves it to
	// $CAULDRON_DOCKER_PERSIST, -1 ("persist: off") turns it off.
	Persist time.Duration
}

// Vars are variables, each with the place in the file it came from.
type Vars map[string]Var

// Var is one variable's value and where it was set.
type Var struct {
	// Value is the value as YAML decodes it into an any: string, int, float64, bool, nil,
	// []any or map[string]any, with secrets resolved to their strings.
	Value any
	File  string
	Line  int
	// Secret is true when the value is, or contains, a secret read by from_file or
	// from_env. String and GoString print such a value as "<secret>".
	Secret bool
	// path is where the variable is set: vars.X, groups.G.vars.X or hosts.H.vars.X.
	path string
	// node is the value as a YAML node (secrets resolved, aliases expanded) for Decode;
	// nil for a Var made outside this package, which Decode then builds from Value.
	node *yaml.Node
}
