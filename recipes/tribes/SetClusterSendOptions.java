package io.cauldron.tribes;

import com.sun.tools.attach.VirtualMachine;
import java.util.ArrayList;
import java.util.List;
import javax.management.Attribute;
import javax.management.MBeanAttributeInfo;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

/**
 * Attaches to the JVM args[0], sets channelSendOptions to args[1] on every
 * SimpleTcpCluster MBean (type=Cluster in any domain, one per Engine or Host, with a
 * writable channelSendOptions) and prints each one's value read back. It changes none
 * when there is none or not args[2] of them (0: any number).
 *
 * Run by cauldron's drained restart (recipes.ClusterSendOptions) as its own JVM, from
 * cauldron-tribes.jar; never loaded by Tomcat.
 */
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
