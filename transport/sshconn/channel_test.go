package sshconn_test

import (
	"context"
	"fmt"
	"strings"

	"testing"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/channel/channeltest"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

func TestTheCommandChannelKeepsRunSemantics(t *testing.T) {
	srv := startSSHD(t)
	channeltest.Run(t, func(t *testing.T) transport.Conn { return dial(t, srv.config(t)) },
		func(c transport.Conn) error { return c.(*sshconn.Conn).ChannelError() })
}

func TestWithBecomeTheChannelIsOneRootShellStartedByOneSudo(t *testing.T) {
	srv := startSSHD(t)
	password := "pw-" + randomWord(t) + "-secret"
	becomeHost(t, srv, password, becomeUser+" ALL=(ALL:ALL) ALL")
	cfg := srv.config(t)
	cfg.User = becomeUser
	cfg.Become = true
	asked := 0
	cfg.BecomePassword = func() (string, error) { asked++; return password, nil }
	c := dial(t, cfg)
	// Every command is a child of the same shell, as root: one sudo for them all.
	shells := map[string]bool{}
	for i := range 20 {
		out, err := transport.Output(context.Background(), c, `echo "$(id -u) $PPID"`)
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(out)
		if len(fields) != 2 || fields[0] != "0" {
			t.Fatalf("command %d printed %q, want uid 0 and its shell", i, out)
		}
		shells[fields[1]] = true
		in := fmt.Sprint("input ", i)
		if out, err := transport.OutputWithInput(context.Background(), c, "cat", strings.NewReader(in)); err != nil || out != in {
			t.Fatalf("cat of %q: %q %v", in, out, err)
		}
	}
	if len(shells) != 1 || c.ChannelError() != nil {
		t.Errorf("the commands ran under %d shells (channel error %v), want one", len(shells), c.ChannelError())
	}
	if asked != 1 {
		t.Errorf("the password was asked for %d times, want once", asked)
	}
	channeltest.Run(t, func(t *testing.T) transport.Conn { return dial(t, cfg) },
		func(c transport.Conn) error { return c.(*sshconn.Conn).ChannelError() })
}
