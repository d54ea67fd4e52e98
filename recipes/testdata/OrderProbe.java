import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.apache.catalina.tribes.Channel;
import org.apache.catalina.tribes.ChannelMessage;
import org.apache.catalina.tribes.group.ChannelInterceptorBase;
import org.apache.catalina.tribes.io.ChannelData;
import org.apache.catalina.tribes.io.XByteBuffer;
import org.apache.catalina.tribes.membership.MemberImpl;

/**
 * Feeds the ordering interceptor class args[0] (optionFlag 256) the messages of one
 * member as a receiver would, and prints what it handed up after each phase, phases
 * separated by " | " ("-" for nothing):
 * 1; 3 after a gap, then nothing more for up to 2 s; 2, late; 5 after a gap and then an
 * acknowledged (unnumbered) message; then the member numbering anew: 1, 3, 2.
 */
public class OrderProbe {
    private static final List<String> up = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        ChannelInterceptorBase order = (ChannelInterceptorBase) Class.forName(args[0]).getDeclaredConstructor().newInstance();
        order.setOptionFlag(256);
        order.setPrevious(new ChannelInterceptorBase() {
            @Override
            public void messageReceived(ChannelMessage msg) {
                synchronized (up) {
                    up.add(new String(msg.getMessage().getBytes(), StandardCharsets.UTF_8));
                }
            }
        });
        order.setNext(new ChannelInterceptorBase() {
        });
        order.start(Channel.DEFAULT);
        MemberImpl member = new MemberImpl("127.0.0.2", 4000, 0);
        StringBuilder out = new StringBuilder();

        order.messageReceived(numbered(member, 1, "1"));
        out.append(phase());
        order.messageReceived(numbered(member, 3, "3"));
        for (long end = System.currentTimeMillis() + 2000; System.currentTimeMillis() < end && size() == 0;) {
            Thread.sleep(10);
        }
        out.append(" | ").append(phase());
        order.messageReceived(numbered(member, 2, "2"));
        out.append(" | ").append(phase());
        order.messageReceived(numbered(member, 5, "5"));
        order.messageReceived(message(member, Channel.SEND_OPTIONS_USE_ACK | Channel.SEND_OPTIONS_SYNCHRONIZED_ACK, "ack"));
        out.append(" | ").append(phase());
        order.messageReceived(numbered(member, 1, "r1"));
        order.messageReceived(numbered(member, 3, "r3"));
        order.messageReceived(numbered(member, 2, "r2"));
        out.append(" | ").append(phase());
        System.out.println(out);
        System.exit(0);
    }

    private static int size() {
        synchronized (up) {
            return up.size();
        }
    }

    private static String phase() {
        synchronized (up) {
            String s = up.isEmpty() ? "-" : String.join(" ", up);
            up.clear();
            return s;
        }
    }

    private static ChannelMessage numbered(MemberImpl from, int nr, String body) {
        ChannelMessage m = message(from, 256, body);
        m.getMessage().append(nr);
        return m;
    }

    private static ChannelMessage message(MemberImpl from, int options, String body) {
        ChannelData d = new ChannelData(true);
        d.setAddress(from);
        d.setOptions(options);
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        XByteBuffer x = new XByteBuffer(b.length + 4, false);
        x.append(b, 0, b.length);
        d.setMessage(x);
        return d;
    }
}
