package inventory_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/inventory"
)

// bigInventory is an inventory of about size bytes, each host taking one line of
// lineLen bytes, with one badly indented line after the host on line badLine.
func bigInventory(size, lineLen, badLine int) (text string, bad int) {
	var b strings.Builder
	b.WriteString("hosts:\n")
	line := 1
	pad := strings.Repeat("x", max(lineLen-60, 1))
	for i := 1; b.Len() < size; i++ {
		fmt.Fprintf(&b, "  web%d: {address: 10.0.0.1, vars: {note: %s}}\n", i, pad)
		line++
		if line == badLine {
			b.WriteString("   ssh: {port: 22}\n")
			line++
			bad = line
		}
	}
	return b.String(), bad
}

// A syntax error deep in a 4 MB inventory is named by its line, and finding it costs a
// few parses of the file, not one parse per line (which took a minute).
func TestASyntaxErrorInA4MBFileIsLocatedQuickly(t *testing.T) {
	cases := []struct {
		name             string
		lineLen, badLine int
	}{
		{"a thousand long lines", 4 << 10, 500},
		{"many short lines", 64, 30000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text, bad := bigInventory(4<<20, tc.lineLen, tc.badLine)
			start := time.Now()
			_, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Parse("big.yaml", []byte(text))
			took := time.Since(start)
			want := fmt.Sprintf("big.yaml:%d: did not find expected key", bad)
			if err == nil || err.Error() != want {
				t.Fatalf("error = %v; want %s", err, want)
			}
			// A bound, not a speed claim (BenchmarkLocateASyntaxErrorIn4MB is): the old
			// search took 58 s here.
			if took > 15*time.Second {
				t.Errorf("locating the error took %v", took)
			}
		})
	}
}

func BenchmarkLocateASyntaxErrorIn4MB(b *testing.B) {
	text, _ := bigInventory(4<<20, 4<<10, 500)
	data := []byte(text)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := (inventory.LoadOptions{SSHConfig: os.DevNull}).Parse("big.yaml", data); err == nil {
			b.Fatal("no error")
		}
	}
}
