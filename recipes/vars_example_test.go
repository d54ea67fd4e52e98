package recipes_test

import (
	"fmt"
	"slices"

	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/recipes"
)

// A recipe of your own that shares the cluster's inventory declares the variables it
// reads; any other variable the cluster's recipes do not read is refused as a likely
// misspelling, before anything connects.
func ExampleDeclareVars() {
	type motdVars struct {
		Text string `yaml:"motd_text"`
	}
	recipes.DeclareVars(inventory.VarNames(&motdVars{})...)
	fmt.Println(slices.Contains(recipes.KnownVars(), "motd_text"))
	// Output: true
}
