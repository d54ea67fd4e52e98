package steps_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport/local"
)

// A missing line goes where InsertAfter or InsertBefore says, as in Ansible's
// lineinfile: after (before) the last line the regexp matches, or at the end when none
// does. A line Regexp matches is replaced in place wherever it is, and a second run
// changes nothing. These run over the local transport, in a temporary folder.
func TestLineInFileInsertsAMissingLineAfterOrBeforeTheLastMatch(t *testing.T) {
	const catalina = "#!/bin/sh\n# comment\nif [ -z \"$CATALINA_OUT\" ] ; then\n  CATALINA_OUT=\"$CATALINA_BASE\"/logs/catalina.out\nfi\nexec java\n"
	cases := []struct {
		name, before string
		step         steps.LineInFile
		after        string
	}{
		{"after the last match", "a\nmark\nb\nmark\nc\n",
			steps.LineInFile{Line: "new", InsertAfter: `^mark$`}, "a\nmark\nb\nmark\nnew\nc\n"},
		{"before the last match", "a\nmark\nb\nmark\nc\n",
			steps.LineInFile{Line: "new", InsertBefore: `^mark$`}, "a\nmark\nb\nnew\nmark\nc\n"},
		{"after a last line without a newline", "a\nmark",
			steps.LineInFile{Line: "new", InsertAfter: `^mark$`}, "a\nmark\nnew\n"},
		{"before the first line", "mark\nb\n",
			steps.LineInFile{Line: "new", InsertBefore: `^mark$`}, "new\nmark\nb\n"},
		{"at the end when the anchor matches nothing", "a\nb\n",
			steps.LineInFile{Line: "new", InsertAfter: `^nowhere$`}, "a\nb\nnew\n"},
		{"replaced in place, not moved", "a\nkey=1\nmark\n",
			steps.LineInFile{Regexp: `^key=`, Line: "key=2", InsertAfter: `^mark$`}, "a\nkey=2\nmark\n"},
		{"already there: left alone", "a\nnew\nmark\n",
			steps.LineInFile{Line: "new", InsertAfter: `^mark$`}, "a\nnew\nmark\n"},
		{"the runbook's CATALINA_OUT edit", catalina,
			steps.LineInFile{Regexp: `^\s*CATALINA_OUT=`, Line: "  CATALINA_OUT=/dev/null", InsertAfter: `^#!`},
			strings.Replace(catalina, `"$CATALINA_BASE"/logs/catalina.out`, "/dev/null", 1)},
		{"CATALINA_OUT into a catalina.sh that never sets it", "#!/bin/sh\nexec java\n",
			steps.LineInFile{Regexp: `^\s*CATALINA_OUT=`, Line: "  CATALINA_OUT=/dev/null", InsertAfter: `^#!`},
			"#!/bin/sh\n  CATALINA_OUT=/dev/null\nexec java\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "file")
			writeLocal(t, path, tc.before)
			tc.step.Path = path
			changed, err := steps.Converge(context.Background(), local.New(), tc.step)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.after {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.after)
			}
			if changed != (tc.before != tc.after) {
				t.Errorf("changed = %v", changed)
			}
			if again, err := steps.Converge(context.Background(), local.New(), tc.step); err != nil || again {
				t.Fatalf("second run: changed %v, %v", again, err)
			}
		})
	}
}

func TestLineInFileRefusesTwoPlacesAndBadAnchors(t *testing.T) {
	cases := []struct {
		step steps.LineInFile
		want string
	}{
		{steps.LineInFile{Path: "/etc/x", Line: "l", InsertAfter: "a", InsertBefore: "b"}, "both set"},
		{steps.LineInFile{Path: "/etc/x", Line: "l", InsertAfter: "("}, "InsertAfter:"},
		{steps.LineInFile{Path: "/etc/x", Line: "l", InsertBefore: "["}, "InsertBefore:"},
	}
	for _, tc := range cases {
		if err := steps.Validate(tc.step); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.step, err, tc.want)
		}
	}
}
