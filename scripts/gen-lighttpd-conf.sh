#!/bin/bash
# scripts/gen-lighttpd-conf.sh: render lighttpd/pivota.conf.in.
#
#   scripts/gen-lighttpd-conf.sh [options] > pivota.conf
#
#   --bind ADDR        listen address           (default 127.0.0.1)
#   --port N           listen port              (default 8080)
#   --program-dir DIR  the FastCGI programs     (default build/debug/cgi-bin)
#   --run-dir DIR      sockets and pid file     (default /run/pivota)
#   --log-dir DIR      error and access logs    (default /var/log/pivota)
#   --www-dir DIR      document root; its static/ is served at /static/
#                                               (default /usr/local/share/pivota/www)
#   --max-procs N      copies of each program   (default 4)
#   --user U --group G user lighttpd becomes when started as root
#                                               (default www-data)
#   --append FILE      add FILE's lines at the end (extra routes; they win
#                      over earlier ones); may be repeated
#   -o FILE            write FILE instead of standard output
#
# Every PIVOTA_* variable of the environment (PIVOTA_DATABASE_URL,
# PIVOTA_MASTER_KEY, PIVOTA_ENV, PIVOTA_CONFIG, ...) is passed to the
# programs.  The output contains the master key: keep it 0600/0640.
set -euo pipefail
PV_PROG=gen-lighttpd-conf
. "$(dirname "$0")/lib.sh"

bind=127.0.0.1 port=8080 procs=4 user=www-data group=www-data
progs=$PV_ROOT/build/debug/cgi-bin run=/run/pivota log=/var/log/pivota
www=/usr/local/share/pivota/www out=- appends=()
while [ $# -gt 0 ]; do
	case "$1" in
	--bind) bind=$2; shift ;;
	--port) port=$2; shift ;;
	--program-dir) progs=$2; shift ;;
	--run-dir) run=$2; shift ;;
	--log-dir) log=$2; shift ;;
	--www-dir) www=$2; shift ;;
	--max-procs) procs=$2; shift ;;
	--user) user=$2; shift ;;
	--group) group=$2; shift ;;
	--append) appends+=("$2"); shift ;;
	-o) out=$2; shift ;;
	-h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) pv_die "unknown option $1 (try --help)" ;;
	esac
	shift
done
case "$port$procs" in
*[!0-9]*) pv_die "--port and --max-procs take numbers" ;;
esac

# A lighttpd string: backslash and double quote escaped.
q() {
	local s=${1//\\/\\\\}
	printf '"%s"' "${s//\"/\\\"}"
}

env_block=
while IFS= read -r kv; do
	[ -n "$kv" ] || continue
	env_block+=$(printf '\t\t%s => %s,' "$(q "${kv%%=*}")" "$(q "${kv#*=}")")$'\n'
done < <(pv_pivota_env)

tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.tmp"' EXIT
# Paths are inserted inside "..." in the template: escape them the same.
qi() {
	local s
	s=$(q "$1")
	s=${s#\"}
	printf '%s' "${s%\"}"
}
pv_render "$PV_ROOT/lighttpd/pivota.conf.in" "$tmp" \
    BIND="$(qi "$bind")" PORT="$port" USER="$(qi "$user")" \
    GROUP="$(qi "$group")" PROGRAM_DIR="$(qi "$progs")" \
    RUN_DIR="$(qi "$run")" LOG_DIR="$(qi "$log")" WWW_DIR="$(qi "$www")" \
    MAX_PROCS="$procs" ENVIRONMENT="$env_block"
for f in "${appends[@]}"; do
	printf '\n# ---- appended from %s ----\n' "$f" >>"$tmp"
	cat "$f" >>"$tmp"
done
if [ "$out" = - ]; then
	cat "$tmp"
else
	cp "$tmp" "$out"
fi
