package steps_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"testing"

	"github.com/cauldron-go/cauldron/steps"
)

func member(t *testing.T, content string) string {
	t.Helper()
	var b bytes.Buffer
	z, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	z.Write([]byte(content))
	z.Close()
	return b.String()
}

// A prefetch's answer for two files, /a ("one\n") and /b ("") with gzip: the flags, a
// stat line each, the content flags, one member each, the second stat.
func TestAGzippedPrefetchAnswerIsSplitMemberByMemberAndChecked(t *testing.T) {
	paths := []string{"/a", "/b"}
	head := "x11\n" + "7:4:1.0:1.0:644:root:root:regular file\n" + "8:0:1.0:1.0:600:root:root:regular empty file\n" + "z11\n"
	stamps := "7:4:1.0:1.0\n8:0:1.0:1.0\n"
	for _, tc := range []struct {
		name    string
		body    string
		changed bool
	}{
		{"as gzip -c writes it", member(t, "one\n") + member(t, ""), false},
		{"a file that grew as it was read", member(t, "one\nmore\n") + member(t, ""), true},
		{"a file that shrank", member(t, "on") + member(t, ""), true},
		{"a member cut short", member(t, "one\n")[:12] + member(t, ""), true},
		{"a member missing", member(t, "one\n"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := steps.ParsePrefetch(head+tc.body+stamps, paths, paths)
			if tc.changed {
				if err == nil {
					t.Fatalf("parsed %q", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got["/a"]) != "one\n" || len(got["/b"]) != 0 {
				t.Fatalf("got %q", got)
			}
		})
	}
	t.Run("a second stat that differs", func(t *testing.T) {
		_, err := steps.ParsePrefetch(head+member(t, "one\n")+member(t, "")+"7:4:2.0:2.0\n8:0:1.0:1.0\n", paths, paths)
		if !errors.Is(err, steps.ErrChangedWhileRead) {
			t.Fatalf("got %v", err)
		}
	})
}
