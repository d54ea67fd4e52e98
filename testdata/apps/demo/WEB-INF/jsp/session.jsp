<%@ page contentType="application/json; charset=UTF-8" trimDirectiveWhitespaces="true" %>
<%@ include file="/WEB-INF/jspf/app.jspf" %>
<%
    response.setHeader("Cache-Control", "no-store");
    // A request passed again to another node (the balancer's retry) carries the same key.
    AppCounted counted = appCount(session, request.getHeader("Idempotency-Key"));
    out.print("{\"app\": " + appJson(application.getInitParameter("app.name"))
            + ", \"version\": " + appJson(application.getInitParameter("app.version"))
            + ", \"node\": " + appJson(appNode(session, application))
            + ", \"session\": " + appJson(session.getId())
            + ", \"count\": " + counted.count
            + (counted.replayed ? ", \"replayed\": true" : "") + "}");
%>
