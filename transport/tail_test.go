package transport_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/transport"
)

func ExampleTailBuffer() {
	t := &transport.TailBuffer{Max: 6}
	fmt.Fprint(t, "warning: one\n")
	fmt.Fprint(t, "error\n")
	fmt.Printf("%q\n", t.String())
	// Output: "…error\n"
}

func TestATailBufferKeepsEverythingUpToItsMaxAndOnlyTheEndAfter(t *testing.T) {
	cases := []struct {
		max    int
		writes []string
		want   string
	}{
		{0, []string{"short"}, "short"},
		{5, []string{"12345"}, "12345"},
		{5, []string{"123", "456"}, "…23456"},
		{0, []string{strings.Repeat("a", 4096), "b"}, "…" + strings.Repeat("a", 4095) + "b"},
	}
	for _, tc := range cases {
		tb := &transport.TailBuffer{Max: tc.max}
		for _, w := range tc.writes {
			if n, err := tb.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", w, n, err)
			}
		}
		if got := tb.String(); got != tc.want {
			t.Errorf("max %d, writes %q: got %q, want %q", tc.max, tc.writes, got, tc.want)
		}
	}
}
