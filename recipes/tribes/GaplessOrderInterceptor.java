package io.cauldron.tribes;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

import org.apache.catalina.tribes.ChannelException;
import org.apache.catalina.tribes.ChannelMessage;
import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.group.InterceptorPayload;
import org.apache.catalina.tribes.group.interceptors.OrderInterceptor;
import org.apache.juli.logging.Log;
import org.apache.juli.logging.LogFactory;

/**
 * Tribes' OrderInterceptor, but a message is numbered and handed to the transport in one
 * go: no later-numbered message leaves while an earlier-numbered one is still on its way
 * down.
 *
 * OrderInterceptor numbers a message under its lock and sends it after releasing it, so
 * two request threads can number #k-1 and #k and write #k first. A node killed (kill -9)
 * between thread B writing #k (and answering its user) and thread A writing #k-1 leaves
 * a gap: the peer holds #k and every later message of that node, waiting for #k-1, until
 * it finds the node gone (about a second later) or the message expires. The user's next
 * request reaches the peer within milliseconds, which answers from the session as it was
 * before #k: measured on the Nginx lab, 2 counts broken after a kill -9 (session 15), each
 * an update the killed node had answered.
 *
 * Here a sender holds one lock from its number until the transport took the message
 * (with written replication, in the socket's buffer; the kernel still delivers it when the
 * process dies). A sender that waits more than waitMillis for the lock (a peer that
 * stalls a write, up to the transport's timeout) numbers and sends as OrderInterceptor
 * does, so a hung peer costs each request at most waitMillis more.
 */
public class GaplessOrderInterceptor extends OrderInterceptor {

    private static final Log log = LogFactory.getLog(GaplessOrderInterceptor.class);

    private final ReentrantLock sendLock = new ReentrantLock(true);
    private volatile long waitMillis = 200;
    private final AtomicLong unlockedSends = new AtomicLong();

    /** How long (ms) a sender waits for the others' sends before it goes without the lock. */
    public long getWaitMillis() {
        return waitMillis;
    }

    public void setWaitMillis(long waitMillis) {
        this.waitMillis = waitMillis;
    }

    /** How many sends went without the lock since start (their wait ran out). */
    public long getUnlockedSends() {
        return unlockedSends.get();
    }

    @Override
    public void sendMessage(Member[] destination, ChannelMessage msg, InterceptorPayload payload)
            throws ChannelException {
        if (!okToProcess(msg.getOptions())) {
            super.sendMessage(destination, msg, payload);
            return;
        }
        boolean locked = false;
        try {
            locked = sendLock.tryLock(waitMillis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!locked) {
            long n = unlockedSends.incrementAndGet();
            if (Long.bitCount(n) == 1) { // 1, 2, 4, 8...: seen, without a line per request
                log.warn(n + " sends went without the order lock after waiting " + waitMillis
                        + " ms for another send (a peer stalls writes); a kill of this node meanwhile may leave a peer a gap");
            }
        }
        try {
            super.sendMessage(destination, msg, payload);
        } finally {
            if (locked) {
                sendLock.unlock();
            }
        }
    }
}
