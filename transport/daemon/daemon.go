// Package daemon starts this program again as a per-user background process serving a
// unix socket in a private directory: the warm SSH daemon (sshconn) and the keeper of
// idle docker exec channels (keeper) are both such processes. It holds what they share:
// the directory's checks and a start that two runs racing each other do only once.
package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// CheckPrivateDir makes dir if it is missing and refuses it unless it is a directory
// (not a symbolic link) owned by this user that no one else may enter (mode 0700 or
// less): whoever may enter it may reach the daemon's socket, and through it what the
// daemon holds. what names the directory in errors.
func CheckPrivateDir(dir, what string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s: %w", what, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%s %s is not a directory (%s): refused", what, dir, fi.Mode().Type())
	case !ok || int(st.Uid) != os.Getuid():
		return fmt.Errorf("%s %s is not owned by uid %d: refused", what, dir, os.Getuid())
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%s %s has mode %04o, others may enter it (want 0700): refused", what, dir, fi.Mode().Perm())
	}
	return nil
}

// Start starts this program (/proc/self/exe) again with env=dir in its environment,
// which its package's init turns into the daemon; the daemon listens on sock and says
// "ready\n" on its standard output, its standard error going to dir/name.log. Start
// holds dir/name.lock meanwhile, so that of two runs starting at once one starts it
// and the other finds it listening. what names the daemon in errors.
func Start(ctx context.Context, dir, name, env, sock, what string) error {
	lock, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("%s lock: %w", what, err)
	}
	defer lock.Close()
	locked := make(chan error, 1)
	go func() { locked <- syscall.Flock(int(lock.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-locked:
		if err != nil {
			return fmt.Errorf("%s lock: %w", what, err)
		}
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s lock: held by another run for 10 s", what)
	case <-ctx.Done():
		return ctx.Err()
	}
	// Another run may have started it while this one waited for the lock.
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return nil
	}
	os.Remove(sock) // a dead daemon's socket
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s log: %w", what, err)
	}
	defer logFile.Close()
	cmd := exec.Command("/proc/self/exe")
	// What ps shows: which daemon, for whom (its directory), not "/proc/self/exe".
	cmd.Args = []string{"cauldron-" + name, dir}
	cmd.Env = append(os.Environ(), env+"="+dir)
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the %s: %w", what, err)
	}
	// Reap it, should it exit while this process runs.
	go cmd.Wait()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			cmd.Process.Kill()
			return fmt.Errorf("the %s did not start (see %s): %w", what, logPath, err)
		}
		return nil
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		return fmt.Errorf("the %s did not start within 5 s", what)
	case <-ctx.Done():
		cmd.Process.Kill()
		return ctx.Err()
	}
}

// Listen is the daemon's socket, dir/name.sock, made while the umask lets only this
// user connect, and left in place when the listener closes (the daemon unlinks it
// itself, first, so that a run from then on starts a new daemon); it writes the
// daemon's pid to dir/name.pid.
func Listen(dir, name string) (*net.UnixListener, error) {
	old := syscall.Umask(0o077)
	ln, err := net.Listen("unix", filepath.Join(dir, name+".sock"))
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	os.WriteFile(filepath.Join(dir, name+".pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	return ul, nil
}

// Ready tells the run that started the daemon (Start) that it listens, and closes
// ready when it is a file: the run stops reading there.
func Ready(ready io.Writer) {
	fmt.Fprint(ready, "ready\n")
	if f, ok := ready.(*os.File); ok {
		f.Close()
	}
}

// Unlisten removes the daemon's socket and pid file, then closes ln: unlinked first,
// so that a run from then on starts a new daemon rather than reach this one.
func Unlisten(dir, name string, ln net.Listener) {
	os.Remove(filepath.Join(dir, name+".sock"))
	os.Remove(filepath.Join(dir, name+".pid"))
	ln.Close()
}

// AcceptEach serves every connection to ln with serve, each in a goroutine of its own,
// until ln is closed; it returns at once.
func AcceptEach(ln *net.UnixListener, serve func(*net.UnixConn)) {
	go func() {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
}

// IdleFromEnv reads how long a daemon may idle from the environment variable name: a
// duration such as "60s"; unset, "0" or "off" is 0 (no daemon), and anything else
// is an error (the caller says so and goes on without one).
func IdleFromEnv(name string) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" || v == "0" || v == "off" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q is not a duration such as 60s", name, v)
	}
	return d, nil
}
