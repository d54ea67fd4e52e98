package steps_test

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

func writeWAR(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestANewWARReplacesTheWholeAppAndAnUnchangedOneDoesNothing(t *testing.T) {
	needHost(t)
	ctx := context.Background()
	c := host
	if _, err := steps.Converge(ctx, c, steps.Packages{Names: []string{"unzip"}}); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "app.war")
	converge := func(want string) {
		t.Helper()
		if err := c.Put(ctx, transport.File{Path: "/srv/app.war", Content: mustRead(t, local)}); err != nil {
			t.Fatal(err)
		}
		u := steps.UnpackWAR{LocalWAR: local, WAR: "/srv/app.war", Dest: "/srv/apps/app", Owner: "daemon", Group: "daemon"}
		if err := c.Run(ctx, transport.Command{Line: "mkdir -p /srv/apps"}); err != nil {
			t.Fatal(err)
		}
		ch, err := u.Check(ctx, c)
		if err != nil || ch == nil || !strings.Contains(ch.Summary, want) {
			t.Fatalf("check: %v, %v; want a change saying %q", ch, err, want)
		}
		if err := ch.Apply(ctx); err != nil {
			t.Fatal(err)
		}
		if again, err := u.Check(ctx, c); err != nil || again != nil {
			t.Fatalf("second check: %v, %v", again, err)
		}
	}

	writeWAR(t, local, map[string]string{"index.jsp": "v1", "old.jsp": "gone in v2", "WEB-INF/web.xml": "<web-app/>"})
	converge("unpack /srv/app.war")
	writeWAR(t, local, map[string]string{"index.jsp": "v2", "WEB-INF/web.xml": "<web-app/>"})
	converge("replace /srv/apps/app")

	out, err := transport.Output(ctx, c, "cat /srv/apps/app/index.jsp; ls /srv/apps/app; stat -c %U /srv/apps/app/WEB-INF/web.xml; ls -a /srv/apps | grep -c cauldron || true")
	if err != nil {
		t.Fatal(err)
	}
	if out != "v2WEB-INF\nindex.jsp\ndaemon\n0\n" {
		t.Fatalf("the app folder after the new WAR: %q", out)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
