#!/bin/bash
# scripts/fuzz.sh SECONDS HARNESS...: `make fuzz`.  Runs each libFuzzer
# harness for SECONDS on a scratch copy of its seed corpus
# (tests/fuzz/corpus/NAME, NAME being the harness without "fuzz_"), with
# its dictionary if there is one.  A crash, leak or failed property
# stops with the reproducer under build/fuzz/; new corpus entries stay
# out of git.
set -euo pipefail
PV_PROG=fuzz
. "$(dirname "$0")/lib.sh"

[ $# -ge 2 ] || pv_die "usage: $0 SECONDS HARNESS..."
secs=$1
shift
fail=0
for h in "$@"; do
	name=$(basename "$h")
	seeds=$PV_ROOT/tests/fuzz/corpus/${name#fuzz_}
	work=$(cd "$(dirname "$h")" && pwd)/corpus-${name#fuzz_}
	mkdir -p "$work"
	[ -d "$seeds" ] && cp -R "$seeds/." "$work/"
	dict=()
	[ -f "$PV_ROOT/tests/fuzz/${name#fuzz_}.dict" ] &&
	    dict=(-dict="$PV_ROOT/tests/fuzz/${name#fuzz_}.dict")
	pv_say "$name: $secs s"
	if (cd "$(dirname "$h")" && "./$name" -max_total_time="$secs" \
	    -max_len=8192 -print_final_stats=1 "${dict[@]}" "$work" \
	    >"$name.log" 2>&1); then
		pv_say "$name: ok, $(grep -o 'stat::number_of_executed_units: [0-9]*' \
		    "$(dirname "$h")/$name.log" | awk '{print $2}') runs"
	else
		pv_say "$name: FAILED (build/fuzz/$name.log)"
		tail -30 "$(dirname "$h")/$name.log" >&2
		fail=1
	fi
done
exit $fail
