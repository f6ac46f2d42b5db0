#!/bin/bash
# scripts/gen-apache-conf.sh: render the Apache configs.
#
#   scripts/gen-apache-conf.sh --mode MODE [options] > FILE
#
#   --mode proxy       apache/pivota.conf.in: mod_proxy_fcgi + spawn-fcgi
#                      pools (start them: see that file / pv_spawn_pools)
#   --mode fcgid       apache/pivota-fcgid.conf.in: mod_fcgid
#   --mode htaccess    apache/htaccess.example: plain CGI, shared hosting
#   --bind ADDR        listen address           (default 127.0.0.1)
#   --port N           listen port              (default 8080)
#   --server-name NAME ServerName               (default localhost)
#   --program-dir DIR  the FastCGI programs     (default build/debug/cgi-bin)
#   --run-dir DIR      sockets, pid file        (default /run/pivota)
#   --log-dir DIR      error and access logs    (default /var/log/pivota)
#   --www-dir DIR      document root; its static/ is served at /static/
#                                               (default /usr/local/share/pivota/www)
#   --max-procs N      mod_fcgid: processes per program; must be at least
#                      the peak concurrency     (default 64)
#   --user U --group G the workers' user when started as root (www-data)
#   -o FILE            write FILE instead of standard output
#
# Every PIVOTA_* variable of the environment is written into the fcgid
# config (FcgidInitialEnv) and the .htaccess (SetEnv).  The proxy config
# has none: the spawn-fcgi pools get them from their own environment.
set -euo pipefail
PV_PROG=gen-apache-conf
. "$(dirname "$0")/lib.sh"

mode= bind=127.0.0.1 port=8080 name=localhost procs=64
user=www-data group=www-data progs=$PV_ROOT/build/debug/cgi-bin
run=/run/pivota log=/var/log/pivota www=/usr/local/share/pivota/www out=-
while [ $# -gt 0 ]; do
	case "$1" in
	--mode) mode=$2; shift ;;
	--bind) bind=$2; shift ;;
	--port) port=$2; shift ;;
	--server-name) name=$2; shift ;;
	--program-dir) progs=$2; shift ;;
	--run-dir) run=$2; shift ;;
	--log-dir) log=$2; shift ;;
	--www-dir) www=$2; shift ;;
	--max-procs) procs=$2; shift ;;
	--user) user=$2; shift ;;
	--group) group=$2; shift ;;
	-o) out=$2; shift ;;
	-h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) pv_die "unknown option $1 (try --help)" ;;
	esac
	shift
done
case "$mode" in
proxy) tpl=apache/pivota.conf.in directive=none ;;
fcgid) tpl=apache/pivota-fcgid.conf.in directive=FcgidInitialEnv ;;
htaccess) tpl=apache/htaccess.example directive=SetEnv ;;
*) pv_die "--mode proxy, fcgid or htaccess (try --help)" ;;
esac
case "$port$procs" in
*[!0-9]*) pv_die "--port and --max-procs take numbers" ;;
esac
# Apache's config syntax has no safe quoting for every path: refuse
# the characters that would need it rather than emit a broken file.
for v in "$progs" "$run" "$log" "$www" "$bind" "$name" "$user" "$group"; do
	case "$v" in
	*[[:space:]\"\'\\\$]*|"") pv_die "unsupported character in '$v'" ;;
	esac
done

env_block=
if [ "$directive" != none ]; then
	while IFS= read -r kv; do
		[ -n "$kv" ] || continue
		k=${kv%%=*} v=${kv#*=}
		case "$v" in
		*'${'*) pv_die "$k: Apache would expand \${...} in its value" ;;
		esac
		v=${v//\\/\\\\}
		env_block+="$directive $k \"${v//\"/\\\"}\""$'\n'
	done < <(pv_pivota_env)
fi

tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.tmp"' EXIT
pv_render "$PV_ROOT/$tpl" "$tmp" \
    BIND="$bind" PORT="$port" SERVER_NAME="$name" USER="$user" \
    GROUP="$group" PROGRAM_DIR="$progs" RUN_DIR="$run" LOG_DIR="$log" \
    WWW_DIR="$www" MAX_PROCS="$procs" ENVIRONMENT="${env_block%$'\n'}"
if [ "$out" = - ]; then
	cat "$tmp"
else
	cp "$tmp" "$out"
fi
