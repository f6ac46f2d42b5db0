#!/bin/bash
# tests/browser/run.sh BUILD_DIR: the dashboard's end-to-end test in
# headless Chromium (issue 8), run by `make check-browser`.
#
# Starts, below one scratch directory: a throwaway PostgreSQL
# (tests/db/cluster.sh) migrated with pivotactl, the Stripe and Shopify
# fakes (tests/fakes/fake_stripe.py, fake_shopify.py), lighttpd from
# lighttpd/pivota.conf.in spawning the built programs, and the job
# worker (bin/pivota-worker: the catalog sync, the store push of paid
# orders, refund mirrors, mail).  The programs and the worker get
# PIVOTA_STRIPE_API_BASE and PIVOTA_SHOPIFY_API_BASE pointing at the
# fakes (the dashboard's connect forms have no API base field: the
# provider's URL is the deployment's, not the merchant's).  Then
# tests/browser/dashboard.test.mjs drives Debian's /usr/bin/chromium
# with playwright-core (tests/browser/node_modules, from `npm ci`).
#
# Screenshots of every page go to build/browser/ (PV_SHOTS overrides),
# which is emptied first.  PV_KEEP=1 keeps the scratch dir.  Always
# stops everything it started and fails if anything is left over.
set -euo pipefail
PV_PROG=browser
. "$(dirname "$0")/../../scripts/lib.sh"
. "$PV_ROOT/tests/db/cluster.sh"

[ $# -eq 1 ] || pv_die "usage: $0 BUILD_DIR"
BUILD=$(cd "$1" && pwd) || pv_die "no build directory $1"
CHROMIUM=${PV_CHROMIUM:-/usr/bin/chromium}
[ -x "$BUILD/cgi-bin/dashboard" ] || pv_die "$BUILD/cgi-bin/dashboard is not built"
[ -x "$CHROMIUM" ] || pv_die "$CHROMIUM is missing (make deps installs chromium)"
[ -d "$PV_ROOT/tests/browser/node_modules/playwright-core" ] ||
    pv_die "playwright-core is missing (make deps runs scripts/node-deps.sh: npm ci)"
for tool in lighttpd node python3 curl perl; do
	command -v "$tool" >/dev/null || pv_die "$tool is missing (make deps)"
done

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE \
    PGSERVICEFILE PGPASSFILE PGOPTIONS PIVOTA_CONFIG
T= PIDS=() rc=0
cleanup() {
	local code=$? pid left n
	set +e
	trap - EXIT INT TERM HUP
	[ "$rc" -eq 0 ] && rc=$code
	for pid in "${PIDS[@]}"; do
		pv_stop "$pid" 10
	done
	pv_pg_stop
	if [ -n "$T" ]; then
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

started=$(date +%s.%N)
T=$(pv_mktemp)
pv_pg_start "$T/pg"
pv_pg_migrate "$BUILD"
export PIVOTA_ENV=test
PIVOTA_MASTER_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export PIVOTA_MASTER_KEY

# fake NAME ARGS...: starts tests/fakes/fake_NAME.py with ARGS on a
# port of its choosing and prints its base URL once it listens.
fake() {
	local name=$1 n
	shift
	python3 "$PV_ROOT/tests/fakes/fake_$name.py" "$@" \
	    --port-file "$T/$name.port" --exit-with-parent >"$T/$name.log" 2>&1 &
	PIDS+=("$!")
	for n in $(seq 100); do
		[ -s "$T/$name.port" ] && break
		pv_alive "${PIDS[-1]}" || { cat "$T/$name.log" >&2; pv_die "the $name fake exited"; }
		sleep 0.05
	done
	[ -s "$T/$name.port" ] || pv_die "the $name fake did not start"
	FAKE_URL=http://127.0.0.1:$(cat "$T/$name.port")
}
SK=sk_test_browser_0123456789abcdef
fake stripe --key "$SK"
export PIVOTA_STRIPE_API_BASE=$FAKE_URL
# Its store has 7 products to sync.
SHOP_TOKEN=shpat_browser_0123456789abcdef
fake shopify --token "$SHOP_TOKEN"
export PIVOTA_SHOPIFY_API_BASE=$FAKE_URL

cp -R "$PV_ROOT/templates" "$T/templates"
export PIVOTA_TEMPLATE_DIR=$T/templates
pv_stage "$BUILD" "$T/app"
mkdir -p "$T/www"
cp -R "$PV_ROOT/www/." "$T/www/"
chmod -R a+rX "$T/templates" "$T/www"
pv_serve lighttpd "$T/lighttpd" "$T/app/cgi-bin" "$T/www" 2
PIDS+=("$PV_SERVE_PID")
# The worker, as `make run` starts it: woken by NOTIFY when a job is
# queued.  No PIVOTA_SMTP_URL, so mail waits in the queue.
"$T/app/bin/pivota-worker" --id browser >"$T/worker.log" 2>&1 &
PIDS+=("$!")

SHOTS=${PV_SHOTS:-$PV_ROOT/build/browser}
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
pv_say "up in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }') s: $PV_SERVE_URL, Stripe fake $PIVOTA_STRIPE_API_BASE, Shopify fake $PIVOTA_SHOPIFY_API_BASE"

PV_BASE=$PV_SERVE_URL PV_CTL=$T/app/bin/pivotactl PV_SHOTS=$SHOTS \
PV_STRIPE_KEY=$SK PV_SHOPIFY_TOKEN=$SHOP_TOKEN \
PV_SHOPIFY_FAKE=$PIVOTA_SHOPIFY_API_BASE PV_CHROMIUM=$CHROMIUM \
    timeout 120 node "$PV_ROOT/tests/browser/dashboard.test.mjs" || rc=$?
if [ "$rc" -ne 0 ]; then
	pv_say "browser test failed ($rc); server logs follow"
	for f in "$T"/lighttpd/log/*.log "$T/stripe.log" "$T/shopify.log" \
	    "$T/worker.log" "$PV_PG_DIR/server.log"; do
		pv_show_log "$f" 40
	done
fi
exit "$rc"
