import java.io.InputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;

import org.apache.catalina.tribes.ChannelInterceptor;
import org.apache.catalina.tribes.group.GroupChannel;
import org.apache.catalina.tribes.membership.MemberImpl;
import org.apache.catalina.tribes.transport.nio.NioReceiver;

/**
 * Starts a channel's receiver on loopback, connects to it as a member would, tells the
 * interceptor class args[0] that another member (127.0.0.2) and then that member
 * (127.0.0.1) disappeared, and prints after each whether the connection is "open" or
 * "closed".
 */
public class DepartedMemberProbe {
    public static void main(String[] args) throws Exception {
        GroupChannel channel = new GroupChannel();
        NioReceiver receiver = new NioReceiver();
        receiver.setAddress("127.0.0.1");
        receiver.setPort(Integer.parseInt(args[1]));
        receiver.setAutoBind(100);
        channel.setChannelReceiver(receiver);
        receiver.setChannel(channel);
        receiver.start();
        ChannelInterceptor interceptor = (ChannelInterceptor) Class.forName(args[0]).getDeclaredConstructor().newInstance();
        interceptor.setChannel(channel);

        Socket member = new Socket(InetAddress.getLoopbackAddress(), receiver.getPort());
        member.setSoTimeout(1500);
        Thread.sleep(300); // the receiver's selector takes the connection in
        StringBuilder out = new StringBuilder();
        for (String host : new String[] {"127.0.0.2", "127.0.0.1"}) {
            interceptor.memberDisappeared(new MemberImpl(host, 4000, 0));
            out.append(host).append(' ').append(state(member)).append('\n');
        }
        System.out.print(out);
        System.exit(0);
    }

    private static String state(Socket s) {
        try {
            InputStream in = s.getInputStream();
            return in.read() < 0 ? "closed" : "open";
        } catch (SocketTimeoutException e) {
            return "open";
        } catch (Exception e) {
            return "closed";
        }
    }
}
