package recipes

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
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

// ScriptsRead is the check's one read (checkScript).
func (a NotASystemAccount) ScriptsRead() []string { return []string{a.checkScript()} }

// checkScript prints the account's uid and the host's UID_MIN and UID_MAX. awk reads
// login.defs: the shell's read builtin reads a byte per system call, measured in the
// lab's web container at 28 ms for the whole check instead of 13 ms with awk.
func (a NotASystemAccount) checkScript() string {
	return "u=$(id -u " + shell.Quote(a.Name) + " 2>/dev/null) || exit 0; " +
		"m=$(awk 'BEGIN { a = 1000; b = 60000 } $1 == \"UID_MIN\" { a = $2 } $1 == \"UID_MAX\" { b = $2 } END { print a \" \" b }' /etc/login.defs 2>/dev/null) || m=; " +
		"printf '%s %s\\n' \"$u\" \"$m\""
}

// Check reads the account's uid and the host's UID_MIN in one command.
func (a NotASystemAccount) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	out, err := steps.CheckOutput(ctx, c, a.checkScript())
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", a.Name, err)
	}
	fields := strings.Fields(out)
	if len(fields) == 0 {
		return nil, nil // no such account: steps.User creates it
	}
	uid, err := strconv.Atoi(fields[0])
	if err != nil {
		return nil, fmt.Errorf("account %s: unexpected uid %q", a.Name, fields[0])
	}
	uidMin, uidMax := 1000, 60000
	if len(fields) > 1 {
		if m, err := strconv.Atoi(fields[1]); err == nil && m > 0 {
			uidMin = m
		}
	}
	if len(fields) > 2 {
		if m, err := strconv.Atoi(fields[2]); err == nil && m > 0 {
			uidMax = m
		}
	}
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
