import java.security.MessageDigest;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.catalina.tribes.Channel;
import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.group.GroupChannel;
import org.apache.catalina.tribes.group.interceptors.TcpFailureDetector;
import org.apache.catalina.tribes.membership.StaticMember;
import org.apache.catalina.tribes.membership.StaticMembershipService;
import org.apache.catalina.tribes.transport.nio.NioReceiver;

/**
 * Two Tribes channels on the loopback with static membership, as a clustered server.xml
 * has them. Channel A's failure detector is Tribes' own (args[0] "stock") or cauldron's
 * ("cauldron"). B stops cleanly and starts again, and A's first read test of the returning
 * B fails, as it does when a just-started JVM on a loaded host acknowledges late (the
 * only stand-in: the failure of that one test). Prints whether A counts B again within
 * 10 s: "rejoined" or "left out", then "test failed once" if the stand-in did its part.
 */
public class RejoinProbe {
    static final AtomicBoolean failNextTest = new AtomicBoolean();
    static final AtomicBoolean failedOnce = new AtomicBoolean();

    static boolean standIn() {
        if (failNextTest.getAndSet(false)) {
            failedOnce.set(true);
            return true;
        }
        return false;
    }

    public static class Stock extends TcpFailureDetector {
        @Override
        protected boolean memberAlive(Member mbr) {
            return !standIn() && super.memberAlive(mbr);
        }
    }

    public static class Cauldron extends io.cauldron.tribes.RejoinFailureDetector {
        @Override
        protected boolean memberAlive(Member mbr) {
            return !standIn() && super.memberAlive(mbr);
        }
    }

    static byte[] uniqueId(int port) throws Exception {
        byte[] sum = MessageDigest.getInstance("SHA-256").digest(("127.0.0.1:" + port).getBytes("UTF-8"));
        byte[] id = new byte[16];
        System.arraycopy(sum, 0, id, 0, 16);
        return id;
    }

    static GroupChannel start(int port, int[] ports, TcpFailureDetector detector) throws Exception {
        GroupChannel ch = new GroupChannel();
        NioReceiver rx = (NioReceiver) ch.getChannelReceiver();
        rx.setAddress("127.0.0.1");
        rx.setPort(port);
        rx.setAutoBind(1);
        StaticMembershipService ms = new StaticMembershipService();
        ms.setUseThread(true);
        ms.setPingInterval(500);
        ms.setRpcTimeout(3000);
        ms.setExpirationTime(3000);
        for (int p : ports) {
            ms.addStaticMember(new StaticMember("127.0.0.1", p, 0, uniqueId(p)));
        }
        ch.setMembershipService(ms);
        detector.setPerformReadTest(true);
        detector.setReadTestTimeout(500);
        detector.setConnectTimeout(500);
        ch.addInterceptor(detector);
        ch.setHeartbeatSleeptime(1000);
        ch.start(Channel.DEFAULT);
        return ch;
    }

    static boolean await(GroupChannel ch, int members, long millis) throws InterruptedException {
        long end = System.currentTimeMillis() + millis;
        while (System.currentTimeMillis() < end) {
            if (ch.getMembers().length == members) {
                return true;
            }
            Thread.sleep(50);
        }
        return false;
    }

    static int freePort() throws Exception {
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    public static void main(String[] args) throws Exception {
        int pa = freePort(), pb = freePort();
        int[] ports = {pa, pb};
        TcpFailureDetector detector = args[0].equals("cauldron") ? new Cauldron() : new Stock();
        GroupChannel a = start(pa, ports, detector);
        GroupChannel b = start(pb, ports, new TcpFailureDetector());
        if (!await(a, 1, 10000)) {
            System.out.println("A never counted B");
            System.exit(1);
        }
        b.stop(Channel.DEFAULT);
        if (!await(a, 0, 10000)) {
            System.out.println("A still counts B after its stop");
            System.exit(1);
        }
        failNextTest.set(true);
        start(pb, ports, new TcpFailureDetector());
        System.out.println(await(a, 1, 10000) ? "rejoined" : "left out");
        if (failedOnce.get()) {
            System.out.println("test failed once");
        }
        System.exit(0);
    }
}
