package inventory

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// sshConfig is the ssh_config file that fills in what an SSH host leaves empty. It is
// read the first time an SSH host needs it.
type sshConfig struct {
	path   string
	loaded bool
	cfg    *ssh_config.Config
}

func (p *parser) sshConfig() *sshConfig {
	return &sshConfig{path: p.opts.SSHConfig}
}

// load reads the file; a missing default file is no file, a missing named one an error.
func (c *sshConfig) load(p *parser) {
	if c.loaded {
		return
	}
	c.loaded = true
	named := c.path != ""
	if !named {
		home, err := os.UserHomeDir()
		if err != nil {
			return
		}
		c.path = filepath.Join(home, ".ssh", "config")
	}
	f, err := os.Open(c.path)
	if err != nil {
		if !named && os.IsNotExist(err) {
			return
		}
		p.errs = append(p.errs, &Error{File: c.path, Msg: fmt.Sprintf("cannot read ssh config: %v", pathErrReason(err))})
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		p.errs = append(p.errs, &Error{File: c.path, Msg: fmt.Sprintf("cannot read ssh config: %v", pathErrReason(err))})
		return
	}
	cfg, err := ssh_config.Decode(bytes.NewReader(skipMatchBlocks(data)))
	if err != nil {
		p.errs = append(p.errs, &Error{File: c.path, Msg: fmt.Sprintf("cannot parse ssh config: %v", err)})
		return
	}
	c.cfg = cfg
}

// skipMatchBlocks rewrites the Match lines the ssh_config package cannot evaluate, so
// that one such line does not stop every SSH inventory from loading. "Match all" stays;
// "Match host LIST" becomes "Host" with the list's patterns, which is what it means for
// the alias a host is looked up by. Any other Match (exec, user, localuser, canonical,
// final, tagged, or several criteria at once) becomes "Host !*", which matches nothing:
// its block is skipped. Skipping is the safe reading: "Match exec" would run a command
// on this machine to decide, and that is never done here. Line numbers stay the same.
func skipMatchBlocks(data []byte) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	changed := false
	for i, l := range lines {
		keyword, args := sshConfigKeyword(string(l))
		if !strings.EqualFold(keyword, "match") {
			continue
		}
		fields := strings.Fields(args)
		var repl string
		switch {
		case len(fields) == 1 && strings.EqualFold(fields[0], "all"):
			continue
		case len(fields) == 2 && strings.EqualFold(fields[0], "host"):
			repl = "Host " + strings.Join(strings.FieldsFunc(fields[1], func(r rune) bool { return r == ',' }), " ")
		default:
			repl = "Host !*"
		}
		nl := ""
		if strings.HasSuffix(string(l), "\n") {
			nl = "\n"
		}
		lines[i] = []byte(repl + nl)
		changed = true
	}
	if !changed {
		return data
	}
	return bytes.Join(lines, nil)
}

// sshConfigKeyword splits an ssh_config line into its keyword and the rest, as ssh
// reads it: "Keyword args", "Keyword=args" or "Keyword = args"; comments have none.
func sshConfigKeyword(line string) (keyword, args string) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return "", ""
	}
	end := strings.IndexAny(line, " \t=")
	if end < 0 {
		return line, ""
	}
	keyword, args = line[:end], strings.TrimLeft(line[end:], " \t")
	args = strings.TrimLeft(strings.TrimPrefix(args, "="), " \t")
	if i := strings.Index(args, " #"); i >= 0 {
		args = args[:i]
	}
	return keyword, args
}

// fill sets the SSH values h leaves empty from the ssh_config entry for h's ssh.host, or
// else for h's name. HostName replaces ssh.host, as it does for ssh itself: ssh.host is
// then the alias the entry is written under.
func (c *sshConfig) fill(p *parser, h *Host, line int) {
	c.load(p)
	if c.cfg == nil {
		return
	}
	alias := h.SSH.Host
	if alias == "" {
		alias = h.Name
	}
	fail := func(key, value, why string) {
		p.errs = append(p.errs, &Error{File: c.path, Msg: fmt.Sprintf("Host %s: %s %q: %s (for hosts.%s at %s:%d)", alias, key, value, why, h.Name, p.file, line)})
	}
	get := func(key string) string {
		v, err := c.cfg.Get(alias, key)
		if err != nil {
			fail(key, "", err.Error())
			return ""
		}
		return v
	}
	// %h in other values is the host name ssh would dial: HostName, or else the alias.
	tokenHost := alias
	if v := get("HostName"); v != "" {
		v = expandTokens(v, alias, h.SSH.User)
		if validAddress(v) {
			h.SSH.Host, tokenHost = v, v
		} else {
			fail("HostName", v, "not an IP address or host name")
		}
	}
	if h.SSH.User == "" {
		h.SSH.User = get("User")
	}
	if h.SSH.Port == 0 {
		if v := get("Port"); v != "" {
			port, err := strconv.Atoi(v)
			if err != nil || port < 1 || port > 65535 {
				fail("Port", v, "not a port number 1-65535")
			} else {
				h.SSH.Port = port
			}
		}
	}
	if len(h.SSH.IdentityFiles) == 0 {
		files, err := c.cfg.GetAll(alias, "IdentityFile")
		if err != nil {
			fail("IdentityFile", "", err.Error())
		}
		for _, f := range files {
			if strings.EqualFold(f, "none") {
				continue
			}
			f = expandTokens(f, tokenHost, h.SSH.User)
			if f == "~" || strings.HasPrefix(f, "~/") {
				if home, err := os.UserHomeDir(); err == nil {
					f = filepath.Join(home, f[1:])
				}
			}
			h.SSH.IdentityFiles = append(h.SSH.IdentityFiles, f)
		}
	}
	if h.SSH.ProxyJump == "" {
		if v := get("ProxyJump"); !strings.EqualFold(v, "none") {
			h.SSH.ProxyJump = v
		}
	}
}

// expandTokens expands the ssh_config tokens that make sense here: %% %d %h %r %u.
func expandTokens(s, host, remoteUser string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			home, _ := os.UserHomeDir()
			b.WriteString(home)
		case 'h':
			b.WriteString(host)
		case 'r':
			b.WriteString(remoteUser)
		case 'u':
			if u, err := user.Current(); err == nil {
				b.WriteString(u.Username)
			}
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
