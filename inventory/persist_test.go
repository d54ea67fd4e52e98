package inventory_test

import (
	"os"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
)

func TestPersistIsADurationOrOffForSSHAndDocker(t *testing.T) {
	inv, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Parse("p.yaml", []byte(`hosts:
  warm: {address: 10.0.0.1, ssh: {persist: 90s}}
  off: {address: 10.0.0.2, ssh: {persist: "off"}}
  unset: {address: 10.0.0.3}
  box-warm: {transport: docker, docker: {persist: 90s}}
  box-off: {transport: docker, docker: {container: box, persist: "off"}}
  box-unset: {transport: docker}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"warm": 90 * time.Second, "off": -1, "unset": 0,
		"box-warm": 90 * time.Second, "box-off": -1, "box-unset": 0}
	for _, h := range inv.Hosts {
		got := h.SSH.Persist
		if h.Transport == "docker" {
			got = h.Docker.Persist
		}
		if got != want[h.Name] {
			t.Errorf("host %s: persist %v, want %v", h.Name, got, want[h.Name])
		}
	}
}
