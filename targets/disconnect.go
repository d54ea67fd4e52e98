package targets

import (
	"context"
	"errors"
	"fmt"

	"github.com/cauldron-go/cauldron/transport/keeper"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

// Disconnect closes the connections deploys keep between runs: the warm SSH connections (ssh.persist) and the docker exec channels (docker.persist) of this user.
//
// Both background processes also end by themselves once idle for their persist time;
// this is ssh -O exit for them (after a host's key or account changed, say). A run still
// using one dials directly from then on; a command it had in flight over a warm SSH
// connection fails and is not retried (it may have run).
func (Deploy) Disconnect(ctx context.Context) error {
	err := errors.Join(sshconn.StopWarmDaemon(""), keeper.Stop(keeper.Dir()))
	if err != nil {
		return err
	}
	fmt.Println("deploy:disconnect: no SSH connection or docker channel is kept any more")
	return nil
}
