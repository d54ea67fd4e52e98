package steps

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// accountName is what useradd accepts by default and what is safe in any command line
// or configuration file a recipe writes a user or group name into.
var accountName = regexp.MustCompile(`^[a-z_][a-z0-9_-]*[$]?$`)

// unitName is a systemd unit file name: a name of the characters systemd allows and one
// of the unit types.
var unitName = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|target|path|mount|automount|swap|slice|scope|device)$`)

// dropInName is a file name sudo reads from /etc/sudoers.d: it skips names holding a
// dot or ending in '~', so such a drop-in would be installed and silently ignored.
var dropInName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// checkAbsPath rejects an empty, relative or unclean path, naming the field.
func checkAbsPath(field, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s: empty path", field)
	case !path.IsAbs(p):
		return fmt.Errorf("%s: %q is not an absolute path", field, p)
	case strings.ContainsAny(p, "\x00\n"):
		return fmt.Errorf("%s: %q holds a NUL or a newline", field, p)
	case path.Clean(p) != p:
		return fmt.Errorf("%s: %q is not clean (want %q)", field, p, path.Clean(p))
	case p == "/":
		return fmt.Errorf("%s: refusing the root directory", field)
	}
	return nil
}

// checkAccount rejects a user or group name useradd would refuse or a shell would read
// as something else. Empty is allowed: the caller decides whether the field is optional.
func checkAccount(field, name string) error {
	if name != "" && !accountName.MatchString(name) {
		return fmt.Errorf("%s: %q is not a valid user or group name (want %s)", field, name, accountName)
	}
	return nil
}

// checkMode rejects a mode with bits outside 07777. Modes are plain octal numbers here
// (0o4755 is setuid), as chmod reads them.
func checkMode(field string, m fs.FileMode) error {
	if m&^0o7777 != 0 {
		return fmt.Errorf("%s: mode %#o has bits outside 07777", field, uint32(m))
	}
	return nil
}

// checkUnit rejects a systemd unit name without a unit type or with odd characters.
func checkUnit(field, name string) error {
	if !unitName.MatchString(name) {
		return fmt.Errorf("%s: %q is not a systemd unit name (like tomcat.service)", field, name)
	}
	return nil
}
