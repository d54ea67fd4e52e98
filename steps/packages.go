package steps

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// packageName is what apt and dnf accept as a package argument, with an optional
// architecture or version (openjdk-17-jre-headless, libc6:amd64, nginx=1.22*).
var packageName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+._:=*~-]*$`)

// Packages are system packages that must be installed: with apt on the Debian family
// and dnf on the RHEL family, told apart by /etc/os-release (ID and ID_LIKE).
type Packages struct {
	Names []string
}

func (p Packages) String() string { return "packages " + strings.Join(p.Names, " ") }

// Validate rejects an empty list and names that are not package names.
func (p Packages) Validate() error {
	if len(p.Names) == 0 {
		return errors.New("Names: empty")
	}
	var errs []error
	for i, n := range p.Names {
		if !packageName.MatchString(n) {
			errs = append(errs, fmt.Errorf("Names[%d]: %q is not a package name", i, n))
		}
	}
	return errors.Join(errs...)
}

type packageFamily string

const (
	familyApt packageFamily = "apt"
	familyDnf packageFamily = "dnf"
)

func familyOf(id, idLike string) (packageFamily, bool) {
	for _, x := range append([]string{id}, strings.Fields(idLike)...) {
		switch x {
		case "debian", "ubuntu":
			return familyApt, true
		case "rhel", "fedora", "centos", "rocky", "almalinux":
			return familyDnf, true
		}
	}
	return "", false
}

// Check reads /etc/os-release, which packages are installed and whether apt has package
// lists, in one command.
func (p Packages) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	var out string
	if answers, ok := answer(ctx, packagesKey{}, c, p.Names...); ok {
		out = answers[0]
	} else {
		var err error
		if out, err = transport.Output(ctx, c, packagesScript(p.Names)); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("%s: unexpected output reading /etc/os-release", p)
	}
	family, ok := familyOf(lines[0], lines[1])
	if !ok {
		return nil, fmt.Errorf("%s: unknown package family (os-release ID %q, ID_LIKE %q): only apt (Debian, Ubuntu) and dnf (RHEL family) are supported", p, lines[0], lines[1])
	}
	haveLists := lines[2] == "lists"
	installed := map[string]bool{}
	for _, ln := range lines[3:] {
		if name, status, ok := strings.Cut(ln, " "); ok && status == "installed" {
			installed[name] = true
		}
	}
	var missing []string
	for _, n := range p.Names {
		// A name with a version or architecture is looked up by its bare name.
		bare := strings.FieldsFunc(n, func(r rune) bool { return r == '=' || r == ':' })[0]
		if !installed[bare] && !slices.Contains(missing, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	return &Change{
		Summary: fmt.Sprintf("install %s with %s", strings.Join(missing, " "), family),
		Apply: func(ctx context.Context) error {
			if family == familyDnf {
				return runLogged(ctx, c, shell.Join(append([]string{"dnf", "install", "-y"}, missing...)...))
			}
			return aptInstall(ctx, c, missing, haveLists)
		},
	}, nil
}

// PackagesRead is the packages' names.
func (p Packages) PackagesRead() []string { return p.Names }

// packagesScript prints os-release's ID and ID_LIKE, whether apt has package lists,
// and a line "<name> installed" for each of names that is. os-release is read by the
// shell itself (the command's own shell, so its variables go nowhere else), and the
// lists are looked for with a glob, not ls. On a dpkg host, plain names (no version,
// architecture or pattern) are looked up in dpkg's status file by one awk (dpkgStatusRead)
// while dpkg has no update journal to merge into it; else dpkg-query (or rpm) answers.
func packagesScript(names []string) string {
	n := shell.Join(names...)
	dpkg := `dpkg-query -W -f='${Package} ${db:Status-Status}\n' ` + n + ` 2>/dev/null`
	if plainPackageNames(names) {
		dpkg = `set -- /var/lib/dpkg/updates/[0-9]*; if [ -r /var/lib/dpkg/status ] && ! [ -e "$1" ] && ` + dpkgStatusRead(names) + `; then :; else ` + dpkg + `; fi`
	}
	return `if [ -r /etc/os-release ]; then . /etc/os-release; fi; printf '%s\n%s\n' "$ID" "$ID_LIKE"; ` +
		`set -- /var/lib/apt/lists/*_Packages; if [ -e "$1" ]; then echo lists; else echo nolists; fi; ` +
		`if command -v dpkg-query >/dev/null 2>&1; then ` + dpkg + `; ` +
		`elif command -v rpm >/dev/null 2>&1; then rpm -q --qf '%{NAME} installed\n' ` + n + ` 2>/dev/null; fi; true`
}

// plainPackageName is a package name alone: what dpkg's status file has in its
// Package fields.
var plainPackageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]*$`)

func plainPackageNames(names []string) bool {
	for _, n := range names {
		if !plainPackageName.MatchString(n) {
			return false
		}
	}
	return true
}

// dpkgStatusRead prints "<name> <status>" for each entry of names in dpkg's status
// file, as dpkg-query -W -f='${Package} ${db:Status-Status}\n' does: the status file
// is dpkg's database, a stanza per package and architecture, its Package field first
// and its Status field "<want> <flag> <status>". Packages' whole line in the lab's web
// host (a 170 KB status file), its sh's start included, 100 runs each: 11.0-11.1 ms
// with dpkg-query, 6.0-6.2 ms with the awk. dpkg-query also merges the update journal
// an interrupted dpkg leaves, which is why a host with one asks it.
func dpkgStatusRead(names []string) string {
	return `awk -v w=` + shell.Quote(strings.Join(names, " ")) +
		` 'BEGIN { n = split(w, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 } /^$/ { p = "" } /^Package: / { p = $2; next } /^Status: / { if (p in want) print p, $4 }' /var/lib/dpkg/status 2>/dev/null`
}

// parsePackages gives every name the whole answer: each Packages check reads its own
// names' lines from it.
func parsePackages(out string, names []string) (map[string]string, error) {
	answers := map[string]string{}
	for _, n := range names {
		answers[n] = out
	}
	return answers, nil
}

func aptInstall(ctx context.Context, c transport.Conn, names []string, haveLists bool) error {
	const env = "DEBIAN_FRONTEND=noninteractive "
	update := env + "apt-get update -q"
	install := env + shell.Join(append([]string{"apt-get", "install", "-y", "-q", "--no-install-recommends"}, names...)...)
	if !haveLists {
		if err := runLogged(ctx, c, update); err != nil {
			return err
		}
	}
	err := runLogged(ctx, c, install)
	if err == nil || !haveLists || !staleLists(err) {
		return err
	}
	// Lists that are there but old name package versions the mirror no longer has.
	if err := runLogged(ctx, c, update); err != nil {
		return err
	}
	return runLogged(ctx, c, install)
}

// staleLists tells an install that failed for want of fresh package lists.
func staleLists(err error) bool {
	for _, s := range []string{"Unable to locate package", "has no installation candidate", "404", "Failed to fetch"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// runLogged runs line and, when it fails, returns an error with the tail of its output.
func runLogged(ctx context.Context, c transport.Conn, line string) error {
	out := &transport.TailBuffer{Max: 2000}
	err := c.Run(ctx, transport.Command{Line: "{ " + line + "; } 2>&1", Stdout: out})
	if err != nil {
		return fmt.Errorf("%s: %w: %s", line, err, strings.TrimSpace(out.String()))
	}
	return nil
}
