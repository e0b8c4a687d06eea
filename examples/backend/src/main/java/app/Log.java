package app;

import java.time.Instant;

/** One-line stdout logging. Never pass secrets here. */
final class Log {
    private Log() {}

    static synchronized void info(String msg) {
        System.out.println(Instant.now() + " INFO  " + msg);
        System.out.flush();
    }

    static synchronized void error(String msg) {
        System.out.println(Instant.now() + " ERROR " + msg);
        System.out.flush();
    }
}
