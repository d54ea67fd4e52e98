<%--
  Whether this node has joined its session cluster: how many other members its channel
  sees, and whether the session state was transferred to it when it started (Tomcat's
  DeltaManager asks a member for every session before the connectors open). A drained
  restart puts a node back only once both hold. No session: probes must not make one.
--%>
<%@ page session="false" contentType="application/json; charset=UTF-8" trimDirectiveWhitespaces="true" %>
<%@ page import="java.lang.management.ManagementFactory,javax.management.MBeanServer,javax.management.ObjectName" %>
<%@ include file="/WEB-INF/jspf/app.jspf" %>
<%
    response.setHeader("Cache-Control", "no-store");
    MBeanServer mbs = ManagementFactory.getPlatformMBeanServer();
    String server = application.getVirtualServerName();
    int slash = server.indexOf('/');
    String engine = slash > 0 ? server.substring(0, slash) : server;
    String host = slash > 0 ? server.substring(slash + 1) : "localhost";
    String context = application.getContextPath().isEmpty() ? "/" : application.getContextPath();
    int members = -1;
    Boolean transferred = null;
    String problem = null;
    try {
        if (!engine.matches("[A-Za-z0-9_.-]+") || !host.matches("[A-Za-z0-9_.-]+")) {
            throw new IllegalStateException("engine or host is not a JMX name: " + server);
        }
        Object[] m = (Object[]) mbs.getAttribute(new ObjectName(
                "ClusterChannel:type=Channel,channel=" + engine + "-Channel,component=Channel"), "Members");
        members = m == null ? 0 : m.length;
        transferred = (Boolean) mbs.getAttribute(new ObjectName(
                engine + ":type=Manager,host=" + host + ",context=" + context), "stateTransferred");
    } catch (Exception e) {
        problem = e.toString();
    }
    if (problem != null) {
        response.setStatus(503);
    }
    out.print("{\"app\": " + appJson(application.getInitParameter("app.name"))
            + ", \"node\": " + appJson(appNode(null, application))
            + ", \"members\": " + members
            + ", \"stateTransferred\": " + transferred
            + ", \"error\": " + appJson(problem) + "}");
%>
