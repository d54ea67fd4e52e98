package lab

import (
	"context"
	"fmt"

	"golang.org/x/crypto/ssh"

	"github.com/cauldron-go/cauldron/transport"
)

// The lab's SSH key machinery, for hosts that are not the lab's four (the bench's
// fleets of light hosts): one key pair on the control machine, given to root on each
// host over a channel the machine already trusts (docker exec), and each host's own
// key read over that channel into known_hosts, so SSH is strict from the start.

// EnsureKey makes an ed25519 key pair at path (and path.pub) unless one is there, and
// returns its authorized_keys line.
func EnsureKey(path string) ([]byte, error) { return ensureKey(path) }

// Authorize adds the authorized_keys line to root's authorized_keys on c, unless the
// key is there already.
func Authorize(ctx context.Context, c transport.Conn, line []byte) error {
	return authorize(ctx, c, line)
}

// KnownHostsLine reads the host's ed25519 host key over c and returns its known_hosts
// line for addr (an address, or [address]:port).
func KnownHostsLine(ctx context.Context, c transport.Conn, addr string) ([]byte, error) {
	data, err := c.Read(ctx, "/etc/ssh/ssh_host_ed25519_key.pub")
	if err != nil {
		return nil, fmt.Errorf("read its SSH host key: %w", err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("its SSH host key: %w", err)
	}
	return append([]byte(addr+" "), ssh.MarshalAuthorizedKey(key)...), nil
}
