package sshconn_test

import (
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
