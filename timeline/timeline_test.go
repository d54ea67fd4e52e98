package timeline_test

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/timeline"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func render(t *testing.T, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := timeline.Read(name, f)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := timeline.Render(&out, rep); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestATimelineMatchesItsGoldenFile(t *testing.T) {
	for _, name := range []string{"deploy.json", "lab-deploy.json", "lab-recheck-ssh.json"} {
		t.Run(name, func(t *testing.T) {
			got := render(t, name)
			golden := filepath.Join("testdata", strings.TrimSuffix(name, ".json")+".svg")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (go test ./timeline -update rewrites it)", name, golden)
			}
		})
	}
}

// TestATimelineHasABarPerStepAndHandlerAndShowsWaits reads the SVG back as XML: every
// step and handler of the report is one bar, and the rolling restart's turns are waits.
func TestATimelineHasABarPerStepAndHandlerAndShowsWaits(t *testing.T) {
	f, err := os.Open("testdata/deploy.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := timeline.Read("deploy.json", f)
	if err != nil {
		t.Fatal(err)
	}
	wantSteps, wantHandlers := 0, 0
	for _, h := range rep.Hosts {
		wantSteps += len(h.Steps)
		wantHandlers += len(h.Handlers)
	}
	classes := map[string]int{}
	dec := xml.NewDecoder(bytes.NewReader(render(t, "deploy.json")))
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Local == "class" {
					classes[a.Value]++
				}
			}
		}
	}
	if classes["step"] != wantSteps || classes["handler"] != wantHandlers || classes["host"] != len(rep.Hosts) {
		t.Errorf("bars %v, want %d steps, %d handlers, %d hosts", classes, wantSteps, wantHandlers, len(rep.Hosts))
	}
	if classes["wait"] == 0 {
		t.Error("no wait is drawn, but web2 and web3 wait for web1's rolling restart")
	}
}

func TestABadReportIsAnErrorNamingTheLineAndKey(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"syntax", "{\n \"hosts\": [\n  {\"host\": \"a\",}\n ]\n}", "bad.json:3: not a JSON report"},
		{"wrong type", "{\n \"hosts\": [\n  {\"host\": \"a\", \"steps\": [{\"start_ms\": \"soon\"}]}\n ]\n}", `bad.json:3: key "hosts.steps.start_ms"`},
		{"no start times", `{"hosts": [{"host": "a", "steps": [{"step": "x", "elapsed_ms": 1}]}]}`, `bad.json: hosts[0] (a) steps[0]: key "start_ms" is missing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := timeline.Read("bad.json", strings.NewReader(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestATimelineRendersToAPicture has a real SVG renderer draw it, when the machine
// has one (rsvg-convert, or ImageMagick's convert).
func TestATimelineRendersToAPicture(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "t.svg")
	png := strings.TrimSuffix(svg, ".svg") + ".png"
	if err := os.WriteFile(svg, render(t, "deploy.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if p, err := exec.LookPath("rsvg-convert"); err == nil {
		cmd = exec.Command(p, "-o", png, svg)
	} else if p, err := exec.LookPath("convert"); err == nil {
		cmd = exec.Command(p, svg, png)
	} else {
		t.Skip("no SVG renderer (apt-get install librsvg2-bin)")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() < 1000 {
		t.Fatalf("the rendered picture is missing or empty: %v", err)
	}
}
