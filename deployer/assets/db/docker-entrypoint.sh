#!/usr/bin/env bash
# Entrypoint for the deployer's pgvector image. Implements the usual env
# contract of the official postgres image (see README.md). Secrets are never
# passed on a command line nor written to the log.
set -Eeuo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# file_env VAR [DEFAULT]: VAR may be given directly or as VAR_FILE (a path).
file_env() {
	local var="$1" fvar="${1}_FILE" def="${2:-}" val
	if [ -n "${!var:-}" ] && [ -n "${!fvar:-}" ]; then
		die "both $var and $fvar are set (but are exclusive)"
	fi
	val="$def"
	if [ -n "${!var:-}" ]; then
		val="${!var}"
	elif [ -n "${!fvar:-}" ]; then
		[ -r "${!fvar}" ] || die "$fvar=${!fvar} is not a readable file"
		val="$(< "${!fvar}")"
	fi
	export "$var"="$val"
	unset "$fvar"
}

setup_env() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
	: "${POSTGRES_INITDB_ARGS:=}"
	export POSTGRES_HOST_AUTH_METHOD PGDATA
}

# Run as root: fix ownership/permissions, then re-exec as postgres.
prepare_dirs_as_root() {
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 3777 /var/run/postgresql
	chown postgres:postgres /var/run/postgresql
	# Only chown a foreign-owned data dir (avoid walking big volumes each start).
	if [ "$(stat -c %U "$PGDATA")" != postgres ]; then
		chown -R postgres:postgres "$PGDATA"
	fi
	chmod 700 "$PGDATA"
	# pgBackRest's secret files, for a repository off the host (compose secrets, root's own)
	for f in /run/secrets/pgbackrest_*; do [ -f "$f" ] || continue; install -D -o postgres -g postgres -m 600 "$f" "/var/lib/postgresql/.pgbackrest/${f##*/}"; done
}

# psql against the temporary (socket-only) server; SQL comes on stdin or via -f.
process_sql() {
	PGHOST=/var/run/postgresql PGPORT=5432 \
		psql -X -q -v ON_ERROR_STOP=1 --no-password --no-psqlrc \
		--username "$POSTGRES_USER" --dbname "${PSQL_DB:-$POSTGRES_DB}" "$@"
}

init_database() {
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		die "database is uninitialized and superuser password is not specified.
  Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty value,
  or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password (unsafe)."
	fi
	case "$POSTGRES_HOST_AUTH_METHOD" in
		trust|scram-sha-256|md5|password|reject) ;;
		*) die "unsupported POSTGRES_HOST_AUTH_METHOD=$POSTGRES_HOST_AUTH_METHOD" ;;
	esac

	log "initialising database cluster in $PGDATA (user=$POSTGRES_USER db=$POSTGRES_DB)"
	local -a extra=()
	# shellcheck disable=SC2206  # word splitting intended, as in the official image
	[ -n "$POSTGRES_INITDB_ARGS" ] && extra=($POSTGRES_INITDB_ARGS)
	if [ -n "${POSTGRES_PASSWORD:-}" ]; then
		# The password reaches initdb through a pipe (printf is a builtin):
		# neither argv nor the log ever contains it.
		initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
			--auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" \
			--encoding=UTF8 --locale=C.UTF-8 "${extra[@]}" >/dev/null
	else
		initdb --username="$POSTGRES_USER" \
			--auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" \
			--encoding=UTF8 --locale=C.UTF-8 "${extra[@]}" >/dev/null
	fi

	cat > "$PGDATA/pg_hba.conf" <<-HBA
		# TYPE  DATABASE  USER  ADDRESS  METHOD
		local   all       all            trust
		host    all       all   all      $POSTGRES_HOST_AUTH_METHOD
	HBA
	printf "\n# added by docker-entrypoint.sh\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"

	log "starting temporary server (unix socket only)"
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w -t 60 -l "$PGDATA/init-server.log" start >/dev/null \
		|| { cat "$PGDATA/init-server.log" >&2 || true; die "temporary server failed to start"; }

	if [ "$POSTGRES_DB" != postgres ]; then
		log "creating database $POSTGRES_DB"
		PSQL_DB=postgres process_sql --set db="$POSTGRES_DB" <<-'SQL'
			CREATE DATABASE :"db";
		SQL
	fi
	log "enabling pgvector in $POSTGRES_DB"
	process_sql <<-'SQL'
		CREATE EXTENSION IF NOT EXISTS vector;
	SQL

	local f
	shopt -s nullglob
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					log "running $f"; "$f"
				else
					log "sourcing $f"; # shellcheck disable=SC1090
					. "$f"
				fi ;;
			*.sql)     log "running $f"; process_sql -f "$f" ;;
			*.sql.gz)  log "running $f"; gzip -dc "$f" | process_sql ;;
			*.sql.xz)  log "running $f"; xz -dc "$f" | process_sql ;;
			*.sql.zst) log "running $f"; zstd -dcq "$f" | process_sql ;;
			*)         log "ignoring $f" ;;
		esac
	done
	shopt -u nullglob

	log "stopping temporary server"
	pg_ctl -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
	cat "$PGDATA/init-server.log" >&2 2>/dev/null || true
	rm -f "$PGDATA/init-server.log"
	log "init process complete; ready for start up"
}

main() {
	if [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi

	if [ "$1" = postgres ]; then
		setup_env
		if [ "$(id -u)" = 0 ]; then
			prepare_dirs_as_root
			exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
		fi
		# Now the postgres (or an arbitrary --user) account.
		if [ ! -s "$PGDATA/PG_VERSION" ]; then
			init_database
		else
			log "existing cluster found in $PGDATA (PG_VERSION $(cat "$PGDATA/PG_VERSION")); skipping init"
		fi
		# Secrets are not needed by the server itself.
		unset POSTGRES_PASSWORD
	fi

	exec "$@"
}

main "$@"
