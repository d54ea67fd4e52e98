package steps_test

import (
	"archive/zip"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/steps"
)

func TestUntarUnpacksWholeOrNotAtAll(t *testing.T) {
	needHost(t)
	sh(t, "rm -rf /tmp/src /opt/tc /opt/shared && mkdir -p /tmp/src/apache-tomcat-10.1.0/bin /opt/shared/keep && "+
		"echo run > /tmp/src/apache-tomcat-10.1.0/bin/catalina.sh && tar -C /tmp/src -czf /tmp/tc.tar.gz apache-tomcat-10.1.0")

	t.Run("into a new directory, stripping the top one", func(t *testing.T) {
		u := steps.Untar{Archive: "/tmp/tc.tar.gz", Dest: "/opt/tc", Creates: "/opt/tc/bin/catalina.sh",
			Owner: "nobody", Group: "daemon", StripComponents: 1}
		converges(t, u)
		if got := sh(t, "cat /opt/tc/bin/catalina.sh; stat -c '%a %U %G' /opt/tc /opt/tc/bin/catalina.sh"); got != "run\n755 nobody daemon\n644 nobody daemon\n" {
			t.Fatalf("got %q", got)
		}
		sh(t, "rm /opt/tc/bin/catalina.sh")
		if ch := check(t, u); ch == nil {
			t.Fatal("a missing Creates is not a change")
		}
	})

	t.Run("into an existing directory", func(t *testing.T) {
		u := steps.Untar{Archive: "/tmp/tc.tar.gz", Dest: "/opt/shared", Creates: "/opt/shared/apache-tomcat-10.1.0"}
		converges(t, u)
		if got := sh(t, "ls -a /opt/shared; ls -a /opt | grep -c cauldron- || true"); got != ".\n..\napache-tomcat-10.1.0\nkeep\n0\n" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("from the control machine, given owners as it arrives", func(t *testing.T) {
		src := t.TempDir() + "/jdk.tgz"
		writeTarball(t, src, 3<<20, true)
		sh(t, "rm -rf /opt/setup /opt/jdk && mkdir /opt/setup")
		u := steps.Untar{Upload: &steps.Upload{Src: src, Dest: "/opt/setup/jdk.tgz", Owner: "nobody", Group: "daemon", Mode: 0o640},
			Dest: "/opt/jdk", StripComponents: 1, Creates: "/opt/jdk/bin/java", Owner: "nobody", Group: "daemon"}
		contains(t, "summary", converges(t, u).Summary, "as it arrives")
		if got, want := sh(t, "sha256sum < /opt/setup/jdk.tgz; stat -c '%a %U %G' /opt/setup/jdk.tgz /opt/jdk /opt/jdk/lib/modules; ls -a /opt/setup"),
			sha256Hex(t, src)+"  -\n640 nobody daemon\n755 nobody daemon\n755 nobody daemon\n.\n..\njdk.tgz\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})

	t.Run("a broken archive leaves nothing behind", func(t *testing.T) {
		sh(t, "head -c 100 /tmp/tc.tar.gz > /tmp/broken.tar.gz")
		_, err := steps.Converge(context.Background(), host, steps.Untar{Archive: "/tmp/broken.tar.gz", Dest: "/opt/broken"})
		if err == nil {
			t.Fatal("a broken archive unpacked")
		}
		if got := sh(t, "ls -a /opt | grep -c -e broken -e cauldron- || true"); got != "0\n" {
			t.Fatalf("leftovers: %q", got)
		}
	})
}

// TestUnzipNeedsUnzipAndPackagesInstallsIt is one test because its order matters: the
// base image has no unzip until Packages installs it (apt reaches Debian's mirror).
func TestUnzipNeedsUnzipAndPackagesInstallsIt(t *testing.T) {
	needHost(t)
	local := t.TempDir() + "/app.zip"
	f, err := os.Create(local)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	w, _ := zw.Create("app/WEB-INF/web.xml")
	w.Write([]byte("<web-app/>\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	converges(t, steps.Upload{Src: local, Dest: "/tmp/app.zip"})
	sh(t, "rm -rf /opt/webapps")
	uz := steps.Unzip{Archive: "/tmp/app.zip", Dest: "/opt/webapps", Creates: "/opt/webapps/app/WEB-INF/web.xml", Owner: "nobody"}

	if sh(t, "command -v unzip || echo none") == "none\n" {
		_, err := steps.Converge(context.Background(), host, uz)
		if err == nil || !strings.Contains(err.Error(), "unzip is not installed") {
			t.Fatalf("without unzip: %v", err)
		}
	}

	pk := steps.Packages{Names: []string{"unzip", "tree"}}
	contains(t, "summary", converges(t, pk).Summary, "install unzip tree with apt")
	sh(t, "command -v unzip && command -v tree")

	converges(t, uz)
	if got := sh(t, "cat /opt/webapps/app/WEB-INF/web.xml; stat -c %U /opt/webapps/app/WEB-INF"); got != "<web-app/>\nnobody\n" {
		t.Fatalf("got %q", got)
	}

	sh(t, "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q tree >/dev/null 2>&1")
	contains(t, "summary", converges(t, pk).Summary, "install tree with apt")
}
