package runner

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/docker"
	"github.com/cauldron-go/cauldron/transport/local"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

// DialHost connects to h by the transport its inventory entry names: ssh, docker or
// local. It is the Dial most callers give Options.
func DialHost(ctx context.Context, h *inventory.Host) (transport.Conn, error) {
	switch h.Transport {
	case "local":
		return local.New(), nil
	case "docker":
		name := h.Docker.Container
		if name == "" {
			name = h.Name
		}
		c := docker.New(name).WithChannel()
		if h.Docker.Persist >= 0 {
			c.WithPersist(h.Docker.Persist, "")
		}
		if err := c.Connect(ctx); err != nil {
			return nil, err
		}
		return c, nil
	case "ssh", "":
		c, err := sshconn.Dial(ctx, SSHConfig(h))
		if err != nil {
			// Not c: a nil *sshconn.Conn in a transport.Conn is not a nil interface.
			return nil, err
		}
		return c, nil
	}
	return nil, fmt.Errorf("host %s: unknown transport %q", h.Name, h.Transport)
}

// SSHConfig turns an inventory host's SSH settings into the transport's config.
func SSHConfig(h *inventory.Host) sshconn.Config {
	s := h.SSH
	host := s.Host
	if host == "" {
		host = h.Address
	}
	port := s.Port
	if port == 0 {
		port = 22
	}
	cfg := sshconn.Config{
		Addr: net.JoinHostPort(host, strconv.Itoa(port)), User: s.User,
		IdentityFiles: s.IdentityFiles, UseAgent: os.Getenv("SSH_AUTH_SOCK") != "",
		KnownHostsFile: s.KnownHosts, AcceptNewHostKey: s.HostKey == "accept-new",
		ProxyJump: s.ProxyJump, Become: s.Become, Persist: s.Persist,
	}
	if cfg.User == "" {
		cfg.User = "root"
	}
	switch {
	case s.BecomePasswordEnv != "":
		name := s.BecomePasswordEnv
		cfg.BecomePassword = func() (string, error) {
			v, ok := os.LookupEnv(name)
			if !ok {
				return "", fmt.Errorf("host %s: become_password_env names %s, which is not set", h.Name, name)
			}
			return v, nil
		}
	case s.BecomePasswordFile != "":
		file := s.BecomePasswordFile
		cfg.BecomePassword = func() (string, error) {
			b, err := os.ReadFile(file)
			if err != nil {
				return "", fmt.Errorf("host %s: become_password_file: %w", h.Name, err)
			}
			return strings.TrimRight(string(b), "\r\n"), nil
		}
	}
	return cfg
}
