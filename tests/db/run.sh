#!/bin/bash
# tests/db/run.sh BUILD_DIR: run the DB tests against a throwaway
# PostgreSQL.  Starts a cluster (tests/db/cluster.sh), applies every
# migration with `BUILD_DIR/bin/pivotactl migrate`, runs
# BUILD_DIR/tests/db/db_tests with PIVOTA_DATABASE_URL set, and always
# stops and removes the cluster.  Exits with the tests' status.
#
# The tests get PIVOTA_DATABASE_URL (role pivota, owner of database
# pivota), PV_PG_ADMIN_URL (superuser), PV_PG_CTL (stop|start|status)
# and PV_BUILD_DIR (to run pivotactl and pivota-worker).
# Each test runs in a transaction its teardown rolls back (STYLE.md 10).
set -euo pipefail
PV_PROG=db
. "$(dirname "$0")/../../scripts/lib.sh"
. "$PV_ROOT/tests/db/cluster.sh"

[ $# -eq 1 ] || pv_die "usage: $0 BUILD_DIR"
BUILD=$(cd "$1" && pwd) || pv_die "no build directory $1"
TESTS=$BUILD/tests/db/db_tests
[ -x "$TESTS" ] || pv_die "$TESTS is not built (make tests)"

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE \
    PGSERVICEFILE PGPASSFILE PGOPTIONS
T=
cleanup() {
	local rc=$?
	set +e
	pv_pg_stop
	[ -n "$T" ] && rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

T=$(pv_mktemp)
pv_pg_start "$T/pg"

pv_pg_migrate "$BUILD"

export PV_BUILD_DIR=$BUILD
rc=0
(cd "$PV_ROOT" && "$TESTS") || rc=$?
if [ "$rc" -ne 0 ]; then
	pv_show_log "$PV_PG_DIR/server.log" 40
fi
exit "$rc"
