package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// LoadOptions changes where Load and Parse look for things outside the inventory file.
// The zero value is what Load and Parse use.
type LoadOptions struct {
	// SSHConfig is the ssh_config file that fills in SSH values the inventory leaves
	// empty. Empty means ~/.ssh/config when it exists; os.DevNull means none. Its
	// "Match all" and "Match host" blocks apply; any other Match block (exec, user,
	// final, ...) is skipped, and its command never run.
	SSHConfig string
	// LookupEnv reads the variables named by from_env and become_password_env;
	// nil means os.LookupEnv.
	LookupEnv func(name string) (string, bool)
}

// Load reads and parses the inventory file at path.
func Load(path string) (*Inventory, error) { return LoadOptions{}.Load(path) }

// Parse parses an inventory held in memory. file names it in error messages, and paths
// in it (secret files, identity files) are relative to file's directory.
func Parse(file string, data []byte) (*Inventory, error) { return LoadOptions{}.Parse(file, data) }

// Load reads and parses the inventory file at path.
func (o LoadOptions) Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return o.Parse(path, data)
}

// Parse parses an inventory held in memory; see the package function Parse.
func (o LoadOptions) Parse(file string, data []byte) (*Inventory, error) {
	dir := filepath.Dir(file)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	p := &parser{file: file, dir: dir, opts: o, budget: nodeBudget}
	inv := p.parse(data)
	if len(p.errs) > 0 {
		return nil, p.joinErrors()
	}
	if inv == nil {
		return nil, fmt.Errorf("%s: inventory: no inventory and no error (a bug in package inventory)", file)
	}
	inv.secrets = p.secrets
	inv.dir = dir
	return inv, nil
}

const (
	// nodeBudget bounds the YAML nodes visited, counting each alias expansion anew, so a
	// file of nested aliases (a "billion laughs") is an error and not an hour of work.
	nodeBudget = 1 << 16
	// maxDepth bounds nesting, which also stops an alias that contains itself.
	maxDepth = 64
	// maxErrors bounds the report.
	maxErrors = 50
	// maxSecretFile bounds a secret file: a secret is a line, not a disk image.
	maxSecretFile = 64 << 10
)

type parser struct {
	file string
	// dir is the inventory file's directory, absolute when it could be made so.
	dir     string
	opts    LoadOptions
	errs    []error
	budget  int
	secrets []string
	// varPath is the variable being read, named by errors from deep inside its value.
	varPath string
	varLine int
}

func (p *parser) errorf(line int, path, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// joinErrors reports the errors in file order, those about other files (an ssh_config)
// after, and at most maxErrors of them: past that many the rest are noise.
func (p *parser) joinErrors() error {
	key := func(err error) (bool, int) {
		var e *Error
		if errors.As(err, &e) {
			return e.File != p.file, e.Line
		}
		return true, 0
	}
	sort.SliceStable(p.errs, func(i, j int) bool {
		oi, li := key(p.errs[i])
		oj, lj := key(p.errs[j])
		if oi != oj {
			return !oi
		}
		return li < lj
	})
	if len(p.errs) > maxErrors {
		more := len(p.errs) - maxErrors
		p.errs = append(p.errs[:maxErrors:maxErrors], &Error{File: p.file, Msg: fmt.Sprintf("and %d more errors", more)})
	}
	return errors.Join(p.errs...)
}

// spend takes one node from the budget and reports whether any was left.
func (p *parser) spend(line int, path string) bool {
	p.budget--
	if p.budget == 0 {
		p.errorf(line, path, "too many nodes after expanding aliases (more than %d)", nodeBudget)
	}
	return p.budget > 0
}

var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) parse(data []byte) *Inventory {
	doc, extra, err := decodeDocuments(bytes.NewReader(data))
	switch {
	case err != nil:
		p.syntaxError(err, data)
		return nil
	case doc == nil:
		p.errorf(0, "", "file is empty")
		return nil
	case extra != nil:
		p.errorf(extra.Line, "", "a second YAML document; an inventory is one document")
		return nil
	}
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if isNull(root) {
		p.errorf(0, "", "file is empty")
		return nil
	}
	return p.inventory(root)
}

// decodeDocuments parses the first document and, if there is one, the start of a second.
// doc is nil for a file with no document.
func decodeDocuments(data io.Reader) (doc, extra *yaml.Node, err error) {
	dec := yaml.NewDecoder(data)
	var first, second yaml.Node
	if err := dec.Decode(&first); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	switch err := dec.Decode(&second); {
	case err == nil:
		return &first, &second, nil
	case !errors.Is(err, io.EOF):
		return nil, nil, err
	}
	return &first, nil, nil
}

func (p *parser) syntaxError(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineError.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if l := locateSyntaxError(data); l > 0 {
		line = l
	}
	p.errorf(line, "", "%s", msg)
}

// locateSyntaxError returns the line a syntax error is on; 0 when it cannot tell.
// yaml's own line is where the enclosing block began, often lines (or, in a big file,
// thousands of lines) before the mistake. The mistake is where the parser stopped: the
// file is parsed again through a reader that hands out one byte at a time, so the bytes
// read say where that was. An unclosed bracket or quote is noticed only lines after it
// opened, so the answer moves back to the line after the longest run of leading lines
// that parses, looking back over a bounded amount of text: each look parses a prefix,
// and a whole-file search of that kind took a minute on a 4 MB file.
func locateSyntaxError(data []byte) int {
	r := &byteAtATime{data: data}
	if _, _, err := decodeDocuments(r); err == nil || r.n == 0 {
		return 0
	}
	// The last byte read belongs to the line it is on, or ends.
	stop := r.n - 1
	line := bytes.Count(data[:stop], []byte("\n")) + 1
	end := bytes.LastIndexByte(data[:stop], '\n') + 1 // data[:end] is lines 1..line-1
	budget := max(2*stop, 1<<20)
	for k := line - 1; k >= 0 && budget > 0; k-- {
		if _, _, err := decodeDocuments(bytes.NewReader(data[:end])); err == nil {
			return k + 1
		}
		budget -= end
		end = bytes.LastIndexByte(data[:max(end-1, 0)], '\n') + 1
	}
	return line
}

// byteAtATime reads data one byte per Read, counting what was read.
type byteAtATime struct {
	data []byte
	n    int
}

func (r *byteAtATime) Read(p []byte) (int, error) {
	if r.n >= len(r.data) {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.data[r.n]
	r.n++
	return 1, nil
}

// pair is one key and value of a mapping, merge keys (<<) already expanded.
type pair struct {
	key   string
	keyN  *yaml.Node
	value *yaml.Node
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return describeTag(n.Tag)
	case yaml.AliasNode:
		return "an alias that goes too deep"
	}
	return "nothing"
}

func describeTag(tag string) string {
	switch tag {
	case "!!null":
		return "null"
	case "!!bool":
		return "true/false"
	case "!!int", "!!float":
		return "a number"
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	case "!!str":
		return "a string"
	}
	return "a value tagged " + tag
}

// mapping returns the pairs of a mapping node in file order, checking for duplicate keys
// and expanding merge keys (explicit keys win over merged ones). A null node is an empty
// mapping. ok is false, with an error recorded, when n is not a mapping.
func (p *parser) mapping(n *yaml.Node, path string) (pairs []pair, ok bool) {
	return p.mappingDepth(n, path, 0)
}

func (p *parser) mappingDepth(n *yaml.Node, path string, depth int) ([]pair, bool) {
	orig := n
	n = deref(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(orig.Line, path, "expected a mapping, got %s", describe(orig))
		return nil, false
	}
	if depth > maxDepth {
		p.errorf(orig.Line, path, "merge keys (<<) nested too deeply")
		return nil, false
	}
	var pairs, merged []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !p.spend(k.Line, path) {
			return nil, false
		}
		kd := deref(k)
		if kd == nil || kd.Kind != yaml.ScalarNode {
			p.errorf(k.Line, path, "a key must be a string, got %s", describe(k))
			continue
		}
		if kd.Tag == "!!merge" || (kd.Value == "<<" && kd.Style == 0 && kd.Tag != "!!str") {
			merged = append(merged, p.mergeSources(v, path, depth)...)
			continue
		}
		if first, dup := seen[kd.Value]; dup {
			p.errorf(k.Line, join(path, kd.Value), "duplicate key (first at line %d)", first)
			continue
		}
		seen[kd.Value] = k.Line
		pairs = append(pairs, pair{key: kd.Value, keyN: k, value: v})
	}
	for _, m := range merged {
		if _, dup := seen[m.key]; dup {
			continue
		}
		seen[m.key] = m.keyN.Line
		pairs = append(pairs, m)
	}
	return pairs, true
}

// mergeSources expands the value of a merge key: a mapping or a list of them, earlier
// ones winning, as YAML's merge key type says.
func (p *parser) mergeSources(v *yaml.Node, path string, depth int) []pair {
	vd := deref(v)
	var sources []*yaml.Node
	switch {
	case vd != nil && vd.Kind == yaml.MappingNode:
		sources = []*yaml.Node{vd}
	case vd != nil && vd.Kind == yaml.SequenceNode:
		sources = vd.Content
	default:
		p.errorf(v.Line, path, "a merge key (<<) needs a mapping or a list of mappings, got %s", describe(v))
		return nil
	}
	var out []pair
	have := map[string]bool{}
	for _, s := range sources {
		if deref(s) == nil || deref(s).Kind != yaml.MappingNode {
			p.errorf(s.Line, path, "a merge key (<<) needs a mapping or a list of mappings, got %s", describe(s))
			continue
		}
		ps, _ := p.mappingDepth(s, path, depth+1)
		for _, x := range ps {
			if !have[x.key] {
				have[x.key] = true
				out = append(out, x)
			}
		}
	}
	return out
}

// join appends key to a key path, quoting a key that would make the path ambiguous.
func join(path, key string) string {
	if key == "" || strings.ContainsAny(key, ".[]\" \t\n") || !utf8.ValidString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// str reads a scalar as a string; null reads as "".
func (p *parser) str(n *yaml.Node, path string) (string, bool) {
	d := deref(n)
	if isNull(d) {
		return "", true
	}
	if d.Kind != yaml.ScalarNode {
		p.errorf(n.Line, path, "expected a string, got %s", describe(n))
		return "", false
	}
	return d.Value, true
}

// address reads a string that, when set, must be an IP address or a host name.
func (p *parser) address(n *yaml.Node, path string) string {
	s, ok := p.str(n, path)
	if ok && s != "" && !validAddress(s) {
		p.errorf(n.Line, path, "%q is not an IP address or host name", s)
	}
	return s
}

// persist reads ssh.persist or docker.persist: a duration such as 60s, or off (-1:
// not even when $CAULDRON_SSH_PERSIST or $CAULDRON_DOCKER_PERSIST asks for it).
func (p *parser) persist(n *yaml.Node, path string) time.Duration {
	v, ok := p.str(n, path)
	if !ok || v == "" {
		return 0
	}
	if v == "off" {
		return -1
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.errorf(n.Line, path, "%q is not a duration such as 60s or 10m, nor off", v)
		return 0
	}
	return d
}

func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	d := deref(n)
	if isNull(d) {
		return false, true
	}
	if d.Kind == yaml.ScalarNode && d.Tag == "!!bool" {
		var b bool
		if err := d.Decode(&b); err == nil {
			return b, true
		}
	}
	p.errorf(n.Line, path, "expected true or false, got %s", describe(n))
	return false, false
}

func (p *parser) strList(n *yaml.Node, path string) ([]string, bool) {
	d := deref(n)
	if isNull(d) {
		return nil, true
	}
	if d.Kind != yaml.SequenceNode {
		p.errorf(n.Line, path, "expected a list, got %s", describe(n))
		return nil, false
	}
	var out []string
	ok := true
	for i, e := range d.Content {
		if !p.spend(e.Line, path) {
			return nil, false
		}
		ep := fmt.Sprintf("%s[%d]", path, i)
		s, good := p.str(e, ep)
		if !good {
			ok = false
			continue
		}
		if s == "" {
			p.errorf(e.Line, ep, "empty value")
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}

// oneOf reads a scalar that must be one of allowed; "" when null.
func (p *parser) oneOf(n *yaml.Node, path, what string, allowed []string) string {
	s, ok := p.str(n, path)
	if !ok || s == "" {
		return ""
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	if hint := suggest(s, allowed); hint != "" {
		p.errorf(n.Line, path, "unknown %s %q%s", what, s, hint)
	} else {
		p.errorf(n.Line, path, "unknown %s %q (expected one of: %s)", what, s, strings.Join(allowed, ", "))
	}
	return ""
}

// localPath expands ~ and makes a path relative to the inventory file's directory.
func (p *parser) localPath(n *yaml.Node, path, s string) (string, bool) {
	switch {
	case s == "~" || strings.HasPrefix(s, "~/"):
		home, err := os.UserHomeDir()
		if err != nil {
			p.errorf(n.Line, path, "cannot expand ~: %v", err)
			return "", false
		}
		return filepath.Join(home, s[1:]), true
	case strings.HasPrefix(s, "~"):
		p.errorf(n.Line, path, "only ~/ is expanded, not ~user/: %q", s)
		return "", false
	case filepath.IsAbs(s):
		return filepath.Clean(s), true
	}
	return filepath.Join(p.dir, s), true
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// validName is the rule for host, group and container names. They become container
// names, ssh_config aliases and parts of file names, so they keep to the characters
// Docker allows in a container name.
func validName(s string) bool { return len(s) <= 128 && nameRE.MatchString(s) }

// validAddress accepts an IP address or a DNS name (underscores allowed: Docker's
// embedded DNS answers for container names that have them).
func validAddress(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

var (
	topKeys      = []string{"vars", "groups", "hosts"}
	groupKeys    = []string{"hosts", "vars"}
	hostKeys     = []string{"address", "transport", "ssh", "docker", "vars"}
	sshKeys      = []string{"host", "port", "user", "identity_file", "identity_files", "known_hosts", "host_key", "proxy_jump", "become", "become_password_env", "become_password_file", "persist"}
	dockerKeys   = []string{"container", "persist"}
	transports   = []string{"ssh", "docker", "local"}
	hostKeyModes = []string{"strict", "accept-new"}
)

// hostSource remembers where a host was defined, for errors found after the walk.
type hostSource struct {
	line int
	// ownVars are the host's own vars, before merging with its groups' and the globals.
	ownVars Vars
	// broken is set when the host's own entry had errors; checks of the whole host are
	// then skipped, as they would only repeat them.
	broken bool
}

func (p *parser) inventory(root *yaml.Node) *Inventory {
	inv := &Inventory{File: p.file, Vars: Vars{}}
	pairs, ok := p.mapping(root, "")
	if !ok {
		return nil
	}
	var hostsN, groupsN *yaml.Node
	hostsLine := root.Line
	for _, kv := range pairs {
		switch kv.key {
		case "vars":
			inv.Vars = p.vars(kv.value, "vars")
		case "groups":
			groupsN = kv.value
		case "hosts":
			hostsN, hostsLine = kv.value, kv.keyN.Line
		default:
			p.errorf(kv.keyN.Line, kv.key, "%s", unknownKeyMsg(kv.key, topKeys))
		}
	}

	sources := map[string]*hostSource{}
	if hostsN == nil {
		p.errorf(root.Line, "hosts", "missing: an inventory needs at least one host")
	} else if hps, ok := p.mapping(hostsN, "hosts"); ok {
		if d := deref(hostsN); isNull(d) || len(d.Content) == 0 {
			p.errorf(hostsLine, "hosts", "no hosts: an inventory needs at least one host")
		}
		for _, kv := range hps {
			h, src := p.host(kv)
			if h != nil {
				inv.Hosts = append(inv.Hosts, h)
				sources[h.Name] = src
			}
		}
	}

	if groupsN != nil {
		p.groups(inv, groupsN)
	}

	cfg := p.sshConfig()
	for _, h := range inv.Hosts {
		src := sources[h.Name]
		vars := Vars{}
		vars.overlay(inv.Vars)
		for _, g := range inv.Groups {
			if contains(g.Hosts, h.Name) {
				h.Groups = append(h.Groups, g.Name)
				vars.overlay(g.Vars)
			}
		}
		vars.overlay(src.ownVars)
		h.Vars = vars
		p.finishHost(h, src, cfg)
	}
	return inv
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) host(kv pair) (*Host, *hostSource) {
	path := join("hosts", kv.key)
	line := kv.keyN.Line
	if !validName(kv.key) {
		p.errorf(line, path, "bad host name: use letters, digits, '.', '_' and '-', starting with a letter or digit")
		return nil, nil
	}
	h := &Host{Name: kv.key, Transport: "ssh"}
	src := &hostSource{line: line, ownVars: Vars{}}
	errsBefore := len(p.errs)
	defer func() { src.broken = len(p.errs) > errsBefore }()
	pairs, ok := p.mapping(kv.value, path)
	if !ok {
		return h, src
	}
	for _, f := range pairs {
		fp := join(path, f.key)
		switch f.key {
		case "address":
			h.Address = p.address(f.value, fp)
		case "transport":
			if t := p.oneOf(f.value, fp, "transport", transports); t != "" {
				h.Transport = t
			}
		case "ssh":
			p.ssh(&h.SSH, f.value, fp)
		case "docker":
			p.docker(&h.Docker, f.value, fp)
		case "vars":
			src.ownVars = p.vars(f.value, fp)
		default:
			p.errorf(f.keyN.Line, fp, "%s", unknownKeyMsg(f.key, hostKeys))
		}
	}
	return h, src
}

func (p *parser) ssh(s *SSH, n *yaml.Node, path string) {
	pairs, ok := p.mapping(n, path)
	if !ok {
		return
	}
	var identityLine, passwordLine int
	var passwordPath string
	for _, f := range pairs {
		fp := join(path, f.key)
		line := f.keyN.Line
		switch f.key {
		case "host":
			s.Host = p.address(f.value, fp)
		case "port":
			s.Port = p.port(f.value, fp)
		case "user":
			s.User, _ = p.str(f.value, fp)
		case "identity_file", "identity_files":
			if identityLine != 0 {
				p.errorf(line, fp, "set identity_file or identity_files, not both")
				continue
			}
			identityLine = line
			var files []string
			if f.key == "identity_file" {
				if v, ok := p.str(f.value, fp); ok && v != "" {
					files = []string{v}
				}
			} else {
				files, _ = p.strList(f.value, fp)
			}
			for _, file := range files {
				if abs, ok := p.localPath(f.value, fp, file); ok {
					s.IdentityFiles = append(s.IdentityFiles, abs)
				}
			}
		case "known_hosts":
			if v, ok := p.str(f.value, fp); ok && v != "" {
				s.KnownHosts, _ = p.localPath(f.value, fp, v)
			}
		case "host_key":
			s.HostKey = p.oneOf(f.value, fp, "host_key mode", hostKeyModes)
		case "proxy_jump":
			s.ProxyJump, _ = p.str(f.value, fp)
		case "become":
			s.Become, _ = p.boolean(f.value, fp)
		case "persist":
			s.Persist = p.persist(f.value, fp)
		case "become_password_env", "become_password_file":
			if passwordLine != 0 {
				p.errorf(line, fp, "set become_password_env or become_password_file, not both")
				continue
			}
			passwordLine, passwordPath = line, fp
			v, ok := p.str(f.value, fp)
			if !ok || v == "" {
				continue
			}
			if f.key == "become_password_env" {
				if secret, ok := p.fromEnv(f.value, fp, v); ok {
					s.BecomePasswordEnv = v
					p.secrets = append(p.secrets, secret)
				}
			} else if abs, ok := p.localPath(f.value, fp, v); ok {
				if secret, ok := p.fromFile(f.value, fp, v, abs); ok {
					s.BecomePasswordFile = abs
					p.secrets = append(p.secrets, secret)
				}
			}
		default:
			p.errorf(line, fp, "%s", unknownKeyMsg(f.key, sshKeys))
		}
	}
	if passwordLine != 0 && !s.Become {
		p.errorf(passwordLine, passwordPath, "a become password is set but become is not true")
	}
}

func (p *parser) port(n *yaml.Node, path string) int {
	d := deref(n)
	if isNull(d) {
		return 0
	}
	if d.Kind != yaml.ScalarNode {
		p.errorf(n.Line, path, "expected a port number, got %s", describe(n))
		return 0
	}
	v, err := strconv.Atoi(d.Value)
	if err != nil {
		p.errorf(n.Line, path, "%q is not a port number", d.Value)
		return 0
	}
	if v < 1 || v > 65535 {
		p.errorf(n.Line, path, "port %d is out of range 1-65535", v)
		return 0
	}
	return v
}

func (p *parser) docker(d *Docker, n *yaml.Node, path string) {
	pairs, ok := p.mapping(n, path)
	if !ok {
		return
	}
	for _, f := range pairs {
		fp := join(path, f.key)
		switch f.key {
		case "container":
			v, ok := p.str(f.value, fp)
			if ok && v != "" && !validName(v) {
				p.errorf(f.value.Line, fp, "bad container name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", v)
				continue
			}
			d.Container = v
		case "persist":
			d.Persist = p.persist(f.value, fp)
		default:
			p.errorf(f.keyN.Line, fp, "%s", unknownKeyMsg(f.key, dockerKeys))
		}
	}
}

func (p *parser) groups(inv *Inventory, n *yaml.Node) {
	pairs, ok := p.mapping(n, "groups")
	if !ok {
		return
	}
	var hostNames []string
	for _, h := range inv.Hosts {
		hostNames = append(hostNames, h.Name)
	}
	for _, kv := range pairs {
		path := join("groups", kv.key)
		if !validName(kv.key) {
			p.errorf(kv.keyN.Line, path, "bad group name: use letters, digits, '.', '_' and '-', starting with a letter or digit")
			continue
		}
		g := &Group{Name: kv.key, Vars: Vars{}}
		fields, _ := p.mapping(kv.value, path)
		for _, f := range fields {
			fp := join(path, f.key)
			switch f.key {
			case "hosts":
				names, _ := p.strList(f.value, fp)
				list := deref(f.value)
				for i, name := range names {
					line := f.value.Line
					if list != nil && i < len(list.Content) {
						line = list.Content[i].Line
					}
					ep := fmt.Sprintf("%s[%d]", fp, i)
					switch {
					case contains(g.Hosts, name):
						p.errorf(line, ep, "host %q is listed twice", name)
					case !contains(hostNames, name):
						p.errorf(line, ep, "unknown host %q%s", name, suggest(name, hostNames))
					default:
						g.Hosts = append(g.Hosts, name)
					}
				}
			case "vars":
				g.Vars = p.vars(f.value, fp)
			default:
				p.errorf(f.keyN.Line, fp, "%s", unknownKeyMsg(f.key, groupKeys))
			}
		}
		inv.Groups = append(inv.Groups, g)
	}
}

// finishHost fills defaults and ssh_config values and checks what needs the whole host.
func (p *parser) finishHost(h *Host, src *hostSource, cfg *sshConfig) {
	path := join("hosts", h.Name)
	switch h.Transport {
	case "ssh":
		cfg.fill(p, h, src.line)
		if h.SSH.Port == 0 {
			h.SSH.Port = 22
		}
		if h.SSH.HostKey == "" {
			h.SSH.HostKey = "strict"
		}
		if h.Address == "" && h.SSH.Host == "" && !src.broken {
			p.errorf(src.line, path, "no address to connect to: set address or ssh.host")
		}
	case "docker":
		if h.Docker.Container == "" {
			h.Docker.Container = h.Name
		}
	}
}

// fromEnv reads a secret from the environment variable name.
func (p *parser) fromEnv(n *yaml.Node, path, name string) (string, bool) {
	if name == "" || strings.ContainsAny(name, "=\x00") {
		p.errorf(n.Line, path, "%q is not an environment variable name", name)
		return "", false
	}
	v, ok := p.opts.LookupEnv(name)
	if !ok {
		p.errorf(n.Line, path, "environment variable %s is not set", name)
		return "", false
	}
	if v == "" {
		p.errorf(n.Line, path, "environment variable %s is empty", name)
		return "", false
	}
	return v, true
}

// fromFile reads a secret from a file: one value, its trailing newline dropped. written
// is the path as the inventory wrote it, for messages.
func (p *parser) fromFile(n *yaml.Node, path, written, abs string) (string, bool) {
	fail := func(format string, args ...any) (string, bool) {
		p.errorf(n.Line, path, "secret file %q: %s", written, fmt.Sprintf(format, args...))
		return "", false
	}
	// Stat first: opening a FIFO would wait for a writer, and /dev/zero never ends.
	st, err := os.Stat(abs)
	if err != nil {
		return fail("%v", pathErrReason(err))
	}
	if !st.Mode().IsRegular() {
		return fail("not a regular file")
	}
	f, err := os.Open(abs)
	if err != nil {
		return fail("%v", pathErrReason(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return fail("%v", pathErrReason(err))
	}
	if len(data) > maxSecretFile {
		return fail("larger than %d bytes", maxSecretFile)
	}
	v := strings.TrimRight(string(data), "\r\n")
	if v == "" {
		return fail("empty")
	}
	return v, true
}

// pathErrReason drops the path from an *fs.PathError: the message names the path as the
// inventory wrote it instead.
func pathErrReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
