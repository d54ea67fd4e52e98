package docker_test

import (
	"context"

	"github.com/cauldron-go/cauldron/lab"
	"testing"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/channel/channeltest"
	"github.com/cauldron-go/cauldron/transport/docker"
)

func TestTheCommandChannelKeepsRunSemantics(t *testing.T) {
	c := scratch(t)
	channeltest.Run(t, func(t *testing.T) transport.Conn {
		ch := docker.New(c.Container()).WithChannel()
		t.Cleanup(func() { ch.Close() })
		return ch
	}, func(c transport.Conn) error { return c.(*docker.Conn).ChannelError() })
}

// BenchmarkConvergedChecksPerExecAgainstChannel is a converged web node's 36 checks,
// four at a time, in one container: an exec each against the command channel.
func BenchmarkConvergedChecksPerExecAgainstChannel(b *testing.B) {
	c, remove, err := lab.ScratchHost(context.Background(), "cauldron-bench-docker-transport")
	if err != nil {
		b.Fatal(err)
	}
	defer remove()
	channel := docker.New(c.Container()).WithChannel()
	defer channel.Close()
	channeltest.BenchConvergedChecks(b, c, channel)
}
