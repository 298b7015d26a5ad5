#!/usr/bin/env bash
# tests/browser/run.sh - the browser suite: alog's /script.js and the
# official Plausible tracker in headless Chromium (Debian's, through
# playwright-core) against a real alog-edge, checked in the edge's log.
#
#   tests/browser/run.sh [ALOG_EDGE [ALOG_CLI]]
#
# CTest (edge_browser) passes the alog-edge and alog binaries of its tree;
# without arguments the ones in build/ are used. Installs the pinned npm
# packages (npm ci) when node_modules is missing or older than the lock
# file, and never a browser: Chromium comes from apt (./run installs it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export ALOG_EDGE=${1:-${ALOG_EDGE:-$ROOT/build/edge/alog-edge}}
export ALOG_CLI=${2:-${ALOG_CLI:-$ROOT/build/log/alog}}
export ALOG_CHROMIUM=${ALOG_CHROMIUM:-/usr/bin/chromium}
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 # belt and braces: nothing to fetch

die() {
	printf 'tests/browser/run.sh: %s\n' "$*" >&2
	exit 1
}

[[ -x $ALOG_EDGE ]] || die "no alog-edge at $ALOG_EDGE"
[[ -x $ALOG_CLI ]] || die "no alog CLI at $ALOG_CLI"
[[ -x $ALOG_CHROMIUM ]] ||
	die "no Chromium at $ALOG_CHROMIUM (apt-get install chromium; ./run test installs it)"
command -v node >/dev/null || die "node is missing (Node.js 18 or later)"
command -v npm >/dev/null || die "npm is missing"

cd "$HERE"

# node_modules matches package-lock.json when the lock's hash is the one
# recorded after the last npm ci. One install at a time (the normal and the
# ASan tree may run this concurrently).
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.alog-lock-sha256
if [[ ! -f $stamp || $(<"$stamp") != "$lock_sum" ]]; then
	exec 9>"${TMPDIR:-/tmp}/alog-browser-npm-$(id -u).lock"
	flock 9
	if [[ ! -f $stamp || $(<"$stamp") != "$lock_sum" ]]; then
		printf '==> npm ci in tests/browser (node_modules missing or stale)\n'
		npm ci --no-audit --no-fund --loglevel=error
		printf '%s\n' "$lock_sum" >"$stamp"
	fi
	flock -u 9
fi

printf '==> browser tests: edge %s, cli %s, %s\n' "$ALOG_EDGE" "$ALOG_CLI" \
	"$("$ALOG_CHROMIUM" --version 2>/dev/null || echo chromium)"
exec node --test --test-reporter=spec alog_script.test.js plausible_tracker.test.js
