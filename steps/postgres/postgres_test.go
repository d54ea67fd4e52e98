package postgres_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/steps/postgres"
)

// The apps' role and database, as the cluster's PostgreSQL recipe declares them. A
// name that is not a plain SQL name is refused before anything connects.
func Example() {
	role := postgres.Role{Name: "mago3d", Password: "from a secret file"}
	db := postgres.Database{Name: "mago3d", Owner: role.Name}
	for _, s := range []steps.Step{role, db} {
		fmt.Println(s, "valid:", steps.Validate(s) == nil)
	}
	fmt.Println(steps.Validate(postgres.Database{Name: "mago3d; DROP TABLE x", Owner: "mago3d"}))
	// Output:
	// postgresql role mago3d valid: true
	// postgresql database mago3d valid: true
	// step "postgresql database mago3d; DROP TABLE x": Name "mago3d; DROP TABLE x" and Owner "mago3d" must be plain SQL names (a-z, 0-9, _)
}

func TestValidateRefusesNamesThatAreNotPlainSQLAndAnEmptyPassword(t *testing.T) {
	cases := []struct {
		step steps.Step
		want string
	}{
		{postgres.Role{Name: "Mago3d", Password: "x"}, `Name: "Mago3d" is not a plain SQL name`},
		{postgres.Role{Name: `a"b`, Password: "x"}, "is not a plain SQL name"},
		{postgres.Role{Name: "mago3d"}, "Password: empty"},
		{postgres.Database{Name: "mago3d", Owner: "x'y"}, `Owner "x'y"`},
		{postgres.Database{Name: strings.Repeat("a", 64), Owner: "mago3d"}, "must be plain SQL names"},
	}
	for _, tc := range cases {
		err := steps.Validate(tc.step)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.step, err, tc.want)
		}
	}
}

func TestARoleErrorNeverShowsItsPassword(t *testing.T) {
	err := steps.Validate(postgres.Role{Name: "BAD NAME", Password: "s3cret-value"})
	if err == nil || strings.Contains(err.Error(), "s3cret-value") {
		t.Fatalf("got %v", err)
	}
}
