package sshconn_test

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cauldron-go/cauldron/transport/sshconn"
)

// testServer is a real OpenSSH sshd on 127.0.0.1, started for one test.
type testServer struct {
	Addr      string
	Port      int
	HostKeys  map[string]ssh.PublicKey // by type: "ed25519", "rsa", "ecdsa"
	ClientKey string                   // a private key file sshd accepts for root
	dir       string
	log       *lockedBuffer
}

// startSSHD starts sshd with host keys of the given types (ed25519 when none) and
// stops it when the test ends. It needs root, like sshd itself.
func startSSHD(t testing.TB, hostKeyTypes ...string) *testServer {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sshd must run as root")
	}
	if len(hostKeyTypes) == 0 {
		hostKeyTypes = []string{"ed25519"}
	}
	dir := t.TempDir()
	s := &testServer{dir: dir, HostKeys: map[string]ssh.PublicKey{}, log: &lockedBuffer{}}

	var hostKeyLines []string
	for _, typ := range hostKeyTypes {
		file := filepath.Join(dir, "host_"+typ)
		s.HostKeys[typ] = writeKey(t, file, typ)
		hostKeyLines = append(hostKeyLines, "HostKey "+file)
	}
	s.ClientKey = filepath.Join(dir, "id_ed25519")
	pub := writeKey(t, s.ClientKey, "ed25519")
	writeFile(t, filepath.Join(dir, "authorized_keys"), string(ssh.MarshalAuthorizedKey(pub)), 0o600)

	s.Port = freePort(t)
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	config := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
%s
AuthorizedKeysFile %s .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin yes
StrictModes no
AllowTcpForwarding yes
PidFile none
LogLevel VERBOSE
Subsystem sftp internal-sftp
`, s.Port, strings.Join(hostKeyLines, "\n"), filepath.Join(dir, "authorized_keys"))
	configFile := filepath.Join(dir, "sshd_config")
	writeFile(t, configFile, config, 0o600)

	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", configFile)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	ready := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			s.log.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), "Server listening on") {
				close(ready)
				signalled = true
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.log.String())
		}
	})
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("sshd exited before listening:\n%s", s.log.String())
	}
	return s
}

// knownHosts writes a known_hosts file trusting the server's keys of the given
// types (all when none) and returns its path.
func (s *testServer) knownHosts(t testing.TB, types ...string) string {
	t.Helper()
	if len(types) == 0 {
		for typ := range s.HostKeys {
			types = append(types, typ)
		}
	}
	var b strings.Builder
	for _, typ := range types {
		b.WriteString(knownhosts.Line([]string{s.Addr}, s.HostKeys[typ]) + "\n")
	}
	file := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, file, b.String(), 0o600)
	return file
}

// config is a Config that logs in as root with the server's client key and trusts
// its host keys.
func (s *testServer) config(t testing.TB) sshconn.Config {
	return sshconn.Config{
		Addr:           s.Addr,
		User:           "root",
		IdentityFiles:  []string{s.ClientKey},
		KnownHostsFile: s.knownHosts(t),
	}
}

// writeKey writes a new private key of type typ to file and returns its public key.
func writeKey(t testing.TB, file, typ string) ssh.PublicKey {
	t.Helper()
	var key crypto.Signer
	var err error
	switch typ {
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ecdsa":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		t.Fatalf("unknown key type %q", typ)
	}
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(key, "cauldron test")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, string(pem.EncodeToMemory(block)), 0o600)
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func writeFile(t testing.TB, file, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(file, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// freePort is a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteString(s string) {
	l.Write([]byte(s))
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
