package recipes

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// NotASystemAccount stops a host whose account Name exists there as a system account
// (a uid below the host's UID_MIN or above its UID_MAX, 1000 and 60000 unless
// /etc/login.defs says otherwise: nobody is 65534). It
// changes nothing; put it before a steps.User that would move the account's home
// (usermod -m) and set its password, which must never happen to root, www-data,
// daemon, nobody or any other account the system or its packages run as.
type NotASystemAccount struct {
	Name string
}

func (a NotASystemAccount) String() string { return "account " + a.Name + " is not a system account" }

// Validate refuses an empty name and the accounts every Debian host has.
func (a NotASystemAccount) Validate() error {
	if !accountRE.MatchString(a.Name) {
		return fmt.Errorf("%q is not a user name", a.Name)
	}
	if isSystemAccountName(a.Name) {
		return fmt.Errorf("%s is a system account", a.Name)
	}
	return nil
}

// loginDefs is where a host says which uids its accounts for people take.
const loginDefs = "/etc/login.defs"

// ScriptsRead is the account's read, the line steps.AddUser's check reads too (with
// both in a recipe, the host runs it once), and login.defs' UID_MIN and UID_MAX.
func (a NotASystemAccount) ScriptsRead() []string {
	return []string{steps.AccountRead(a.Name), uidRangeScript}
}

// uidRangeScript prints the lines of login.defs that set UID_MIN or UID_MAX. awk
// reads the file on the host: its two lines cross the network, not its 12 KB (on a
// new SSH connection over a slow link every kilobyte costs, measured at 80 ms RTT:
// about 13 ms each); the shell's read builtin would read a byte per system call.
const uidRangeScript = `awk '$1 == "UID_MIN" || $1 == "UID_MAX"' ` + loginDefs + ` 2>/dev/null; true`

// Check reads the account's uid and the host's UID_MIN and UID_MAX.
func (a NotASystemAccount) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	out, err := steps.CheckOutput(ctx, c, steps.AccountRead(a.Name))
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", a.Name, err)
	}
	passwd, _, _ := strings.Cut(out, "\n")
	if passwd == "" {
		return nil, nil // no such account: steps.AddUser creates it
	}
	fields := strings.Split(passwd, ":")
	if len(fields) < 7 {
		return nil, fmt.Errorf("account %s: unexpected passwd entry", a.Name)
	}
	uid, err := strconv.Atoi(fields[2])
	if err != nil {
		return nil, fmt.Errorf("account %s: unexpected uid %q", a.Name, fields[2])
	}
	defs, err := steps.CheckOutput(ctx, c, uidRangeScript)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", a.Name, err)
	}
	uidMin, uidMax := uidRange(defs)
	if uid < uidMin || uid > uidMax {
		return nil, fmt.Errorf("account %s is a system account on this host (uid %d, outside UID_MIN %d to UID_MAX %d): "+
			"its home would be moved and its password set; choose an account of Tomcat's own (tomcat_user)", a.Name, uid, uidMin, uidMax)
	}
	return nil, nil
}

// isSystemAccountName is true for a name Debian or its packages give a system account.
func isSystemAccountName(name string) bool {
	for _, s := range systemAccounts {
		if name == s {
			return true
		}
	}
	return strings.HasPrefix(name, "systemd-") || strings.HasPrefix(name, "_")
}

// uidRange is the UID_MIN and UID_MAX a login.defs sets (the last line of each, as
// login.defs is read), 1000 and 60000 where it sets none or no positive number.
func uidRange(defs string) (uidMin, uidMax int) {
	uidMin, uidMax = 1000, 60000
	for _, line := range strings.Split(defs, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n <= 0 {
			continue
		}
		switch f[0] {
		case "UID_MIN":
			uidMin = n
		case "UID_MAX":
			uidMax = n
		}
	}
	return uidMin, uidMax
}
