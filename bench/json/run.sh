#!/usr/bin/env bash
# run.sh - the edge's JSON request bodies parsed and walked by jansson (the
# edge's parser, the baseline) and by the alternatives Debian ships, side by
# side in one run: yajl (tree and SAX), json-c and simdjson (DOM, C++,
# through a small extern "C" shim). See json_bench.c for the method. Also
# prints which parser accepts a few inputs they are known to differ on.
#
# Bodies:
#   single  the Plausible page view bench/edge sends to /api/event (150 B)
#   batch   the /track/batch body of bench/edge, BATCH events (the same
#           generator as bench/edge/run.sh)
#   utf8    a batch of the same size whose strings need decoding: escapes,
#           \u escapes with a surrogate pair, raw 2- to 4-byte UTF-8, and
#           a real number per event
#
# Not part of the CMake build: CI does not install these optional
# libraries. This script compiles json_bench.c and json_c.c (gcc) and
# simd.cpp (g++) with -O2 into a temporary directory; it installs nothing
# and names the Debian package that is missing. Writes
#   bench/results/json-<date>.json  every body, parser and round, for machines
#   bench/results/json-<date>.txt   the table as printed
# Exit status: 0, 1 when a parser refused a body, the parsers disagreed,
# or the results could not be written, 2 on bad usage or a missing package.
set -euo pipefail

usage() {
	cat <<EOF
usage: bench/json/run.sh [--rounds N] [--slice-ms MS] [--batch N] [--quick]
  --rounds N     timed rounds; each runs every parser on every body (default 15)
  --slice-ms MS  CPU time per parser, body and round (default 20)
  --batch N      events in the batch bodies (default 100, as bench/edge)
  --quick        --rounds 5 --slice-ms 5
EOF
}

rounds=15
slice_ms=20
batch=100
while (($# > 0)); do
	case $1 in
	--rounds) rounds=${2:?}; shift 2 ;;
	--slice-ms) slice_ms=${2:?}; shift 2 ;;
	--batch) batch=${2:?}; shift 2 ;;
	--quick) rounds=5 slice_ms=5; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
for v in "$rounds" "$slice_ms" "$batch"; do
	[[ $v =~ ^[0-9]+$ ]] || { usage >&2; exit 2; }
done
((rounds > 0 && slice_ms > 0 && batch > 0)) || { usage >&2; exit 2; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/bench/json
results=${ALOG_BENCH_RESULTS:-$repo/bench/results}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/alog-bench-json.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

missing() {
	echo "run.sh: $1 not found; install the Debian package: apt-get install $2" >&2
	exit 2
}

# ---- what it needs -------------------------------------------------------

command -v gcc >/dev/null || missing gcc gcc
command -v g++ >/dev/null || missing g++ g++

# probe CC HEADER LIB PACKAGE: can a program include HEADER and link LIB?
probe() {
	local cc=$1 header=$2 lib=$3 pkg=$4 lang=c
	[[ $cc == g++ ]] && lang='c++'
	printf '#include <%s>\nint main(void) { return 0; }\n' "$header" |
		"$cc" -x "$lang" - -o "$tmp/probe" "$lib" 2>"$tmp/probe.err" ||
		missing "$header or $lib" "$pkg"
}
probe gcc jansson.h -ljansson libjansson-dev
probe gcc yajl/yajl_tree.h -lyajl libyajl-dev
probe gcc json-c/json.h -ljson-c libjson-c-dev
probe g++ simdjson.h -lsimdjson libsimdjson-dev

# Debian's simdjson is built with threads; its pkg-config file says so.
simd_cflags=-DSIMDJSON_THREADS_ENABLED=1
if command -v pkg-config >/dev/null && pkg-config --exists simdjson; then
	simd_cflags=$(pkg-config --cflags simdjson)
fi

# ---- build ---------------------------------------------------------------

warn=(-Wall -Wextra -Wshadow -Wformat=2 -Wvla)
for c in json_bench json_c; do
	gcc -std=c11 -D_GNU_SOURCE -O2 "${warn[@]}" -Wstrict-prototypes \
		-Werror -c "$here/$c.c" -o "$tmp/$c.o"
done
# shellcheck disable=SC2086 # pkg-config's flags are words
g++ -std=c++17 -O2 "${warn[@]}" $simd_cflags \
	-c "$here/simd.cpp" -o "$tmp/simd.o"
# jansson and json-c export a few symbols of the same name, each under its
# own symbol version, so each caller binds to its own library.
g++ -O2 "$tmp/json_bench.o" "$tmp/json_c.o" "$tmp/simd.o" \
	-o "$tmp/json_bench" -ljansson -lyajl -ljson-c -lsimdjson

# ---- bodies --------------------------------------------------------------

# The bodies: bench/bodies.sh (shared with the other benchmark).
. "$(dirname "${BASH_SOURCE[0]}")/../bodies.sh"
bench_single_body >"$tmp/single.json"
bench_batch_body "$batch" >"$tmp/batch.json"

# The same shape with strings a parser must decode or validate: JSON
# escapes, \u escapes (one a surrogate pair), raw UTF-8 of 2, 3 and 4
# bytes, and a real number. The JSON text is passed through %s unchanged.
{
	cities=('Zürich' 'Kraków' '東京' 'São Paulo' 'Αθήνα' 'Montréal')
	titles=('"Caf\u00e9 \"Cr\u00e8me\" \u2014 50% off"'
		'"東京 → 大阪 ✈ \ud83d\ude80"'
		'"Straße \\ Größe \/ Maß\tok"'
		'"naïve résumé 😀 line\nbreak"')
	printf '{"siteId":"example","events":['
	for ((i = 0; i < batch; i++)); do
		((i > 0)) && printf ','
		printf '{"eventType":"search","sessionId":"s-%08x","pageUrl":"https://example.com/s?q=caf%%C3%%A9&p=%d","timestamp":%d,"metadata":{"city":"%s","title":%s,"score":0.%02d}}' \
			$((0x5eed0000 + i % 17)) $((i % 50)) \
			$((1763700000000 + i * 250)) \
			"${cities[i % ${#cities[@]}]}" \
			"${titles[i % ${#titles[@]}]}" $((i % 100))
	done
	printf ']}'
} >"$tmp/utf8.json"

# ---- run -----------------------------------------------------------------

mkdir -p "$results"
stem=$results/json-$(date +%Y-%m-%d)
[[ -e $stem.json ]] && stem=$stem-$(date +%H%M%S)

status=0
"$tmp/json_bench" --rounds "$rounds" --slice-ms "$slice_ms" \
	--json "$stem.json" single="$tmp/single.json" batch="$tmp/batch.json" \
	utf8="$tmp/utf8.json" | tee "$stem.txt" || status=$?
echo "results: $stem.json $stem.txt (exit status $status)"
exit "$status"
