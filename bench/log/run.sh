#!/usr/bin/env bash
# run.sh - run the log benchmark and keep its results.
#
# Builds nothing: it runs an already built alog-bench-log (from $ALOG_BUILD_DIR,
# default build/) with the full matrix, keeps the log files under var/bench/
# (the same disk as the repository, never tmpfs), and writes
#   bench/results/log-<date>.json  every point, for machines
#   bench/results/log-<date>.txt   the table as printed
# Extra arguments are passed on, e.g. `bench/log/run.sh --quick` or
# `bench/log/run.sh --sizes 64K --appenders 1,4`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${ALOG_BUILD_DIR:-$repo/build}
bin=$build/bench/alog-bench-log
if [ ! -x "$bin" ]; then
	echo "run.sh: $bin not found; build first:" >&2
	echo "  cmake -S $repo -B $build -DCMAKE_BUILD_TYPE=Release &&" \
	     "cmake --build $build --target alog-bench-log" >&2
	exit 1
fi

results=$repo/bench/results
workdir=${ALOG_BENCH_DIR:-$repo/var/bench}
mkdir -p "$results" "$workdir"

# One file per day; a second run on the same day gets the time appended.
stem=$results/log-$(date +%Y-%m-%d)
[ -e "$stem.json" ] && stem=$stem-$(date +%H%M%S)

status=0
"$bin" --dir "$workdir" --json "$stem.json" "$@" | tee "$stem.txt" || status=$?
echo "results: $stem.json $stem.txt (exit status $status)"
exit "$status"
