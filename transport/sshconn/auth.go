package sshconn

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// auth is the public keys offered to every hop of one Dial.
type auth struct {
	methods  []ssh.AuthMethod
	describe string // what was offered, for the message when every key is refused
	agent    net.Conn
}

func newAuth(cfg Config) (*auth, error) {
	var signers []ssh.Signer
	var offered []string
	for _, file := range cfg.IdentityFiles {
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("identity file: %w", err)
		}
		s, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("identity file %s is encrypted: load it into ssh-agent and use the agent instead", file)
		}
		if err != nil {
			return nil, fmt.Errorf("identity file %s: %w", file, err)
		}
		signers = append(signers, s)
		offered = append(offered, file)
	}

	a := &auth{}
	var agentClient agent.ExtendedAgent
	if cfg.UseAgent {
		sock := cfg.agentSock
		if sock == "" {
			sock = os.Getenv("SSH_AUTH_SOCK")
		}
		if sock == "" {
			return nil, errors.New("use of the SSH agent asked, but SSH_AUTH_SOCK is not set")
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, fmt.Errorf("connect to the SSH agent: %w", err)
		}
		a.agent = conn
		agentClient = agent.NewClient(conn)
		offered = append(offered, "the keys of the agent at "+sock)
	}
	if len(offered) == 0 {
		return nil, errors.New("no identity file given and the SSH agent not used: no key to log in with")
	}
	a.describe = strings.Join(offered, ", ")
	a.methods = []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		all := append([]ssh.Signer{}, signers...)
		if agentClient != nil {
			more, err := agentClient.Signers()
			if err != nil {
				return nil, fmt.Errorf("list the keys of the SSH agent: %w", err)
			}
			all = append(all, more...)
		}
		return all, nil
	})}
	return a, nil
}

func (a *auth) close() {
	if a.agent != nil {
		a.agent.Close()
	}
}
