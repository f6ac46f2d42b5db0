#!/bin/bash
# scripts/bench.sh BUILD_DIR: throughput and latency of the endpoints
# against a bare libfcgi baseline, on loopback (`make bench` runs it on
# build/release).
#
# Starts a throwaway PostgreSQL (migrated) and lighttpd from the same
# lighttpd/pivota.conf.in as production, plus one extra route,
# /bench/hello, to BUILD_DIR/bench/hello (bench/hello.c: no library, no
# database) with the same max-procs.  Every row measures its endpoint
# and the baseline alternately, ROUNDS times each, with
#   wrk -t THREADS -c CONNS -d DURATION --latency
# and reports the MEDIAN of the rounds for each figure (req/s, p50,
# p99).  Alternating and taking medians keeps the drift of a shared
# 2-core machine (wrk runs on the same cores) out of the ratio, which
# is target req/s over baseline req/s: compare ratios, not raw req/s.
#
# Knobs (environment): PV_BENCH_DURATION (10s), PV_BENCH_ROUNDS (3),
# PV_BENCH_THREADS (2), PV_BENCH_CONNS (32), PV_BENCH_WARMUP (2s),
# PV_PROCS (copies of each program, 8).
#
# Add a row: one bench_row line at the end of this file,
#   bench_row NAME URL BASELINE_URL [HEADER...]
# e.g. bench_row "GET /agent/v1/products/search" \
#          "$BASE/agent/v1/products/search?q=shoe" "$HELLO" "X-API-Key: $KEY"
set -euo pipefail
PV_PROG=bench
. "$(dirname "$0")/lib.sh"
. "$PV_ROOT/tests/db/cluster.sh"

[ $# -eq 1 ] || pv_die "usage: $0 BUILD_DIR"
BUILD=$(cd "$1" && pwd) || pv_die "no build directory $1"
DURATION=${PV_BENCH_DURATION:-10s}
ROUNDS=${PV_BENCH_ROUNDS:-3}
THREADS=${PV_BENCH_THREADS:-2}
CONNS=${PV_BENCH_CONNS:-32}
WARMUP=${PV_BENCH_WARMUP:-2s}
PROCS=${PV_PROCS:-8}
[ -x "$BUILD/bench/hello" ] || pv_die "$BUILD/bench/hello is not built"
[ -x "$BUILD/cgi-bin/health" ] || pv_die "$BUILD/cgi-bin/health is not built"
command -v wrk >/dev/null || pv_die "wrk is missing (make deps)"

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE
T= LT=
cleanup() {
	local rc=$? left
	set +e
	trap - EXIT INT TERM HUP
	[ -n "$LT" ] && pv_stop "$LT" 10
	pv_pg_stop
	if [ -n "$T" ]; then
		for _ in $(seq 100); do
			left=$(pv_leftovers "$T")
			[ -z "$left" ] && break
			sleep 0.05
		done
		if [ -n "$left" ]; then
			pv_say "error: processes left over: $left"
			kill -KILL $left 2>/dev/null
			rc=1
		fi
		rm -rf "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

T=$(pv_mktemp)
# Durable settings, as in production: commits really reach the disk.
PV_PG_DURABLE=1 pv_pg_start "$T/pg"
pv_pg_migrate "$BUILD"
export PIVOTA_ENV=test
PIVOTA_MASTER_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export PIVOTA_MASTER_KEY
unset PIVOTA_CONFIG
pv_stage "$BUILD" "$T/app"
mkdir -p "$T/www"
cp -R "$PV_ROOT/www/." "$T/www/"
chmod -R a+rX "$T/www"
cat >"$T/bench-routes.conf" <<CONF
\$HTTP["url"] =~ "^/bench/hello\$" { fastcgi.server = ( "" => ( var.pv_fcgi + ( "bin-path" => "$T/app/bench/hello", "socket" => var.pv_run + "/hello.sock" ) ) ) }
CONF
pv_serve lighttpd "$T/lighttpd" "$T/app/cgi-bin" "$T/www" "$PROCS" \
    --append "$T/bench-routes.conf"
LT=$PV_SERVE_PID
BASE=$PV_SERVE_URL
HELLO=$BASE/bench/hello

# Sanity: a benchmark of error pages measures nothing.
for u in "$BASE/health" "$HELLO"; do
	code=$(curl -s -o /dev/null -w '%{http_code}' "$u")
	[ "$code" = 200 ] || pv_die "$u answers $code, not 200"
done

# wrk_once URL [HEADER...]: one wrk run; prints "req/s p50_ms p99_ms
# errors" (errors: non-2xx/3xx responses plus socket errors).
wrk_once() {
	local url=$1 out h=()
	shift
	for x in "$@"; do
		h+=(-H "$x")
	done
	out=$(wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" --latency \
	    "${h[@]}" "$url" 2>&1) || { echo "$out" >&2; return 1; }
	echo "$out" | awk '
	function ms(v) {
		if (v ~ /us$/) return v * 0.001
		if (v ~ /ms$/) return v + 0
		if (v ~ /m$/) return v * 60000
		if (v ~ /s$/) return v * 1000
		return v + 0
	}
	/^Requests\/sec:/ { rps = $2 }
	$1 == "50%" { p50 = ms($2) }
	$1 == "99%" { p99 = ms($2) }
	/Non-2xx or 3xx responses:/ { err += $NF }
	/Socket errors:/ {
		for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) err += $i + 0
	}
	END { printf "%.1f %.3f %.3f %d\n", rps, p50, p99, err }'
}

# median of the numbers on standard input
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print 0; exit }
		if (NR % 2) print v[(NR + 1) / 2]
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ROWS=()
WARN=()
# bench_row NAME URL BASELINE_URL [HEADER...]: measure URL and the
# baseline alternately ROUNDS times; add a row to the table.  A row
# whose URL is the baseline itself is measured once per round.
bench_row() {
	local name=$1 url=$2 base=$3 r t b x hdr=()
	local tr=() tp50=() tp99=() br=() terr=0 rps p50 p99 err
	shift 3
	for x in "$@"; do
		hdr+=(-H "$x")
	done
	wrk -t "$THREADS" -c "$CONNS" -d "$WARMUP" "${hdr[@]}" "$url" >/dev/null 2>&1 || true
	for r in $(seq "$ROUNDS"); do
		t=$(wrk_once "$url" "$@")
		if [ "$url" = "$base" ]; then
			b=$t
		else
			b=$(wrk_once "$base")
		fi
		pv_say "$name, round $r: $t; baseline $b (req/s p50 p99 errors)"
		read -r rps p50 p99 err <<<"$t"
		tr+=("$rps") tp50+=("$p50") tp99+=("$p99") br+=("${b%% *}")
		terr=$((terr + err))
	done
	local mr mb m50 m99
	mr=$(printf '%s\n' "${tr[@]}" | median)
	mb=$(printf '%s\n' "${br[@]}" | median)
	m50=$(printf '%s\n' "${tp50[@]}" | median)
	m99=$(printf '%s\n' "${tp99[@]}" | median)
	ROWS+=("$(awk -v n="$name" -v r="$mr" -v b="$mb" -v p="$m50" -v q="$m99" \
	    'BEGIN { printf "| %-28s | %9.0f | %7.2f ms | %7.2f ms | %5.2f |", n, r, p, q, (b > 0 ? r / b : 0) }')")
	[ "$terr" -eq 0 ] || WARN+=("$name: $terr non-2xx responses or socket errors")
}

print_table() {
	printf '\nwrk -t%s -c%s -d%s, median of %s rounds alternating with the baseline; lighttpd, %s procs per program\n\n' \
	    "$THREADS" "$CONNS" "$DURATION" "$ROUNDS" "$PROCS"
	printf '| %-28s | %9s | %10s | %10s | %5s |\n' endpoint 'req/s' p50 p99 ratio
	printf '|%s|%s|%s|%s|%s|\n' "------------------------------" \
	    "-----------" "------------" "------------" "-------"
	printf '%s\n' "${ROWS[@]}"
	[ ${#WARN[@]} -eq 0 ] || printf 'WARNING: %s\n' "${WARN[@]}"
}

# An agent without practical limits, for the authenticated rows.
KEY=$("$BUILD/bin/pivotactl" agent create --name bench --per-minute 1000000 \
    --daily 1000000000 --json | sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p')
[ -n "$KEY" ] || pv_die "could not create the bench agent"

bench_row "GET /bench/hello (baseline)" "$HELLO" "$HELLO"
bench_row "GET /health vs hello" "$BASE/health" "$HELLO"
# The whole agent prologue (auth, limits, usage) against /health.
bench_row "GET /agent/v1/rate-limits vs health" "$BASE/agent/v1/rate-limits" \
    "$BASE/health" "X-API-Key: $KEY"
print_table
