package e2e_test

import (
	"strings"
	"testing"
)

// TestNoSecretAppearsInAnyDeployOutput looks through the progress output and JSON report
// of every deploy of the run (plans, applies, the failed one) for every secret of the
// inventories they used. It runs last (its file sorts last).
func TestNoSecretAppearsInAnyDeployOutput(t *testing.T) {
	needLab(t)
	outputs.Lock()
	defer outputs.Unlock()
	if len(outputs.texts) == 0 || len(outputs.secrets) == 0 {
		t.Skip("no deploy ran in this test run")
	}
	checked := 0
	for i, text := range outputs.texts {
		if text == "" {
			continue
		}
		checked++
		for s := range outputs.secrets {
			if strings.Contains(text, s) {
				// The secret itself is never printed; which output and how long it is.
				t.Errorf("output %d of the run holds a secret (%d characters)", i, len(s))
			}
		}
	}
	if checked == 0 {
		t.Fatal("every output was empty")
	}
	t.Logf("%d outputs checked against %d secrets", checked, len(outputs.secrets))
}
