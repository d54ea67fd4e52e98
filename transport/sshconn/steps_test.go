package sshconn_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

// The steps write files through the transport's Put, so over SSH their content goes
// through SFTP, to a temporary file beside the target and renamed over it.
func TestStepsWriteTheirFilesThroughSFTP(t *testing.T) {
	srv := startSSHD(t)
	c := dial(t, srv.config(t))
	uploads := sshconn.RecordSFTPUploads(c)
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "artifact.tar.gz")
	writeFile(t, src, strings.Repeat("tarball ", 100000), 0o644)

	for _, s := range []steps.Step{
		steps.File{Path: filepath.Join(dir, "app.conf"), Content: steps.Text("a = 1\n"), Mode: 0o640},
		steps.File{Path: filepath.Join(dir, "checked.conf"), Content: steps.Text("b = 2\n"), ValidateCmd: "grep -q b %s"},
		steps.Upload{Src: src, Dest: filepath.Join(dir, "uploaded.tar.gz")},
	} {
		changed, err := steps.Converge(ctx, c, s)
		if err != nil || !changed {
			t.Fatalf("%s: changed %v, %v", s, changed, err)
		}
		if changed, err := steps.Converge(ctx, c, s); err != nil || changed {
			t.Fatalf("%s: a second run changed %v, %v", s, changed, err)
		}
	}
	got := strings.Join(uploads(), "\n")
	for _, name := range []string{"app.conf", "checked.conf", "uploaded.tar.gz"} {
		if n := strings.Count(got, filepath.Join(dir, "."+name+".cauldron-")); n != 1 {
			t.Errorf("%s went through SFTP to a temporary file beside it %d times, want once; uploads:\n%s", name, n, got)
		}
	}
	if got, err := os.ReadFile(filepath.Join(dir, "uploaded.tar.gz")); err != nil || len(got) != 800000 {
		t.Errorf("uploaded %d bytes, %v", len(got), err)
	}
	assertNoTempFiles(t, dir)
}
