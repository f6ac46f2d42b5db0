#!/bin/bash
# tests/leak/run.sh BUILD_DIR: `make check-leak`.  The real FastCGI
# programs, each as ONE persistent process under valgrind behind a real
# lighttpd, answer a few thousand mixed requests (good and bad keys,
# JSON bodies valid and broken, unknown paths, wrong methods, oversize
# input); then lighttpd stops them with SIGTERM and valgrind must report
# no invalid access and no leaked block.  Uses the debug build: valgrind
# and ASan do not mix.
set -euo pipefail
PV_PROG=leak
. "$(dirname "$0")/../../scripts/lib.sh"
. "$PV_ROOT/tests/db/cluster.sh"

[ $# -eq 1 ] || pv_die "usage: $0 BUILD_DIR"
BUILD=$(cd "$1" && pwd)
N=${PV_LEAK_REQUESTS:-400} # rounds of the mix below (x8 requests)
command -v valgrind >/dev/null || pv_die "valgrind is missing (make deps)"

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE
T= LT=
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM HUP
	[ -n "$LT" ] && pv_stop "$LT" 30
	pv_pg_stop
	[ -n "$T" ] && rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

T=$(pv_mktemp)
pv_pg_start "$T/pg"
pv_pg_migrate "$BUILD" >/dev/null 2>&1
export PIVOTA_ENV=test
PIVOTA_MASTER_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export PIVOTA_MASTER_KEY
KEY=$("$BUILD/bin/pivotactl" agent create --name leak --per-minute 1000000 \
    --daily 1000000000 --json | sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p')
pv_stage "$BUILD" "$T/app"
mkdir -p "$T/www" "$T/vg"
cp -R "$PV_ROOT/www/." "$T/www/"
chmod -R a+rX "$T/www"
chmod 777 "$T/vg"

# Every program under valgrind, one process each (these lines come last
# in the config, so they win over the normal routes).
vg="/usr/bin/valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --log-file=$T/vg/%p.log"
{
	printf '$HTTP["url"] =~ "^/(health)$" { fastcgi.server = ( "" => ( var.pv_fcgi + ( "bin-path" => "%s %s", "socket" => var.pv_run + "/vg-health.sock" ) ) ) }\n' \
	    "$vg" "$T/app/cgi-bin/health"
	printf '$HTTP["url"] =~ "^/agent/v1/(.*)$" { fastcgi.server = ( "" => ( var.pv_fcgi + ( "bin-path" => "%s %s", "socket" => var.pv_run + "/vg-account.sock" ) ) ) }\n' \
	    "$vg" "$T/app/cgi-bin/account"
	# lighttpd takes the last match: orders and payments go here.
	printf '$HTTP["url"] =~ "^/agent/v1/(cart/|orders|payments)" { fastcgi.server = ( "" => ( var.pv_fcgi + ( "bin-path" => "%s %s", "socket" => var.pv_run + "/vg-orders.sock" ) ) ) }\n' \
	    "$vg" "$T/app/cgi-bin/orders"
} >"$T/vg-routes.conf"
pv_serve lighttpd "$T/lighttpd" "$T/app/cgi-bin" "$T/www" 1 \
    --append "$T/vg-routes.conf"
LT=$PV_SERVE_PID
B=$PV_SERVE_URL

# The mix, as one curl config: each entry ends with "next".
big=$(head -c 3000 /dev/zero | tr '\0' 'x')
{
	for i in $(seq "$N"); do
		printf 'url = "%s/health"\nnext\n' "$B"
		printf 'url = "%s/agent/v1/rate-limits"\nheader = "X-API-Key: %s"\nnext\n' "$B" "$KEY"
		printf 'url = "%s/agent/v1/rate-limits"\nheader = "X-API-Key: ak_live_%064d"\nnext\n' "$B" "$i"
		printf 'url = "%s/agent/v1/analytics/summary?days=%d"\nheader = "Authorization: Bearer %s"\nnext\n' "$B" $((i % 400)) "$KEY"
		printf 'url = "%s/agent/v1/webhooks"\nheader = "X-API-Key: %s"\nheader = "Idempotency-Key: leak-%d"\ndata = "{\\"url\\":\\"https://h.example/%d\\",\\"events\\":[\\"order.paid\\"]}"\nnext\n' "$B" "$KEY" $((i % 50)) $((i % 3))
		printf 'url = "%s/agent/v1/webhooks"\nheader = "X-API-Key: %s"\ndata = "{\\"url\\":%d,\\"x\\":[1,{\\"a\\":\\"\\\\u00e9\\"}"\nnext\n' "$B" "$KEY" "$i"
		printf 'url = "%s/agent/v1/webhooks/wh_%016d"\nrequest = "DELETE"\nheader = "X-API-Key: %s"\nnext\n' "$B" "$i" "$KEY"
		printf 'url = "%s/agent/v1/nope?q=%s&%%zz"\nrequest = "PUT"\nnext\n' "$B" "$big"
	done
} | sed 's|^url = .*|&\noutput = "/dev/null"|' | sed '$d' >"$T/requests.conf"
t0=$(date +%s)
curl -s --no-progress-meter --parallel --parallel-max 4 -K "$T/requests.conf" >/dev/null ||
    pv_die "curl failed"
pv_say "$((N * 8)) requests in $(($(date +%s) - t0)) s"

# The money path under valgrind too: create, pay (success, decline,
# 3-D Secure), read, list, cancel, with a bad body now and then.
M=$("$BUILD/bin/pivotactl" merchant create --name "Leak Shop" \
    --email leak@example.com --json | sed -n 's/.*"merchant_id":"\([^"]*\)".*/\1/p')
"$BUILD/bin/pivotactl" merchant connect-sandbox "$M" >/dev/null
"$BUILD/bin/pivotactl" merchant set-tax "$M" --country US --rate 7.25 >/dev/null
printf '%s\n' '{"handle":"leak-tee","title":"Leak Tee","product_type":"Shirts","variants":[{"sku":"LEAK-TEE","price":"25.00","inventory_quantity":0,"inventory_tracked":false}]}' \
    >"$T/leak.jsonl"
"$BUILD/bin/pivotactl" products import "$M" "$T/leak.jsonl" --format jsonl >/dev/null
# (Search is not routed here: every other /agent/v1 path goes to the
# account program under valgrind.)
P=$("$PV_PGBIN/psql" -X -At -c "SELECT p.public_id FROM products p JOIN
    merchants m ON m.id = p.merchant_id WHERE m.public_id = '$M'" \
    "$PIVOTA_DATABASE_URL")
[ -n "$P" ] || pv_die "no product to order"
order='{"merchant_id":"'$M'","customer_email":"l@example.com","items":[{"product_id":"'$P'","quantity":2,"unit_price":"25.00"}],"shipping_address":{"name":"L","address_line1":"1 St","city":"C","postal_code":"1","country":"US"}}'
tokens=(pm_card_visa pm_card_chargeDeclined pm_card_authenticationRequired)
post() {
	curl -s -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
	    -X POST --data "$2" "$B$1"
}
t0=$(date +%s)
R=${PV_LEAK_ORDERS:-60}
for i in $(seq "$R"); do
	post /agent/v1/cart/validate '{"merchant_id":"'$M'","items":[{"product_id":"'$P'","quantity":1}],"shipping_country":"US"}' >/dev/null
	o=$(post /agent/v1/orders "$order" | sed -n 's/.*"order_id":"\(ORD_[0-9A-F]*\)".*/\1/p')
	[ -n "$o" ] || pv_die "order creation failed in the leak mix"
	post /agent/v1/payments '{"order_id":"'$o'","payment_method":{"type":"card","token":"'${tokens[$((i % 3))]}'"}}' >/dev/null
	curl -s -H "X-API-Key: $KEY" "$B/agent/v1/orders/$o" >/dev/null
	curl -s -H "X-API-Key: $KEY" "$B/agent/v1/orders?limit=5" >/dev/null
	post "/agent/v1/orders/$o/cancel" '{"reason":"leak"}' >/dev/null
	post /agent/v1/orders '{"merchant_id":1,"items":"x"}' >/dev/null
done
pv_say "$((R * 7)) order requests in $(($(date +%s) - t0)) s"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" \
    "$B/agent/v1/rate-limits")
[ "$code" = 200 ] || pv_die "the programs are not answering after the mix ($code)"

# lighttpd stops the programs with SIGTERM: they finish, flush, exit,
# and valgrind writes its report.
pv_stop "$LT" 60
LT=
for _ in $(seq 100); do
	pgrep -f "$T/app/cgi-bin" >/dev/null || break
	sleep 0.1
done
fail=0
n=0
for f in "$T"/vg/*.log; do
	[ -e "$f" ] || continue
	n=$((n + 1))
	if [ -s "$f" ]; then
		pv_say "valgrind found problems:"
		cat "$f" >&2
		fail=1
	fi
done
[ "$n" -ge 3 ] || pv_die "expected three valgrind reports, found $n"
[ "$fail" -eq 0 ] && pv_say "no leaks, no invalid accesses ($n processes)"
exit "$fail"
