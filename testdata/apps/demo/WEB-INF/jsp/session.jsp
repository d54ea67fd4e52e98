<%@ page contentType="application/json; charset=UTF-8" trimDirectiveWhitespaces="true" %>
<%@ include file="/WEB-INF/jspf/app.jspf" %>
<%
    response.setHeader("Cache-Control", "no-store");
    int count = appCount(session);
    out.print("{\"app\": " + appJson(application.getInitParameter("app.name"))
            + ", \"version\": " + appJson(application.getInitParameter("app.version"))
            + ", \"node\": " + appJson(appNode(session, application))
            + ", \"session\": " + appJson(session.getId())
            + ", \"count\": " + count + "}");
%>
