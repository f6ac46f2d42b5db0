#!/bin/bash
# tests/integration/run.sh BUILD_DIR: the integration tests, against
# real servers built from the deploy configs of this repository.
#
# Starts, each below one scratch directory and on its own free loopback
# port:
#   - a throwaway PostgreSQL (tests/db/cluster.sh), migrated with
#     BUILD_DIR/bin/pivotactl
#   - lighttpd from lighttpd/pivota.conf.in (it spawns the programs)
#   - spawn-fcgi pools + Apache mod_proxy_fcgi from apache/pivota.conf.in
#   - Apache mod_fcgid from apache/pivota-fcgid.conf.in
#   - Apache mod_cgid with apache/htaccess.example as .htaccess: the
#     programs in plain CGI mode, as on shared hosting
# then runs BUILD_DIR/tests/integration/integration_tests with:
#   PV_LIGHTTPD_URL PV_APACHE_URL PV_FCGID_URL PV_CGI_URL
#                        base URLs (http://127.0.0.1:PORT, no slash)
#   PIVOTA_DATABASE_URL  the programs' database (role pivota)
#   PV_PG_ADMIN_URL      the same database as superuser
#   PV_PG_CTL            `$PV_PG_CTL stop|start|status` stops and starts
#                        PostgreSQL under the running servers
#   PV_PG_DIR            the cluster's directory
#   PIVOTA_MASTER_KEY PIVOTA_ENV=test  what the programs got
#   PV_BUILD_DIR PV_WWW_DIR PV_SCRATCH  build dir, served web root
#                        (static/ at /static/), scratch dir
# prints the servers' error logs if the tests fail, always stops
# everything and removes the scratch dir (and fails if any process is
# left over), and exits with the tests' status.
#
# Works as root (servers hand work to www-data; everything it must reach
# is copied below a 0755 dir) and as a normal user.  Environment knobs:
# PV_PROCS (programs per server, default 2), PV_KEEP=1 (keep the
# scratch dir after the run, for reading logs), PV_TEST_CMD=CMD (run
# CMD with bash instead of the tests: PV_TEST_CMD=bash gives a shell
# with every server up and the environment above set).
set -euo pipefail
PV_PROG=integration
. "$(dirname "$0")/../../scripts/lib.sh"
. "$PV_ROOT/tests/db/cluster.sh"

[ $# -eq 1 ] || pv_die "usage: $0 BUILD_DIR"
BUILD=$(cd "$1" && pwd) || pv_die "no build directory $1"
TESTS=$BUILD/tests/integration/integration_tests
PROCS=${PV_PROCS:-2}
[ -x "$TESTS" ] || pv_die "$TESTS is not built (make tests)"
[ -x "$BUILD/cgi-bin/health" ] ||
    pv_die "$BUILD/cgi-bin/health is not built: the tests need the real /health"
for tool in lighttpd apache2 spawn-fcgi curl perl; do
	command -v "$tool" >/dev/null || pv_die "$tool is missing (make deps)"
done

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE \
    PGSERVICEFILE PGPASSFILE PGOPTIONS
T= PIDS=() rc=0 started=$(date +%s.%N)
cleanup() {
	local code=$? pid left n
	set +e
	trap - EXIT INT TERM HUP
	[ "$rc" -eq 0 ] && rc=$code
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		pv_stop "$pid" 10
	done
	[ -n "$T" ] && pv_stop_pools "$T/proxy/run"
	pv_pg_stop
	if [ -n "$T" ]; then
		# lighttpd's and mod_fcgid's children may take a moment.
		for n in $(seq 100); do
			left=$(pv_leftovers "$T")
			[ -z "$left" ] && break
			sleep 0.05
		done
		if [ -n "$left" ]; then
			pv_say "error: processes left over:"
			ps -o pid,user,args -p "$(echo $left | tr ' ' ,)" >&2
			kill -KILL $left 2>/dev/null
			[ "$rc" -eq 0 ] && rc=1
		fi
		if [ -n "${PV_KEEP:-}" ]; then
			pv_say "kept $T"
		else
			rm -rf "$T"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

T=$(pv_mktemp)
pv_pg_start "$T/pg"
pv_pg_migrate "$BUILD"
export PIVOTA_ENV=test
PIVOTA_MASTER_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export PIVOTA_MASTER_KEY
unset PIVOTA_CONFIG
# The dashboard's templates, where www-data can read them.
cp -R "$PV_ROOT/templates" "$T/templates"
chmod -R a+rX "$T/templates"
export PIVOTA_TEMPLATE_DIR=$T/templates

# What the servers run: a copy of the build, laid out as installed,
# that www-data can read; a web root with static/ and probe files.
pv_stage "$BUILD" "$T/app"
WWW=$T/www
mkdir -p "$WWW/static"
cp -R "$PV_ROOT/www/." "$WWW/"
printf 'body { color: #222; }\n' >"$WWW/static/pv-probe.css"
printf 'export const probe = 1;\n' >"$WWW/static/pv-probe.js"
printf '<!doctype html><title>probe</title>\n' >"$WWW/static/pv-probe.html"
printf '{"probe":true}\n' >"$WWW/static/pv-probe.json"
printf '<svg xmlns="http://www.w3.org/2000/svg"/>\n' >"$WWW/static/pv-probe.svg"
printf "PIVOTA_SECRET=1\n" >"$WWW/static/.hidden"
chmod -R a+rX "$WWW"

# Shared hosting: web root = static/ + .htaccess + pivota/{cgi-bin,lib}.
CGIWWW=$T/cgi/www
mkdir -p "$CGIWWW/pivota/cgi-bin" "$CGIWWW/pivota/lib"
cp -R "$WWW/static" "$WWW/errors" "$CGIWWW/"
for f in "$T/app/cgi-bin/"*; do
	cp -p "$f" "$CGIWWW/pivota/cgi-bin/$(basename "$f").cgi"
done
cp -p "$T/app/lib/"* "$CGIWWW/pivota/lib/" 2>/dev/null || true
"$PV_ROOT/scripts/gen-apache-conf.sh" --mode htaccess -o "$CGIWWW/.htaccess"
chmod -R a+rX "$T/cgi"

t0=$(date +%s.%N)
pv_serve lighttpd "$T/lighttpd" "$T/app/cgi-bin" "$WWW" "$PROCS"
PIDS+=("$PV_SERVE_PID")
LIGHTTPD=$PV_SERVE_PID
export PV_LIGHTTPD_URL=$PV_SERVE_URL
t1=$(date +%s.%N)

mkdir -p "$T/proxy/run"
pv_is_root && chown www-data:www-data "$T/proxy/run"
# The pools need the rendered config to know which programs to run:
# render it once to find them (pv_serve renders it again, same routes).
"$PV_ROOT/scripts/gen-apache-conf.sh" --mode proxy -o "$T/proxy/routes.conf"
pv_spawn_pools "$T/proxy/routes.conf" "$T/app/cgi-bin" "$T/proxy/run" "$PROCS"
pv_serve proxy "$T/proxy" "$T/app/cgi-bin" "$WWW" "$PROCS"
PIDS+=("$PV_SERVE_PID")
export PV_APACHE_URL=$PV_SERVE_URL
t2=$(date +%s.%N)

pv_serve fcgid "$T/fcgid" "$T/app/cgi-bin" "$WWW" "$PROCS"
PIDS+=("$PV_SERVE_PID")
export PV_FCGID_URL=$PV_SERVE_URL
t3=$(date +%s.%N)

pv_serve cgi "$T/cgi" "$T/app/cgi-bin" "$CGIWWW" "$PROCS"
PIDS+=("$PV_SERVE_PID")
export PV_CGI_URL=$PV_SERVE_URL
t4=$(date +%s.%N)

pv_say "$(awk -v s="$started" -v a="$t0" -v b="$t1" -v c="$t2" \
    -v d="$t3" -v e="$t4" 'BEGIN { printf "up: postgres %.2fs, lighttpd %.2fs, apache+pools %.2fs, fcgid %.2fs, cgi %.2fs", a-s, b-a, c-b, d-c, e-d }')"
pv_say "lighttpd $PV_LIGHTTPD_URL  apache $PV_APACHE_URL  fcgid $PV_FCGID_URL  cgi $PV_CGI_URL"

export PV_BUILD_DIR=$BUILD PV_WWW_DIR=$WWW PV_SCRATCH=$T
export PV_PG_DIR PV_PG_CTL PV_PG_ADMIN_URL PIVOTA_DATABASE_URL
if [ -n "${PV_TEST_CMD:-}" ]; then
	# Debugging: run this instead of the tests, e.g. PV_TEST_CMD=bash
	# for a shell with everything up and the environment set.
	(cd "$PV_ROOT" && bash -c "$PV_TEST_CMD") || rc=$?
else
	(cd "$PV_ROOT" && "$TESTS") || rc=$?
fi
# libcurl is loaded by the first call to a provider (lib/pv_upstream.c),
# not linked: after the whole suite, lighttpd's processes of programs
# that never call out must not have it mapped.
if [ "$rc" -eq 0 ] && [ -z "${PV_TEST_CMD:-}" ]; then
	n=0
	for pid in $(ps --ppid "$LIGHTTPD" -o pid=); do
		case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
		health | products | track) ;;
		*) continue ;;
		esac
		n=$((n + 1))
		if grep -q libcurl "/proc/$pid/maps" 2>/dev/null; then
			pv_say "error: $(cat "/proc/$pid/comm") (pid $pid) maps libcurl"
			rc=1
		fi
	done
	[ "$n" -gt 0 ] || { pv_say "error: no health, products or track process to look at"; rc=1; }
	[ "$rc" -ne 0 ] || pv_say "libcurl: not mapped by the $n health, products and track processes"
fi
if [ "$rc" -ne 0 ]; then
	pv_say "tests failed ($rc); server logs follow"
	# The Apache pools' 5xx lines, wherever they are in their logs.
	grep -h ' 5[0-9][0-9] ' "$T"/proxy/run/*.log 2>/dev/null | tail -20 >&2 || true
	for f in "$T"/*/log/*error.log "$T"/*/log/stdout.log "$T"/proxy/run/*.log \
	    "$PV_PG_DIR/server.log"; do
		pv_show_log "$f" 40
	done
fi
exit "$rc"
