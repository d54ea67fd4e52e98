package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// ensureAnsible returns the path of ansible-playbook, installing Debian's ansible
// package when it is missing. An error says why Ansible cannot be had; the bench then
// runs without it.
func ensureAnsible(ctx context.Context, log io.Writer) (string, error) {
	if p, err := exec.LookPath("ansible-playbook"); err == nil {
		return p, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("ansible-playbook is not installed and there is no apt-get to install Debian's ansible package")
	}
	fmt.Fprintln(log, "bench: installing Debian's ansible package (apt-get install ansible)")
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-q", "--no-install-recommends", "ansible")
	if os.Geteuid() != 0 {
		cmd = exec.CommandContext(ctx, "sudo", "-n", "apt-get", "install", "-y", "-q", "--no-install-recommends", "ansible")
	}
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("apt-get install ansible: %v: %s", err, lastLines(out.String(), 5))
	}
	return exec.LookPath("ansible-playbook")
}

// ansibleRun is one Ansible setup: a config with the settings that make Ansible as
// fast as it goes (forks = hosts, pipelining, ControlPersist, no fact gathering) and
// an inventory of the fleet.
type ansibleRun struct {
	bin, dir, config, inventory, controlDir string
}

func newAnsibleRun(bin, dir string, f *Fleet) (*ansibleRun, error) {
	a := &ansibleRun{bin: bin, dir: dir, config: filepath.Join(dir, "ansible.cfg"), inventory: filepath.Join(dir, "hosts.ini")}
	// The control sockets' path must stay short (a Unix socket's path is at most 108
	// bytes), so it goes under /tmp rather than the state folder.
	cd, err := os.MkdirTemp("", "cb-cp-")
	if err != nil {
		return nil, err
	}
	a.controlDir = cd
	var inv strings.Builder
	inv.WriteString("[bench]\n")
	for _, h := range f.Hosts {
		fmt.Fprintf(&inv, "%s ansible_host=%s ansible_user=root\n", h.Name, h.Address)
	}
	cfg := fmt.Sprintf(`[defaults]
forks = %d
gathering = explicit
host_key_checking = True
interpreter_python = /usr/bin/python3
private_key_file = %s
retry_files_enabled = False
deprecation_warnings = False
[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=120s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
control_path_dir = %s
control_path = %%(directory)s/%%%%C
`, len(f.Hosts), f.KeyFile, f.KnownHosts, cd)
	if err := os.WriteFile(a.inventory, []byte(inv.String()), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(a.config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return a, nil
}

// play runs a playbook on the fleet's hosts. It fails when any host failed or was
// unreachable, or when the recap does not name every host, and returns the number of
// tasks that changed something, all hosts together.
func (a *ansibleRun) play(ctx context.Context, playbook string, hosts int) (changed int, tasks []string, err error) {
	cmd := exec.CommandContext(ctx, a.bin, "-i", a.inventory, playbook)
	cmd.Dir = a.dir
	cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+a.config, "ANSIBLE_NOCOLOR=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, nil, fmt.Errorf("ansible-playbook %s: %v:\n%s", filepath.Base(playbook), err, lastLines(out.String(), 15))
	}
	recap := recapRE.FindAllStringSubmatch(out.String(), -1)
	if len(recap) != hosts {
		return 0, nil, fmt.Errorf("ansible-playbook %s: the recap names %d hosts, not %d:\n%s", filepath.Base(playbook), len(recap), hosts, lastLines(out.String(), 15))
	}
	for _, m := range recap {
		n, _ := strconv.Atoi(m[2])
		changed += n
		if m[3] != "0" || m[4] != "0" {
			return 0, nil, fmt.Errorf("ansible-playbook %s: host %s unreachable=%s failed=%s", filepath.Base(playbook), m[1], m[3], m[4])
		}
	}
	return changed, changedTasks(out.String()), nil
}

// changedTasks lists "TASK [name] on host" for each task Ansible reported changed.
func changedTasks(out string) []string {
	var task string
	var changed []string
	for _, l := range strings.Split(out, "\n") {
		if t, ok := strings.CutPrefix(l, "TASK ["); ok {
			task, _, _ = strings.Cut(t, "]")
		} else if h, ok := strings.CutPrefix(l, "changed: ["); ok {
			host, _, _ := strings.Cut(h, "]")
			changed = append(changed, task+" on "+host)
		}
	}
	return changed
}

// recapRE is a line of Ansible's PLAY RECAP: host, changed, unreachable, failed.
var recapRE = regexp.MustCompile(`(?m)^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// close ends the SSH control masters ControlPersist keeps, so that no process of the
// bench outlives it, and removes their folder.
func (a *ansibleRun) close() {
	entries, _ := os.ReadDir(a.controlDir)
	for _, e := range entries {
		_ = exec.Command("ssh", "-o", "ControlPath="+filepath.Join(a.controlDir, e.Name()), "-O", "exit", "bench-host").Run()
	}
	_ = os.RemoveAll(a.controlDir)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
