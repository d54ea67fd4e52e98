package recipes_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/transport/local"
)

// TestTheHAProxyReloadReturnsOnceEveryPortListens runs the handler over the local
// transport with a stand-in systemctl: HAProxy's new worker is a listener this test
// opens a moment after the reload, as HAProxy's does on a first deploy. The handler
// must not return before it listens, and must give up, naming the port, when nothing
// ever does.
func TestTheHAProxyReloadReturnsOnceEveryPortListens(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	free := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	for _, tc := range []struct {
		name    string
		late    time.Duration // when the port starts listening; 0: never
		wantErr bool
	}{
		{"a port that listens 1.5 s after the reload", 1500 * time.Millisecond, false},
		{"a port nothing listens on", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := free()
			if tc.late > 0 {
				timer := time.AfterFunc(tc.late, func() {
					l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
					if err != nil {
						t.Error(err)
						return
					}
					t.Cleanup(func() { l.Close() })
				})
				defer timer.Stop()
			}
			step := recipes.ReloadHAProxy{Ports: []int{port}, Timeout: 3 * time.Second}
			if err := step.Validate(); err != nil {
				t.Fatal(err)
			}
			ch, err := step.Check(context.Background(), local.New())
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = ch.Apply(context.Background())
			took := time.Since(start)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("nothing listens on port %d", port)) {
					t.Errorf("Apply: %v, want it to name port %d", err, port)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if took < tc.late {
				t.Errorf("returned after %s, before the port listened (%s)", took.Round(time.Millisecond), tc.late)
			}
		})
	}
}
