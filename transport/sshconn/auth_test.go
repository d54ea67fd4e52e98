package sshconn_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

func TestAgentKeysLogIn(t *testing.T) {
	srv := startSSHD(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	// Without -D, ssh-agent returns once its socket listens, and prints its pid.
	out, err := exec.Command("ssh-agent", "-s", "-a", sock).Output()
	if err != nil {
		t.Fatalf("start ssh-agent: %v", err)
	}
	m := regexp.MustCompile(`SSH_AGENT_PID=(\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("ssh-agent printed %q", out)
	}
	pid, _ := strconv.Atoi(m[1])
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
	t.Setenv("SSH_AUTH_SOCK", sock)
	if out, err := exec.Command("ssh-add", srv.ClientKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}

	cfg := srv.config(t)
	cfg.IdentityFiles = nil
	cfg.UseAgent = true
	c := dial(t, cfg)
	if out, err := transport.Output(context.Background(), c, "id -u"); err != nil || out != "0\n" {
		t.Fatalf("id -u gave %q, %v", out, err)
	}

	// Without the agent and without files there is nothing to log in with.
	cfg.UseAgent = false
	if _, err := sshconn.Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("dial without keys: %v", err)
	}
}

func TestProxyJumpGoesThroughTheJumpHost(t *testing.T) {
	srv := startSSHD(t)
	ctx := context.Background()

	for _, jump := range []string{srv.Addr, "root@" + srv.Addr + ",ssh://" + srv.Addr} {
		t.Run(jump, func(t *testing.T) {
			cfg := srv.config(t)
			cfg.ProxyJump = jump
			c := dial(t, cfg)
			out, err := transport.Output(ctx, c, "echo $SSH_CONNECTION")
			if err != nil || !strings.HasPrefix(out, "127.0.0.1 ") {
				t.Fatalf("got %q, %v", out, err)
			}
		})
	}

	// A dead jump host stops the dial although the target itself answers: the jump
	// is really taken, and the message names it.
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg := srv.config(t)
	cfg.ProxyJump = dead
	c, err := sshconn.Dial(ctx, cfg)
	if err == nil {
		c.Close()
		t.Fatal("dial through a dead jump host succeeded")
	}
	if !strings.Contains(err.Error(), "jump host root@"+dead) {
		t.Errorf("error %q does not name the jump host", err)
	}
}

func TestProxyJumpSpecsAreReadLikeOpenSSH(t *testing.T) {
	tests := []struct {
		spec    string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"none", nil, false},
		{"bastion", []string{"deploy@bastion:22"}, false},
		{"ops@bastion:2222", []string{"ops@bastion:2222"}, false},
		{"a, b@c:23", []string{"deploy@a:22", "b@c:23"}, false},
		{"ssh://x@[::1]:2200", []string{"x@[::1]:2200"}, false},
		{"[fe80::1]", []string{"deploy@[fe80::1]:22"}, false},
		{"::1", []string{"deploy@[::1]:22"}, false},
		{"host:99999", nil, true},
		{"host:ssh", nil, true},
		{"@host", nil, true},
		{"a,,b", nil, true},
	}
	for _, tt := range tests {
		got, err := sshconn.JumpHops(tt.spec, "deploy")
		if (err != nil) != tt.wantErr || (!tt.wantErr && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("JumpHops(%q) = %q, %v; want %q (error %v)", tt.spec, got, err, tt.want, tt.wantErr)
		}
	}
}
