import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.io.ChannelData;
import org.apache.catalina.tribes.io.XByteBuffer;
import org.apache.catalina.tribes.membership.MemberImpl;
import org.apache.catalina.tribes.transport.nio.PooledParallelSender;

/**
 * Sends a message to a member (a plain server socket on loopback) through the pooled
 * sender class args[0], tells the sender the member was removed (gone and back), sends again, and
 * prints how many connections the member was sent over.
 */
public class ReconnectProbe {
    public static void main(String[] args) throws Exception {
        ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        AtomicInteger accepted = new AtomicInteger();
        Thread acceptor = new Thread(() -> {
            try {
                while (true) {
                    Socket s = server.accept();
                    accepted.incrementAndGet();
                    new Thread(() -> {
                        try (InputStream in = s.getInputStream()) {
                            in.transferTo(java.io.OutputStream.nullOutputStream());
                        } catch (Exception e) {
                            // the sender closed it
                        }
                    }).start();
                }
            } catch (Exception e) {
                // server closed
            }
        });
        acceptor.setDaemon(true);
        acceptor.start();

        PooledParallelSender sender = (PooledParallelSender) Class.forName(args[0]).getDeclaredConstructor().newInstance();
        sender.setPoolSize(1);
        sender.connect();
        Member member = new MemberImpl("127.0.0.1", server.getLocalPort(), 0);
        for (int i = 0; i < 2; i++) {
            ChannelData data = new ChannelData(true);
            data.setAddress(member);
            data.setTimestamp(System.currentTimeMillis());
            data.setOptions(0); // written: no acknowledgement awaited
            data.setMessage(new XByteBuffer(new byte[] {1, 2, 3}, false));
            sender.sendMessage(new Member[] {member}, data);
            if (i == 0) {
                sender.remove(member); // as FreshConnectionsInterceptor does when it is back
            }
        }
        Thread.sleep(300);
        System.out.println(accepted.get());
        System.exit(0);
    }
}
