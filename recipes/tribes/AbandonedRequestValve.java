package io.cauldron.tribes;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicLong;

import jakarta.servlet.ServletException;
import org.apache.catalina.connector.Request;
import org.apache.catalina.connector.Response;
import org.apache.catalina.valves.ValveBase;
import org.apache.juli.logging.Log;
import org.apache.juli.logging.LogFactory;

/**
 * Refuses, with a 503 and without running it, a request whose balancer in front has
 * given up on it: one that arrives after the deadline the balancer stamped on it (the
 * X-Request-Deadline header, milliseconds since the epoch; HAProxy sets it from its own
 * timeouts and retries).
 *
 * A host that froze (docker pause, a VM stalled) or lost the network holds the requests
 * it had taken in, and runs them when it is back: its web server passes them on to a
 * Tomcat seconds or minutes later, long after HAProxy answered the user 504 and the user
 * went on. Run then, such a request changes a session behind the user's back: measured
 * on the lab, a count that went up twice for one request at a frozen host's wake (a
 * verify run in CI, session 16), and 9-13 requests done late in every frozen-host run.
 * Nobody can get its answer; refusing it keeps the session as the user last saw it.
 *
 * The clocks of the balancer's host and this one must agree to well within the margin
 * the balancer leaves (seconds): one host's kernel in the lab; NTP between hosts.
 * A request without the header, or with one that is not a number, is served as always.
 *
 * Put it first in the Engine, before the cluster's valves: a refused request must not
 * move a session (JvmRouteBinderValve) or replicate anything.
 */
public class AbandonedRequestValve extends ValveBase {

    private static final Log log = LogFactory.getLog(AbandonedRequestValve.class);

    /** The header the balancer stamps its deadline in. */
    public static final String DEFAULT_HEADER = "X-Request-Deadline";

    private volatile String header = DEFAULT_HEADER;
    private final AtomicLong refused = new AtomicLong();

    public AbandonedRequestValve() {
        super(true);
    }

    /** The header that holds the deadline, milliseconds since the epoch. */
    public String getHeader() {
        return header;
    }

    public void setHeader(String header) {
        this.header = header;
    }

    /** How many requests this valve refused since start. */
    public long getRefused() {
        return refused.get();
    }

    @Override
    public void invoke(Request request, Response response) throws IOException, ServletException {
        String value = request.getHeader(header);
        if (value != null) {
            long deadline;
            try {
                deadline = Long.parseLong(value.trim());
            } catch (NumberFormatException e) {
                deadline = 0;
            }
            long late = System.currentTimeMillis() - deadline;
            if (deadline > 0 && late > 0) {
                long n = refused.incrementAndGet();
                log.warn("Refused a request its balancer gave up on " + late + " ms ago (" + n + " refused so far): "
                        + request.getMethod() + " " + request.getRequestURI());
                response.sendError(503);
                return;
            }
        }
        getNext().invoke(request, response);
    }
}
