package io.cauldron.tribes;

import java.lang.reflect.Field;
import java.net.StandardSocketOptions;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.WeakHashMap;

import org.apache.catalina.tribes.Channel;
import org.apache.catalina.tribes.ChannelException;
import org.apache.catalina.tribes.ChannelSender;
import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.group.GroupChannel;
import org.apache.catalina.tribes.transport.ReplicationTransmitter;
import org.apache.catalina.tribes.transport.DataSender;
import org.apache.catalina.tribes.transport.nio.NioSender;
import org.apache.catalina.tribes.transport.nio.ParallelNioSender;
import org.apache.catalina.tribes.transport.nio.PooledParallelSender;
import org.apache.juli.logging.Log;
import org.apache.juli.logging.LogFactory;

/**
 * A PooledParallelSender whose remove(member) closes every pooled sender's connection
 * to that member, each just before that sender's next send.
 *
 * Tribes' PooledSender.remove does nothing (Tomcat 10.1.60): a connection opened
 * before a member went away (cut off, frozen, restarted) stays in the pool and is
 * written into again when the member is back, where the changes sit unread or wait
 * out a full socket buffer. A sender is closed when it is next taken from the pool,
 * not at once: the pool's senders are each used by one thread at a time, and one
 * that is sending now must not have a connection closed under it.
 * FreshConnectionsInterceptor calls remove when a member is added (back).
 *
 * <p>resetConnectionsTo(member) closes them at once and with a reset (SO_LINGER 0), so
 * that what this node's kernel still holds for the member is dropped, not delivered
 * when the member is back; ResetOnDepartureInterceptor calls it when the failure
 * detector has found the member gone.
 */
public class FreshConnectionsSender extends PooledParallelSender {
    private static final Log log = LogFactory.getLog(FreshConnectionsSender.class);

    // Every sender the pool made, with the members whose connections it must close
    // before its next send. Weak keys: the pool drops its senders when disconnected.
    private final Map<DataSender, Set<Member>> toClose =
            Collections.synchronizedMap(new WeakHashMap<DataSender, Set<Member>>());

    /** The channel's transport if it is a FreshConnectionsSender, or null. */
    static FreshConnectionsSender of(Channel channel) {
        ChannelSender sender = channelSender(channel);
        if (sender instanceof ReplicationTransmitter
                && ((ReplicationTransmitter) sender).getTransport() instanceof FreshConnectionsSender) {
            return (FreshConnectionsSender) ((ReplicationTransmitter) sender).getTransport();
        }
        return null;
    }

    /**
     * The channel's transport, or an error naming the interceptor that needs it (an
     * interceptor of this jar says so at start, not silently at the first departure).
     */
    static FreshConnectionsSender required(Channel channel, Object needer) throws ChannelException {
        FreshConnectionsSender fresh = of(channel);
        if (fresh == null) {
            ChannelSender sender = channelSender(channel);
            throw new ChannelException(needer.getClass().getName() + " needs the Transport "
                    + FreshConnectionsSender.class.getName() + ", not "
                    + (sender instanceof ReplicationTransmitter
                            ? ((ReplicationTransmitter) sender).getTransport() : sender));
        }
        return fresh;
    }

    private static ChannelSender channelSender(Channel channel) {
        return channel instanceof GroupChannel ? ((GroupChannel) channel).getChannelSender() : null;
    }

    @Override
    public DataSender getNewDataSender() {
        DataSender sender = super.getNewDataSender();
        toClose.put(sender, new HashSet<Member>());
        return sender;
    }

    @Override
    public void remove(Member member) {
        int senders;
        synchronized (toClose) {
            for (Set<Member> members : toClose.values()) {
                members.add(member);
            }
            senders = toClose.size();
        }
        log.info("Closing the connections of " + senders + " pooled senders to " + member.getName()
                + " before their next send");
    }

    /**
     * Closes every pooled sender's connection to member now, with a reset: the bytes
     * its kernel had not delivered yet (written while the member was already out of
     * reach) are dropped. Waits for a sender that is sending (up to its timeout).
     */
    public void resetConnectionsTo(Member member) {
        List<DataSender> senders;
        synchronized (toClose) {
            senders = new ArrayList<DataSender>(toClose.keySet());
        }
        int reset = 0;
        for (DataSender sender : senders) {
            if (!(sender instanceof ParallelNioSender)) {
                continue;
            }
            ParallelNioSender parallel = (ParallelNioSender) sender;
            // ParallelNioSender sends under its own lock: no send is under way on it here.
            synchronized (parallel) {
                SocketChannel channel = socketChannelTo(parallel, member);
                if (channel != null) {
                    try {
                        channel.setOption(StandardSocketOptions.SO_LINGER, 0);
                        reset++;
                    } catch (Exception e) {
                        log.warn("Could not set SO_LINGER 0 on the connection to " + member.getName()
                                + ": it is closed without a reset", e);
                    }
                }
                parallel.remove(member);
                if (channel != null) {
                    closeNow(parallel);
                }
            }
        }
        log.info("Reset " + reset + " connections to " + member.getName()
                + ", which is gone: what they still held for it is dropped");
    }

    // Tribes keeps a ParallelNioSender's per-member senders and a NioSender's channel
    // private or protected (Tomcat 10.1.60: ParallelNioSender.state.nioSenders and
    // .selector, NioSender.socketChannel); there is no other way to reach the socket.
    private static final Field parallelState = field(ParallelNioSender.class, "state");
    private static final Field nioSenders = parallelState == null ? null
            : field(parallelState.getType(), "nioSenders");
    private static final Field selector = parallelState == null ? null
            : field(parallelState.getType(), "selector");
    private static final Field socketChannel = field(NioSender.class, "socketChannel");

    private static Field field(Class<?> c, String name) {
        try {
            Field f = c.getDeclaredField(name);
            f.setAccessible(true);
            return f;
        } catch (Exception e) {
            log.warn("This Tribes has no " + c.getName() + "." + name
                    + ": connections to a member that is gone are closed without a reset", e);
            return null;
        }
    }

    // A non-blocking channel registered with a selector is closed when the selector
    // next deregisters its key (the JDK keeps the socket until then, and with SO_LINGER 0
    // does nothing at close): the pooled sender's selector runs at its next send, which
    // may come after the member is back. A selectNow here deregisters it now, under the
    // sender's lock; nothing of this sender waits for its selected keys between sends.
    private static void closeNow(ParallelNioSender parallel) {
        if (selector == null) {
            return;
        }
        try {
            Selector s = (Selector) selector.get(parallelState.get(parallel));
            s.selectNow();
            s.selectedKeys().clear();
        } catch (Exception e) {
            log.warn("Could not close a reset connection at once", e);
        }
    }

    private static SocketChannel socketChannelTo(ParallelNioSender parallel, Member member) {
        if (nioSenders == null || socketChannel == null) {
            return null;
        }
        try {
            Map<?, ?> byMember = (Map<?, ?>) nioSenders.get(parallelState.get(parallel));
            Object sender = byMember.get(member);
            return sender == null ? null : (SocketChannel) socketChannel.get(sender);
        } catch (Exception e) {
            log.warn("Could not reach the connection to " + member.getName(), e);
            return null;
        }
    }

    @Override
    public DataSender getSender() {
        DataSender sender = super.getSender();
        if (sender == null) {
            return null;
        }
        List<Member> members;
        synchronized (toClose) {
            Set<Member> pending = toClose.get(sender);
            if (pending == null || pending.isEmpty()) {
                return sender;
            }
            members = new ArrayList<Member>(pending);
            pending.clear();
        }
        ParallelNioSender parallel = (ParallelNioSender) sender;
        // ParallelNioSender sends under its own lock; remove does not take it.
        synchronized (parallel) {
            for (Member member : members) {
                parallel.remove(member);
            }
        }
        if (log.isDebugEnabled()) {
            log.debug("Closed the connections of a pooled sender to " + members);
        }
        return sender;
    }
}
