package app;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Example backend shaped like a Spring Boot service: /actuator/health, /api/version,
 * /api/items (+ vector search through pgvector), graceful shutdown on SIGTERM.
 */
public final class Main {
    private static final int MAX_BODY = 64 * 1024;
    private static final int MAX_NAME = 500;

    private final String version = env("APP_VERSION", "dev");
    private final String colour = env("APP_COLOUR", "unknown");
    private final int port = Integer.parseInt(env("PORT", "8080"));
    private final long warmupMillis = (long) (Double.parseDouble(env("WARMUP_SECONDS", "8")) * 1000);
    private final int graceSeconds = Integer.parseInt(env("SHUTDOWN_GRACE_SECONDS", "20"));
    private final long startedAt = System.currentTimeMillis();
    private final AtomicInteger inFlight = new AtomicInteger();
    private volatile boolean draining;
    private volatile Boolean lastHealthy; // for logging transitions only

    private final Db db;
    private HttpServer server;
    private ExecutorService executor;

    private Main() {
        String url = env("SPRING_DATASOURCE_URL", "jdbc:postgresql://db:5432/app");
        String user = env("SPRING_DATASOURCE_USERNAME", "");
        String password = secret("SPRING_DATASOURCE_PASSWORD"); // never logged
        int threads = Integer.parseInt(env("THREADS", "16"));
        db = new Db(url, user, password, Math.max(2, threads / 2));
        Log.info("starting version=" + version + " colour=" + colour + " port=" + port
                + " warmup=" + warmupMillis + "ms datasource=" + url + " user=" + user);
    }

    public static void main(String[] args) throws IOException {
        // TCP_NODELAY on every connection, as Spring Boot's Tomcat sets it. Without it the
        // JDK's HttpServer writes an answer's headers and body as two segments, and on a
        // keep-alive connection (the edge pools them) the body waits for the delayed ACK
        // of the headers: up to 40 ms on a request. Both properties are read when the
        // server's classes load, so they are set first.
        if (System.getProperty("sun.net.httpserver.nodelay") == null) {
            System.setProperty("sun.net.httpserver.nodelay", "true");
        }
        // The JDK keeps at most 200 idle connections and closes the rest without a word;
        // the edge pools up to edge.upstream_keepalive (512) per worker, so a request could
        // meet a closed one. Room for the edge's whole pool instead.
        if (System.getProperty("sun.net.httpserver.maxIdleConnections") == null) {
            System.setProperty("sun.net.httpserver.maxIdleConnections", "4096");
        }
        new Main().start();
    }

    private void start() throws IOException {
        int threads = Integer.parseInt(env("THREADS", "16"));
        executor = new ThreadPoolExecutor(threads, threads, 60, TimeUnit.SECONDS, new LinkedBlockingQueue<>());
        server = HttpServer.create(new InetSocketAddress(port), 128);
        server.setExecutor(executor);
        server.createContext("/", this::handle);
        server.start();
        Log.info("listening on :" + port + " (health stays DOWN for the warm-up)");

        db.migrateInBackground();
        Runtime.getRuntime().addShutdownHook(new Thread(this::shutdown, "shutdown"));
    }

    /** SIGTERM/SIGINT: stop accepting, wait for in-flight requests, then exit 0. */
    private void shutdown() {
        draining = true;
        long deadline = System.currentTimeMillis() + graceSeconds * 1000L;
        Log.info("shutdown requested; " + inFlight.get() + " request(s) in flight, waiting up to "
                + graceSeconds + "s");
        // HttpServer.stop() closes the listening socket at once (no new connections), then
        // waits for exchanges; on some JDK 21 builds it always sleeps the full delay, so it
        // runs in the background and we wait on our own in-flight counter instead.
        Thread stopper = new Thread(() -> server.stop(graceSeconds), "http-stop");
        stopper.setDaemon(true);
        stopper.start();
        try {
            Thread.sleep(100); // let connections accepted just before the close reach a handler
            while (System.currentTimeMillis() < deadline) {
                if (inFlight.get() == 0) {
                    Thread.sleep(100);
                    if (inFlight.get() == 0) break;
                }
                Thread.sleep(50);
            }
        } catch (InterruptedException ignored) {
            Thread.currentThread().interrupt();
        }
        executor.shutdown();
        db.close();
        Log.info("shutdown complete (" + inFlight.get() + " request(s) left)");
        // A JVM ended by a signal exits 143; a drained stop reports 0 instead. Every
        // response has been written (inFlight counts down after exchange.close()).
        Runtime.getRuntime().halt(0);
    }

    // ------------------------------------------------------------------ routing

    private void handle(HttpExchange ex) throws IOException {
        inFlight.incrementAndGet();
        long began = System.nanoTime();
        String path = ex.getRequestURI().getPath();
        try {
            String method = ex.getRequestMethod();
            Map<String, String> q = query(ex.getRequestURI().getRawQuery());
            switch (path) {
                case "/actuator/health", "/actuator/health/readiness" -> health(ex);
                case "/actuator/health/liveness" -> send(ex, 200, Json.obj("status", "UP"));
                case "/api/version" -> send(ex, 200, Json.obj("version", version, "colour", colour));
                case "/api/items", "/api/items/" -> {
                    if (method.equals("GET")) listItems(ex, q);
                    else if (method.equals("POST")) createItem(ex);
                    else methodNotAllowed(ex, "GET, POST");
                }
                case "/api/items/search" -> {
                    if (method.equals("GET")) search(ex, q);
                    else methodNotAllowed(ex, "GET");
                }
                case "/api/slow" -> slow(ex, q);
                default -> send(ex, 404, Json.obj("error", "not found", "path", path));
            }
        } catch (SQLException e) {
            Log.error(ex.getRequestMethod() + " " + ex.getRequestURI().getPath() + ": " + Db.oneLine(e));
            send(ex, 503, Json.obj("error", "database unavailable"));
        } catch (RuntimeException e) {
            Log.error(ex.getRequestMethod() + " " + ex.getRequestURI().getPath() + ": " + e);
            send(ex, 500, Json.obj("error", "internal error"));
        } finally {
            ex.close();
            // One line per request (not the health checks), with the edge's X-Request-ID: the
            // same id is in the edge's access log. The query string is not logged.
            if (path == null || !path.startsWith("/actuator/")) {
                String id = ex.getRequestHeaders().getFirst("X-Request-ID");
                Log.info(ex.getRequestMethod() + " " + path + " " + ex.getResponseCode() + " "
                        + (System.nanoTime() - began) / 1_000_000 + "ms id=" + (id == null ? "-" : id));
            }
            inFlight.decrementAndGet();
        }
    }

    // ------------------------------------------------------------------ endpoints

    private void health(HttpExchange ex) throws IOException {
        String reason = null;
        long left = warmupMillis - (System.currentTimeMillis() - startedAt);
        if (draining) reason = "shutting down";
        else if (left > 0) reason = "warming up (" + left + "ms left)";
        else if (!db.migrated()) reason = "database not migrated yet";
        else if (!db.ping()) reason = "database unreachable";
        boolean up = reason == null;
        if (lastHealthy == null || lastHealthy != up) {
            lastHealthy = up;
            Log.info("health " + (up ? "UP" : "DOWN: " + reason));
        }
        send(ex, up ? 200 : 503, Json.obj("status", up ? "UP" : "DOWN"));
    }

    private void listItems(HttpExchange ex, Map<String, String> q) throws IOException, SQLException {
        int limit = clamp(parseInt(q.get("limit"), 100), 1, 1000);
        List<Object> items = db.with(c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT id, name, created FROM items ORDER BY id DESC LIMIT ?")) {
                ps.setInt(1, limit);
                List<Object> out = new ArrayList<>();
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) out.add(item(rs));
                }
                return out;
            }
        });
        send(ex, 200, items);
    }

    private void createItem(HttpExchange ex) throws IOException, SQLException {
        byte[] body = ex.getRequestBody().readNBytes(MAX_BODY + 1);
        if (body.length > MAX_BODY) {
            send(ex, 413, Json.obj("error", "body too large"));
            return;
        }
        Object parsed;
        try {
            parsed = Json.parse(new String(body, StandardCharsets.UTF_8));
        } catch (Json.ParseException e) {
            send(ex, 400, Json.obj("error", "invalid JSON: " + e.getMessage()));
            return;
        }
        Object nameObj = parsed instanceof Map<?, ?> m ? m.get("name") : null;
        String name = nameObj instanceof String s ? s.trim() : "";
        if (name.isEmpty() || name.length() > MAX_NAME) {
            send(ex, 400, Json.obj("error", "body must be {\"name\": \"...\"} with 1-" + MAX_NAME + " characters"));
            return;
        }
        String vec = Embedding.literal(Embedding.embed(name));
        Object item = db.with(c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "INSERT INTO items (name, embedding) VALUES (?, ?::vector) RETURNING id, name, created")) {
                ps.setString(1, name);
                ps.setString(2, vec);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    return item(rs);
                }
            }
        });
        send(ex, 201, item);
    }

    private void search(HttpExchange ex, Map<String, String> q) throws IOException, SQLException {
        String text = q.getOrDefault("q", "").trim();
        if (text.isEmpty()) {
            send(ex, 400, Json.obj("error", "missing query parameter q"));
            return;
        }
        if (text.length() > MAX_NAME) text = text.substring(0, MAX_NAME);
        int k = clamp(parseInt(q.get("k"), 5), 1, 100);
        String vec = Embedding.literal(Embedding.embed(text));
        List<Object> items = db.with(c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT id, name, created, embedding <=> ?::vector AS distance"
                            + " FROM items ORDER BY embedding <=> ?::vector LIMIT ?")) {
                ps.setString(1, vec);
                ps.setString(2, vec);
                ps.setInt(3, k);
                List<Object> out = new ArrayList<>();
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        Map<String, Object> it = item(rs);
                        it.put("distance", rs.getDouble("distance"));
                        out.add(it);
                    }
                }
                return out;
            }
        });
        send(ex, 200, items);
    }

    /** Debug endpoint for graceful-shutdown tests: sleeps up to 30 s, then answers. */
    private void slow(HttpExchange ex, Map<String, String> q) throws IOException {
        double seconds = Math.max(0, Math.min(30, parseDouble(q.get("seconds"), 1)));
        try {
            Thread.sleep((long) (seconds * 1000));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        send(ex, 200, Json.obj("slept", seconds, "version", version, "colour", colour));
    }

    private void methodNotAllowed(HttpExchange ex, String allow) throws IOException {
        ex.getResponseHeaders().set("Allow", allow);
        send(ex, 405, Json.obj("error", "method not allowed"));
    }

    // ------------------------------------------------------------------ helpers

    private static Map<String, Object> item(ResultSet rs) throws SQLException {
        OffsetDateTime created = rs.getObject("created", OffsetDateTime.class);
        return Json.obj("id", rs.getLong("id"), "name", rs.getString("name"),
                "created", created == null ? null : created.toString());
    }

    private static void send(HttpExchange ex, int status, Object body) throws IOException {
        byte[] bytes = Json.write(body).getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        ex.getResponseHeaders().set("Cache-Control", "no-store");
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(bytes);
        }
    }

    private static Map<String, String> query(String raw) {
        Map<String, String> out = new HashMap<>();
        if (raw == null || raw.isEmpty()) return out;
        for (String pair : raw.split("&")) {
            int eq = pair.indexOf('=');
            String k = eq >= 0 ? pair.substring(0, eq) : pair;
            String v = eq >= 0 ? pair.substring(eq + 1) : "";
            try {
                out.putIfAbsent(URLDecoder.decode(k, StandardCharsets.UTF_8),
                        URLDecoder.decode(v, StandardCharsets.UTF_8));
            } catch (IllegalArgumentException ignored) {
                // malformed %-escape: skip the parameter
            }
        }
        return out;
    }

    private static int parseInt(String s, int dflt) {
        try {
            return s == null ? dflt : Integer.parseInt(s.trim());
        } catch (NumberFormatException e) {
            return dflt;
        }
    }

    private static double parseDouble(String s, double dflt) {
        try {
            double d = s == null ? dflt : Double.parseDouble(s.trim());
            return Double.isFinite(d) ? d : dflt;
        } catch (NumberFormatException e) {
            return dflt;
        }
    }

    private static int clamp(int v, int lo, int hi) {
        return Math.max(lo, Math.min(hi, v));
    }

    private static String env(String name, String dflt) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? dflt : v.trim();
    }

    /**
     * A secret: the file named by NAME_FILE (the deployer's services.*.secrets put it under
     * /run/secrets), else the variable NAME. Spring Boot reads the same files with
     * spring.config.import=optional:configtree:/run/secrets/ (docs/own-app.md).
     */
    private static String secret(String name) {
        String file = env(name + "_FILE", "");
        if (file.isEmpty()) {
            return env(name, "");
        }
        try {
            return java.nio.file.Files.readString(java.nio.file.Path.of(file), StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the secret file of " + name, e);
        }
    }
}
