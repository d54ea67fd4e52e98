package io.cauldron.tribes;

import java.lang.reflect.Field;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.catalina.tribes.Channel;
import org.apache.catalina.tribes.ChannelReceiver;
import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.group.ChannelInterceptorBase;
import org.apache.catalina.tribes.group.GroupChannel;
import org.apache.catalina.tribes.transport.nio.NioReceiver;
import org.apache.juli.logging.Log;
import org.apache.juli.logging.LogFactory;

/**
 * Closes, with a reset, every connection the channel's receiver has from a member once
 * the failure detector has confirmed it gone, so that what that member wrote before it
 * went away and that reaches this node only later is refused, not applied.
 *
 * A node cut off the network (or frozen) keeps what it wrote into its connections in
 * its kernel, which sends it again until the network is back: 30 s later, a change of a
 * session that the other node has served ever since (a session id changed by
 * JvmRouteBinderValve for a request that reached the cut-off node as the cut began and
 * whose answer never got out) arrived when the network came back and was applied over
 * the newer state: the session's user got a new, empty session (the Nginx lab, session
 * 9). Once the member is confirmed gone, the node that stayed holds the sessions; the
 * departed member's late changes are stale. A reset connection drops them in the
 * kernel, and the member's sender opens a new connection when it sends again (after
 * FreshConnectionsInterceptor on its side closed the old ones).
 *
 * Put it above TcpFailureDetector, which passes a disappearance up only once it has
 * verified it: a member that the membership only suspected keeps its connections and
 * nothing it sent is lost.
 */
public class DepartedMemberInterceptor extends ChannelInterceptorBase implements DepartedMemberInterceptorMBean {
    private static final Log log = LogFactory.getLog(DepartedMemberInterceptor.class);

    @Override
    public void memberDisappeared(Member member) {
        closeConnectionsFrom(member);
        super.memberDisappeared(member);
    }

    private void closeConnectionsFrom(Member member) {
        ChannelReceiver receiver = channelReceiver();
        if (!(receiver instanceof NioReceiver)) {
            return;
        }
        NioReceiver nio = (NioReceiver) receiver;
        Selector selector = selectorOf(nio);
        if (selector == null) {
            return;
        }
        byte[] host = member.getHost();
        // The selector's keys belong to its thread: the event runs there.
        nio.addEvent(() -> {
            List<String> closed = new ArrayList<String>();
            for (SelectionKey key : new ArrayList<SelectionKey>(selector.keys())) {
                if (!(key.channel() instanceof SocketChannel)) {
                    continue;
                }
                SocketChannel channel = (SocketChannel) key.channel();
                try {
                    SocketAddress remote = channel.getRemoteAddress();
                    if (!(remote instanceof InetSocketAddress)
                            || !Arrays.equals(((InetSocketAddress) remote).getAddress().getAddress(), host)) {
                        continue;
                    }
                    channel.socket().setSoLinger(true, 0);
                    closed.add(remote.toString());
                } catch (Exception e) {
                    // closed meanwhile: nothing to refuse
                    continue;
                }
                NioReceiver.cancelledKey(key);
            }
            log.info("Closed " + closed.size() + " connections from " + member.getName()
                    + ", gone: what it sent before it went away is refused " + closed);
        });
    }

    private ChannelReceiver channelReceiver() {
        Channel channel = getChannel();
        return channel instanceof GroupChannel ? ((GroupChannel) channel).getChannelReceiver() : null;
    }

    // NioReceiver keeps its selector to itself (Tomcat 10.1.60: a private
    // AtomicReference<Selector> named selector).
    @SuppressWarnings("unchecked")
    private static Selector selectorOf(NioReceiver receiver) {
        try {
            Field f = NioReceiver.class.getDeclaredField("selector");
            f.setAccessible(true);
            Object v = f.get(receiver);
            if (v instanceof AtomicReference) {
                return ((AtomicReference<Selector>) v).get();
            }
            return v instanceof Selector ? (Selector) v : null;
        } catch (ReflectiveOperationException | RuntimeException e) {
            log.warn("Cannot reach the receiver's connections: a departed member's late changes will be taken", e);
            return null;
        }
    }
}
