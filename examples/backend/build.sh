#!/bin/sh
# Builds build/libs/app.jar without Maven/Gradle: javac + jar, with the PostgreSQL
# JDBC driver (Debian's libpostgresql-jdbc-java) unpacked into the jar.
# Needs a JDK 21 (javac, jar). Override the driver with JDBC_JAR=/path/to/postgresql.jar.
set -eu
cd "$(dirname "$0")"
JDBC_JAR="${JDBC_JAR:-/usr/share/java/postgresql.jar}"
[ -r "$JDBC_JAR" ] || { echo "build.sh: JDBC driver not found at $JDBC_JAR" >&2; exit 1; }

rm -rf build/classes build/libs
mkdir -p build/classes build/libs
javac --release 21 -encoding UTF-8 -Xlint:all,-serial -d build/classes $(find src/main/java -name '*.java')
# Fat jar: unpack the driver (keeps META-INF/services/java.sql.Driver), drop its manifest/signatures.
(cd build/classes && jar xf "$JDBC_JAR" && rm -f META-INF/MANIFEST.MF META-INF/*.SF META-INF/*.RSA META-INF/*.DSA)
jar --create --file build/libs/app.jar --main-class app.Main -C build/classes .
echo "build.sh: wrote build/libs/app.jar ($(wc -c < build/libs/app.jar) bytes)"
