import org.apache.catalina.connector.Connector;
import org.apache.catalina.connector.Request;
import org.apache.catalina.connector.Response;
import org.apache.catalina.core.StandardEngine;
import org.apache.catalina.valves.ValveBase;

import io.cauldron.tribes.WokenNodeValve;

/**
 * Sends requests for three sessions (another node's, this node's, none) through a
 * WokenNodeValve on an Engine whose jvmRoute is web1: before a freeze, right after this
 * JVM was stopped for args[0] ms (SIGSTOP, as docker pause freezes a container), and
 * after the valve's refuse time. Prints what each got: "s" served, or the status it was
 * refused with.
 */
public class WokenNodeProbe {
    public static void main(String[] args) throws Exception {
        long frozen = Long.parseLong(args[0]);
        StandardEngine engine = new StandardEngine();
        engine.setName("probe");
        engine.setJvmRoute("web1");
        WokenNodeValve valve = new WokenNodeValve();
        valve.setContainer(engine);
        valve.setRefuseMillis(3000);
        valve.setNext(new ValveBase() {
            @Override
            public void invoke(Request request, Response response) {
            }
        });
        valve.start();
        Connector connector = new Connector();
        StringBuilder out = new StringBuilder();
        ask(valve, connector, out);
        long pid = ProcessHandle.current().pid();
        new ProcessBuilder("sh", "-c", "kill -STOP " + pid + "; sleep " + frozen / 1000.0 + "; kill -CONT " + pid)
                .inheritIO().start().waitFor();
        out.append(" |");
        ask(valve, connector, out);
        Thread.sleep(3500);
        out.append(" |");
        ask(valve, connector, out);
        System.out.println(out.toString().trim() + " | refused " + valve.getRefused());
        valve.stop();
    }

    private static void ask(WokenNodeValve valve, Connector connector, StringBuilder out) throws Exception {
        for (String id : new String[] {"3F2A9C01B2D4.web2", "3F2A9C01B2D4.web1", null}) {
            Request request = new Request(connector);
            request.setCoyoteRequest(new org.apache.coyote.Request());
            request.setRequestedSessionId(id);
            Response response = new Response();
            response.setCoyoteResponse(new org.apache.coyote.Response());
            request.setResponse(response);
            response.setRequest(request);
            valve.invoke(request, response);
            out.append(' ').append(response.isError() ? String.valueOf(response.getStatus()) : "s");
        }
    }
}
