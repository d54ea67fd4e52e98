package steps

import (
	"context"
	"fmt"

	"github.com/cauldron-go/cauldron/transport"
)

// Sudoers is a drop-in /etc/sudoers.d/<Name>, mode 0440 root:root. A syntax error in a
// sudoers file can lock every user out of sudo, so the new rules are checked with
// `visudo -cf` on a temporary file before they replace the old ones: a rule visudo
// rejects is never installed, and the error carries visudo's message.
type Sudoers struct {
	Name    string
	Content Content
}

func (s Sudoers) file() File {
	return File{Path: "/etc/sudoers.d/" + s.Name, Content: s.Content, Mode: 0o440, Owner: "root", Group: "root",
		ValidateCmd: "visudo -cf %s"}
}

func (s Sudoers) String() string { return "sudoers " + s.Name }

// Validate rejects a name sudo would skip (one with a dot, or ending in '~').
func (s Sudoers) Validate() error {
	if !dropInName.MatchString(s.Name) {
		return fmt.Errorf("Name: %q is not a sudoers.d name sudo reads (letters, digits, '-' and '_' only)", s.Name)
	}
	return s.file().Validate()
}

// PathsRead is the drop-in, content and all.
func (s Sudoers) PathsRead() []PathRead { return s.file().PathsRead() }

// Check is File's check of the drop-in.
func (s Sudoers) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	return s.file().Check(ctx, c)
}
