package sshconn_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/channel/channeltest"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

// warmConfig is the server's config with a warm connection whose daemon serves a
// private directory of the test's own and idles for idle; the daemon is killed when
// the test ends.
func warmConfig(t *testing.T, srv *testServer, idle time.Duration) sshconn.Config {
	t.Helper()
	cfg := srv.config(t)
	cfg.Persist = idle
	cfg.PersistDir = filepath.Join(t.TempDir(), "warm")
	t.Cleanup(func() {
		if pid := warmDaemonPID(cfg.PersistDir); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return cfg
}

// warmDaemonPID is the pid the daemon serving dir wrote, 0 when there is none.
func warmDaemonPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "warm.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// logins counts the logins sshd accepted so far.
func (s *testServer) logins() int { return strings.Count(s.log.String(), "Accepted publickey") }

// warmRun dials cfg, runs one command and closes: one run of a short deploy.
func warmRun(t *testing.T, cfg sshconn.Config) {
	t.Helper()
	c, err := sshconn.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if out, err := transport.Output(context.Background(), c, "echo warm"); err != nil || out != "warm\n" {
		t.Fatalf("echo: %q %v", out, err)
	}
}

func TestASecondRunReusesTheWarmConnection(t *testing.T) {
	srv := startSSHD(t)
	var notes lockedBuffer
	sshconn.NoteWarmFallbacksTo(t, &notes)
	cfg := warmConfig(t, srv, time.Minute)
	for range 3 {
		warmRun(t, cfg)
	}
	if n := srv.logins(); n != 1 {
		t.Errorf("sshd accepted %d logins for 3 runs, want 1 (notes: %q)", n, notes.String())
	}
	if notes.String() != "" {
		t.Errorf("notes: %q, want none", notes.String())
	}
}

// The leg between a run and its daemon never leaves the machine: it pays for X25519
// alone, not for the hybrid with ML-KEM-768, once per host of every run.
func TestTheLegToTheWarmDaemonUsesTheClassicalKeyExchange(t *testing.T) {
	srv := startSSHD(t)
	cfg := warmConfig(t, srv, time.Minute)
	for run := range 2 { // the run that starts the daemon and dials, and one that reuses
		c, err := sshconn.Dial(context.Background(), cfg)
		if err != nil {
			t.Fatalf("run %d: dial: %v", run+1, err)
		}
		if got := sshconn.LocalLegKeyExchange(c); got != ssh.KeyExchangeCurve25519 {
			t.Errorf("run %d: the leg to the warm daemon used key exchange %q, want %q", run+1, got, ssh.KeyExchangeCurve25519)
		}
		if out, err := transport.Output(context.Background(), c, "echo warm"); err != nil || out != "warm\n" {
			t.Errorf("run %d: echo: %q %v", run+1, out, err)
		}
		c.Close()
	}
	if n := srv.logins(); n != 1 {
		t.Errorf("sshd accepted %d logins for 2 runs, want 1", n)
	}
}

func TestARunWithAnotherKeyOrKnownHostsDoesNotGetAnothersWarmConnection(t *testing.T) {
	srv := startSSHD(t)
	cfg := warmConfig(t, srv, time.Minute)
	warmRun(t, cfg)
	other := cfg
	other.KnownHostsFile = srv.knownHosts(t) // same content, another file
	warmRun(t, other)
	warmRun(t, cfg)
	if n := srv.logins(); n != 2 {
		t.Errorf("sshd accepted %d logins, want 2 (one per known_hosts file)", n)
	}
}

func TestTheWarmDaemonEndsWhenIdle(t *testing.T) {
	srv := startSSHD(t)
	cfg := warmConfig(t, srv, 300*time.Millisecond)
	warmRun(t, cfg)
	pid := warmDaemonPID(cfg.PersistDir)
	if pid == 0 {
		t.Fatal("no warm daemon started")
	}
	deadline := time.Now().Add(15 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the warm daemon (pid %d) still runs 15 s after its 300 ms idle time", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(cfg.PersistDir, "warm.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is left behind: %v", err)
	}
	// The next run starts a new one.
	warmRun(t, cfg)
	if warmDaemonPID(cfg.PersistDir) == 0 {
		t.Error("no new warm daemon started")
	}
}

func TestStopWarmDaemonEndsTheDaemon(t *testing.T) {
	srv := startSSHD(t)
	cfg := warmConfig(t, srv, time.Hour)
	warmRun(t, cfg)
	pid := warmDaemonPID(cfg.PersistDir)
	if err := sshconn.StopWarmDaemon(cfg.PersistDir); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pid == 0 || syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the warm daemon (pid %d) still runs 10 s after it was stopped", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := sshconn.StopWarmDaemon(cfg.PersistDir); err != nil {
		t.Errorf("stopping when none runs: %v", err)
	}
}

func TestAWarmSocketDirectoryOthersMayEnterIsRefused(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	writeFile(t, file, "", 0o600)
	link := filepath.Join(base, "link")
	private := filepath.Join(base, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Symlink(private, link)
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o755)
	group := filepath.Join(base, "group")
	if err := os.Mkdir(group, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(group, 0o770)
	notMine := filepath.Join(base, "notmine")
	if err := os.Mkdir(notMine, 0o700); err != nil {
		t.Fatal(err)
	}
	// Only root can give a directory away; as another user that case is left out.
	notMineWant := "is not owned by uid"
	if err := os.Chown(notMine, 65534, 65534); err != nil {
		notMineWant = ""
	}
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"private", private, ""},
		{"missing, made private", filepath.Join(base, "new"), ""},
		{"mode 0755", open, "has mode 0755"},
		{"mode 0770", group, "has mode 0770"},
		{"a symbolic link", link, "is not a directory"},
		{"a file", file, "is not a directory"},
		{"another user's", notMine, notMineWant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sshconn.CheckWarmDir(tc.dir)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("CheckWarmDir: %v, want %q", err, tc.want)
			}
		})
	}

	// A run given such a directory dials directly, says so, and leaves no socket in it.
	srv := startSSHD(t)
	var notes lockedBuffer
	sshconn.NoteWarmFallbacksTo(t, &notes)
	cfg := srv.config(t)
	cfg.Persist, cfg.PersistDir = time.Minute, open
	warmRun(t, cfg)
	warmRun(t, cfg)
	if !strings.Contains(notes.String(), "has mode 0755") || strings.Count(notes.String(), "\n") != 1 {
		t.Errorf("notes: %q, want the refusal once", notes.String())
	}
	if entries, _ := os.ReadDir(open); len(entries) != 0 {
		t.Errorf("the refused directory holds %v", entries)
	}
	if n := srv.logins(); n != 2 {
		t.Errorf("sshd accepted %d logins, want 2 direct ones", n)
	}
}

func TestAChangedHostKeyStopsThatHostEvenWithAWarmDaemon(t *testing.T) {
	srv := startSSHD(t)
	cfg := warmConfig(t, srv, time.Minute)
	warmRun(t, cfg)
	// known_hosts now records another key for the host, as after a reinstall or an
	// attack: the warm connection made with the old key must not be used.
	other := writeKey(t, filepath.Join(t.TempDir(), "other"), "ed25519")
	writeFile(t, cfg.KnownHostsFile, knownhosts.Line([]string{srv.Addr}, other)+"\n", 0o600)
	c, err := sshconn.Dial(context.Background(), cfg)
	if err == nil {
		c.Close()
		t.Fatal("the host was reached through the warm daemon with a key known_hosts no longer records")
	}
	var ke *sshconn.HostKeyError
	if !errors.As(err, &ke) || ke.Unknown || !strings.Contains(err.Error(), "HOST KEY CHANGED") {
		t.Errorf("error %v, want a changed host key", err)
	}
	// The host's own key back: the host is reached again.
	writeFile(t, cfg.KnownHostsFile, knownhosts.Line([]string{srv.Addr}, srv.HostKeys["ed25519"])+"\n", 0o600)
	warmRun(t, cfg)
}

func TestKillingTheWarmDaemonMidRunFallsBackToADirectDial(t *testing.T) {
	srv := startSSHD(t)
	var notes lockedBuffer
	sshconn.NoteWarmFallbacksTo(t, &notes)
	cfg := warmConfig(t, srv, time.Minute)
	c := dial(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := transport.Output(ctx, c, "echo before"); err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan error, 1)
	go func() { _, err := transport.Output(ctx, c, "sleep 3; echo late"); inFlight <- err }()
	time.Sleep(500 * time.Millisecond)
	pid := warmDaemonPID(cfg.PersistDir)
	if pid == 0 {
		t.Fatal("no warm daemon")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-inFlight:
		if err == nil {
			t.Error("the command in flight when the daemon died succeeded; want it to fail (it may have run)")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the command in flight still waits 15 s after the daemon was killed")
	}
	// Several at once, as a runner starts a host's checks: one dials, all run.
	errs := make(chan error, 5)
	for i := range 5 {
		go func() {
			out, err := transport.Output(ctx, c, "echo after "+strconv.Itoa(i))
			if err == nil && out != "after "+strconv.Itoa(i)+"\n" {
				err = errors.New("printed " + out)
			}
			errs <- err
		}()
	}
	for range 5 {
		if err := <-errs; err != nil {
			t.Errorf("a command after the kill: %v", err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the commands after the kill took the whole 30 s")
	}
	if !strings.Contains(notes.String(), "was lost: dialling directly") {
		t.Errorf("notes: %q, want the fallback said", notes.String())
	}
	if n := srv.logins(); n != 2 {
		t.Errorf("sshd accepted %d logins, want 2 (the daemon's, then the direct one)", n)
	}
}

func TestTheCommandChannelKeepsRunSemanticsOverTheWarmConnection(t *testing.T) {
	srv := startSSHD(t)
	cfg := warmConfig(t, srv, time.Minute)
	channeltest.Run(t, func(t *testing.T) transport.Conn { return dial(t, cfg) },
		func(c transport.Conn) error { return c.(*sshconn.Conn).ChannelError() })
}

// A connection kept warm: the first run starts the daemon and dials the host; a run
// within the next minute finds the host's connection authenticated and pays one local
// handshake instead of the round trips of dialling. CAULDRON_SSH_PERSIST=60s does the
// same for every host, and ssh.persist in the inventory for one.
func ExampleConfig_persist() {
	ctx := context.Background()
	c, err := sshconn.Dial(ctx, sshconn.Config{
		Addr:          "web1.example:22",
		User:          "deploy",
		IdentityFiles: []string{"/home/deploy/.ssh/id_ed25519"},
		Persist:       time.Minute, // the daemon exits a minute after the last run
	})
	if err != nil {
		return
	}
	defer c.Close()
	transport.Output(ctx, c, "uptime")
}

func TestThePersistEnvironmentVariableTurnsTheWarmConnectionOn(t *testing.T) {
	srv := startSSHD(t)
	var notes lockedBuffer
	sshconn.NoteWarmFallbacksTo(t, &notes)
	for _, tc := range []struct {
		env    string
		logins int
		note   string
	}{
		{"1m", 1, ""},
		{"off", 2, ""},
		{"sixty", 2, "is not a duration"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(sshconn.PersistEnv, tc.env)
			cfg := warmConfig(t, srv, 0)
			before := srv.logins()
			warmRun(t, cfg)
			warmRun(t, cfg)
			if n := srv.logins() - before; n != tc.logins {
				t.Errorf("%s=%s: %d logins for 2 runs, want %d", sshconn.PersistEnv, tc.env, n, tc.logins)
			}
			if tc.note != "" && !strings.Contains(notes.String(), tc.note) {
				t.Errorf("notes %q, want %q", notes.String(), tc.note)
			}
		})
	}
	t.Run("persist -1 in the config wins", func(t *testing.T) {
		t.Setenv(sshconn.PersistEnv, "1m")
		cfg := warmConfig(t, srv, -1)
		before := srv.logins()
		warmRun(t, cfg)
		warmRun(t, cfg)
		if n := srv.logins() - before; n != 2 {
			t.Errorf("%d logins for 2 runs, want 2 direct ones", n)
		}
	})
}

// shellPID is the pid of the shell that ran a command over c's command channel: the
// parent of the command's sh -c.
func shellPID(t *testing.T, c *sshconn.Conn) string {
	t.Helper()
	out, err := transport.Output(context.Background(), c, "echo $PPID")
	if err != nil {
		t.Fatalf("echo $PPID: %v", err)
	}
	if err := c.ChannelError(); err != nil {
		t.Fatalf("the command did not go over the command channel: %v", err)
	}
	return strings.TrimSpace(out)
}

// warmShellRun dials cfg, says which shell ran its command, and closes.
func warmShellRun(t *testing.T, cfg sshconn.Config, also ...string) string {
	t.Helper()
	c := dial(t, cfg)
	defer c.Close()
	for _, line := range also {
		if _, err := transport.Output(context.Background(), c, line); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	return shellPID(t, c)
}

func TestASecondWarmRunReusesTheHostsCommandChannel(t *testing.T) {
	srv := startSSHD(t)
	cfg := warmConfig(t, srv, time.Minute)
	first := warmShellRun(t, cfg)
	for i := range 3 {
		if again := warmShellRun(t, cfg); again != first {
			t.Fatalf("run %d: its commands ran in shell %s, the first run's in %s: want the same shell", i+2, again, first)
		}
	}
}

func TestAWarmRunGetsOnlyAParkedShellOfItsOwnLoginAndBecome(t *testing.T) {
	srv := startSSHD(t)
	becomeHost(t, srv, "pw-"+randomWord(t), becomeUser+" ALL=(ALL:ALL) NOPASSWD: ALL")
	login := warmConfig(t, srv, time.Minute)
	login.User = becomeUser
	become := login
	become.Become = true
	asRoot := warmShellRun(t, become)
	for i, tc := range []struct {
		name string
		cfg  sshconn.Config
		uid  string
	}{
		{"login", login, "not 0"},
		{"become", become, "0"},
		{"login", login, "not 0"},
		{"become", become, "0"},
	} {
		c := dial(t, tc.cfg)
		out, err := transport.Output(context.Background(), c, "id -u")
		if err != nil {
			t.Fatalf("run %d (%s): id -u: %v", i+2, tc.name, err)
		}
		if uid := strings.TrimSpace(out); (uid == "0") != (tc.uid == "0") {
			t.Errorf("run %d (%s) ran as uid %s, want %s", i+2, tc.name, uid, tc.uid)
		}
		shell := shellPID(t, c)
		c.Close()
		if tc.name == "become" && shell != asRoot {
			t.Errorf("run %d (become) ran in shell %s, want the first become run's %s, parked", i+2, shell, asRoot)
		}
	}
}

func TestAShellStartedWithASudoPasswordIsNotKeptForTheNextRun(t *testing.T) {
	srv := startSSHD(t)
	password := "pw-" + randomWord(t) + "-secret"
	becomeHost(t, srv, password, becomeUser+" ALL=(ALL:ALL) ALL")
	cfg := warmConfig(t, srv, time.Minute)
	cfg.User, cfg.Become = becomeUser, true
	cfg.BecomePassword = func() (string, error) { return password, nil }
	c := dial(t, cfg)
	if out, err := transport.Output(context.Background(), c, "id -u"); err != nil || out != "0\n" {
		t.Fatalf("id -u with the password: %q %v", out, err)
	}
	c.Close()
	// A later run with the same login but a wrong password must not find a root shell.
	cfg.BecomePassword = func() (string, error) { return "wrong-" + randomWord(t), nil }
	c = dial(t, cfg)
	defer c.Close()
	if out, err := transport.Output(context.Background(), c, "id -u"); err == nil {
		t.Errorf("a run with a wrong sudo password ran id -u: %q", out)
	}
}

func TestAShellLeftWithACommandInFlightIsNotHandedToTheNextRun(t *testing.T) {
	srv := startSSHD(t)
	cfg := warmConfig(t, srv, time.Minute)
	c := dial(t, cfg)
	first := shellPID(t, c)
	inFlight := make(chan error, 1)
	go func() { inFlight <- c.Run(context.Background(), transport.Command{Line: "sleep 10; echo late"}) }()
	time.Sleep(300 * time.Millisecond)
	c.Close() // the run ends with its command still running
	select {
	case err := <-inFlight:
		if err == nil {
			t.Error("the command in flight at Close succeeded")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the command in flight at Close still waits 15 s later")
	}

	// The next run's commands do not wait behind it, nor see its output.
	c = dial(t, cfg)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := transport.Output(ctx, c, "echo next")
	if err != nil || out != "next\n" {
		t.Fatalf("the next run's command gave %q, %v", out, err)
	}
	if again := shellPID(t, c); again == first {
		t.Errorf("the next run got shell %s, left with a command in flight", first)
	}
}

func TestAParkedShellThatEndsIsReplacedByANewOne(t *testing.T) {
	srv := startSSHD(t)
	cfg := warmConfig(t, srv, time.Minute)
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, pid string)
	}{
		{"killed while parked", func(t *testing.T, pid string) {
			n, _ := strconv.Atoi(pid)
			if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
		}},
		{"ending in the next run", func(t *testing.T, pid string) {
			c := dial(t, cfg)
			defer c.Close()
			// Its own shell: the run's channel breaks; the commands after get a new one.
			transport.Output(context.Background(), c, "kill -9 $PPID")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if out, err := transport.Output(ctx, c, "echo after"); err != nil || out != "after\n" {
				t.Fatalf("after the shell ended: %q %v", out, err)
			}
			if again := shellPID(t, c); again == pid {
				t.Fatalf("shell %s still in use", pid)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := warmShellRun(t, cfg)
			tc.end(t, pid)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := dial(t, cfg)
			defer c.Close()
			if out, err := transport.Output(ctx, c, "echo next"); err != nil || out != "next\n" {
				t.Fatalf("the next run's command gave %q, %v", out, err)
			}
			if again := shellPID(t, c); again == pid {
				t.Errorf("the next run ran in shell %s, which ended", pid)
			}
		})
	}
}

func TestAWarmRunThatTakesOverTheShellWaitsOneRoundTripLess(t *testing.T) {
	srv := startSSHD(t)
	for _, tc := range []struct {
		name string
		cfg  sshconn.Config
		want []int // round trips of each run's one command
	}{
		{"direct", srv.config(t), []int{2, 2}},
		{"warm", warmConfig(t, srv, time.Minute), []int{2, 1, 1}},
	} {
		for i, want := range tc.want {
			c := dial(t, tc.cfg)
			if err := c.Run(context.Background(), transport.Command{Line: "true"}); err != nil {
				t.Fatal(err)
			}
			got := c.Traffic()
			c.Close()
			if got != (transport.TrafficCounts{Commands: 1, RoundTrips: want}) {
				t.Errorf("%s run %d: %+v, want 1 command in %d round trip(s)", tc.name, i+1, got, want)
			}
		}
	}
}

func TestTheWarmDaemonWritesItsCPUProfileWhenAsked(t *testing.T) {
	srv := startSSHD(t)
	profile := filepath.Join(t.TempDir(), "daemon.pprof")
	t.Setenv(sshconn.WarmProfileEnv, profile)
	cfg := warmConfig(t, srv, time.Hour)
	warmRun(t, cfg)
	pid := warmDaemonPID(cfg.PersistDir)
	if err := sshconn.StopWarmDaemon(cfg.PersistDir); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for pid > 0 && syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	b, err := os.ReadFile(profile)
	if err != nil {
		t.Fatal(err)
	}
	// runtime/pprof writes a gzipped protocol buffer.
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("the profile (%d bytes) is not gzipped: %q", len(b), b[:min(len(b), 16)])
	}
}
