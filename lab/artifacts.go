package lab

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/docker"
)

// Artifacts are the seed's `setup` folder: the Tomcat and JDK tarballs in the upstream
// layout and the two demo WARs, on the control machine.
type Artifacts struct {
	Dir           string
	Tomcat        string // absolute path of apache-tomcat-10.1.<v>.tar.gz
	TomcatVersion string // 10.1.<v>
	JDK           string // absolute path of jdk-17.<v>.tar.gz
	JDKVersion    string // 17.<v>
	// Apps maps each demo app's name to its WAR's absolute path (AppVersion).
	Apps map[string]string
	// NextApps are the same apps' WARs at NextAppVersion: a new release, to roll out by
	// naming them in the inventory's artifacts.apps.
	NextApps map[string]string
}

// ArtifactPackages are the Debian packages the tarballs are assembled from.
// libeclipse-jdt-core-java ships /usr/share/java/eclipse-jdt-core.jar, without which
// every JSP fails with "No Java compiler available".
var ArtifactPackages = []string{
	"tomcat10", "tomcat10-common", "libtomcat10-java", "openjdk-17-jdk-headless",
	"libpostgresql-jdbc-java", "libeclipse-jdt-core-java",
}

// artifactsRecipeVersion changes whenever the way the artifacts are built changes.
const artifactsRecipeVersion = "1"

// artifactsManifest is written last in an artifacts folder: a folder without it is an
// interrupted build.
const artifactsManifest = "artifacts.json"

// assembleScript runs in the throwaway build container with the packages installed.
// It writes the two tarballs into /out and prints their versions.
const assembleScript = `set -eu
tv=$(dpkg-query -W -f '${Version}' tomcat10); tv=${tv%%-*}
jv=$(dpkg-query -W -f '${Version}' openjdk-17-jdk-headless); jv=${jv%%+*}; jv=${jv%%-*}
rm -rf /stage /out; mkdir -p /stage /out
t=/stage/apache-tomcat-$tv
mkdir -p "$t/bin" "$t/conf" "$t/lib" "$t/logs" "$t/temp" "$t/webapps" "$t/work"
# The packages' jars are symlinks into /usr/share/java: copy what they point at.
cp -L /usr/share/tomcat10/bin/* "$t/bin/"
cp -L /usr/share/tomcat10/lib/*.jar "$t/lib/"
cp -L /usr/share/java/eclipse-jdt-core.jar /usr/share/java/postgresql.jar "$t/lib/"
if [ -d /usr/share/tomcat10/etc ]; then cp -L /usr/share/tomcat10/etc/* "$t/conf/"; else cp -L /etc/tomcat10/*.* "$t/conf/"; fi
chmod 0755 "$t"/bin/*.sh
chmod -R u+rwX,go+rX,go-w "$t"
tar -C /stage --owner=0 --group=0 --numeric-owner -czf "/out/apache-tomcat-$tv.tar.gz" "apache-tomcat-$tv"
# The JDK, dereferenced, without the links that point nowhere (src.zip).
src=/usr/lib/jvm/java-17-openjdk-amd64
( cd "$src" && find . -xtype l | sed 's|^\./||' ) > /stage/dangling
mkdir -p "/stage/jdk-$jv"
tar -C "$src" -chf - --exclude-from=/stage/dangling . | tar -C "/stage/jdk-$jv" -xf -
tar -C /stage --owner=0 --group=0 --numeric-owner -czf "/out/jdk-$jv.tar.gz" "jdk-$jv"
echo "tomcat=$tv"
echo "jdk=$jv"
`

// verifyScript unpacks the tarballs in a host that has no Java and runs Tomcat's
// version command with the JDK from the tarball: the proof both are complete.
const verifyScript = `set -eu
rm -rf /tmp/verify; mkdir -p /tmp/verify; cd /tmp/verify
tar -xzf /tmp/tomcat.tar.gz; tar -xzf /tmp/jdk.tar.gz
JAVA_HOME=$(echo /tmp/verify/jdk-*) CATALINA_HOME=$(echo /tmp/verify/apache-tomcat-*) \
  sh -c 'exec "$CATALINA_HOME/bin/catalina.sh" version'
`

var (
	versionLine = regexp.MustCompile(`(?m)^(tomcat|jdk)=([0-9][0-9A-Za-z.]*)$`)
	serverNum   = regexp.MustCompile(`Server number:\s*(\S+)`)
	jvmVersion  = regexp.MustCompile(`JVM Version:\s*(\S+)`)
)

// ArtifactsKey names the artifacts built from the current base image and recipe.
func ArtifactsKey() string {
	h := sha256.New()
	fmt.Fprint(h, artifactsRecipeVersion, "\n", BaseImageTag(), "\n", strings.Join(ArtifactPackages, ","), "\n", assembleScript)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// EnsureArtifacts returns the artifacts in cacheDir, building the tarballs when they
// are not cached for the current key, and (re)writing the WARs when their bytes changed.
func EnsureArtifacts(ctx context.Context, cacheDir string, log io.Writer) (*Artifacts, error) {
	if log == nil {
		log = io.Discard
	}
	if cacheDir == "" {
		return nil, fmt.Errorf("lab artifacts: no cache folder given")
	}
	dir, err := filepath.Abs(filepath.Join(cacheDir, "artifacts-"+ArtifactsKey()))
	if err != nil {
		return nil, fmt.Errorf("lab artifacts: %w", err)
	}
	a, err := readManifest(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := buildArtifacts(ctx, dir, log); err != nil {
			return nil, fmt.Errorf("lab artifacts: %w", err)
		}
		a, err = readManifest(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("lab artifacts in %s: %w", dir, err)
	}
	a.Apps, a.NextApps = map[string]string{}, map[string]string{}
	for _, name := range AppNames {
		for _, rel := range []struct {
			version string
			into    map[string]string
		}{{AppVersion, a.Apps}, {NextAppVersion, a.NextApps}} {
			war, err := BuildAppWARVersion(name, rel.version)
			if err != nil {
				return nil, fmt.Errorf("lab artifacts: %w", err)
			}
			// Named by version and content: labs of different checkouts share the
			// cache, and one must never deploy the other's build of the same name.
			sum := sha256.Sum256(war)
			p := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.war", name, rel.version, hex.EncodeToString(sum[:4])))
			if _, err := writeFileIfChanged(p, war, 0o644); err != nil {
				return nil, fmt.Errorf("lab artifacts: write %s: %w", p, err)
			}
			// A modification time of its own per content: two releases of one app have
			// the same size, were written within the file system's timestamp tick, and
			// steps.Upload takes the same size and time for the same file.
			mtime := appEntryTime.Add(time.Duration(binary.BigEndian.Uint32(sum[:4])) * time.Millisecond)
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				return nil, fmt.Errorf("lab artifacts: %w", err)
			}
			rel.into[name] = p
		}
	}
	return a, nil
}

type manifest struct {
	TomcatVersion string `json:"tomcat_version"`
	JDKVersion    string `json:"jdk_version"`
	Tomcat        string `json:"tomcat"`
	JDK           string `json:"jdk"`
}

func readManifest(dir string) (*Artifacts, error) {
	data, err := os.ReadFile(filepath.Join(dir, artifactsManifest))
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", artifactsManifest, err)
	}
	a := &Artifacts{Dir: dir, Tomcat: filepath.Join(dir, m.Tomcat), JDK: filepath.Join(dir, m.JDK),
		TomcatVersion: m.TomcatVersion, JDKVersion: m.JDKVersion}
	for _, p := range []string{a.Tomcat, a.JDK} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("the manifest names %s: %w", filepath.Base(p), err)
		}
	}
	return a, nil
}

// buildArtifacts installs the packages in a throwaway container from the base image,
// assembles the tarballs, copies them out, proves them in a second container and only
// then moves the folder into place, so a cached folder is always a good one.
func buildArtifacts(ctx context.Context, dir string, log io.Writer) error {
	image, err := BaseImage(ctx, log)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".building-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	name := "cauldron-artifacts-build-" + filepath.Base(tmp)[len(".building-"):]
	fmt.Fprintf(log, "lab: building the Tomcat and JDK tarballs from Debian packages in container %s (a few minutes, once)\n", name)
	if err := runThrowaway(ctx, name, image); err != nil {
		return err
	}
	defer RemoveContainer(context.Background(), name)
	c := docker.New(name)
	if _, err := steps.Converge(ctx, c, steps.Packages{Names: ArtifactPackages}); err != nil {
		return err
	}
	out, err := transport.OutputWithInput(ctx, c, "sh -s", strings.NewReader(assembleScript))
	if err != nil {
		return fmt.Errorf("assemble the tarballs: %w", err)
	}
	versions := map[string]string{}
	for _, m := range versionLine.FindAllStringSubmatch(out, -1) {
		versions[m[1]] = m[2]
	}
	m := manifest{TomcatVersion: versions["tomcat"], JDKVersion: versions["jdk"]}
	if !strings.HasPrefix(m.TomcatVersion, "10.1.") || !strings.HasPrefix(m.JDKVersion, "17.") {
		return fmt.Errorf("assemble the tarballs: unexpected versions tomcat %q, jdk %q", m.TomcatVersion, m.JDKVersion)
	}
	m.Tomcat = "apache-tomcat-" + m.TomcatVersion + ".tar.gz"
	m.JDK = "jdk-" + m.JDKVersion + ".tar.gz"
	for _, f := range []string{m.Tomcat, m.JDK} {
		if err := dockerRun(ctx, "cp", name+":/out/"+f, filepath.Join(tmp, f)); err != nil {
			return err
		}
	}
	a := &Artifacts{Dir: tmp, Tomcat: filepath.Join(tmp, m.Tomcat), JDK: filepath.Join(tmp, m.JDK),
		TomcatVersion: m.TomcatVersion, JDKVersion: m.JDKVersion}
	if err := VerifyArtifacts(ctx, a, log); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, artifactsManifest), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another build finished first: its folder is as good as this one.
		if _, statErr := os.Stat(filepath.Join(dir, artifactsManifest)); statErr == nil {
			return nil
		}
		return err
	}
	return nil
}

// VerifyArtifacts unpacks the tarballs in a scratch container from the base image
// (which has no Java) and runs `bin/catalina.sh version` with JAVA_HOME from the JDK
// tarball; the versions it reports must be the artifacts' own.
func VerifyArtifacts(ctx context.Context, a *Artifacts, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	image, err := BaseImage(ctx, log)
	if err != nil {
		return err
	}
	suffix, err := randomString("abcdefghijklmnopqrstuvwxyz0123456789", 8)
	if err != nil {
		return err
	}
	name := "cauldron-artifacts-verify-" + string(suffix)
	if err := runThrowaway(ctx, name, image); err != nil {
		return err
	}
	defer RemoveContainer(context.Background(), name)
	c := docker.New(name)
	for src, dst := range map[string]string{a.Tomcat: "/tmp/tomcat.tar.gz", a.JDK: "/tmp/jdk.tar.gz"} {
		if _, err := steps.Converge(ctx, c, steps.Upload{Src: src, Dest: dst}); err != nil {
			return err
		}
	}
	out, err := transport.OutputWithInput(ctx, c, "sh -s", strings.NewReader(verifyScript))
	if err != nil {
		return fmt.Errorf("verify the tarballs: catalina.sh version: %w", err)
	}
	fmt.Fprint(log, out)
	if m := serverNum.FindStringSubmatch(out); m == nil || !strings.HasPrefix(m[1], a.TomcatVersion) {
		return fmt.Errorf("verify the tarballs: catalina.sh version does not report Tomcat %s:\n%s", a.TomcatVersion, out)
	}
	if m := jvmVersion.FindStringSubmatch(out); m == nil || !strings.HasPrefix(m[1], a.JDKVersion) {
		return fmt.Errorf("verify the tarballs: catalina.sh version does not report JVM %s:\n%s", a.JDKVersion, out)
	}
	return nil
}

// runThrowaway starts a plain container (no systemd: only commands run in it).
func runThrowaway(ctx context.Context, name, image string) error {
	_ = RemoveContainer(ctx, name)
	return dockerRun(ctx, "run", "-d", "--name", name, "--label", LabelKey+"=scratch", image, "sleep", "infinity")
}

// dockerRun runs the docker client, returning its output in the error.
func dockerRun(ctx context.Context, args ...string) error {
	_, err := dockerOutput(ctx, args...)
	return err
}

func dockerOutput(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args[:min(2, len(args))], " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
