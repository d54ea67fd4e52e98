package recipes

import (
	"context"
	"fmt"
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
}

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
	java := path.Join(s.JavaHome, "bin", "java")
	// The source goes in a private folder the JVM's user can read; java runs a
	// single-file program from its source (JEP 330), nothing is left behind.
	script := `set -e
pid=$(systemctl show -p MainPID --value ` + shell.Quote(s.Unit) + `)
[ -n "$pid" ] && [ "$pid" != 0 ] || { echo "` + s.Unit + ` is not running" >&2; exit 3; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '%s' ` + shell.Quote(setSendOptionsJava) + ` > "$dir/SetClusterSendOptions.java"
chown -R ` + shell.Quote(s.User) + ` "$dir"
runuser -u ` + shell.Quote(s.User) + ` -- ` + shell.Quote(java) + ` -Xshare:auto -XX:TieredStopAtLevel=1 "$dir/SetClusterSendOptions.java" "$pid" ` + strconv.Itoa(options) + " " + strconv.Itoa(s.Clusters)
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

// setSendOptionsJava attaches to the JVM args[0], sets channelSendOptions to args[1]
// on every SimpleTcpCluster MBean (type=Cluster in any domain, one per Engine or Host,
// with a writable channelSendOptions) and prints each one's value read back. It
// changes none when there is none or not args[2] of them (0: any number).
const setSendOptionsJava = `import com.sun.tools.attach.VirtualMachine;
import java.util.ArrayList;
import java.util.List;
import javax.management.Attribute;
import javax.management.MBeanAttributeInfo;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public class SetClusterSendOptions {
    public static void main(String[] args) throws Exception {
        VirtualMachine vm = VirtualMachine.attach(args[0]);
        String address;
        try {
            address = vm.startLocalManagementAgent();
        } finally {
            vm.detach();
        }
        try (JMXConnector jmx = JMXConnectorFactory.connect(new JMXServiceURL(address))) {
            MBeanServerConnection server = jmx.getMBeanServerConnection();
            List<ObjectName> clusters = new ArrayList<>();
            for (ObjectName name : server.queryNames(new ObjectName("*:type=Cluster,*"), null)) {
                // The cluster itself, not its members, senders or valves.
                for (MBeanAttributeInfo a : server.getMBeanInfo(name).getAttributes()) {
                    if (a.getName().equals("channelSendOptions") && a.isWritable()) {
                        clusters.add(name);
                    }
                }
            }
            int want = Integer.parseInt(args[2]);
            if (clusters.isEmpty() || want > 0 && clusters.size() != want) {
                System.err.println(clusters.size() + " session clusters " + clusters + " in JVM " + args[0] + ", want " + Math.max(want, 1) + ": none changed");
                System.exit(4);
            }
            StringBuilder said = new StringBuilder();
            for (ObjectName cluster : clusters) {
                server.setAttribute(cluster, new Attribute("channelSendOptions", args[1]));
                said.append(cluster).append('=').append(server.getAttribute(cluster, "channelSendOptions")).append(' ');
            }
            System.out.println(said.toString().trim());
        }
    }
}
`
