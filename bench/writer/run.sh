#!/usr/bin/env bash
# bench/writer/run.sh [--events N] [--batch N] [--connections N]: the
# writer against PostgreSQL's own COPY of the same rows (bench/writer/run.py)
# on a Release build; writes bench/results/writer-<date>.txt and .json.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${ALOG_BUILD_DIR:-$ROOT/build-release}
out=$ROOT/bench/results/writer-$(date +%Y-%m-%d)
[[ -e $out.json ]] && out=$out-$(date +%H%M%S)
mkdir -p "$ROOT/bench/results" "$ROOT/var/bench"
python3 "$ROOT/bench/writer/run.py" --writer "$BUILD/writer/alog-writer" \
	--gen "$BUILD/tests/writer_gen" --dir "$ROOT/var/bench" \
	--json "$out.json" "$@" | tee "$out.txt"
