package inventory_test

import (
	"os"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
)

func TestSSHPersistIsADurationOrOff(t *testing.T) {
	inv, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Parse("p.yaml", []byte(`hosts:
  warm: {address: 10.0.0.1, ssh: {persist: 90s}}
  off: {address: 10.0.0.2, ssh: {persist: "off"}}
  unset: {address: 10.0.0.3}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"warm": 90 * time.Second, "off": -1, "unset": 0}
	for _, h := range inv.Hosts {
		if h.SSH.Persist != want[h.Name] {
			t.Errorf("host %s: persist %v, want %v", h.Name, h.SSH.Persist, want[h.Name])
		}
	}
}
