package io.cauldron.tribes;

import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.catalina.tribes.Channel;
import org.apache.catalina.tribes.ChannelException;
import org.apache.catalina.tribes.ChannelMessage;
import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.group.ChannelInterceptorBase;
import org.apache.catalina.tribes.group.InterceptorPayload;
import org.apache.catalina.tribes.io.XByteBuffer;
import org.apache.juli.logging.Log;
import org.apache.juli.logging.LogFactory;

/**
 * Hands a member's messages up in the order it numbered them, like Tribes'
 * OrderInterceptor and understood by it (the same four-byte number after each message
 * of its optionFlag, counted from 1 per member, anew when the member goes away), but it
 * never holds one for long.
 *
 * Tribes' OrderInterceptor holds a message that came before an earlier-numbered one
 * until that one arrives, or, only when the member's NEXT message comes, until the
 * message is older than its expire (3 s): it has no timer. A node numbers a change
 * before a request thread writes it into one of its pooled connections, so a thread
 * that stalls between the two (a host frozen by docker pause, a write that failed)
 * leaves a gap that the later changes, already answered to their users, wait behind.
 * The user's next request goes to the other node, which has not applied the answered
 * change: a broken count (the Nginx lab, frozen web host, session 9). And once a
 * drained node replicates with an acknowledgement (unnumbered), no numbered message
 * follows: what was held stayed held until the drained node left, then overwrote the
 * six newer changes of its session (broken count back by 6, session 9).
 *
 * So a held message is handed up once it has waited holdTime (100 ms; a timer looks
 * every quarter of it), skipping the gap; every held message of a member is handed up
 * before an acknowledged message of that member (USE_ACK, the drained node's), which
 * was sent after them; and a message numbered 1 from a member whose count is further
 * on means the member numbers anew (it restarted or saw this node go), so it starts
 * the count again instead of passing everything up unordered until the old count is
 * reached. A message that comes after its gap was skipped is handed up at once: its
 * change was made before the later ones, whose sessions it does not touch unless it
 * was answered first (one session's changes are numbered only after the one before was
 * written).
 */
public class PromptOrderInterceptor extends ChannelInterceptorBase implements PromptOrderInterceptorMBean {
    private static final Log log = LogFactory.getLog(PromptOrderInterceptor.class);

    private final Object outLock = new Object();
    private final Map<Member, AtomicInteger> outgoing = new HashMap<>(); // by outLock

    private final Object inLock = new Object();
    private final Map<Member, Incoming> incoming = new HashMap<>(); // by inLock

    private volatile long holdTime = 100;
    private ScheduledExecutorService timer; // by this

    private final AtomicLong heldCount = new AtomicLong();
    private final AtomicLong releasedByTimer = new AtomicLong();
    private final AtomicLong releasedByAck = new AtomicLong();
    private final AtomicLong lateCount = new AtomicLong();

    /** A member's incoming count and the messages that wait for an earlier one. */
    private static final class Incoming {
        int next = 1;
        final TreeMap<Integer, Held> held = new TreeMap<>();
    }

    private static final class Held {
        final ChannelMessage msg;
        final long since;

        Held(ChannelMessage msg, long since) {
            this.msg = msg;
            this.since = since;
        }
    }

    @Override
    public void sendMessage(Member[] destination, ChannelMessage msg, InterceptorPayload payload)
            throws ChannelException {
        if (!okToProcess(msg.getOptions())) {
            super.sendMessage(destination, msg, payload);
            return;
        }
        ChannelException cx = null;
        for (Member member : destination) {
            int nr;
            synchronized (outLock) {
                nr = outgoing.computeIfAbsent(member, m -> new AtomicInteger()).incrementAndGet();
            }
            msg.getMessage().append(nr);
            try {
                getNext().sendMessage(new Member[] {member}, msg, payload);
            } catch (ChannelException x) {
                if (cx == null) {
                    cx = x;
                }
                cx.addFaultyMember(x.getFaultyMembers());
            } finally {
                msg.getMessage().trim(4);
            }
        }
        if (cx != null) {
            throw cx;
        }
    }

    @Override
    public void messageReceived(ChannelMessage msg) {
        Member from = msg.getAddress();
        if (!okToProcess(msg.getOptions())) {
            if ((msg.getOptions() & Channel.SEND_OPTIONS_USE_ACK) != 0) {
                // Sent after every numbered one that came before it: those go up first.
                synchronized (inLock) {
                    Incoming in = incoming.get(from);
                    if (in != null && !in.held.isEmpty()) {
                        releasedByAck.addAndGet(in.held.size());
                        releaseAll(in);
                    }
                }
            }
            super.messageReceived(msg);
            return;
        }
        XByteBuffer body = msg.getMessage();
        int nr = XByteBuffer.toInt(body.getBytesDirect(), body.getLength() - 4);
        body.trim(4);
        synchronized (inLock) {
            Incoming in = incoming.computeIfAbsent(from, m -> new Incoming());
            if (nr == 1 && in.next != 1) {
                // The member numbers anew: what it numbered before goes up first.
                releaseAll(in);
                in.next = 1;
            }
            if (nr < in.next) {
                lateCount.incrementAndGet();
                log.info("A change numbered " + nr + " from " + from.getName() + " came after its gap was skipped (now at "
                        + in.next + "): handed up as it is");
                super.messageReceived(msg);
                return;
            }
            if (nr > in.next) {
                heldCount.incrementAndGet();
                // The receiver reuses the message's buffer once this returns.
                in.held.put(nr, new Held((ChannelMessage) msg.deepclone(), System.nanoTime()));
                return;
            }
            super.messageReceived(msg);
            in.next = nr + 1;
            releaseInOrder(in);
        }
    }

    /** Hands up the held messages that follow the count without a gap; by inLock. */
    private void releaseInOrder(Incoming in) {
        for (Map.Entry<Integer, Held> e = in.held.firstEntry(); e != null && e.getKey() == in.next;
                e = in.held.firstEntry()) {
            in.held.pollFirstEntry();
            super.messageReceived(e.getValue().msg);
            in.next = e.getKey() + 1;
        }
    }

    /** Hands up every held message in number order, skipping the gaps; by inLock. */
    private void releaseAll(Incoming in) {
        for (Map.Entry<Integer, Held> e = in.held.pollFirstEntry(); e != null; e = in.held.pollFirstEntry()) {
            super.messageReceived(e.getValue().msg);
            in.next = e.getKey() + 1;
        }
    }

    /** Skips the gaps before messages held longer than holdTime. */
    void releaseExpired() {
        long now = System.nanoTime();
        long hold = TimeUnit.MILLISECONDS.toNanos(holdTime);
        synchronized (inLock) {
            for (Map.Entry<Member, Incoming> m : incoming.entrySet()) {
                Incoming in = m.getValue();
                int skipped = 0;
                int from = in.next;
                while (!in.held.isEmpty() && oldest(in) <= now - hold) {
                    in.next = in.held.firstKey();
                    skipped++;
                    releaseInOrder(in);
                }
                if (skipped > 0) {
                    releasedByTimer.incrementAndGet();
                    log.info("Skipped " + skipped + " gap(s) in the changes from " + m.getKey().getName() + " after " + holdTime
                            + " ms (waited from number " + from + ", now at " + in.next + ")");
                }
            }
        }
    }

    private static long oldest(Incoming in) {
        long t = Long.MAX_VALUE;
        for (Held h : in.held.values()) {
            t = Math.min(t, h.since);
        }
        return t;
    }

    @Override
    public void memberDisappeared(Member member) {
        synchronized (inLock) {
            Incoming in = incoming.remove(member);
            if (in != null) {
                releaseAll(in);
            }
        }
        synchronized (outLock) {
            outgoing.remove(member);
        }
        super.memberDisappeared(member);
    }

    @Override
    public void start(int svc) throws ChannelException {
        synchronized (this) {
            if (timer == null) {
                ScheduledThreadPoolExecutor t = new ScheduledThreadPoolExecutor(1, r -> {
                    Thread th = new Thread(r, "cauldron-order-release");
                    th.setDaemon(true);
                    return th;
                });
                long every = Math.max(1, holdTime / 4);
                t.scheduleWithFixedDelay(() -> {
                    try {
                        releaseExpired();
                    } catch (RuntimeException e) {
                        log.warn("Handing up held changes failed", e);
                    }
                }, every, every, TimeUnit.MILLISECONDS);
                timer = t;
            }
        }
        super.start(svc);
    }

    @Override
    public void stop(int svc) throws ChannelException {
        super.stop(svc);
        synchronized (this) {
            if (timer != null) {
                timer.shutdownNow();
                timer = null;
            }
        }
    }

    /** How long a message may wait for an earlier one, in milliseconds. */
    public void setHoldTime(long ms) {
        if (ms <= 0) {
            throw new IllegalArgumentException("holdTime must be positive, not " + ms);
        }
        holdTime = ms;
    }

    @Override
    public long getHoldTime() {
        return holdTime;
    }

    @Override
    public long getHeldCount() {
        return heldCount.get();
    }

    @Override
    public long getReleasedByTimer() {
        return releasedByTimer.get();
    }

    @Override
    public long getReleasedByAck() {
        return releasedByAck.get();
    }

    @Override
    public long getLateCount() {
        return lateCount.get();
    }

    /** The number of messages waiting for an earlier one now. */
    @Override
    public int getHeldNow() {
        synchronized (inLock) {
            int n = 0;
            for (Incoming in : incoming.values()) {
                n += in.held.size();
            }
            return n;
        }
    }
}
