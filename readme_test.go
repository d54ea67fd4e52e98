package cauldron_test

import (
	"os"
	"strings"
	"testing"
)

// magefileHeader is what the README's custom recipe has above the code it shares with
// example_test.go: the build tag and package of a magefile, and its imports.
const magefileHeader = `//go:build mage

package main

import (
	"context"
	"fmt"

	"github.com/cauldron-go/cauldron/deploy"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/steps"
)

`

// The README's custom recipe is the code of example_test.go between its markers, which
// Example_customRecipe runs: this keeps the two the same, so the README's magefile
// always compiles and works. Its imports are ones example_test.go has too.
func TestTheReadmeShowsTheExampleThatGoTestRuns(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(src), "// README: custom recipe begins\n")
	body, _, ok2 := strings.Cut(body, "\n// README: custom recipe ends\n")
	if !ok || !ok2 {
		t.Fatal("example_test.go lost its README markers")
	}
	if !strings.Contains(string(readme), "```go\n"+magefileHeader+body+"```\n") {
		t.Errorf("README.md's custom recipe differs from example_test.go; paste this between ```go and ```:\n%s%s", magefileHeader, body)
	}
	for _, line := range strings.Split(magefileHeader, "\n") {
		if strings.HasPrefix(line, "\t\"") && !strings.Contains(string(src), line+"\n") {
			t.Errorf("the README's magefile imports %s, which example_test.go does not", strings.TrimSpace(line))
		}
	}
	for _, cmd := range []string{"go run mage.go deploy:cluster", "go run mage.go verify"} {
		if !strings.Contains(string(readme), cmd) {
			t.Errorf("README.md does not show %q", cmd)
		}
	}
}
