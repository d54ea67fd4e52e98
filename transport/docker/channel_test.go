package docker_test

import (
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
