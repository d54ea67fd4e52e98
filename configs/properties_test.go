package configs_test

import (
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
)

func TestApplicationPropertiesEscapeWhatJavaPropertiesReadsSpecially(t *testing.T) {
	tests := []struct {
		name, password, want string
	}{
		{"backslash", `a\b`, `a\\b`},
		{"leading space", " ab", `\ ab`},
		{"inner space and signs", "a b=c:d#e!", "a b=c:d#e!"},
		{"non-ASCII in the BMP", "pä", `p\u00e4`},
		{"outside the BMP, as a surrogate pair", "x😀", `x\ud83d\ude00`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &configs.AppProperties{URL: "jdbc:postgresql://db:5432/mago3d", Username: "mago3d", Password: tt.password}
			b, err := p.Render()
			if err != nil {
				t.Fatal(err)
			}
			if want := "spring.datasource.password=" + tt.want + "\n"; !strings.Contains(string(b), want) {
				t.Errorf("got\n%s\nwant a line %q", b, want)
			}
		})
	}
}
