package targets

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/magefile/mage/mg"

	"github.com/cauldron-go/cauldron/lab"
)

// Lab is the lab: namespace.
type Lab mg.Namespace

// Up brings up the local Docker lab of the seed's topology (db, haproxy, web1, web2), installing Docker first on a Debian machine without it; -webnodes=3 adds web3.
func (Lab) Up(ctx context.Context, webnodes *int) error {
	l, err := bringUpLab(ctx, lab.Options{Log: os.Stdout, WebNodes: deref(webnodes)})
	if err != nil {
		return err
	}
	fmt.Printf("lab %s is up.\n  inventory (docker exec): %s\n  inventory (ssh):         %s\n  user site:  http://127.0.0.1:8080/\n  admin site: http://127.0.0.1:9090/\n",
		l.Name, l.DockerInventory, l.SSHInventory)
	return nil
}

// Down removes the lab's containers and network, keeping the cached images and artifacts.
func (Lab) Down(ctx context.Context) error {
	return lab.Down(ctx, lab.Options{Log: os.Stdout})
}

// Status shows each lab host: its address, container, SSH endpoint and whether systemd is up.
func (Lab) Status(ctx context.Context) error {
	hosts, err := lab.Status(ctx, lab.Options{})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "HOST\tADDRESS\tCONTAINER\tSTATE\tSSH\tSYSTEMD\tNETWORK")
	for _, h := range hosts {
		net := "connected"
		if !h.Connected {
			net = "disconnected"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Host, h.Address, h.Container, h.State, h.SSH, orDash(h.Systemd), net)
	}
	return w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
