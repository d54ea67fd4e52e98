package recipes

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// ClusterSendOptions changes, at run time, how a running Tomcat's session clusters send
// their changes (SimpleTcpCluster's channelSendOptions, through JMX): the JDK's java
// attaches to the JVM as the user that runs it, starts its local management agent and
// sets the attribute on every cluster (one per Engine). The value holds until the JVM
// stops; server.xml is untouched, so the next start is as the file says.
//
// A drained restart uses it to close the one window asynchronous replication leaves
// open: when the node is switched out of its balancers, a user's next request goes to
// another node at once, maybe before the change of that user's last answer (sent
// right after the answer) arrived there. Made synchronous for the drain, every
// answer of the node leaves only once the other nodes have its change; the rest of
// the time the cluster replicates asynchronously, and a slow or frozen node does not
// hold up the others' requests.
type ClusterSendOptions struct {
	// JavaHome is the JDK the node runs on (with the jdk.attach module, as a JDK has).
	JavaHome string
	// User runs Tomcat: a JVM lets only its own user attach.
	User string
	// Unit is Tomcat's systemd unit; its main PID is the JVM.
	Unit string
	// Clusters is how many session clusters the JVM has (one per Engine with a
	// Cluster: one per app in server.xml as configs.NewServerXML writes it); each must
	// take the value. 0 asks for at least one.
	Clusters int
	// Configured is the send options server.xml gives the clusters, set again when a
	// drain is given up with the node still running; 0 means SendOptionsAsync.
	Configured int
	// Jar is TribesJar's jar on the node, if the recipe builds one: when it holds the
	// compiled program, java runs that (a JVM start, ~0.5 s); otherwise, or when it is
	// empty, java compiles the program from its source first (JEP 330), which took
	// 5-13 s of a drain on the lab's loaded 2 cores.
	Jar string
}

// setSendOptionsClass is the program Set runs (tribes/SetClusterSendOptions.java), by
// its class name in TribesJar's jar and its file name as a source.
const (
	setSendOptionsClass = "io.cauldron.tribes.SetClusterSendOptions"
	setSendOptionsFile  = "SetClusterSendOptions.java"
)

// configured is s.Configured, or SendOptionsAsync when unset.
func (s ClusterSendOptions) configured() int {
	if s.Configured == 0 {
		return SendOptionsAsync
	}
	return s.Configured
}

// Channel send options (org.apache.catalina.tribes.Channel): acknowledged and
// synchronous (6), or asynchronous (8).
const (
	SendOptionsSync  = 6
	SendOptionsAsync = 8
)

// Set gives every cluster of the running JVM the send options and returns what each
// says it has now ("Catalina:type=Cluster=6 ...").
func (s ClusterSendOptions) Set(ctx context.Context, c transport.Conn, options int) (string, error) {
	if s.JavaHome == "" || s.User == "" || s.Unit == "" {
		return "", fmt.Errorf("ClusterSendOptions needs a JavaHome, a User and a Unit")
	}
	java := shell.Quote(path.Join(s.JavaHome, "bin", "java")) + " -Xshare:auto -XX:TieredStopAtLevel=1"
	source, err := fs.ReadFile(tribesSources, "tribes/"+setSendOptionsFile)
	if err != nil {
		panic(err) // embedded at build time
	}
	args := `"$pid" ` + strconv.Itoa(options) + " " + strconv.Itoa(s.Clusters)
	asUser := "runuser -u " + shell.Quote(s.User) + " -- "
	// From its source, the program goes in a private folder the JVM's user can read and
	// nothing is left behind.
	fromSource := `dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '%s' ` + shell.Quote(string(source)) + ` > "$dir/` + setSendOptionsFile + `"
chown -R ` + shell.Quote(s.User) + ` "$dir"
` + asUser + java + ` "$dir/` + setSendOptionsFile + `" ` + args
	run := fromSource
	if s.Jar != "" {
		// unzip (the Tomcat recipe installs it) tells whether the jar has the class
		// without a JVM: a jar built by an earlier cauldron does not.
		jar := shell.Quote(s.Jar)
		run = "if unzip -l " + jar + " " + shell.Quote(strings.ReplaceAll(setSendOptionsClass, ".", "/")+".class") + ` >/dev/null 2>&1; then
` + asUser + java + " -cp " + jar + " " + setSendOptionsClass + " " + args + `
else
` + fromSource + `
fi`
	}
	script := `set -e
pid=$(systemctl show -p MainPID --value ` + shell.Quote(s.Unit) + `)
[ -n "$pid" ] && [ "$pid" != 0 ] || { echo "` + s.Unit + ` is not running" >&2; exit 3; }
` + run
	out, err := transport.Output(ctx, c, "bash -c "+shell.Quote(script)+" 2>&1")
	out = strings.TrimSpace(out)
	if err != nil {
		return out, fmt.Errorf("set the cluster send options of %s to %d: %s: %w", s.Unit, options, out, err)
	}
	// The JVM says what each cluster has now: all of them must have taken the value.
	said := strings.Fields(out)
	if len(said) == 0 || s.Clusters > 0 && len(said) != s.Clusters {
		return out, fmt.Errorf("set the cluster send options of %s to %d: the JVM says %q, want %d clusters", s.Unit, options, out, max(s.Clusters, 1))
	}
	for _, f := range said {
		if i := strings.LastIndex(f, "="); i < 0 || f[i+1:] != strconv.Itoa(options) {
			return out, fmt.Errorf("set the cluster send options of %s to %d: the JVM says %s", s.Unit, options, out)
		}
	}
	return out, nil
}
