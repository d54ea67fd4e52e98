<%@ page contentType="text/html; charset=UTF-8" trimDirectiveWhitespaces="true" %>
<%@ include file="/WEB-INF/jspf/app.jspf" %>
<%
    String app = application.getInitParameter("app.name");
    int count = appCount(session);
    String node = appNode(session, application);
%>
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<title><%= appHtml(app) %> on <%= appHtml(node) %></title>
<link rel="stylesheet" href="<%= appHtml(request.getContextPath()) %>/static/app.css">
</head>
<body>
<h1><%= appHtml(app) %></h1>
<table>
<tr><th>node</th><td id="node"><%= node.isEmpty() ? "(no jvmRoute)" : appHtml(node) %></td></tr>
<tr><th>session</th><td id="session"><%= appHtml(session.getId()) %></td></tr>
<tr><th>count</th><td id="count"><%= count %></td></tr>
</table>
<p>Reload to count again; <a href="session.json">session.json</a>, <a href="db.json">db.json</a>, <a href="health">health</a>.</p>
</body>
</html>
