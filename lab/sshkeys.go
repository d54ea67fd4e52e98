package lab

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// ensureKey makes an ed25519 key pair at path (and path.pub) unless one is there, and
// returns the public key's authorized_keys line.
func ensureKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		signer, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return authorizedLine(signer.PublicKey()), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	pubKey, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "cauldron-lab")
	if err != nil {
		return nil, err
	}
	sshPub, err := ssh.NewPublicKey(pubKey)
	if err != nil {
		return nil, err
	}
	line := authorizedLine(sshPub)
	// The public half first: a private key without it is still usable, not the reverse.
	if err := writeFileAtomic(path+".pub", line, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return line, nil
}

func authorizedLine(k ssh.PublicKey) []byte {
	return append(bytes.TrimSpace(ssh.MarshalAuthorizedKey(k)), []byte(" cauldron-lab\n")...)
}

// authorize gives root the key of line (an authorized_keys line), with the library's
// own steps: a private ~/.ssh and the line in authorized_keys, replacing an older line
// with the same key (another comment) and leaving every other key as it is.
func authorize(ctx context.Context, c transport.Conn, line []byte) error {
	fields := strings.Fields(string(line))
	if len(fields) < 2 {
		return fmt.Errorf("not an authorized_keys line: %q", line)
	}
	for _, s := range []steps.Step{
		steps.Dir{Path: "/root/.ssh", Mode: 0o700, Owner: "root", Group: "root"},
		steps.LineInFile{
			Path:   "/root/.ssh/authorized_keys",
			Regexp: `^` + regexp.QuoteMeta(fields[0]+" "+fields[1]) + `(\s|$)`,
			Line:   strings.TrimRight(string(line), "\n"),
		},
	} {
		if _, err := steps.Converge(ctx, c, s); err != nil {
			return err
		}
	}
	return nil
}
