package recipes_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/recipes"
	"github.com/cauldron-go/cauldron/transport/local"
)

// TestRestartAndWaitGivesUpAfterItsTimeoutInSeconds runs the step over the local
// transport with stand-ins for its neighbours on PATH: a systemctl that restarts
// nothing and a curl that hangs for its whole 2 s limit and fails, as a probe of a
// Tomcat that never comes up does. The wait must end at its deadline: counting loops
// (each a 2 s probe and a 1 s pause) made a 3 s timeout last 9 s.
func TestRestartAndWaitGivesUpAfterItsTimeoutInSeconds(t *testing.T) {
	bin := t.TempDir()
	for name, script := range map[string]string{
		"systemctl": "#!/bin/sh\nexit 0\n",
		"curl":      "#!/bin/sh\nsleep 2\nexit 28\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))

	step := recipes.RestartAndWait{Unit: "app.service", URLs: []string{"http://127.0.0.1:1/health"}, Timeout: 3 * time.Second}
	ch, err := step.Check(context.Background(), local.New())
	if err != nil || ch == nil {
		t.Fatalf("check: %+v, %v", ch, err)
	}
	start := time.Now()
	err = ch.Apply(context.Background())
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "did not serve") {
		t.Fatalf("apply: %v, want it to say the unit did not serve", err)
	}
	// The deadline is 3 s; the probe running at that moment may add its 2 s, and the
	// clock's whole seconds one more; a busy machine a little.
	if took > 7500*time.Millisecond {
		t.Fatalf("gave up after %s, want well under the 9 s that counting loops took", took.Round(time.Millisecond))
	}
}
