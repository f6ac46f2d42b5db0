#!/bin/sh
# scripts/node-deps.sh: the npm packages of tests/node (OpenAPI lint and
# response validation, the MCP client test) and tests/browser
# (playwright-core for the dashboard's browser test), each installed
# with `npm ci` from its committed package-lock.json.  Skipped when
# node_modules was installed from this very lock file (a stamp holds its
# checksum), so `make check` pays for npm only when a lock file changes.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
# Debian's nodejs comes without npm (its own package); a nodejs that
# bundles npm (NodeSource's) must not get Debian's on top.
if ! command -v npm >/dev/null; then
	if [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/dev/null ||
		    { apt-get update -q >/dev/null &&
		      DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/dev/null; }
	fi
	command -v npm >/dev/null || {
		echo "node-deps: npm is missing: apt-get install npm" >&2
		exit 1
	}
fi
for dir in "$root/tests/node" "$root/tests/browser"; do
	cd "$dir"
	want=$(sha256sum package-lock.json | cut -d' ' -f1)
	stamp=node_modules/.pivota-lock-sha256
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		continue
	fi
	npm ci --no-audit --no-fund --loglevel=error
	echo "$want" >"$stamp"
done
