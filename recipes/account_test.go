package recipes_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/local"
)

// commandCounter counts the commands run over a connection.
type commandCounter struct {
	transport.Conn
	runs atomic.Int32
}

func (c *commandCounter) Run(ctx context.Context, cmd transport.Command) error {
	c.runs.Add(1)
	return c.Conn.Run(ctx, cmd)
}

func TestUIDMinAndMaxAreTheLastValuesLoginDefsSets(t *testing.T) {
	for _, tc := range []struct{ defs, want string }{
		{"", "1000 60000"},
		{"# UID_MIN 500\n#UID_MAX 10\nMAIL_DIR /var/mail\n", "1000 60000"},
		{"UID_MIN\t\t 2000\nUID_MAX 30000\n", "2000 30000"},
		{"UID_MIN 2000\nUID_MIN 3000\n", "3000 60000"},
		{"UID_MIN none\nUID_MAX -1\nUID_MAX 0\n", "1000 60000"},
		{"SYS_UID_MIN 100\nUID_MIN 1500", "1500 60000"},
	} {
		lo, hi := recipes.UIDRange(tc.defs)
		if got := fmt.Sprintf("%d %d", lo, hi); got != tc.want {
			t.Errorf("login.defs %q: %s, want %s", tc.defs, got, tc.want)
		}
	}
}

func TestTheAccountChecksOfAUserShareOneReadOfTheHost(t *testing.T) {
	conn := &commandCounter{Conn: local.New()}
	ss := []steps.Step{
		recipes.NotASystemAccount{Name: "daemon"},
		steps.AddUser{Name: "daemon", Home: "/usr/sbin"},
	}
	ctx := steps.Prefetch(context.Background(), conn, ss)
	if _, err := ss[0].Check(ctx, conn); err == nil || !strings.Contains(err.Error(), "daemon is a system account on this host") {
		t.Errorf("NotASystemAccount of daemon: %v, want it refused", err)
	}
	if _, err := ss[1].Check(ctx, conn); err != nil {
		t.Errorf("AddUser of daemon: %v", err)
	}
	if n := conn.runs.Load(); n != 1 {
		t.Errorf("%d commands, want the account's line (once) and login.defs' in 1", n)
	}
}
