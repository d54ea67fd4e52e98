<%-- For load balancer checks: must not make a session, or every probe would leave one behind on every node. --%>
<%@ page session="false" contentType="text/plain; charset=UTF-8" trimDirectiveWhitespaces="true" %>
<%
    response.setHeader("Cache-Control", "no-store");
    out.print("ok");
%>
