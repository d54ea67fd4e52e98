// Package lab brings up the seed's topology on local Docker containers that run systemd:
// a base image built here from Debian packages (there is no registry), the lab network,
// the four hosts, the setup artifacts, and the lab inventory.
package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BasePackages is what a freshly installed server has; everything else (HAProxy,
// Apache, Nginx, Java, PostgreSQL) is the recipes' to install.
var BasePackages = []string{
	"systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "iproute2", "iputils-ping",
	"procps", "ca-certificates", "curl", "less", "netbase", "tzdata",
}

// Suite is the Debian release the lab runs.
const Suite = "bookworm"

// hostKeyUnit makes each container generate its own SSH host keys at first boot, so
// no two lab hosts share a key baked into the image.
const hostKeyUnit = `[Unit]
Description=Generate SSH host keys for this container
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
`

// imageRecipeVersion changes whenever the way the image is built changes, so the cache
// key changes with it.
const imageRecipeVersion = "2"

// BaseImageTag is the image name for the current base recipe, keyed by what goes into it.
func BaseImageTag() string {
	h := sha256.New()
	fmt.Fprint(h, imageRecipeVersion, "\n", Suite, "\n", strings.Join(BasePackages, ","), "\n", hostKeyUnit)
	return "cauldron-base:" + hex.EncodeToString(h.Sum(nil))[:12]
}

// BaseImage returns the tag of the lab's base image, building it when it is not in
// Docker's image store yet. The build runs mmdebstrap, which takes its mirror from the
// machine's own apt sources, and imports the root file system with docker import.
func BaseImage(ctx context.Context, log io.Writer) (string, error) {
	tag := BaseImageTag()
	if imageExists(ctx, tag) {
		return tag, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "", fmt.Errorf("building the lab base image needs mmdebstrap (apt-get install mmdebstrap): %w", err)
	}
	tmp, err := os.MkdirTemp("", "cauldron-base-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	unit := filepath.Join(tmp, "cauldron-ssh-hostkeys.service")
	if err := os.WriteFile(unit, []byte(hostKeyUnit), 0o644); err != nil {
		return "", err
	}
	tarball := filepath.Join(tmp, "rootfs.tar")
	fmt.Fprintf(log, "lab: building base image %s with mmdebstrap (about a minute)\n", tag)
	args := []string{
		"--variant=apt", "--include=" + strings.Join(BasePackages, ","),
		"--customize-hook=rm -f \"$1\"/etc/ssh/ssh_host_*",
		"--customize-hook=copy-in " + unit + " /etc/systemd/system",
		"--customize-hook=chroot \"$1\" systemctl enable cauldron-ssh-hostkeys.service ssh.service",
		// A container has no consoles to log in on; these units only fail there.
		"--customize-hook=chroot \"$1\" systemctl mask getty@tty1.service console-getty.service systemd-logind.service",
		"--customize-hook=echo -n > \"$1\"/etc/machine-id",
		Suite, tarball,
	}
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("mmdebstrap: %w", err)
	}
	imp := exec.CommandContext(ctx, "docker", "import", "--change", `CMD ["/sbin/init"]`, tarball, tag)
	imp.Stdout, imp.Stderr = log, log
	if err := imp.Run(); err != nil {
		return "", fmt.Errorf("docker import: %w", err)
	}
	return tag, nil
}

func imageExists(ctx context.Context, tag string) bool {
	return exec.CommandContext(ctx, "docker", "image", "inspect", tag).Run() == nil
}
