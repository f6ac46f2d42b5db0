#!/bin/sh
# make lint: the mechanical rules of STYLE.md.
#   1. no banned functions in product code (§6);
#   2. SQL only as PV_SQL literals, libpq calls only in pv_db.c, libfcgi
#      only in pv_fcgi.c, libcurl only in pv_upstream.c (§1, §7);
#   3. every header compiles on its own (§3);
#   4. clang-format agrees with the formatting (§12).
set -u
cd "$(dirname "$0")/.." || exit 2
status=0
fail() {
	echo "lint: $*" >&2
	status=1
}

src=$(ls lib/*.c lib/*.h cgi-bin/*.c bin/*.c 2>/dev/null)
banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strncat|strtok|atoi|atol|gets|system|PQexec)[[:space:]]*\('
hits=$(grep -nE "$banned" $src | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/\*|\*)')
[ -n "$hits" ] && fail "banned functions (STYLE.md §6):
$hits"

owner() { # owner PATTERN FILE: only FILE may match PATTERN
	hits=$(grep -lE "$1" $src | grep -v "^$2\$" | grep -v "^${2%.c}.h\$")
	[ -n "$hits" ] && fail "$1 outside $2: $hits"
}
owner '\bPQ(connect|exec|prepare|sendQuery|reset)[A-Za-z]*\(' lib/pv_db.c
owner '<fcgiapp\.h>|<fcgi_stdio\.h>' lib/pv_fcgi.c
owner '\bcurl_easy_[a-z_]+\(' lib/pv_upstream.c

# (pv_agent.c's prologue() passes on the literal that PV_SQL() in the
# pv_agent_authenticate_with macro or PROLOGUE_SQL made.)
hits=$(grep -nE 'pv_db_exec(_one)?\([^,]+,[[:space:]]*[a-z_]+[,)]' $src |
    grep -v -e '^lib/pv_db\.c:' -e '^lib/pv_agent\.c:.*pv_db_exec(ctx, sql,')
[ -n "$hits" ] && fail "pv_db_exec with a non-literal SQL argument:
$hits"

flags="-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror -Ilib $(pkg-config --cflags libpq json-c libcurl openssl fcgi 2>/dev/null)"
for h in lib/*.h; do
	printf '#include "%s"\n' "$(basename "$h")" |
	    ${CC:-cc} $flags -fsyntax-only -x c - 2>/dev/null ||
	    fail "$h does not compile on its own"
done

if command -v clang-format >/dev/null 2>&1; then
	fmt=$(find lib cgi-bin bin tests bench -name '*.[ch]' 2>/dev/null)
	clang-format --dry-run --Werror $fmt ||
	    fail "clang-format disagrees (run clang-format -i on those files)"
else
	fail "clang-format is not installed"
fi

[ $status -eq 0 ] && echo "lint: ok"
exit $status
