# tests/db/cluster.sh: a throwaway PostgreSQL cluster for tests, the
# bench and `make run`.  Source it from bash, then:
#
#   pv_pg_start DIR [PORT]   initdb in DIR/data and start it.  PORT
#                            empty or "auto": a free loopback port,
#                            retried if another process grabs it first.
#   pv_pg_migrate BUILD_DIR  apply migrations/*.sql with
#                            BUILD_DIR/bin/pivotactl migrate
#   pv_pg_stop               stop it (if still running) and rm -rf DIR.
#
# After pv_pg_start these are exported:
#   PIVOTA_DATABASE_URL  postgresql://pivota@127.0.0.1:PORT/pivota
#                        (libpq URI, TCP, trust auth; role pivota owns
#                        database pivota and is not a superuser, so
#                        superuser assumptions fail here; it may create
#                        scratch databases: CREATEDB)
#   PV_PG_ADMIN_URL      the same database as superuser postgres
#   PV_PG_DIR PV_PG_PORT the cluster's directory (also its unix socket
#                        directory) and port
#   PV_PG_CTL            DIR/pg-ctl: `$PV_PG_CTL stop|crash|start|status` lets
#                        a test take the database away and bring it back
#
# PG* variables are deliberately not exported: a program that ignores
# PIVOTA_DATABASE_URL must fail here, not be rescued by libpq defaults.
#
# The settings trade durability for speed (fsync=off and friends): this
# cluster is thrown away.  synchronous_commit stays on, so a commit has
# reached the operating system before it is answered: a server process
# that dies (PV_PG_CTL crash) loses exactly what a production server
# loses, the commits our code made asynchronous on purpose.  As root, initdb and the server run as the
# postgres user, so DIR must be reachable by postgres: make it below a
# 0755 directory (pv_mktemp), not below a 0700 one.
# shellcheck shell=bash

if [ -z "${PV_PGBIN:-}" ]; then
	if [ -x /usr/lib/postgresql/15/bin/initdb ]; then
		PV_PGBIN=/usr/lib/postgresql/15/bin
	else
		PV_PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null |
		    sort -V | tail -n 1)
	fi
fi

_pv_pg_say() {
	printf '%s: %s\n' "${PV_PROG:-cluster.sh}" "$*" >&2
}

# As root, run as postgres, from / (the caller's directory may be one
# postgres cannot enter, and initdb and postgres complain about that).
_pv_pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

_pv_pg_port() {
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(Listen => 1, Proto => "tcp",
		    LocalAddr => "127.0.0.1", LocalPort => 0) or die "$!\n";
		print $s->sockport, "\n";'
}

pv_pg_start() {
	local dir=${1:-} port=${2:-auto} try fixed=1 t0
	if [ -z "$dir" ]; then
		_pv_pg_say "usage: pv_pg_start DIR [PORT]"
		return 2
	fi
	if [ ! -x "$PV_PGBIN/initdb" ]; then
		_pv_pg_say "no PostgreSQL server binaries (apt-get install postgresql)"
		return 1
	fi
	t0=$(date +%s.%N)
	mkdir -p "$dir" || return 1
	dir=$(cd "$dir" && pwd)
	chmod 755 "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$dir"
		if ! (cd / && runuser -u postgres -- test -w "$dir"); then
			_pv_pg_say "postgres cannot write $dir (a parent is not searchable?)"
			return 1
		fi
	fi
	PV_PG_DIR=$dir
	export PV_PG_DIR

	if ! _pv_pg_as "$PV_PGBIN/initdb" -D "$dir/data" -U postgres \
	    -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
	    >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		return 1
	fi
	echo "include 'pivota.conf'" >>"$dir/data/postgresql.conf"

	[ "$port" = auto ] && fixed=
	for try in 1 2 3 4 5; do
		[ -n "$fixed" ] || port=$(_pv_pg_port) || return 1
		_pv_pg_as tee "$dir/data/pivota.conf" >/dev/null <<-CONF
		# written by tests/db/cluster.sh: throwaway and fast
		port = $port
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$dir'
		unix_socket_permissions = 0777
		max_connections = 200
		$(if [ -n "${PV_PG_DURABLE:-}" ]; then
			echo "# durable, as in production (make bench)"
		else
			printf '%s\n' "fsync = off" \
			    "full_page_writes = off" "wal_level = minimal" \
			    "max_wal_senders = 0"
		fi)
		shared_buffers = 128MB
		log_min_messages = warning
		log_min_error_statement = error
		log_line_prefix = '%m [%p] %q%u@%d '
		timezone = 'UTC'
		CONF
		if _pv_pg_as "$PV_PGBIN/pg_ctl" -D "$dir/data" \
		    -l "$dir/server.log" -w -t 30 start >/dev/null; then
			break
		fi
		if [ -z "$fixed" ] && [ "$try" -lt 5 ] &&
		    grep -q 'could not bind\|already in use' "$dir/server.log"; then
			_pv_pg_say "port $port was taken; trying another"
			continue
		fi
		cat "$dir/server.log" >&2
		return 1
	done
	PV_PG_PORT=$port
	export PV_PG_PORT

	if ! "$PV_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" \
	    -U postgres -d postgres \
	    -c "CREATE ROLE pivota LOGIN CREATEDB" \
	    -c "CREATE DATABASE pivota OWNER pivota" >/dev/null; then
		_pv_pg_say "could not create role and database pivota"
		return 1
	fi
	export PIVOTA_DATABASE_URL="postgresql://pivota@127.0.0.1:$port/pivota"
	export PV_PG_ADMIN_URL="postgresql://postgres@127.0.0.1:$port/pivota"

	# The helper tests use to stop and restart the server (as root it
	# must switch to postgres, which a test program should not know).
	cat >"$dir/pg-ctl" <<-CTL
	#!/bin/sh
	# $dir/pg-ctl stop|crash|start|status: this throwaway cluster only
	# (crash: an immediate stop, as if the server died).
	set -e
	case "\${1:-}" in
	stop) set -- -m fast -w -t 30 stop ;;
	crash) set -- -m immediate -w -t 30 stop ;;
	start) set -- -l "$dir/server.log" -w -t 30 start ;;
	status) set -- status ;;
	*) echo "usage: \$0 stop|crash|start|status" >&2; exit 2 ;;
	esac
	cd /
	if [ "\$(id -u)" -eq 0 ]; then
		exec runuser -u postgres -- "$PV_PGBIN/pg_ctl" -D "$dir/data" "\$@" >/dev/null
	fi
	exec "$PV_PGBIN/pg_ctl" -D "$dir/data" "\$@" >/dev/null
	CTL
	chmod 755 "$dir/pg-ctl"
	export PV_PG_CTL="$dir/pg-ctl"
	_pv_pg_say "PostgreSQL up on 127.0.0.1:$port in $dir ($(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $t0 }") s)"
}

pv_pg_stop() {
	local dir=${PV_PG_DIR:-}
	[ -n "$dir" ] || return 0
	if [ -f "$dir/data/postmaster.pid" ]; then
		_pv_pg_as "$PV_PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 \
		    stop >/dev/null 2>&1 ||
		    _pv_pg_as "$PV_PGBIN/pg_ctl" -D "$dir/data" -m immediate \
			-w -t 10 stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	unset PV_PG_DIR PV_PG_PORT PV_PG_CTL PV_PG_ADMIN_URL PIVOTA_DATABASE_URL
}

# pv_pg_migrate BUILD_DIR [MIGRATIONS_DIR]: apply the migrations to
# PIVOTA_DATABASE_URL with pivotactl.  Until pivotactl is built, an
# empty migrations/ is fine and anything else is an error: tests must
# run against the real schema, never a hand-made copy.
pv_pg_migrate() {
	local ctl=$1/bin/pivotactl
	local mig=${2:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/migrations}
	if [ -x "$ctl" ]; then
		"$ctl" migrate --dir "$mig"
	elif compgen -G "$mig/*.sql" >/dev/null; then
		_pv_pg_say "$ctl is not built, and $mig has SQL to apply"
		return 1
	else
		_pv_pg_say "no pivotactl and no migrations yet: empty database"
	fi
}
