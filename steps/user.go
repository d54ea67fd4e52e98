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
// Each program prints its one line straight out, or an echo an empty one when it finds
// nothing: no command substitution, each of which forked the shell (about 2 ms of a
// lab host's CPU apiece).
func AccountRead(name string) string {
	n := shell.Quote(name)
	return "getent passwd " + n + " || echo; getent shadow " + n + " 2>/dev/null || echo; id -nG " + n + " 2>/dev/null || echo"
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
