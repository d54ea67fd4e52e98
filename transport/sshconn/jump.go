package sshconn

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// hop is one SSH server on the way to the host.
type hop struct {
	user string
	addr string // host:port
}

// parseProxyJump reads OpenSSH's ProxyJump: comma-separated [user@]host[:port] (or
// ssh://[user@]host[:port]) hops; "" and "none" mean no jump. A hop without a user
// is logged into as user.
func parseProxyJump(spec, user string) ([]hop, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "none" {
		return nil, nil
	}
	var hops []hop
	for _, part := range strings.Split(spec, ",") {
		p := strings.TrimPrefix(strings.TrimSpace(part), "ssh://")
		h := hop{user: user}
		if i := strings.LastIndex(p, "@"); i >= 0 {
			h.user, p = p[:i], p[i+1:]
			if h.user == "" {
				return nil, fmt.Errorf("%q: empty user", part)
			}
		}
		host, port, err := splitHostPort(p)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		h.addr = net.JoinHostPort(host, port)
		hops = append(hops, h)
	}
	return hops, nil
}

// splitHostPort splits host[:port], [host]:port or a bare IPv6 address; the port
// defaults to 22.
func splitHostPort(s string) (host, port string, err error) {
	switch {
	case strings.HasPrefix(s, "["):
		if strings.HasSuffix(s, "]") {
			host, port = s[1:len(s)-1], "22"
		} else if host, port, err = net.SplitHostPort(s); err != nil {
			return "", "", err
		}
	case strings.Count(s, ":") == 1:
		if host, port, err = net.SplitHostPort(s); err != nil {
			return "", "", err
		}
	default: // no port, or a bare IPv6 address
		host, port = s, "22"
	}
	if host == "" || strings.ContainsAny(host, " /@") {
		return "", "", fmt.Errorf("bad host %q", host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "", errors.New("bad port " + strconv.Quote(port))
	}
	return host, port, nil
}
