package cauldron_test

import (
	"os"
	"strings"
	"testing"
)

// The README's custom recipe is the body of Example_customRecipe, which go test runs:
// this keeps the two the same, so the README's example always compiles and works.
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
	body, _, ok2 := strings.Cut(body, "\t// README: custom recipe ends\n")
	if !ok || !ok2 {
		t.Fatal("example_test.go lost its README markers")
	}
	if !strings.Contains(string(readme), "```go\n"+body+"```\n") {
		t.Errorf("README.md's custom recipe differs from Example_customRecipe; paste this between ```go and ```:\n%s", body)
	}
	for _, cmd := range []string{"go run mage.go deploy:cluster", "go run mage.go verify"} {
		if !strings.Contains(string(readme), cmd) {
			t.Errorf("README.md does not show %q", cmd)
		}
	}
}
