#!/usr/bin/env bash
# bench/ship/run.sh [--events N] [--live-seconds S] [--quick]: the shipper's
# end-to-end benchmark (bench/ship/run.py) on a Release build; writes
# bench/results/ship-<date>.txt and .json.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${ALOG_BUILD_DIR:-$ROOT/build-release}
out=$ROOT/bench/results/ship-$(date +%Y-%m-%d)
[[ -e $out.json ]] && out=$out-$(date +%H%M%S)
mkdir -p "$ROOT/bench/results" "$ROOT/var/bench"
python3 "$ROOT/bench/ship/run.py" --shipper "$BUILD/shipper/alog-shipper" \
	--tool "$BUILD/tests/ship_tool" --dir "$ROOT/var/bench" \
	--json "$out.json" "$@" | tee "$out.txt"
