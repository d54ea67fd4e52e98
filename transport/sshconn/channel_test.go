package sshconn_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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

// sshd opens a session's window only once its command has started, so a first
// command framed over the channel waits a round trip more than one run in a session
// of its own (3 against 2). A connection's first command without input runs alone
// (its shell is sshd's child, not the loop shell's), with CAULDRON_EXEC_ID as on the
// channel; the commands after it, and a first command with input, go over the
// channel.
func TestAConnectionsFirstCommandWithoutInputRunsInASessionOfItsOwn(t *testing.T) {
	srv := startSSHD(t)
	const line = `comm=$(cat /proc/$PPID/comm); printf '%s %s' "${CAULDRON_EXEC_ID:+marked}" "${comm%-session}"`
	tests := []struct {
		name        string
		inputs      []bool // per command, in order: whether it has input
		wantChannel []bool
	}{
		{"first without input", []bool{false, false, true, false}, []bool{false, true, true, true}},
		{"first with input", []bool{true, false}, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, srv.config(t))
			for i, input := range tt.inputs {
				cmd := transport.Command{Line: line}
				if input {
					cmd.Stdin = strings.NewReader("input")
				}
				out, err := transport.OutputWithInput(context.Background(), c, cmd.Line, cmd.Stdin)
				if err != nil {
					t.Fatal(err)
				}
				want := map[bool]string{true: "marked sh", false: "marked sshd"}[tt.wantChannel[i]]
				if out != want {
					t.Errorf("command %d printed %q, want %q (over the channel: %v)", i+1, out, want, tt.wantChannel[i])
				}
				if i == 0 {
					if got := c.Traffic(); got != (transport.TrafficCounts{Commands: 1, RoundTrips: 2}) {
						t.Errorf("the first command: %+v, want 1 command in 2 round trips", got)
					}
				}
			}
			if err := c.ChannelError(); err != nil {
				t.Errorf("channel error: %v", err)
			}
		})
	}
}

// The first command's session is killed as a channel's command is: with its children.
func TestCancellingTheFirstCommandKillsItsChildrenToo(t *testing.T) {
	srv := startSSHD(t)
	c := dial(t, srv.config(t))
	mark := fmt.Sprint(3000 + time.Now().UnixNano()%1000)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := c.Run(ctx, transport.Command{Line: "sleep " + mark + " & wait"}); err == nil {
		t.Fatal("the cancelled command did not fail")
	}
	look := "pgrep -x sleep -a | grep -c ' " + mark + "$' || true"
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := transport.Output(context.Background(), c, look)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) == "0" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled command's child sleep %s still runs 15 s later (%s)", mark, strings.TrimSpace(out))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
