package sshconn

// The warm connection (Config.Persist): what OpenSSH's ControlPersist gives Ansible. A
// per-user background process, the warm daemon, holds each host's authenticated SSH
// connection between runs, so a run pays a local handshake over a unix socket instead
// of the ~9 round trips of dialling the host.
//
// The daemon is the running program itself, started again (/proc/self/exe) with
// warmDaemonEnv naming the socket directory; the init below turns that process into
// the daemon before main runs. It listens on one unix socket in a directory that
// must be the user's own and private (0700; checked before every use, refused
// otherwise). A run connects, sends one JSON line saying how to reach the host (the
// same Config fields a direct dial uses: addresses and file paths, never a secret),
// and gets one JSON line back: the daemon's answer after finding or dialling that
// host's connection. The daemon keys its connections by a hash of address, user, the
// fingerprints of the keys offered, known_hosts file, host key mode and jump hosts,
// so a run with another user, key or known_hosts never gets another's connection.
// Then the run speaks SSH to the daemon over the socket (the daemon's host key is an
// ephemeral one it sent in the answer, which came over the private socket), and the
// daemon relays every channel the run opens (sessions, SFTP) and every global request
// (keepalives) to the host's connection: sudo, SFTP and kills work on top of it
// unchanged. sudo's password stays in the run: it goes through the relayed session
// as bytes, as over a direct connection. The command channel's shell is kept too: a
// run leaves it idle to the daemon and the next run takes it over (warmshell.go).
//
// The daemon dials with the same host key rules (knownhosts, accept-new only for an
// unknown key) and checks the key a connection was made with against the known_hosts
// file again before each reuse: a key removed or changed there drops the connection
// and the host is dialled again, and a host that then presents another key stops with
// the same *HostKeyError as a direct dial. A daemon that cannot be reached or started
// makes the run dial directly (said once per process on WarmNotes). A daemon that dies
// mid-run fails the commands in flight (they may have run on the host: not retried)
// and the connection dials the host directly for the later ones. The daemon exits
// when no run has been connected for the idle time the last run asked for.

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cauldron-go/cauldron/transport/daemon"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// PersistEnv turns the warm connection on for every Dial whose Config.Persist is 0:
// a duration such as "60s" (the daemon's idle time); "0" or "off" leaves it off.
const PersistEnv = "CAULDRON_SSH_PERSIST"

// warmDaemonEnv, when set, makes this program the warm daemon serving that directory.
const warmDaemonEnv = "CAULDRON_SSH_WARM_DAEMON"

// WarmNotes is where a run says, once per process, that it dials directly because
// the warm daemon could not be used.
var WarmNotes io.Writer = os.Stderr

func init() {
	dir := os.Getenv(warmDaemonEnv)
	if dir == "" {
		return
	}
	os.Unsetenv(warmDaemonEnv)
	stopProfile := func() {}
	if p := os.Getenv(WarmProfileEnv); p != "" {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "cauldron warm daemon: no CPU profile:", err)
		} else if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "cauldron warm daemon: no CPU profile:", err)
			f.Close()
		} else {
			stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		}
	}
	err := serveWarm(dir, os.Stdout)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cauldron warm daemon:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// WarmProfileEnv, when set where a run starts the warm daemon, names the file the
// daemon writes its CPU profile to (go tool pprof) when it exits: the daemon is a
// process of its own, which the run's profile does not see.
const WarmProfileEnv = "CAULDRON_SSH_WARM_PROFILE"

// persist is how long the daemon may idle: Config.Persist, else $CAULDRON_SSH_PERSIST;
// 0 means no warm connection.
func (cfg Config) persist() time.Duration {
	if cfg.Persist != 0 {
		return max(cfg.Persist, 0)
	}
	d, err := daemon.IdleFromEnv(PersistEnv)
	if err != nil {
		noteOnce(&badEnvNoted, fmt.Sprintf("cauldron: %v: no warm SSH connection", err))
	}
	return d
}

var (
	badEnvNoted, fallbackNoted, lostNoted sync.Once
)

func noteOnce(once *sync.Once, msg string) {
	once.Do(func() { fmt.Fprintln(WarmNotes, msg) })
}

// warmDir is the daemon's socket directory: Config.PersistDir, else
// $XDG_RUNTIME_DIR/cauldron-ssh, else cauldron-ssh-<uid> in the temporary directory.
func (cfg Config) warmDir() string {
	if cfg.PersistDir != "" {
		return cfg.PersistDir
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
		return filepath.Join(rt, "cauldron-ssh")
	}
	return filepath.Join(os.TempDir(), "cauldron-ssh-"+strconv.Itoa(os.Getuid()))
}

// CheckWarmDir makes dir if it is missing and refuses it unless it is a directory (not
// a symbolic link) owned by this user that no one else may enter (mode 0700 or less).
func CheckWarmDir(dir string) error { return daemon.CheckPrivateDir(dir, "warm socket directory") }

// warmRequest is what a run asks the daemon: how to reach one host. No secret.
type warmRequest struct {
	Addr           string        `json:"addr"`
	User           string        `json:"user"`
	IdentityFiles  []string      `json:"identity_files,omitempty"`
	AgentSock      string        `json:"agent_sock,omitempty"`
	KnownHostsFile string        `json:"known_hosts"`
	AcceptNew      bool          `json:"accept_new,omitempty"`
	ProxyJump      string        `json:"proxy_jump,omitempty"`
	DialTimeout    time.Duration `json:"dial_timeout"`
	KeepAlive      time.Duration `json:"keepalive"`
	Idle           time.Duration `json:"idle"`
	// Stop asks the daemon to close its connections and exit.
	Stop bool `json:"stop,omitempty"`
}

// warmAnswer is the daemon's answer: its SSH host key for this socket session, or why
// it could not reach the host.
type warmAnswer struct {
	ServerKey string        `json:"server_key,omitempty"` // authorized_keys format
	Reused    bool          `json:"reused,omitempty"`
	Error     string        `json:"error,omitempty"`
	HostKey   *HostKeyError `json:"host_key_error,omitempty"`
}

// warmHostError is the daemon's failure to reach the host itself (a refused key, a
// host that does not answer): the run reports it as a direct dial would, not dialling
// again.
type warmHostError struct{ err error }

func (e *warmHostError) Error() string { return e.err.Error() }
func (e *warmHostError) Unwrap() error { return e.err }

// dialWarm reaches the host through the daemon, starting it when none answers.
func dialWarm(ctx context.Context, cfg Config, idle time.Duration) (*Conn, error) {
	dir := cfg.warmDir()
	if err := CheckWarmDir(dir); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "warm.sock")
	wire, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		if err := startWarmDaemon(ctx, dir, sock); err != nil {
			return nil, err
		}
		if wire, err = net.DialTimeout("unix", sock, time.Second); err != nil {
			return nil, fmt.Errorf("connect to the warm daemon: %w", err)
		}
	}
	ok := false
	defer func() {
		if !ok {
			wire.Close()
		}
	}()
	hops := 1 + strings.Count(cfg.ProxyJump, ",")
	if cfg.ProxyJump != "" && cfg.ProxyJump != "none" {
		hops++
	}
	wctx, cancel := context.WithTimeout(ctx, time.Duration(hops)*cfg.DialTimeout+5*time.Second)
	defer cancel()
	stop := context.AfterFunc(wctx, func() { wire.Close() })
	defer stop()

	req := warmRequest{Addr: cfg.Addr, User: cfg.User, IdentityFiles: cfg.IdentityFiles,
		KnownHostsFile: cfg.KnownHostsFile, AcceptNew: cfg.AcceptNewHostKey, ProxyJump: cfg.ProxyJump,
		DialTimeout: cfg.DialTimeout, KeepAlive: cfg.KeepAlive, Idle: idle}
	if cfg.UseAgent {
		if req.AgentSock = os.Getenv("SSH_AUTH_SOCK"); req.AgentSock == "" {
			return nil, &warmHostError{errors.New("use of the SSH agent asked, but SSH_AUTH_SOCK is not set")}
		}
	}
	line, _ := json.Marshal(req)
	if _, err := wire.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("warm daemon: %w", err)
	}
	br := bufio.NewReader(wire)
	raw, err := br.ReadBytes('\n')
	if err != nil {
		if wctx.Err() != nil && ctx.Err() != nil {
			return nil, &warmHostError{ctx.Err()}
		}
		return nil, fmt.Errorf("warm daemon did not answer: %w", err)
	}
	var ans warmAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		return nil, fmt.Errorf("warm daemon: bad answer: %w", err)
	}
	if ans.HostKey != nil {
		return nil, &warmHostError{ans.HostKey}
	}
	if ans.Error != "" {
		return nil, &warmHostError{errors.New(ans.Error)}
	}
	serverKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(ans.ServerKey))
	if err != nil {
		return nil, fmt.Errorf("warm daemon: bad server key: %w", err)
	}
	bw := &bufferedConn{Conn: wire, r: br}
	ccfg := &ssh.ClientConfig{
		User:            cfg.User,
		HostKeyCallback: ssh.FixedHostKey(serverKey),
		Timeout:         cfg.DialTimeout,
	}
	ccfg.KeyExchanges = localLegKeyExchanges
	cc, chans, reqs, err := ssh.NewClientConn(bw, "warm:"+cfg.Addr, ccfg)
	if err != nil {
		return nil, fmt.Errorf("warm daemon: handshake: %w", err)
	}
	if !stop() {
		cc.Close()
		return nil, &warmHostError{ctx.Err()}
	}
	ok = true
	c := newConn(cfg)
	c.client = ssh.NewClient(cc, chans, reqs)
	c.wire = bw
	c.warm = true
	c.watchClient()
	return c, nil
}

// localLegKeyExchanges is the one key exchange of the SSH between a run and the
// daemon: X25519 alone, not the default hybrid with ML-KEM-768, whose key generation
// and decapsulation were a third of a warm run's CPU (one handshake per host: 100
// hosts, 100 handshakes). ML-KEM guards a recorded network transcript against a
// future quantum computer; this leg never leaves the machine: it runs over a unix
// socket in a directory only the user may enter, so whoever could record it could
// already read the user's keys. The leg to the host keeps the default key exchanges.
var localLegKeyExchanges = []string{ssh.KeyExchangeCurve25519}

// bufferedConn is a connection whose first bytes were read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// startWarmDaemon starts the daemon for dir, under a lock so that two runs starting
// at once start one, and waits until it listens.
func startWarmDaemon(ctx context.Context, dir, sock string) error {
	return daemon.Start(ctx, dir, "warm", warmDaemonEnv, sock, "warm daemon")
}

// StopWarmDaemon makes the daemon serving dir (Config.PersistDir; "" for the
// default) close its connections and exit; it returns at once when none runs there.
func StopWarmDaemon(dir string) error {
	if dir == "" {
		dir = Config{}.warmDir()
	}
	if err := CheckWarmDir(dir); err != nil {
		return err
	}
	conn, err := net.DialTimeout("unix", filepath.Join(dir, "warm.sock"), time.Second)
	if err != nil {
		return nil // none runs
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(`{"stop":true}` + "\n")); err != nil {
		return fmt.Errorf("stop the warm daemon: %w", err)
	}
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		return fmt.Errorf("stop the warm daemon: %w", err)
	}
	// It exits now: a run still connected loses its connection and dials directly.
	return nil
}

// warmHost is one host's connection held by the daemon.
type warmHost struct {
	mu   sync.Mutex // held while dialling
	conn *Conn
	dead chan struct{}

	// parked are the command channels' shells runs left idle (shell.go), by the line
	// that started them; parkedMu guards it.
	parkedMu sync.Mutex
	parked   map[string]*hostShell
}

type warmDaemon struct {
	dir    string
	signer ssh.Signer

	mu       sync.Mutex
	hosts    map[string]*warmHost
	active   int
	lastUsed time.Time
	idle     time.Duration
	stop     chan struct{}
	stopOnce sync.Once
}

// serveWarm is the daemon: it listens on dir/warm.sock, says "ready" on ready, and
// returns once it has been idle for the idle time the last run asked for.
func serveWarm(dir string, ready io.Writer) error {
	if err := CheckWarmDir(dir); err != nil {
		return err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	ln, err := daemon.Listen(dir, "warm")
	if err != nil {
		return err
	}
	d := &warmDaemon{dir: dir, signer: signer, hosts: map[string]*warmHost{}, lastUsed: time.Now(), idle: 60 * time.Second,
		stop: make(chan struct{})}
	daemon.Ready(ready)
	daemon.AcceptEach(ln, func(c *net.UnixConn) { d.serve(c) })
	for {
		d.mu.Lock()
		idle, since, active := d.idle, time.Since(d.lastUsed), d.active
		d.mu.Unlock()
		if active == 0 && since >= idle {
			break
		}
		select {
		case <-d.stop:
		case <-time.After(min(max(idle/10, 20*time.Millisecond), time.Second)):
			continue
		}
		break
	}
	daemon.Unlisten(dir, "warm", ln)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range d.hosts {
		if h.conn != nil {
			h.conn.Close()
		}
	}
	return nil
}

// serve answers one run: finds or dials its host, then relays its SSH connection.
func (d *warmDaemon) serve(conn net.Conn) {
	defer conn.Close()
	d.mu.Lock()
	d.active++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.active--
		d.lastUsed = time.Now()
		d.mu.Unlock()
	}()

	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	raw, err := br.ReadBytes('\n')
	if err != nil {
		return
	}
	conn.SetReadDeadline(time.Time{})
	var req warmRequest
	answer := func(a warmAnswer) error {
		b, _ := json.Marshal(a)
		_, err := conn.Write(append(b, '\n'))
		return err
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		answer(warmAnswer{Error: "warm daemon: bad request: " + err.Error()})
		return
	}
	if req.Stop {
		d.stopOnce.Do(func() { close(d.stop) })
		answer(warmAnswer{})
		return
	}
	if req.Idle > 0 {
		d.mu.Lock()
		d.idle = req.Idle
		d.mu.Unlock()
	}
	h, up, dead, reused, err := d.upstream(req)
	if err != nil {
		var hk *HostKeyError
		if errors.As(err, &hk) {
			answer(warmAnswer{HostKey: hk})
		} else {
			answer(warmAnswer{Error: err.Error()})
		}
		return
	}
	if answer(warmAnswer{ServerKey: string(ssh.MarshalAuthorizedKey(d.signer.PublicKey())), Reused: reused}) != nil {
		return
	}
	scfg := &ssh.ServerConfig{NoClientAuth: true}
	scfg.KeyExchanges = localLegKeyExchanges
	scfg.AddHostKey(d.signer)
	sc, chans, reqs, err := ssh.NewServerConn(&bufferedConn{Conn: conn, r: br}, scfg)
	if err != nil {
		return
	}
	defer sc.Close()
	// The host's connection ending ends the run's too, so that its commands fail
	// instead of waiting.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-dead:
			sc.Close()
		case <-stop:
		}
	}()
	go func() {
		for r := range reqs {
			ok, payload, _ := up.SendRequest(r.Type, r.WantReply, r.Payload)
			if r.WantReply {
				r.Reply(ok, payload)
			}
		}
	}()
	for nc := range chans {
		if nc.ChannelType() == shellChannelType {
			go h.serveShell(up, nc)
			continue
		}
		go relayChannel(up, nc)
	}
}

// upstream finds the host's live connection, or dials it, and returns its client and
// the channel closed when it ends: the run keeps to these even when another run
// later finds them ended and dials the host again.
func (d *warmDaemon) upstream(req warmRequest) (*warmHost, *ssh.Client, <-chan struct{}, bool, error) {
	cfg := Config{Addr: req.Addr, User: req.User, IdentityFiles: req.IdentityFiles, UseAgent: req.AgentSock != "",
		agentSock: req.AgentSock, KnownHostsFile: req.KnownHostsFile, AcceptNewHostKey: req.AcceptNew,
		ProxyJump: req.ProxyJump, DialTimeout: req.DialTimeout, KeepAlive: req.KeepAlive, Persist: -1, NoChannel: true}
	key, err := warmKey(cfg)
	if err != nil {
		return nil, nil, nil, false, err
	}
	d.mu.Lock()
	h := d.hosts[key]
	if h == nil {
		h = &warmHost{}
		d.hosts[key] = h
	}
	d.mu.Unlock()

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil {
		select {
		case <-h.dead:
		default:
			// The key it was made with must still be the one known_hosts records.
			if err := h.conn.recheckHostKey(); err == nil {
				return h, h.conn.client, h.dead, true, nil
			}
		}
		h.conn.Close()
		h.conn = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		return nil, nil, nil, false, err
	}
	h.conn = c
	h.dead = make(chan struct{})
	dead := h.dead
	go func() {
		c.client.Wait()
		close(dead)
	}()
	return h, c.client, dead, false, nil
}

// warmKey is the hash that tells hosts' connections apart: address, user, the
// fingerprints of the keys offered, known_hosts file, host key mode and jump hosts.
func warmKey(cfg Config) (string, error) {
	var prints []string
	for _, file := range cfg.IdentityFiles {
		pem, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("identity file: %w", err)
		}
		s, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			return "", fmt.Errorf("identity file %s: %w", file, err)
		}
		prints = append(prints, ssh.FingerprintSHA256(s.PublicKey()))
	}
	if cfg.agentSock != "" {
		conn, err := net.Dial("unix", cfg.agentSock)
		if err != nil {
			return "", fmt.Errorf("connect to the SSH agent: %w", err)
		}
		keys, err := agent.NewClient(conn).List()
		conn.Close()
		if err != nil {
			return "", fmt.Errorf("list the keys of the SSH agent: %w", err)
		}
		for _, k := range keys {
			prints = append(prints, "agent:"+ssh.FingerprintSHA256(k))
		}
	}
	slices.Sort(prints)
	h := sha256.New()
	for _, part := range append([]string{cfg.Addr, cfg.User, cfg.KnownHostsFile, strconv.FormatBool(cfg.AcceptNewHostKey),
		cfg.ProxyJump, cfg.agentSock}, prints...) {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// recheckHostKey checks the key the connection was made with against the known_hosts
// file as it is now.
func (c *Conn) recheckHostKey() error {
	if c.hostKey == nil {
		return errors.New("no host key recorded")
	}
	check, err := newHostKeyCheck(c.cfg.KnownHostsFile, false, c.cfg.Addr)
	if err != nil {
		return err
	}
	return check.verify(c.cfg.Addr, c.hostRemote, c.hostKey)
}

// relayChannel opens the run's channel on the host's connection and copies both ways:
// data, stderr, requests, EOF and close.
func relayChannel(up *ssh.Client, nc ssh.NewChannel) {
	upCh, upReqs, err := up.OpenChannel(nc.ChannelType(), nc.ExtraData())
	if err != nil {
		var oe *ssh.OpenChannelError
		if errors.As(err, &oe) {
			nc.Reject(oe.Reason, oe.Message)
		} else {
			nc.Reject(ssh.ConnectionFailed, err.Error())
		}
		return
	}
	downCh, downReqs, err := nc.Accept()
	if err != nil {
		upCh.Close()
		return
	}
	defer downCh.Close()
	defer upCh.Close()

	// The run's data goes to the host only after the request that starts the session's
	// program (exec, subsystem, shell): the two travel apart here, and the host must
	// see them in the order the run sent them.
	started := make(chan struct{})
	var startOnce sync.Once
	start := func() { startOnce.Do(func() { close(started) }) }
	if nc.ChannelType() != "session" {
		start()
	}
	go func() {
		for r := range downReqs {
			ok, err := upCh.SendRequest(r.Type, r.WantReply, r.Payload)
			if r.WantReply {
				r.Reply(ok && err == nil, nil)
			}
			switch r.Type {
			case "exec", "subsystem", "shell":
				start()
			}
		}
		// The run closed its channel (a cancelled command): close the host's.
		start()
		upCh.Close()
	}()
	go func() {
		<-started
		io.Copy(upCh, downCh)
		upCh.CloseWrite()
	}()
	go func() {
		<-started
		io.Copy(upCh.Stderr(), downCh.Stderr())
	}()

	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		io.Copy(downCh, upCh)
	}()
	go func() {
		defer wg.Done()
		io.Copy(downCh.Stderr(), upCh.Stderr())
	}()
	go func() {
		defer wg.Done()
		// exit-status and exit-signal: before the close, as the host sent them.
		for r := range upReqs {
			ok, _ := downCh.SendRequest(r.Type, r.WantReply, r.Payload)
			if r.WantReply {
				r.Reply(ok, nil)
			}
		}
	}()
	wg.Wait()
	downCh.CloseWrite()
}
