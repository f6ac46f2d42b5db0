#!/bin/bash
# scripts/run.sh BUILD_DIR: `make run`.  A local Pivota on loopback:
# a throwaway PostgreSQL (migrated), lighttpd from lighttpd/pivota.conf.in
# serving BUILD_DIR's programs, and the background worker if one is
# built (BUILD_DIR/bin/pivota-worker).  Prints how to try it, runs until
# Ctrl-C, then stops everything and removes the database.
#
# PV_PORT (default 8080; a free port if 8080 is taken), PV_PROCS (2).
set -euo pipefail
PV_PROG=run
. "$(dirname "$0")/lib.sh"
. "$PV_ROOT/tests/db/cluster.sh"

[ $# -eq 1 ] || pv_die "usage: $0 BUILD_DIR"
BUILD=$(cd "$1" && pwd) || pv_die "no build directory $1"
compgen -G "$BUILD/cgi-bin/*" >/dev/null ||
    pv_die "no programs in $BUILD/cgi-bin yet"

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE
T= LT= WK=
cleanup() {
	set +e
	trap - EXIT INT TERM HUP
	[ -n "$WK" ] && pv_stop "$WK" 10
	[ -n "$LT" ] && pv_stop "$LT" 10
	pv_pg_stop
	[ -n "$T" ] && rm -rf "$T"
	pv_say "stopped"
}
trap cleanup EXIT
trap 'exit 0' INT TERM HUP

T=$(pv_mktemp)
pv_pg_start "$T/pg"
pv_pg_migrate "$BUILD"
export PIVOTA_ENV=dev
PIVOTA_MASTER_KEY=${PIVOTA_MASTER_KEY:-$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')}
export PIVOTA_MASTER_KEY
pv_stage "$BUILD" "$T/app"
mkdir -p "$T/www"
cp -R "$PV_ROOT/www/." "$T/www/"
chmod -R a+rX "$T/www"

# pv_serve picks a free port; for a stable demo URL try PV_PORT first
# by rendering with it ourselves.
RUN_PORT=${PV_PORT:-8080}
if curl -s -o /dev/null -m 1 "http://127.0.0.1:$RUN_PORT/"; then
	pv_say "port $RUN_PORT is busy; using a free one"
	pv_serve lighttpd "$T/lighttpd" "$T/app/cgi-bin" "$T/www" "${PV_PROCS:-2}"
else
	pv_free_port() { echo "$RUN_PORT"; }
	pv_serve lighttpd "$T/lighttpd" "$T/app/cgi-bin" "$T/www" "${PV_PROCS:-2}"
fi
LT=$PV_SERVE_PID
URL=$PV_SERVE_URL

if [ -x "$T/app/bin/pivota-worker" ]; then
	"$T/app/bin/pivota-worker" >>"$T/lighttpd/log/worker.log" 2>&1 &
	WK=$!
fi

cat <<MSG

Pivota is running at $URL  (lighttpd pid $LT, logs in $T/lighttpd/log)
  curl -s $URL/health
  psql '$PIVOTA_DATABASE_URL'
  PIVOTA_DATABASE_URL='$PIVOTA_DATABASE_URL' $BUILD/bin/pivotactl ...
Ctrl-C stops everything and throws the database away.

MSG
curl -s "$URL/health" && echo
wait "$LT"
