package recipes

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// tribesSources are the Java sources of cauldron's Tribes classes
// (configs.ClassFreshConnectionsSender, configs.ClassFreshConnectionsInterceptor,
// configs.ClassResetOnDepartureInterceptor and the others beside them) and
// of its valves (configs.ClassWokenNodeValve, configs.ClassAbandonedRequestValve).
//
//go:embed tribes/*.java
var tribesSources embed.FS

// TribesJarName is the jar TribesJar writes into Tomcat's lib folder.
const TribesJarName = "cauldron-tribes.jar"

// tribesJarHashEntry is the jar's entry that holds its sources' hash (not in the
// manifest, whose lines wrap at 72 bytes).
const tribesJarHashEntry = "META-INF/cauldron-sources.sha256"

// TribesJar compiles cauldron's Tribes classes (see configs.WrittenReplication) and
// valves (configs.ClassWokenNodeValve, configs.ClassAbandonedRequestValve) on
// the host with the node's own JDK against the node's own Tomcat, into
// <TomcatHome>/lib/cauldron-tribes.jar, where Tomcat's common class loader finds
// them. The jar carries the SHA-256 of the sources it was built from: the
// step is converged when the jar is there with the hash of the sources this build of
// cauldron embeds, and rebuilds it otherwise. Notify Tomcat's restart with it: the
// JVM loads the classes once.
type TribesJar struct {
	// JavaHome is a JDK (with bin/javac and bin/jar); TomcatHome a Tomcat 10.1 whose
	// lib/catalina-tribes.jar, lib/catalina.jar, lib/servlet-api.jar and
	// bin/tomcat-juli.jar the classes compile against.
	JavaHome, TomcatHome string
	// Owner owns the jar (its group too).
	Owner string
}

func (j TribesJar) String() string { return "tribes jar " + j.jarPath() }

func (j TribesJar) jarPath() string { return path.Join(j.TomcatHome, "lib", TribesJarName) }

// Validate rejects relative paths and a missing owner.
func (j TribesJar) Validate() error {
	var errs []error
	if !path.IsAbs(j.JavaHome) {
		errs = append(errs, fmt.Errorf("JavaHome %q: not an absolute path", j.JavaHome))
	}
	if !path.IsAbs(j.TomcatHome) {
		errs = append(errs, fmt.Errorf("TomcatHome %q: not an absolute path", j.TomcatHome))
	}
	if j.Owner == "" {
		errs = append(errs, errors.New("Owner: empty"))
	}
	return errors.Join(errs...)
}

// TribesSourcesHash is the SHA-256 of the embedded sources, names and contents, as
// the jar's manifest records it.
func TribesSourcesHash() string {
	h := sha256.New()
	for _, s := range tribesSourceFiles() {
		fmt.Fprintf(h, "%s\x00%d\x00%s", s.name, len(s.body), s.body)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type javaSource struct{ name, body string }

func tribesSourceFiles() []javaSource {
	entries, err := fs.ReadDir(tribesSources, "tribes")
	if err != nil {
		panic(err) // embedded at build time
	}
	var out []javaSource
	for _, e := range entries {
		b, err := fs.ReadFile(tribesSources, "tribes/"+e.Name())
		if err != nil {
			panic(err)
		}
		out = append(out, javaSource{e.Name(), string(b)})
	}
	slices.SortFunc(out, func(a, b javaSource) int { return strings.Compare(a.name, b.name) })
	return out
}

// checkScript prints the hash the jar carries, or absent. The build leaves the hash
// beside the jar too (markerPath), written after it: while that file says the hash
// this cauldron wants and the jar is not newer than it, the shell's own tests answer
// and no program starts (unzip costs a converged web node ~12 ms of CPU per
// re-check). Otherwise (a jar replaced since, or built by a cauldron before the
// marker) unzip (the Tomcat recipe installs it) reads the entry without starting a
// JVM; a jar without it says nothing.
func (j TribesJar) checkScript() string {
	jar, marker, want := shell.Quote(j.jarPath()), shell.Quote(j.markerPath()), TribesSourcesHash()
	return "if [ -f " + jar + " ] && [ -f " + marker + " ] && ! [ " + jar + " -nt " + marker + " ] && read h < " + marker +
		" && [ \"$h\" = " + want + " ]; then echo " + want +
		"; elif [ -f " + jar + " ]; then unzip -p " + jar + " " + tribesJarHashEntry + " 2>/dev/null || true; else echo absent; fi"
}

// markerPath is the file beside the jar that says which sources the jar in place was
// built from (a dot file: Tomcat's class loader reads only lib's *.jar).
func (j TribesJar) markerPath() string {
	return path.Join(j.TomcatHome, "lib", "."+TribesJarName+".sha256")
}

// ScriptsRead is the check's one read (checkScript).
func (j TribesJar) ScriptsRead() []string { return []string{j.checkScript()} }

// Check reads the hash the jar carries.
func (j TribesJar) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	want := TribesSourcesHash()
	jar := j.jarPath()
	out, err := steps.CheckOutput(ctx, c, j.checkScript())
	if err != nil {
		return nil, fmt.Errorf("%s: read its hash: %w", j, err)
	}
	have := strings.TrimSpace(out)
	if have == want {
		return nil, nil
	}
	why := "absent"
	if have != "absent" {
		why = "built from other sources (" + cmpShort(have) + ")"
	}
	return &steps.Change{
		Summary: fmt.Sprintf("compile %s on the host with %s (sources %s; the jar is %s)", jar, path.Join(j.JavaHome, "bin", "javac"), want[:12], why),
		Apply: func(ctx context.Context) error {
			if out, err := transport.Output(ctx, c, "bash -c "+shell.Quote(j.buildScript(want))+" 2>&1"); err != nil {
				return fmt.Errorf("%s: build: %s: %w", j, strings.TrimSpace(out), err)
			}
			return nil
		},
	}, nil
}

func cmpShort(h string) string {
	if h == "" {
		return "no hash"
	}
	return h[:min(12, len(h))]
}

// buildScript compiles the sources in a private folder and moves the jar into place
// in one rename, so Tomcat never sees half a jar.
func (j TribesJar) buildScript(hash string) string {
	bin := path.Join(j.JavaHome, "bin")
	var jars []string
	for _, p := range []string{"lib/catalina-tribes.jar", "lib/catalina.jar", "lib/servlet-api.jar", "bin/tomcat-juli.jar"} {
		jars = append(jars, path.Join(j.TomcatHome, p))
	}
	cp := strings.Join(jars, ":")
	var b strings.Builder
	b.WriteString("set -e\ndir=$(mktemp -d)\ntrap 'rm -rf \"$dir\"' EXIT\nmkdir \"$dir/src\" \"$dir/classes\"\n")
	for _, s := range tribesSourceFiles() {
		fmt.Fprintf(&b, "printf '%%s' %s > \"$dir/src/%s\"\n", shell.Quote(s.body), s.name)
	}
	fmt.Fprintf(&b, "mkdir \"$dir/classes/META-INF\"\nprintf '%%s\\n' %s > \"$dir/classes/%s\"\n", hash, tribesJarHashEntry)
	// Java 11 class files: Tomcat 10.1's minimum, whatever JDK compiles them.
	jvm := "-J-Xshare:auto -J-XX:TieredStopAtLevel=1"
	fmt.Fprintf(&b, "%s %s -nowarn --release 11 -cp %s -d \"$dir/classes\" \"$dir\"/src/*.java\n",
		shell.Quote(path.Join(bin, "javac")), jvm, shell.Quote(cp))
	fmt.Fprintf(&b, "%s %s --create --file \"$dir/%s\" -C \"$dir/classes\" .\n",
		shell.Quote(path.Join(bin, "jar")), jvm, TribesJarName)
	tmp := path.Join(j.TomcatHome, "lib", "."+TribesJarName+".new")
	// The marker goes first, and comes back after the jar (so is not older than it).
	marker, markerTmp := shell.Quote(j.markerPath()), shell.Quote(j.markerPath()+".new")
	fmt.Fprintf(&b, "rm -f %s\n", marker)
	fmt.Fprintf(&b, "install -o %s -g %s -m 0644 \"$dir/%s\" %s\nmv -f %s %s\n",
		shell.Quote(j.Owner), shell.Quote(j.Owner), TribesJarName, shell.Quote(tmp), shell.Quote(tmp), shell.Quote(j.jarPath()))
	fmt.Fprintf(&b, "printf '%%s\\n' %s > \"$dir/marker\"\ninstall -o %s -g %s -m 0644 \"$dir/marker\" %s\nmv -f %s %s\n",
		hash, shell.Quote(j.Owner), shell.Quote(j.Owner), markerTmp, markerTmp, marker)
	return b.String()
}
