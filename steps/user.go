package steps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// AddUser is a local account, as the runbook's `adduser -m gaia3d`. A missing account
// is created with `useradd -m`, so its home directory is created too (at Home, or at
// useradd's default /home/<Name>), owned by the account and filled from /etc/skel. On an
// existing account a different Home is moved there with `usermod -d Home -m`. Empty
// Home and Shell are left to useradd's defaults (and alone on an existing account).
// Groups are supplementary groups the account must be in; other memberships are left
// alone, since packages add their own.
//
// PasswordHash is a crypt(3) hash (openssl passwd -6), never a clear password. It is set
// with `chpasswd -e` over standard input and compared with `getent shadow`, so it never
// appears on a command line, in a summary, a diff or an error. Empty leaves the password
// alone.
//
//	steps.AddUser{Name: "gaia3d", Shell: "/bin/bash", PasswordHash: hash}
type AddUser struct {
	Name         string
	Home         string
	Shell        string
	PasswordHash string
	Groups       []string
}

func (u AddUser) String() string { return "user " + u.Name }

// Validate rejects bad names and paths, and a hash chpasswd could not read; its error
// never quotes the hash.
func (u AddUser) Validate() error {
	var errs []error
	if u.Name == "" {
		errs = append(errs, errors.New("Name: empty"))
	}
	errs = append(errs, checkAccount("Name", u.Name))
	if u.Home != "" {
		errs = append(errs, checkAbsPath("Home", u.Home))
	}
	if u.Shell != "" {
		errs = append(errs, checkAbsPath("Shell", u.Shell))
	}
	for i, g := range u.Groups {
		if g == "" {
			errs = append(errs, fmt.Errorf("Groups[%d]: empty", i))
		}
		errs = append(errs, checkAccount(fmt.Sprintf("Groups[%d]", i), g))
	}
	if strings.ContainsAny(u.PasswordHash, ":\n\r\x00") {
		errs = append(errs, errors.New("PasswordHash: a crypt hash holds no ':' or line break (hash not shown)"))
	}
	return errors.Join(errs...)
}

// AccountRead is the read-only line that prints the account name's passwd entry, its
// shadow entry (empty where it cannot be read) and its groups, one line each, empty
// for an account that does not exist: AddUser's read, for another check of the same
// account to declare (ScriptReader) and read (CheckOutput) too, since a gather runs a
// line once.
//
// Where nsswitch.conf has the passwd, group and shadow databases in the local files
// alone, one awk reads them (localAccountRead), as getent and id would answer; else,
// or when awk cannot, getent passwd, getent shadow and id -nG answer, each printing
// its one line straight out, or an echo an empty one when it finds nothing (no command
// substitution, each of which forked the shell). The line never exits its shell, so it
// can be part of a longer one. The line in the lab's web host, its sh's start
// included, 100 runs each: 10.5-11.0 ms with the three programs, 5.7-6.0 ms with the
// awk.
func AccountRead(name string) string {
	n := shell.Quote(name)
	return `if [ -r /etc/nsswitch.conf ] && [ -r /etc/passwd ] && [ -r /etc/group ] && { s=/etc/shadow; [ -r "$s" ] || s=/dev/null; ` +
		localAccountRead(name) + `; }; then :; else ` +
		"getent passwd " + n + " || echo; getent shadow " + n + " 2>/dev/null || echo; id -nG " + n + " 2>/dev/null || echo; fi"
}

// localAccountRead is AccountRead's awk over /etc/nsswitch.conf, /etc/passwd, the
// shadow file $s (/dev/null where the login cannot read /etc/shadow, as getent shadow
// then prints nothing) and /etc/group. It prints nothing and exits 3 unless each of
// the three databases is "files" alone. Like getent, it takes the first entry of a
// name; like id -nG, the groups are the primary group's name and those whose member
// lists name the account, each once; a primary group no group entry names is its
// number, then an empty line (id's failure, which AccountRead's echo follows).
func localAccountRead(name string) string {
	return `awk -v n=` + shell.Quote(name) + ` -v s="$s" '` +
		`FILENAME == "/etc/nsswitch.conf" { sub(/#.*/, ""); if ($1 == "passwd:" || $1 == "group:" || $1 == "shadow:") files[$1] = (NF == 2 && $2 == "files"); next } ` +
		`FILENAME == "/etc/passwd" { if (pw == "" && split($0, f, ":") >= 7 && f[1] == n) { pw = $0; gid = f[4] } next } ` +
		`FILENAME == s { if (sh == "" && split($0, f, ":") >= 2 && f[1] == n) sh = $0; next } ` +
		`FILENAME == "/etc/group" { if (split($0, f, ":") < 3) next; if (!(f[3] in gname)) gname[f[3]] = f[1]; k = split(f[4], m, ","); for (i = 1; i <= k; i++) if (m[i] == n && !(f[1] in member)) { member[f[1]] = 1; order[++count] = f[1] } next } ` +
		`END { if (!files["passwd:"] || !files["group:"] || !files["shadow:"]) exit 3; print pw; print sh; if (pw == "") { print ""; exit 0 } ` +
		`g = (gid in gname) ? gname[gid] : gid; line = g; for (i = 1; i <= count; i++) if (order[i] != g) line = line " " order[i]; print line; if (!(gid in gname)) print "" }` +
		`' /etc/nsswitch.conf /etc/passwd "$s" /etc/group 2>/dev/null`
}

// ScriptsRead is the check's one read (AccountRead).
func (u AddUser) ScriptsRead() []string { return []string{AccountRead(u.Name)} }

// Check reads the passwd and shadow entries and the account's groups in one command.
func (u AddUser) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	out, err := CheckOutput(ctx, c, AccountRead(u.Name))
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", u.Name, err)
	}
	lines := strings.SplitN(out, "\n", 4)
	if len(lines) < 3 {
		return nil, fmt.Errorf("user %s: unexpected output from getent (%d lines)", u.Name, len(lines))
	}
	passwd, shadow, groups := strings.Split(lines[0], ":"), strings.Split(lines[1], ":"), strings.Fields(lines[2])

	if lines[0] == "" {
		return u.create(c), nil
	}
	if len(passwd) < 7 {
		return nil, fmt.Errorf("user %s: unexpected passwd entry", u.Name)
	}
	var what []string
	mod := []string{"usermod"}
	if u.Home != "" && passwd[5] != u.Home {
		what = append(what, fmt.Sprintf("home %s -> %s", passwd[5], u.Home))
		mod = append(mod, "-d", u.Home, "-m")
	}
	if u.Shell != "" && passwd[6] != u.Shell {
		what = append(what, fmt.Sprintf("shell %s -> %s", passwd[6], u.Shell))
		mod = append(mod, "-s", u.Shell)
	}
	var missing []string
	for _, g := range u.Groups {
		if !slices.Contains(groups, g) {
			missing = append(missing, g)
		}
	}
	if len(missing) > 0 {
		what = append(what, "add to groups "+strings.Join(missing, ","))
		mod = append(mod, "-a", "-G", strings.Join(missing, ","))
	}
	// The shadow entry's second field is the hash; it is compared, never printed.
	setPassword := u.PasswordHash != "" && (len(shadow) < 2 || shadow[1] != u.PasswordHash)
	if setPassword {
		what = append(what, "set password")
	}
	if len(what) == 0 {
		return nil, nil
	}
	mod = append(mod, "--", u.Name)
	return &Change{
		Summary: "user " + u.Name + ": " + strings.Join(what, ", "),
		Apply: func(ctx context.Context) error {
			if len(mod) > 3 {
				if _, err := transport.Output(ctx, c, shell.Join(mod...)); err != nil {
					return fmt.Errorf("user %s: %w", u.Name, err)
				}
			}
			if setPassword {
				return u.setPassword(ctx, c)
			}
			return nil
		},
	}, nil
}

func (u AddUser) create(c transport.Conn) *Change {
	argv := []string{"useradd", "-m"}
	if u.Home != "" {
		argv = append(argv, "-d", u.Home)
	}
	if u.Shell != "" {
		argv = append(argv, "-s", u.Shell)
	}
	if len(u.Groups) > 0 {
		argv = append(argv, "-G", strings.Join(u.Groups, ","))
	}
	argv = append(argv, "--", u.Name)
	summary := "create user " + u.Name
	if len(u.Groups) > 0 {
		summary += " in groups " + strings.Join(u.Groups, ",")
	}
	if u.PasswordHash != "" {
		summary += ", with a password"
	}
	return &Change{
		Summary: summary,
		Apply: func(ctx context.Context) error {
			if _, err := transport.Output(ctx, c, shell.Join(argv...)); err != nil {
				return fmt.Errorf("user %s: %w", u.Name, err)
			}
			if u.PasswordHash != "" {
				return u.setPassword(ctx, c)
			}
			return nil
		},
	}
}

func (u AddUser) setPassword(ctx context.Context, c transport.Conn) error {
	in := strings.NewReader(u.Name + ":" + u.PasswordHash + "\n")
	if _, err := transport.OutputWithInput(ctx, c, "chpasswd -e", in); err != nil {
		// chpasswd names the line it could not read, not its content; say only the status.
		return fmt.Errorf("user %s: set password with chpasswd -e: exit status %d", u.Name, transport.ExitStatus(err))
	}
	return nil
}

// User is the former name of AddUser.
//
// Deprecated: use AddUser, the name the design card gives this step.
type User = AddUser
