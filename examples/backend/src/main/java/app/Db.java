package app;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * Tiny JDBC connection pool plus the start-up migration. Connections are opened lazily,
 * so the application starts (and reports DOWN) while the database is unreachable.
 */
final class Db {
    interface Work<T> {
        T run(Connection c) throws SQLException;
    }

    private final String url;
    private final Properties props = new Properties();
    private final BlockingQueue<Connection> idle;
    private volatile boolean migrated;

    Db(String url, String user, String password, int poolSize) {
        this.url = url;
        if (user != null && !user.isEmpty()) props.setProperty("user", user);
        if (password != null) props.setProperty("password", password);
        props.setProperty("connectTimeout", "3");   // seconds
        props.setProperty("loginTimeout", "5");     // seconds
        props.setProperty("socketTimeout", "60");   // seconds; bounds any stuck query
        props.setProperty("tcpKeepAlive", "true");
        props.setProperty("ApplicationName", "deployer-example-backend");
        this.idle = new ArrayBlockingQueue<>(poolSize);
    }

    boolean migrated() {
        return migrated;
    }

    <T> T with(Work<T> work) throws SQLException {
        Connection c = idle.poll();
        if (c == null) c = DriverManager.getConnection(url, props);
        boolean ok = false;
        try {
            T result = work.run(c);
            ok = true;
            return result;
        } finally {
            if (ok && !c.isClosed() && c.getAutoCommit()) {
                if (!idle.offer(c)) closeQuietly(c);
            } else {
                closeQuietly(c); // broken or mid-transaction: never reuse
            }
        }
    }

    /** SELECT 1 with a short timeout. */
    boolean ping() {
        try {
            return with(c -> {
                try (Statement st = c.createStatement()) {
                    st.setQueryTimeout(2);
                    st.execute("SELECT 1");
                    return true;
                }
            });
        } catch (SQLException e) {
            return false;
        }
    }

    /** Idempotent, expand-only schema migration, serialised between colours by an advisory lock. */
    void migrate() throws SQLException {
        with(c -> {
            c.setAutoCommit(false);
            try (Statement st = c.createStatement()) {
                st.execute("SELECT pg_advisory_xact_lock(7301042)");
                st.execute("CREATE EXTENSION IF NOT EXISTS vector");
                st.execute("CREATE TABLE IF NOT EXISTS items ("
                        + " id bigserial PRIMARY KEY,"
                        + " name text NOT NULL,"
                        + " embedding vector(" + Embedding.DIM + ") NOT NULL,"
                        + " created timestamptz DEFAULT now())");
                st.execute("CREATE INDEX IF NOT EXISTS items_embedding_hnsw"
                        + " ON items USING hnsw (embedding vector_cosine_ops)");
                c.commit();
            } catch (SQLException e) {
                try { c.rollback(); } catch (SQLException ignored) { }
                throw e;
            } finally {
                try { c.setAutoCommit(true); } catch (SQLException ignored) { }
            }
            return null;
        });
        migrated = true;
    }

    /** Background loop: retry the migration until the database answers. Never throws. */
    void migrateInBackground() {
        Thread t = new Thread(() -> {
            long wait = 1000;
            int attempt = 0;
            while (!migrated) {
                attempt++;
                try {
                    migrate();
                    Log.info("database migration done (attempt " + attempt + ")");
                } catch (SQLException e) {
                    Log.info("database not ready (attempt " + attempt + "): " + oneLine(e));
                    try {
                        Thread.sleep(wait);
                    } catch (InterruptedException ie) {
                        return;
                    }
                    wait = Math.min(wait * 2, 2000);
                }
            }
        }, "db-migrate");
        t.setDaemon(true);
        t.start();
    }

    void close() {
        Connection c;
        while ((c = idle.poll()) != null) closeQuietly(c);
    }

    static String oneLine(Throwable e) {
        String m = e.getMessage();
        if (m == null) m = e.getClass().getSimpleName();
        int nl = m.indexOf('\n');
        return nl >= 0 ? m.substring(0, nl) : m;
    }

    private static void closeQuietly(Connection c) {
        try { c.close(); } catch (SQLException ignored) { }
    }
}
