package io.cauldron.tribes;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicLong;

import jakarta.servlet.ServletException;
import org.apache.catalina.Container;
import org.apache.catalina.Engine;
import org.apache.catalina.LifecycleException;
import org.apache.catalina.connector.Request;
import org.apache.catalina.connector.Response;
import org.apache.catalina.valves.ValveBase;
import org.apache.juli.logging.Log;
import org.apache.juli.logging.LogFactory;

/**
 * Refuses, with a 503, a request for another node's session that reaches this node
 * while it was frozen or in the few seconds after it woke.
 *
 * A frozen host (docker pause, a VM stalled, a stop-the-world pause) keeps its copies of
 * the other nodes' sessions as they were when it froze: while it is frozen the others
 * drop it from their membership and send it no changes, and nothing sends it the ones it
 * missed when it is back. It also wakes with work it held: requests in its sockets, and
 * its balancer's requests to the other node, whose timeouts all expire at once on waking
 * (Nginx then retries them on its backup, this node). Served here, such a request reads
 * the stale copy and replicates the result over the other node's newer state: measured
 * on the Nginx lab (session 10), a session served by the other node all along went from
 * 1,062 back to 122, its count when the host froze, within a second of the wake.
 *
 * Every such request is stale: its balancer gave up on it (after 2 s behind mod_jk and
 * Nginx, 3.5 s behind HAProxy, which retries on 503) and sent it elsewhere. So when a
 * watchdog thread finds that it slept more than pauseMillis, this node refuses for
 * refuseMillis every request whose session id names another node's route (the jvmRoute
 * after the last dot). The request threads check the watchdog's last tick themselves, as
 * they may run before it does on waking. Requests without a session, or for this node's
 * own sessions, are served as always: nothing newer of them exists elsewhere that a stale
 * copy here could overwrite (a session the other node took over while this one was frozen
 * got a new id there, JvmRouteBinderValve).
 *
 * Put it first in the Engine: before the cluster's valves, which Tomcat adds to the
 * Engine when the cluster starts (JvmRouteBinderValve would move the session to this
 * node before this valve saw its route).
 */
public class WokenNodeValve extends ValveBase {

    private static final Log log = LogFactory.getLog(WokenNodeValve.class);

    private volatile long pauseMillis = 2000;
    private volatile long refuseMillis = 5000;
    private volatile long tickMillis = 100;

    private volatile long lastTick;
    private volatile long refuseUntil;
    private volatile Thread watchdog;
    private volatile String route;
    private final AtomicLong refused = new AtomicLong();

    public WokenNodeValve() {
        super(true);
    }

    /** How long the watchdog must have slept (ms) for this node to count as woken. */
    public long getPauseMillis() {
        return pauseMillis;
    }

    public void setPauseMillis(long pauseMillis) {
        this.pauseMillis = pauseMillis;
    }

    /** How long (ms) after the watchdog found a pause other nodes' sessions are refused. */
    public long getRefuseMillis() {
        return refuseMillis;
    }

    public void setRefuseMillis(long refuseMillis) {
        this.refuseMillis = refuseMillis;
    }

    public long getTickMillis() {
        return tickMillis;
    }

    public void setTickMillis(long tickMillis) {
        this.tickMillis = tickMillis;
    }

    /** How many requests this valve refused since start. */
    public long getRefused() {
        return refused.get();
    }

    @Override
    protected void startInternal() throws LifecycleException {
        Container c = getContainer();
        while (c != null && !(c instanceof Engine)) {
            c = c.getParent();
        }
        route = c == null ? null : ((Engine) c).getJvmRoute();
        long now = System.nanoTime();
        refuseUntil = now;
        lastTick = now;
        Thread t = new Thread(this::watch, "cauldron-woken-node-watchdog");
        t.setDaemon(true);
        watchdog = t;
        t.start();
        super.startInternal();
    }

    @Override
    protected void stopInternal() throws LifecycleException {
        Thread t = watchdog;
        watchdog = null;
        if (t != null) {
            t.interrupt();
        }
        super.stopInternal();
    }

    private void watch() {
        while (watchdog == Thread.currentThread()) {
            try {
                Thread.sleep(tickMillis);
            } catch (InterruptedException e) {
                return;
            }
            long now = System.nanoTime();
            long slept = now - lastTick;
            if (slept > pauseMillis * 1_000_000L) {
                // refuseUntil before lastTick: a request thread that sees this tick
                // sees the refusal too (invoke reads them the other way round).
                refuseUntil = now + refuseMillis * 1_000_000L;
                log.warn("This node was frozen for " + slept / 1_000_000L + " ms: requests for other nodes' sessions are refused for "
                        + refuseMillis + " ms (their copies here may be stale; " + refused.get() + " refused so far)");
            }
            lastTick = now;
        }
    }

    /** Whether this node is (just) awake from a freeze. */
    private boolean woken() {
        long now = System.nanoTime();
        long tick = lastTick;
        long until = refuseUntil;
        return now - tick > pauseMillis * 1_000_000L || now - until < 0;
    }

    @Override
    public void invoke(Request request, Response response) throws IOException, ServletException {
        String own = route;
        if (own != null && woken()) {
            String id = request.getRequestedSessionId();
            int dot = id == null ? -1 : id.lastIndexOf('.');
            if (dot >= 0 && !id.substring(dot + 1).equals(own)) {
                long n = refused.incrementAndGet();
                if (log.isInfoEnabled()) {
                    log.info("Refused a request for a session of " + id.substring(dot + 1) + " after a freeze (" + n + " refused so far): "
                            + request.getMethod() + " " + request.getRequestURI());
                }
                response.sendError(503);
                return;
            }
        }
        getNext().invoke(request, response);
    }
}
