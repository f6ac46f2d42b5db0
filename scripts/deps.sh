#!/bin/sh
# scripts/deps.sh: make sure the Debian packages Pivota needs are there.
#
#   scripts/deps.sh [PKG...]          check; as root install what is missing
#   scripts/deps.sh --check [PKG...]  check only; exit 1 if anything is missing
#   scripts/deps.sh --list            print the package list
#
# Extra PKG arguments are checked along with the project's own list.
# One dpkg-query call when everything is present (a few ms), so `make
# check` runs it every time.  As root, missing packages are installed
# with apt-get, non-interactively; `apt-get update` runs only if that
# install fails (a fresh machine may have no package lists yet).  As a
# normal user it prints the exact sudo line and exits 1.  Idempotent.
#
# Add a package: append it to BUILD or RUN below.  chromium (the browser
# tests; about 45 s and 350 MB to install) and nodejs (their driver,
# playwright-core, installed by scripts/node-deps.sh with npm ci).
set -eu

BUILD="gcc make pkg-config libfcgi-dev libpq-dev libjson-c-dev
libcurl4-openssl-dev libssl-dev nettle-dev check"
RUN="postgresql spawn-fcgi lighttpd apache2 libapache2-mod-fcgid wrk tidy
curl clang-format valgrind clang python3 chromium nodejs"

mode=install
case "${1:-}" in
--check) mode=check; shift ;;
--list) echo $BUILD $RUN; exit 0 ;;
-*) echo "usage: $0 [--check|--list] [PKG...]" >&2; exit 2 ;;
esac
PKGS=$(echo $BUILD $RUN "$@")

# A package counts as present only in state "ii" (not "rc": removed
# with config files left, not half-installed).  Unknown names go to
# dpkg-query's stderr and count as missing.
missing() {
	# shellcheck disable=SC2086
	present=" $(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' \
	    $PKGS 2>/dev/null | awk '$1 == "ii" { printf "%s ", $2 }')"
	for p in $PKGS; do
		case "$present" in
		*" $p "*) ;;
		*) printf '%s ' "$p" ;;
		esac
	done
}

todo=$(missing)
[ -z "$todo" ] && exit 0
todo=${todo% }

echo "deps: missing packages: $todo" >&2
[ "$mode" = check ] && exit 1
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: install them with:" >&2
	echo "sudo apt-get install -y --no-install-recommends $todo"
	exit 1
fi

# The postinst scripts of postgresql, lighttpd and apache2 would start
# system-wide daemons (on 5432, 80): we never use those, our scripts
# start their own.  A policy-rc.d that says 101 stops invoke-rc.d from
# starting anything; ours is removed again on exit.
policy=/usr/sbin/policy-rc.d
ours=
if [ ! -e "$policy" ]; then
	ours=1
	trap 'rm -f "$policy"' EXIT
	trap 'exit 130' INT TERM
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends \
	    -o Dpkg::Options::=--force-confdef \
	    -o Dpkg::Options::=--force-confold $todo </dev/null
}
if ! apt_install; then
	echo "deps: install failed; running apt-get update and retrying" >&2
	apt-get update -q </dev/null
	apt_install
fi

todo=$(missing)
if [ -n "$todo" ]; then
	echo "deps: still missing after install: $todo" >&2
	exit 1
fi
[ -n "$ours" ] && rm -f "$policy"
echo "deps: all packages installed" >&2
