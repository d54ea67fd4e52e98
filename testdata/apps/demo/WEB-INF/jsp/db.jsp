<%--
  Proves the database path: reads the JDBC settings the deployment wrote into
  WEB-INF/classes/application.properties (the keys the real mago3d app uses), records
  one visit and answers how many this app has. The JDBC driver comes from Tomcat's lib/.
  On any failure: 503 and a reason, with the password taken out of it.
--%>
<%@ page session="false" contentType="application/json; charset=UTF-8" trimDirectiveWhitespaces="true"
    import="java.io.InputStream,java.io.InputStreamReader,java.nio.charset.StandardCharsets,java.sql.*,java.util.Properties" %>
<%@ include file="/WEB-INF/jspf/app.jspf" %>
<%!
    /** The settings file, relative to the web app's root. */
    static final String APP_PROPERTIES = "/WEB-INF/classes/application.properties";

    /** Records one visit of app and returns how many visits of app the table holds. */
    static long appRecordVisit(String url, String user, String password, String app, String node) throws SQLException {
        Properties props = new Properties();
        if (user != null) {
            props.setProperty("user", user);
        }
        if (password != null) {
            props.setProperty("password", password);
        }
        // PostgreSQL driver settings (other drivers ignore them): an unreachable database
        // answers 503 in seconds instead of holding the request for minutes.
        props.setProperty("connectTimeout", "5");
        props.setProperty("loginTimeout", "10");
        props.setProperty("socketTimeout", "30");
        try (Connection c = DriverManager.getConnection(url, props)) {
            for (int attempt = 1; ; attempt++) {
                try (Statement s = c.createStatement()) {
                    s.execute("CREATE TABLE IF NOT EXISTS visits ("
                            + "id bigserial PRIMARY KEY, app text NOT NULL, node text NOT NULL, "
                            + "visited_at timestamptz NOT NULL DEFAULT now())");
                    break;
                } catch (SQLException e) {
                    // Two nodes creating the table at the same moment can both pass
                    // IF NOT EXISTS; the loser fails on the catalog's unique index while
                    // the table now exists, so a second try settles it.
                    if (attempt >= 2) {
                        throw e;
                    }
                }
            }
            try (PreparedStatement insert = c.prepareStatement("INSERT INTO visits (app, node) VALUES (?, ?)")) {
                insert.setString(1, app);
                insert.setString(2, node);
                insert.executeUpdate();
            }
            try (PreparedStatement count = c.prepareStatement("SELECT count(*) FROM visits WHERE app = ?")) {
                count.setString(1, app);
                try (ResultSet rs = count.executeQuery()) {
                    rs.next();
                    return rs.getLong(1);
                }
            }
        }
    }

    /** The reason for a failure as a client may see it: never the password. */
    static String appReason(Throwable e, String password) {
        String reason = e.getMessage();
        if (reason == null || reason.isBlank()) {
            reason = e.getClass().getName();
        }
        if (password != null && !password.isEmpty()) {
            reason = reason.replace(password, "***");
        }
        // A password written into the JDBC URL would come back in "No suitable driver
        // found for <url>" and the like.
        return reason.replaceAll("(?i)(password=)[^&;\\s]*", "$1***");
    }
%>
<%
    response.setHeader("Cache-Control", "no-store");
    String password = null;
    try {
        Properties conf = new Properties();
        try (InputStream in = application.getResourceAsStream(APP_PROPERTIES)) {
            if (in == null) {
                throw new IllegalStateException("WEB-INF/classes/application.properties is missing");
            }
            conf.load(new InputStreamReader(in, StandardCharsets.UTF_8));
        }
        password = conf.getProperty("spring.datasource.password");
        String url = conf.getProperty("spring.datasource.url", "").trim();
        if (url.isEmpty()) {
            throw new IllegalStateException("spring.datasource.url is not set in application.properties");
        }
        if (url.startsWith("jdbc:postgresql:")) {
            // Registers the driver with DriverManager from Tomcat's common class loader,
            // which the service-loader scan from this web app's loader may not reach.
            try {
                Class.forName("org.postgresql.Driver");
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException("the PostgreSQL JDBC driver is not in Tomcat's lib/", e);
            }
        }
        long visits = appRecordVisit(url, conf.getProperty("spring.datasource.username"), password,
                application.getInitParameter("app.name"), appNode(null, application));
        out.print("{\"db\": \"ok\", \"visits\": " + visits + "}");
    } catch (Exception e) {
        response.setStatus(HttpServletResponse.SC_SERVICE_UNAVAILABLE);
        out.print("{\"db\": \"error\", \"reason\": " + appJson(appReason(e, password)) + "}");
    }
%>
