#!/bin/bash
# scripts/run.sh BUILD_DIR: `make run`.  Pivota on this machine, in the
# foreground, with its state under var/ so a second run picks up where
# the first stopped:
#
#   var/pg/          a private PostgreSQL cluster (unless
#                    PIVOTA_DATABASE_URL is set), run as postgres when
#                    we are root; its data survives restarts
#   var/master.key   the AES-256 key sealing stored secrets (0600)
#   var/app/         the programs lighttpd runs (a copy of BUILD_DIR, so
#                    a rebuild does not pull them from under it)
#   var/run, var/log sockets, pid files and logs
#   var/demo.json    what scripts need to drive the demo: base_url,
#                    database_url, agent_api_key, merchant_id, the
#                    dashboard login (a new password every run), ...
#   var/mail/        every mail the demo sends, one .eml file each: a
#                    loopback SMTP sink (tests/fakes/smtp_sink.py)
#                    receives them unless PIVOTA_SMTP_URL is set
#
# It migrates, seeds the demo (pivotactl demo-seed), starts lighttpd on
# 127.0.0.1:${PIVOTA_PORT:-8080} with every program and the worker when
# there is one, prints how to use it, and stops everything on Ctrl-C or
# SIGTERM (the database files stay).
set -euo pipefail
PV_PROG=run
. "$(dirname "$0")/lib.sh"
. "$PV_ROOT/tests/db/cluster.sh"

[ $# -eq 1 ] || pv_die "usage: $0 BUILD_DIR"
BUILD=$(cd "$1" && pwd) || pv_die "no build directory $1"
CTL=$BUILD/bin/pivotactl
[ -x "$CTL" ] || pv_die "$CTL is not built"
PORT=${PIVOTA_PORT:-8080}
VAR=$PV_ROOT/var
PG=$VAR/pg
mkdir -p "$VAR" "$VAR/log"
chmod 755 "$VAR"

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE
LT= WK= SINK= PG_STARTED=
cleanup() {
	set +e
	trap - EXIT INT TERM HUP
	[ -n "$WK" ] && pv_stop "$WK" 10
	[ -n "$SINK" ] && pv_stop "$SINK" 5
	[ -n "$LT" ] && pv_stop "$LT" 10
	if [ -n "$PG_STARTED" ]; then
		_pv_pg_as "$PV_PGBIN/pg_ctl" -D "$PG/data" -m fast -w stop \
		    >/dev/null
	fi
	pv_say "stopped (data kept in var/)"
}
trap cleanup EXIT
trap 'exit 0' INT TERM HUP

if curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORT/"; then
	pv_die "port $PORT is in use (another make run?); set PIVOTA_PORT"
fi

# The database: ours under var/pg, started if needed.
if [ -z "${PIVOTA_DATABASE_URL:-}" ]; then
	[ -x "$PV_PGBIN/initdb" ] ||
	    pv_die "no PostgreSQL server binaries (run: make deps)"
	mkdir -p "$PG"
	if pv_is_root; then
		chown postgres: "$PG"
		(cd / && runuser -u postgres -- test -w "$PG") || pv_die \
		    "the postgres user cannot reach $PG: a parent directory" \
		    "is not searchable (chmod o+x it, move the checkout, or" \
		    "set PIVOTA_DATABASE_URL)"
	fi
	chmod 755 "$PG"
	if [ ! -f "$PG/data/PG_VERSION" ]; then
		pv_say "creating a PostgreSQL cluster in var/pg"
		_pv_pg_as "$PV_PGBIN/initdb" -D "$PG/data" -U postgres -A trust \
		    -E UTF8 --locale=C.UTF-8 >"$PG/initdb.log" 2>&1 ||
		    { cat "$PG/initdb.log" >&2; exit 1; }
		echo "include 'pivota.conf'" |
		    _pv_pg_as tee -a "$PG/data/postgresql.conf" >/dev/null
		_pv_pg_as tee "$PG/data/pivota.conf" >/dev/null <<-CONF
		# written by scripts/run.sh (make run); durable settings
		port = $(_pv_pg_port)
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$PG'
		max_connections = 200
		shared_buffers = 128MB
		timezone = 'UTC'
		log_min_messages = warning
		CONF
	fi
	pgport=$(sed -n 's/^port = //p' "$PG/data/pivota.conf")
	if ! _pv_pg_as "$PV_PGBIN/pg_ctl" -D "$PG/data" status >/dev/null 2>&1; then
		_pv_pg_as "$PV_PGBIN/pg_ctl" -D "$PG/data" -l "$PG/server.log" \
		    -w -t 30 start >/dev/null ||
		    { tail -20 "$PG/server.log" >&2; exit 1; }
		PG_STARTED=1
	fi
	admin="postgresql://postgres@127.0.0.1:$pgport/postgres"
	if [ -z "$("$PV_PGBIN/psql" -X -tAq "$admin" \
	    -c "SELECT 1 FROM pg_roles WHERE rolname = 'pivota'")" ]; then
		"$PV_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$admin" \
		    -c "CREATE ROLE pivota LOGIN" \
		    -c "CREATE DATABASE pivota OWNER pivota" >/dev/null
	fi
	export PIVOTA_DATABASE_URL="postgresql://pivota@127.0.0.1:$pgport/pivota"
fi

# The master key seals PSP keys and store tokens: made once, kept.
if [ -z "${PIVOTA_MASTER_KEY:-}" ]; then
	if [ ! -s "$VAR/master.key" ]; then
		(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' \
		    >"$VAR/master.key")
	fi
	PIVOTA_MASTER_KEY=$(cat "$VAR/master.key")
	export PIVOTA_MASTER_KEY
fi
export PIVOTA_ENV=${PIVOTA_ENV:-dev}
export PIVOTA_PUBLIC_URL=${PIVOTA_PUBLIC_URL:-http://127.0.0.1:$PORT}

"$CTL" migrate --dir "$PV_ROOT/migrations" >/dev/null

# The demo: keep the key of the last run when it still works.
old_key=
[ -f "$VAR/demo.json" ] &&
    old_key=$(sed -n 's/.*"agent_api_key": *"\(ak_live_[0-9a-f]*\)".*/\1/p' \
        "$VAR/demo.json")
seed=$("$CTL" demo-seed --json ${old_key:+--reuse-key "$old_key"})
field() { echo "$seed" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
URL=http://127.0.0.1:$PORT
(umask 077 && cat >"$VAR/demo.json.tmp" <<-JSON
{
  "base_url": "$URL",
  "database_url": "$PIVOTA_DATABASE_URL",
  "agent_id": "$(field agent_id)",
  "agent_api_key": "$(field agent_api_key)",
  "merchant_id": "$(field merchant_id)",
  "dashboard_url": "$URL/dashboard/",
  "dashboard_email": "$(field dashboard_email)",
  "dashboard_password": "$(field dashboard_password)"
}
JSON
) && mv "$VAR/demo.json.tmp" "$VAR/demo.json"

# lighttpd with every program, on the fixed port.
rm -rf "$VAR/app"
pv_stage "$BUILD" "$VAR/app"
mkdir -p "$VAR/www"
rm -rf "$VAR/templates"
cp -R "$PV_ROOT/templates" "$VAR/templates"
chmod -R a+rX "$VAR/templates"
export PIVOTA_TEMPLATE_DIR=$VAR/templates
cp -R "$PV_ROOT/www/." "$VAR/www/"
chmod -R a+rX "$VAR/www"
rm -rf "$VAR/lighttpd/run"
pv_free_port() { echo "$PORT"; }
pv_serve lighttpd "$VAR/lighttpd" "$VAR/app/cgi-bin" "$VAR/www" \
    "${PV_PROCS:-4}" || pv_die "lighttpd did not start (var/lighttpd/log)"
LT=$PV_SERVE_PID

# Mail: to the loopback sink, stored under var/mail/ (docs/mail.md).
if [ -z "${PIVOTA_SMTP_URL:-}" ]; then
	mkdir -p "$VAR/mail"
	python3 "$PV_ROOT/tests/fakes/smtp_sink.py" "$VAR/mail" \
	    >"$VAR/log/smtp_sink.out" 2>&1 &
	SINK=$!
	for _ in $(seq 50); do
		grep -q '^port ' "$VAR/log/smtp_sink.out" && break
		sleep 0.1
	done
	sport=$(sed -n 's/^port //p' "$VAR/log/smtp_sink.out")
	[ -n "$sport" ] || pv_die "the SMTP sink did not start (var/log/smtp_sink.out)"
	export PIVOTA_SMTP_URL="smtp://127.0.0.1:$sport"
fi
export PIVOTA_MAIL_FROM=${PIVOTA_MAIL_FROM:-orders@pivota.localhost}
export PIVOTA_TEMPLATE_DIR=${PIVOTA_TEMPLATE_DIR:-$PV_ROOT/templates}

if [ -x "$VAR/app/bin/pivota-worker" ]; then
	"$VAR/app/bin/pivota-worker" >>"$VAR/log/worker.log" 2>&1 &
	WK=$!
fi

cat <<MSG

Pivota is running at $URL   (Ctrl-C stops it; data stays in var/)

  curl -s $URL/health
  curl -s -H 'X-API-Key: $(field agent_api_key)' $URL/agent/v1/rate-limits
  curl -s -H 'X-API-Key: $(field agent_api_key)' '$URL/agent/v1/products/search?q=hoodie&limit=2'

  demo agent key:   $(field agent_api_key)
  demo merchant:    $(field merchant_id)
  dashboard login:  $URL/dashboard/  $(field dashboard_email) / $(field dashboard_password)
  for scripts:      var/demo.json
  operator CLI:     PIVOTA_DATABASE_URL='$PIVOTA_DATABASE_URL' $CTL help
  logs:             var/lighttpd/log/, var/log/worker.log
  mail sent:        var/mail/*.eml (relay: $PIVOTA_SMTP_URL)

MSG
curl -s "$URL/health" && echo
wait "$LT"
