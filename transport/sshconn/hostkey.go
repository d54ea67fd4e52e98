package sshconn

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cauldron-go/cauldron/shell"
)

// HostKeyError is a host whose key is not trusted: unknown to the known_hosts file,
// or different from the one recorded there (Unknown false: possibly an attack, and
// never accepted automatically).
type HostKeyError struct {
	Addr           string // host:port as dialled
	KeyType        string
	Fingerprint    string // SHA256:…
	KnownHostsFile string
	Unknown        bool
	// Recorded are the file:line places of the keys recorded for the host, when the
	// key changed.
	Recorded []string
}

func (e *HostKeyError) Error() string {
	if e.Unknown {
		host, port, _ := net.SplitHostPort(e.Addr)
		scan := "ssh-keyscan "
		if port != "" && port != "22" {
			scan += "-p " + port + " "
		}
		scan += shell.Quote(host) + " >> " + shell.Quote(e.KnownHostsFile)
		return fmt.Sprintf("unknown host key for %s: %s key %s is not in %s; "+
			"if that fingerprint is the host's, add it (%s) or set host_key: accept-new in the inventory",
			e.Addr, e.KeyType, e.Fingerprint, e.KnownHostsFile, scan)
	}
	return fmt.Sprintf("HOST KEY CHANGED for %s: it presents %s key %s, which does not match the key recorded at %s; "+
		"someone may be intercepting the connection. If the host was really reinstalled, remove the old key "+
		"(ssh-keygen -R %s -f %s) and add the new one",
		e.Addr, e.KeyType, e.Fingerprint, strings.Join(e.Recorded, ", "),
		shell.Quote(knownhosts.Normalize(e.Addr)), shell.Quote(e.KnownHostsFile))
}

// hostKeyCheck verifies the key of one hop against the known_hosts file.
type hostKeyCheck struct {
	file      string
	acceptNew bool
	addr      string
	known     ssh.HostKeyCallback
	// algorithms are the key algorithms of the keys recorded for addr, so that the
	// server presents a key we can compare (nil: the host is unknown, any algorithm).
	algorithms []string
	err        error // the *HostKeyError the callback returned, if any
	// key and remote are what the host presented, once verified.
	key    ssh.PublicKey
	remote net.Addr
}

func newHostKeyCheck(file string, acceptNew bool, addr string) (*hostKeyCheck, error) {
	known, err := loadKnownHosts(file)
	if err != nil {
		return nil, err
	}
	hc := &hostKeyCheck{file: file, acceptNew: acceptNew, addr: addr, known: known}
	for _, k := range recordedKeys(known, addr) {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !slices.Contains(hc.algorithms, a) {
				hc.algorithms = append(hc.algorithms, a)
			}
		}
	}
	return hc, nil
}

func (hc *hostKeyCheck) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := hc.verify(hostname, remote, key)
	hc.err = err
	if err == nil {
		hc.key, hc.remote = key, remote
	}
	return err
}

func (hc *hostKeyCheck) verify(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := hc.known(hostname, remote, key)
	if err == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		var re *knownhosts.RevokedError
		if errors.As(err, &re) {
			return fmt.Errorf("host key of %s (%s) is marked @revoked at %s:%d", hc.addr,
				ssh.FingerprintSHA256(key), re.Revoked.Filename, re.Revoked.Line)
		}
		return fmt.Errorf("check host key of %s: %w", hc.addr, err)
	}
	if len(ke.Want) > 0 {
		return hc.keyError(key, ke.Want)
	}
	if !hc.acceptNew {
		return hc.keyError(key, nil)
	}
	return appendKnownHost(hc.file, hostname, remote, key)
}

func (hc *hostKeyCheck) keyError(key ssh.PublicKey, recorded []knownhosts.KnownKey) *HostKeyError {
	e := &HostKeyError{
		Addr:           hc.addr,
		KeyType:        key.Type(),
		Fingerprint:    ssh.FingerprintSHA256(key),
		KnownHostsFile: hc.file,
		Unknown:        len(recorded) == 0,
	}
	for _, k := range recorded {
		e.Recorded = append(e.Recorded, fmt.Sprintf("%s:%d", k.Filename, k.Line))
	}
	return e
}

// knownHostsMu serialises accept-new appends within this process, so that two hosts
// dialled at once do not interleave their lines.
var knownHostsMu sync.Mutex

// appendKnownHost records key for hostname, unless the file (re-read under the lock)
// meanwhile got a key for it.
func appendKnownHost(file, hostname string, remote net.Addr, key ssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	known, err := loadKnownHosts(file)
	if err != nil {
		return err
	}
	err = known(hostname, remote, key)
	var ke *knownhosts.KeyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ke) && len(ke.Want) > 0:
		return (&hostKeyCheck{file: file, addr: hostname}).keyError(key, ke.Want)
	case !errors.As(err, &ke):
		return fmt.Errorf("check host key of %s: %w", hostname, err)
	}

	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("accept new host key of %s: %w", hostname, err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("accept new host key of %s: %w", hostname, err)
	}
	defer f.Close()
	line := knownhosts.Line([]string{hostname}, key) + "\n"
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := io.WriteString(f, line); err != nil {
		return fmt.Errorf("accept new host key of %s: write %s: %w", hostname, file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("accept new host key of %s: write %s: %w", hostname, file, err)
	}
	return nil
}

// loadKnownHosts reads file; a missing file knows no host.
//
// The file is read on every call, as it is now, but parsed again only when its content
// changed: a fleet's hosts share one known_hosts file, and every dial of a run of 100
// hosts, and every reuse of a warm connection (recheckHostKey), parsed all 100 lines.
func loadKnownHosts(file string) (ssh.HostKeyCallback, error) {
	before, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return knownhosts.New()
	}
	if err != nil {
		return nil, fmt.Errorf("read known hosts: %w", err)
	}
	sum := sha256.Sum256(before)
	parsedKnownHosts.Lock()
	e, ok := parsedKnownHosts.files[file]
	parsedKnownHosts.Unlock()
	if ok && e.sum == sum {
		return e.known, nil
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("read known hosts: %w", err)
	}
	// Kept only when the file did not change while knownhosts read it: what is kept
	// is then what the content read first says.
	if after, err := os.ReadFile(file); err == nil && sha256.Sum256(after) == sum {
		parsedKnownHosts.Lock()
		parsedKnownHosts.files[file] = parsedFile{sum: sum, known: cb}
		parsedKnownHosts.Unlock()
	}
	return cb, nil
}

// parsedKnownHosts is the last parse of each known_hosts file, by the SHA-256 of the
// content it was parsed from. A knownhosts callback only reads what it parsed: one
// serves any number of dials at once.
var parsedKnownHosts = struct {
	sync.Mutex
	files map[string]parsedFile
}{files: map[string]parsedFile{}}

type parsedFile struct {
	sum   [sha256.Size]byte
	known ssh.HostKeyCallback
}

// probeKey is a key no host has: asking the callback about it lists the host's keys.
var probeKey, _ = ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))

func recordedKeys(known ssh.HostKeyCallback, addr string) []knownhosts.KnownKey {
	if probeKey == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	// The remote address is only consulted when the hostname is empty.
	if err := known(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey); errors.As(err, &ke) {
		return ke.Want
	}
	return nil
}

// algorithmsFor lists the host key algorithms that produce signatures a key of type
// keyType verifies.
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}
