import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;

import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.io.ChannelData;
import org.apache.catalina.tribes.io.XByteBuffer;
import org.apache.catalina.tribes.membership.MemberImpl;

import io.cauldron.tribes.FreshConnectionsSender;

/**
 * A member (a server socket on loopback with a small receive buffer) takes a connection
 * and reads nothing, as a peer out of reach; FreshConnectionsSender writes it 4 messages
 * of 16 KiB, most of which stay in this side's socket buffer. Then the member is gone:
 * args[0] "remove" closes the connections as Tribes' remove does, "reset" as
 * ResetOnDepartureInterceptor has them closed. The member then reads what comes and
 * prints "all" or "part" of the bytes written and how the stream ended ("eof" or
 * "reset").
 */
public class DepartureProbe {
    public static void main(String[] args) throws Exception {
        ServerSocket server = new ServerSocket();
        server.setReceiveBufferSize(4096);
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));

        FreshConnectionsSender sender = new FreshConnectionsSender();
        sender.setPoolSize(1);
        sender.setTxBufSize(256 * 1024);
        sender.setTimeout(2000);
        sender.connect();
        Member member = new MemberImpl("127.0.0.1", server.getLocalPort(), 0);
        Socket peer = null;
        int written = 0;
        for (int i = 0; i < 4; i++) {
            ChannelData data = new ChannelData(true);
            data.setAddress(member);
            data.setTimestamp(System.currentTimeMillis());
            data.setOptions(0); // written: no acknowledgement awaited
            data.setMessage(new XByteBuffer(new byte[16 * 1024], false));
            sender.sendMessage(new Member[] {member}, data);
            written += XByteBuffer.getDataPackageLength(data.getDataPackageLength());
            if (peer == null) {
                peer = server.accept();
            }
        }
        Thread.sleep(100);
        if (args[0].equals("reset")) {
            sender.resetConnectionsTo(member);
        } else {
            sender.remove(member);
            sender.getSender(); // remove closes each pooled sender's connection when it is next taken
        }

        long read = 0;
        String end;
        try (InputStream in = peer.getInputStream()) {
            byte[] buf = new byte[8192];
            for (int n; (n = in.read(buf)) >= 0;) {
                read += n;
            }
            end = "eof";
        } catch (java.net.SocketException e) {
            end = "reset";
        }
        System.out.println((read == written ? "all" : "part") + " " + end);
        System.exit(0);
    }
}
