import org.apache.catalina.connector.Connector;
import org.apache.catalina.connector.Request;
import org.apache.catalina.connector.Response;
import org.apache.catalina.core.StandardEngine;
import org.apache.catalina.valves.ValveBase;

import io.cauldron.tribes.AbandonedRequestValve;

/**
 * Sends requests through an AbandonedRequestValve with an X-Request-Deadline a second
 * past, a minute ahead, none, and one that is not a number. Prints what each got: "s"
 * served, or the status it was refused with, and how many the valve refused.
 */
public class AbandonedRequestProbe {
    public static void main(String[] args) throws Exception {
        StandardEngine engine = new StandardEngine();
        engine.setName("probe");
        AbandonedRequestValve valve = new AbandonedRequestValve();
        valve.setContainer(engine);
        valve.setNext(new ValveBase() {
            @Override
            public void invoke(Request request, Response response) {
            }
        });
        valve.start();
        Connector connector = new Connector();
        StringBuilder out = new StringBuilder();
        long now = System.currentTimeMillis();
        for (String deadline : new String[] {String.valueOf(now - 1000), String.valueOf(now + 60_000), null, "soon"}) {
            Request request = new Request(connector);
            request.setCoyoteRequest(new org.apache.coyote.Request());
            if (deadline != null) {
                request.getCoyoteRequest().getMimeHeaders().addValue(AbandonedRequestValve.DEFAULT_HEADER).setString(deadline);
            }
            Response response = new Response();
            response.setCoyoteResponse(new org.apache.coyote.Response());
            request.setResponse(response);
            response.setRequest(request);
            valve.invoke(request, response);
            out.append(' ').append(response.isError() ? String.valueOf(response.getStatus()) : "s");
        }
        System.out.println(out.toString().trim() + " | refused " + valve.getRefused());
        valve.stop();
    }
}
