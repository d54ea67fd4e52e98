<%-- The release this node runs: what a rolling release checks on every node. No session. --%>
<%@ page session="false" contentType="application/json; charset=UTF-8" trimDirectiveWhitespaces="true" %>
<%@ include file="/WEB-INF/jspf/app.jspf" %>
<%
    response.setHeader("Cache-Control", "no-store");
    out.print("{\"app\": " + appJson(application.getInitParameter("app.name"))
            + ", \"version\": " + appJson(application.getInitParameter("app.version"))
            + ", \"node\": " + appJson(appNode(null, application)) + "}");
%>
