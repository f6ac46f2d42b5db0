# scripts/lib.sh: shell helpers shared by the run, test and bench
# scripts.  Source it from bash:  . "$(dirname "$0")/../scripts/lib.sh"
#
# Everything a script starts lives below one scratch directory made by
# pv_mktemp, so teardown is "stop what we started, rm -rf the dir" and
# pv_leftovers can prove nothing was left running.
# shellcheck shell=bash

PV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PV_PROG=${PV_PROG:-$(basename "$0")}

pv_say() {
	printf '%s: %s\n' "$PV_PROG" "$*" >&2
}

pv_die() {
	pv_say "error: $*"
	exit 1
}

pv_is_root() {
	[ "$(id -u)" -eq 0 ]
}

# pv_as USER CMD...: run CMD as USER when we are root (initdb and
# pg_ctl refuse to run as root), as ourselves otherwise.
pv_as() {
	local user=$1
	shift
	if pv_is_root; then
		(cd / && runuser -u "$user" -- "$@")
	else
		"$@"
	fi
}

# pv_mktemp: print a fresh 0755 scratch directory.  mktemp makes it
# 0700, and then postgres and www-data (the servers' users when we run
# as root) cannot reach the sockets inside.  Every parent must be
# searchable by them too: a TMPDIR under a 0700 home is not, so it is
# checked, not assumed, and /tmp is used instead.
pv_mktemp() {
	local base d u ok
	for base in "${TMPDIR:-/tmp}" /tmp; do
		d=$(mktemp -d "$base/pivota.XXXXXX") || continue
		chmod 755 "$d"
		ok=1
		if pv_is_root; then
			for u in postgres www-data; do
				id -u "$u" >/dev/null 2>&1 || continue
				(cd / && runuser -u "$u" -- test -x "$d") && continue
				pv_say "$u cannot reach $d; trying /tmp"
				ok=
			done
		fi
		if [ -n "$ok" ]; then
			echo "$d"
			return 0
		fi
		rm -rf "$d"
	done
	pv_say "no scratch directory that postgres and www-data can reach"
	return 1
}

# pv_free_port: print a TCP port on 127.0.0.1 that was free a moment
# ago (the kernel picks it from the ephemeral range).  Another process
# may take it before our server binds it, so callers retry with a new
# port when the server fails to bind (see pv_retry_port).
pv_free_port() {
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(Listen => 1, Proto => "tcp",
		    LocalAddr => "127.0.0.1", LocalPort => 0) or die "$!\n";
		print $s->sockport, "\n";'
}

# pv_alive PID: true while PID runs (a zombie counts as dead).
pv_alive() {
	local st
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st%% *}" != Z ]
}

# pv_stop PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10) for
# the process to go, then SIGKILL.  Reaps it if it is our child.
pv_stop() {
	local pid=$1 n=$((${2:-10} * 20))
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	while pv_alive "$pid" && [ "$n" -gt 0 ]; do
		sleep 0.05
		n=$((n - 1))
	done
	if pv_alive "$pid"; then
		pv_say "pid $pid ignored SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# pv_wait_http URL [SECONDS] [PID]: poll URL until the server answers
# with any HTTP status (no fixed sleeps).  Fails after SECONDS (default
# 5) or as soon as PID (the server) has exited.
pv_wait_http() {
	local url=$1 n=$((${2:-5} * 20)) pid=${3:-} code
	while [ "$n" -gt 0 ]; do
		code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" || true)
		[ -n "$code" ] && [ "$code" != 000 ] && return 0
		if [ -n "$pid" ] && ! pv_alive "$pid"; then
			return 1
		fi
		sleep 0.05
		n=$((n - 1))
	done
	return 1
}

# pv_render TEMPLATE OUT NAME=VALUE...: copy TEMPLATE to OUT replacing
# each @NAME@.  A placeholder without a value is an error, so a typo in
# a template cannot pass silently.  Values are inserted verbatim:
# quoting for the target syntax is the caller's job.
pv_render() {
	local in=$1 out=$2
	shift 2
	perl -e '
		my ($in, @kv) = @ARGV;
		my %v = map { split /=/, $_, 2 } @kv;
		open my $f, "<", $in or die "$in: $!\n";
		local $/;
		my $t = <$f>;
		$t =~ s{\@([A-Z][A-Z0-9_]*)\@}{
			exists $v{$1} ? $v{$1} : die "$in: no value for $1\n"
		}ge;
		print $t;' "$in" "$@" >"$out.tmp" && mv "$out.tmp" "$out"
}

# pv_pivota_env: the PIVOTA_* variables of our environment, NAME=VALUE
# one a line, sorted.  These are what the config generators pass to
# the programs.
pv_pivota_env() {
	env | grep -E '^PIVOTA_[A-Z0-9_]+=' | LC_ALL=C sort || true
}

# pv_stage BUILD_DIR DEST: copy the built programs the way they are
# deployed (DEST/cgi-bin, DEST/lib, DEST/bench) into a directory the
# servers' users can read.  The checkout itself may sit below a 0700
# directory that www-data cannot enter.  RPATH is $ORIGIN/../lib, so
# the copies find the copied libpivota-core.so.
pv_stage() {
	local build=$1 dest=$2 d
	mkdir -p "$dest"
	for d in cgi-bin lib bench bin; do
		[ -d "$build/$d" ] || continue
		mkdir -p "$dest/$d"
		find "$build/$d" -maxdepth 1 -type f \( -perm -u+x -o -name '*.so*' \) \
		    -exec cp -p {} "$dest/$d/" \;
	done
	chmod -R a+rX "$dest"
}

# pv_leftovers DIR: print the pids of processes that still use DIR
# (their command line, executable or working directory is below it).
# PostgreSQL's children rename themselves but keep their cwd.
pv_leftovers() {
	local dir=$1 p pid cmd
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[ "$pid" = "$$" ] && continue
		cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		if [[ "$cmd" == *"$dir"* ]] ||
		    [[ "$(readlink "$p/exe" 2>/dev/null)" == "$dir"* ]] ||
		    [[ "$(readlink "$p/cwd" 2>/dev/null)" == "$dir"* ]]; then
			echo "$pid"
		fi
	done
}

# pv_show_log FILE [LINES]: print the tail of a server log, framed.
pv_show_log() {
	[ -s "$1" ] || return 0
	printf '\n----- %s (last %s lines) -----\n' "$1" "${2:-60}" >&2
	tail -n "${2:-60}" "$1" >&2
	printf -- '----- end of %s -----\n' "$1" >&2
}

# ---- Web servers ---------------------------------------------------
# The functions below start the servers the way the integration tests
# and the bench need them: everything below one scratch directory, each
# server on a free loopback port (retried if the port is taken in the
# meantime), configs rendered from the templates of the repository and
# checked by the server before it starts.

PATH=$PATH:/usr/sbin:/sbin

# pv_web_user: the user the servers hand work to.  As root that is
# www-data, as anyone else it is oneself (servers cannot switch).
pv_web_user() {
	if pv_is_root; then
		echo www-data
	else
		id -un
	fi
}

pv_web_group() {
	if pv_is_root; then
		echo www-data
	else
		id -gn
	fi
}

# pv_spawn_pools CONF PROGRAM_DIR RUN_DIR PROCS: start one spawn-fcgi
# pool for each socket RUN_DIR/<name>.sock that the rendered Apache
# CONF routes to (uncommented ProxyPass lines), running
# PROGRAM_DIR/<name> PROCS times, with our PIVOTA_* environment.  The
# children's pids are appended to RUN_DIR/pools.pids.
pv_spawn_pools() {
	local conf=$1 progs=$2 run=$3 procs=$4 name names as=()
	names=$(grep -v '^[[:space:]]*#' "$conf" |
	    grep -o 'unix:${PV_RUN}/[A-Za-z0-9_.-]*\.sock' |
	    sed 's|.*/||; s|\.sock$||' | sort -u)
	[ -n "$names" ] || { pv_say "$conf routes to no socket"; return 1; }
	if pv_is_root; then
		as=(-u www-data -g www-data -U www-data -G www-data)
	fi
	for name in $names; do
		if [ ! -x "$progs/$name" ]; then
			pv_say "$conf routes to $name, but $progs/$name is not built"
			return 1
		fi
		rm -f "$run/$name.sock"
		# spawn-fcgi detaches its children from our stderr: each
		# program's log lines go to RUN_DIR/<name>.log instead.
		spawn-fcgi -s "$run/$name.sock" -M 0660 -F "$procs" \
		    -P "$run/$name.pool.pid" "${as[@]}" -- /bin/sh -c \
		    'exec "$0" 2>>"$1"' "$progs/$name" "$run/$name.log" \
		    >/dev/null || { pv_say "spawn-fcgi $name failed"; return 1; }
		cat "$run/$name.pool.pid" >>"$run/pools.pids"
		echo >>"$run/pools.pids"
	done
}

# pv_stop_pools RUN_DIR: stop what pv_spawn_pools started.
pv_stop_pools() {
	local pid
	[ -f "$1/pools.pids" ] || return 0
	for pid in $(cat "$1/pools.pids"); do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in $(cat "$1/pools.pids"); do
		pv_stop "$pid" 5
	done
	rm -f "$1/pools.pids"
}

# pv_serve KIND DIR PROGRAM_DIR WWW_DIR PROCS [GEN_ARGS...]: render the
# config for KIND into DIR/<KIND>.conf, check it, start the server in
# the foreground as our child, and wait until it answers.  KIND is
#   lighttpd  lighttpd/pivota.conf.in (lighttpd spawns the programs)
#   proxy     apache/pivota.conf.in (start pools with pv_spawn_pools
#             first; the run dir is DIR/run)
#   fcgid     apache/pivota-fcgid.conf.in
#   cgi       tests/integration/apache-cgi.conf.in: a shared-hosting
#             Apache (mod_cgid, AllowOverride All) whose web root
#             WWW_DIR holds the rendered apache/htaccess.example
# GEN_ARGS go to the generator (lighttpd: e.g. --append FILE).
# Logs go to DIR/log, sockets to DIR/run (both writable by the web
# user).  Sets PV_SERVE_URL (http://127.0.0.1:PORT) and PV_SERVE_PID.
pv_serve() {
	local kind=$1 dir=$2 progs=$3 www=$4 procs=$5 try port pid conf out
	local user group cmd=() test=()
	shift 5
	user=$(pv_web_user) group=$(pv_web_group)
	conf=$dir/$kind.conf
	mkdir -p "$dir/run" "$dir/log"
	pv_is_root && chown "$user:$group" "$dir/run" "$dir/log"
	for try in 1 2 3 4 5; do
		port=$(pv_free_port) || return 1
		case "$kind" in
		lighttpd)
			"$PV_ROOT/scripts/gen-lighttpd-conf.sh" -o "$conf" \
			    --port "$port" --program-dir "$progs" \
			    --run-dir "$dir/run" --log-dir "$dir/log" \
			    --www-dir "$www" --max-procs "$procs" \
			    --user "$user" --group "$group" "$@" || return 1
			test=(lighttpd -tt -f "$conf")
			cmd=(lighttpd -D -f "$conf")
			;;
		proxy|fcgid)
			"$PV_ROOT/scripts/gen-apache-conf.sh" -o "$conf" \
			    --mode "$kind" --port "$port" \
			    --program-dir "$progs" --run-dir "$dir/run" \
			    --log-dir "$dir/log" --www-dir "$www" \
			    --max-procs "$procs" --user "$user" \
			    --group "$group" "$@" || return 1
			test=(apache2 -t -f "$conf")
			cmd=(apache2 -DFOREGROUND -f "$conf")
			;;
		cgi)
			pv_render "$PV_ROOT/tests/integration/apache-cgi.conf.in" \
			    "$conf" BIND=127.0.0.1 PORT="$port" \
			    SERVER_NAME=localhost USER="$user" GROUP="$group" \
			    RUN_DIR="$dir/run" LOG_DIR="$dir/log" \
			    WWW_DIR="$www" || return 1
			test=(apache2 -t -f "$conf")
			cmd=(apache2 -DFOREGROUND -f "$conf")
			;;
		*) pv_say "pv_serve: unknown kind $kind"; return 1 ;;
		esac
		# Both servers print nothing but "Syntax OK" when all is well;
		# anything else (lighttpd warns but exits 0) is an error.
		if ! out=$("${test[@]}" 2>&1) || [ -n "$(echo "$out" | grep -v '^Syntax OK$')" ]; then
			pv_say "$kind: config check failed: ${test[*]}"
			echo "$out" >&2
			return 1
		fi
		"${cmd[@]}" >>"$dir/log/stdout.log" 2>&1 </dev/null &
		pid=$!
		if pv_wait_http "http://127.0.0.1:$port/" 5 "$pid"; then
			PV_SERVE_URL=http://127.0.0.1:$port
			PV_SERVE_PID=$pid
			return 0
		fi
		pv_stop "$pid" 5
		if grep -qs 'Address already in use\|could not bind' \
		    "$dir/log/"*.log && [ "$try" -lt 5 ]; then
			pv_say "$kind: port $port was taken; trying another"
			continue
		fi
		pv_say "$kind did not come up on port $port"
		pv_show_log "$dir/log/stdout.log"
		pv_show_log "$dir/log/lighttpd-error.log"
		pv_show_log "$dir/log/apache-error.log"
		return 1
	done
	return 1
}
