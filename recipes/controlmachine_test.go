package recipes_test

import (
	"testing"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/recipes"
)

func TestOnlyAHostOnTheControlMachineIsSentPlainTarballs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		host      inventory.Host
		dockerEnv string
		want      bool
	}{
		{"docker exec through the local engine", inventory.Host{Transport: "docker", Address: "172.28.0.11"}, "", true},
		{"docker exec through the local engine's socket", inventory.Host{Transport: "docker"}, "unix:///run/docker.sock", true},
		{"docker exec through an engine on another machine", inventory.Host{Transport: "docker"}, "tcp://10.0.0.5:2376", false},
		{"the local transport", inventory.Host{Transport: "local"}, "", true},
		{"SSH to a published port on 127.0.0.1 (the lab)", inventory.Host{Transport: "ssh", Address: "172.28.0.11", SSH: inventory.SSH{Host: "127.0.0.1", Port: 2222}}, "", true},
		{"SSH to ::1", inventory.Host{Transport: "ssh", Address: "::1"}, "", true},
		{"SSH to localhost", inventory.Host{Transport: "ssh", SSH: inventory.SSH{Host: "localhost"}}, "", true},
		{"SSH to a host on the network", inventory.Host{Transport: "ssh", Address: "10.0.0.21"}, "", false},
		{"SSH to a host by name", inventory.Host{Transport: "ssh", Address: "was1.example.org"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tc.dockerEnv)
			if got := recipes.OnControlMachine(&tc.host); got != tc.want {
				t.Fatalf("OnControlMachine = %v, want %v", got, tc.want)
			}
		})
	}
}
