import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import org.apache.catalina.tribes.ChannelException;
import org.apache.catalina.tribes.ChannelMessage;
import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.group.ChannelInterceptorBase;
import org.apache.catalina.tribes.group.InterceptorPayload;
import org.apache.catalina.tribes.group.interceptors.OrderInterceptor;
import org.apache.catalina.tribes.io.ChannelData;
import org.apache.catalina.tribes.io.XByteBuffer;
import org.apache.catalina.tribes.membership.MemberImpl;

import io.cauldron.tribes.GaplessOrderInterceptor;

/**
 * Two request threads send a message each through an order interceptor (args[0]: stock
 * or gapless) to a transport stand-in whose write of the first message takes args[1] ms;
 * the second thread sends 30 ms after the first. Prints the numbers in the order their
 * writes finished ("2 1": the later-numbered message was written while the earlier was
 * still on its way: a gap if the node dies then), and for the gapless interceptor how
 * many sends went without its lock.
 */
public class GaplessOrderProbe {
    public static void main(String[] args) throws Exception {
        long slowWrite = Long.parseLong(args[1]);
        OrderInterceptor order = args[0].equals("gapless") ? new GaplessOrderInterceptor() : new OrderInterceptor();
        List<Integer> written = Collections.synchronizedList(new ArrayList<>());
        order.setNext(new ChannelInterceptorBase() {
            @Override
            public void sendMessage(Member[] destination, ChannelMessage msg, InterceptorPayload payload) throws ChannelException {
                int nr = XByteBuffer.toInt(msg.getMessage().getBytesDirect(), msg.getMessage().getLength() - 4);
                if (nr == 1) {
                    try {
                        Thread.sleep(slowWrite);
                    } catch (InterruptedException e) {
                        throw new ChannelException(e);
                    }
                }
                written.add(nr);
            }
        });
        Member peer = new MemberImpl("127.0.0.1", 4000, 0);
        Thread[] threads = new Thread[2];
        for (int i = 0; i < threads.length; i++) {
            threads[i] = new Thread(() -> {
                ChannelData data = new ChannelData(true);
                data.setMessage(new XByteBuffer(new byte[] {1, 2, 3}, false));
                try {
                    order.sendMessage(new Member[] {peer}, data, null);
                } catch (ChannelException e) {
                    throw new RuntimeException(e);
                }
            });
            threads[i].start();
            Thread.sleep(30);
        }
        for (Thread t : threads) {
            t.join();
        }
        StringBuilder out = new StringBuilder();
        for (int nr : written) {
            out.append(nr).append(' ');
        }
        if (order instanceof GaplessOrderInterceptor g) {
            out.append("| unlocked ").append(g.getUnlockedSends());
        }
        System.out.println(out.toString().trim());
    }
}
