package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// EnsureDocker makes sure a Docker engine answers and mmdebstrap is there. On Debian or
// Ubuntu as root it installs what is missing (docker.io, mmdebstrap) with apt-get and
// starts dockerd detached, logging to CacheDir/dockerd.log; elsewhere it says what to
// install. It says what it does on o.Log.
func EnsureDocker(ctx context.Context, o Options) error {
	if err := o.fill(); err != nil {
		return err
	}
	log := o.Log
	var missing []string
	answers := dockerAnswers(ctx)
	_, noClient := exec.LookPath("docker")
	_, noDaemon := exec.LookPath("dockerd")
	// A machine may have the docker client alone: without an engine to start, the
	// package is missing all the same.
	if noClient != nil || (!answers && noDaemon != nil) {
		missing = append(missing, "docker.io")
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		missing = append(missing, "mmdebstrap")
	}
	if len(missing) == 0 && answers {
		return nil
	}
	canInstall := os.Geteuid() == 0 && isDebianLike()
	if len(missing) > 0 {
		if !canInstall {
			return fmt.Errorf("the lab needs %s: install them (Debian/Ubuntu: apt-get install %s) and start the Docker engine",
				strings.Join(missing, " and "), strings.Join(missing, " "))
		}
		fmt.Fprintf(log, "lab: installing %s with apt-get\n", strings.Join(missing, " "))
		if err := runLogged(ctx, o, "apt-get", "update", "-q"); err != nil {
			return fmt.Errorf("apt-get update: %w", err)
		}
		args := append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)
		if err := runLogged(ctx, o, "apt-get", args...); err != nil {
			return fmt.Errorf("apt-get install %s: %w", strings.Join(missing, " "), err)
		}
	}
	if dockerAnswers(ctx) {
		return nil
	}
	if !canInstall {
		return fmt.Errorf("the Docker engine does not answer `docker info`: start it (for example `systemctl start docker`, or run dockerd as root)")
	}
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		return fmt.Errorf("the Docker engine does not answer and there is no dockerd to start (apt-get install docker.io): %w", err)
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return fmt.Errorf("start dockerd: %w", err)
	}
	logPath := filepath.Join(o.CacheDir, "dockerd.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start dockerd: %w", err)
	}
	defer logFile.Close()
	fmt.Fprintf(log, "lab: starting dockerd in the background (log %s)\n", logPath)
	// Not CommandContext: the engine must outlive this process, in a session of its own.
	cmd := exec.Command(dockerd)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dockerd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for !dockerAnswers(ctx) {
		select {
		case err := <-exited:
			return fmt.Errorf("dockerd exited (%v): see %s", err, logPath)
		case <-deadline.C:
			return fmt.Errorf("dockerd did not answer `docker info` within 60s: see %s", logPath)
		case <-ctx.Done():
			return fmt.Errorf("waiting for dockerd: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	fmt.Fprintln(log, "lab: the Docker engine answers")
	return nil
}

func dockerAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").Run() == nil
}

func isDebianLike() bool {
	_, err := os.Stat("/etc/debian_version")
	return err == nil
}

func runLogged(ctx context.Context, o Options, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return cmd.Run()
}
