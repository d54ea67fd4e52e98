package io.cauldron.tribes;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.WeakHashMap;

import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.transport.DataSender;
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
 */
public class FreshConnectionsSender extends PooledParallelSender {
    private static final Log log = LogFactory.getLog(FreshConnectionsSender.class);

    // Every sender the pool made, with the members whose connections it must close
    // before its next send. Weak keys: the pool drops its senders when disconnected.
    private final Map<DataSender, Set<Member>> toClose =
            Collections.synchronizedMap(new WeakHashMap<DataSender, Set<Member>>());

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
