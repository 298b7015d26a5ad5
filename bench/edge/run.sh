#!/usr/bin/env bash
# run.sh - alog-edge ingest throughput and latency against nginx answering
# 204 to the same requests, side by side in one run.
#
# Four cases, one server at a time, each with a fresh server and the same wrk
# client (wrk -t THREADS -c CONNECTIONS --latency, a warm-up run, then the
# measured run; bench/edge/post.lua sends one fixed request and counts what
# it wrote):
#   single/nginx  POST /api/event, a 150-byte Plausible body, `return 204;`
#   single/edge   the same request to alog-edge, durability fsync (202 only
#                 after fdatasync)
#   batch/nginx   POST /track/batch, BATCH events in one JSON body, 204
#   batch/edge    the same to alog-edge
# Both servers get the same number of workers (edge threads with their own
# io_uring and SO_REUSEPORT socket; nginx worker processes, `listen
# reuseport`). The edge also runs the log's commit thread.
#
# For each case: requests/s and events/s, p50/p99 latency (wrk), the server's
# CPU time over the measured run (utime+stime of all its processes, % of one
# core), peak RSS (VmHWM, summed over nginx's master and workers), and for the
# edge the log's commits and fdatasyncs and events per commit from /metrics.
# The ratios edge/nginx are the numbers to watch: the machine is shared and
# noisy, and wrk competes with the server for the same cores.
#
# Correctness: after each edge case the edge is stopped and its log counted
# with `alog dump DIR --events`: it must hold exactly BATCH (or 1) events per
# request wrk wrote, which must be the 2xx responses wrk counted plus the
# requests still in flight when wrk stopped (at most CONNECTIONS per wrk run);
# any non-2xx answer or socket error fails the run too.
#
# The edge's log lives under var/bench-edge/ (the repository's disk, never
# tmpfs) and is deleted afterwards. Builds nothing: it runs an already built
# alog-edge and alog from $ALOG_BUILD_DIR (default build-release/). Writes
#   bench/results/edge-<date>.json  every case and the ratios, for machines
#   bench/results/edge-<date>.txt   the table as printed
# Exit status: 0 (whether or not the targets are met), 1 when a case failed,
# did not verify, or the results could not be written, 2 on bad usage.
set -euo pipefail

usage() {
	cat <<EOF
usage: bench/edge/run.sh [--duration S] [--warmup S] [--connections N]
                         [--threads N] [--workers N] [--batch N]
                         [--commits-in-flight N] [--worker-ring defer|plain]
                         [--durability fsync|write]
                         [--prepare-segments true|false]
                         [--quick]
  --duration S     measured seconds per case (default 10)
  --warmup S       warm-up seconds per case, not measured (default 2)
  --connections N  wrk connections (default 64)
  --threads N      wrk threads (default 2)
  --workers N      edge workers = nginx worker_processes (default 2)
  --commits-in-flight N  the edge log's log.commits_in_flight (default 1)
  --worker-ring R  the edge's worker_ring, defer or plain (default defer)
  --durability D   the edge log's durability, fsync or write (default fsync;
                   write answers before fdatasync: it shows what the
                   fdatasync costs, and the targets are not judged)
  --prepare-segments B  the edge log's log.prepare_segments (default: the
                   edge's own, on with one commit in flight)
  --batch N        events per /track/batch request (default 100)
  --quick          --duration 3 --warmup 1
EOF
}

duration=10
warmup=2
connections=64
threads=2
workers=2
batch=100
inflight=1
ring=defer
durability=fsync
prepare=default
quick=false
while (($# > 0)); do
	case $1 in
	--duration) duration=${2:?}; shift 2 ;;
	--warmup) warmup=${2:?}; shift 2 ;;
	--connections) connections=${2:?}; shift 2 ;;
	--threads) threads=${2:?}; shift 2 ;;
	--workers) workers=${2:?}; shift 2 ;;
	--commits-in-flight) inflight=${2:?}; shift 2 ;;
	--worker-ring) ring=${2:?}; shift 2 ;;
	--durability) durability=${2:?}; shift 2 ;;
	--prepare-segments) prepare=${2:?}; shift 2 ;;
	--batch) batch=${2:?}; shift 2 ;;
	--quick) duration=3 warmup=1 quick=true; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
for v in "$duration" "$warmup" "$connections" "$threads" "$workers" "$batch" \
	"$inflight"; do
	[[ $v =~ ^[0-9]+$ ]] || { usage >&2; exit 2; }
done
[[ $ring == defer || $ring == plain ]] || { usage >&2; exit 2; }
[[ $durability == fsync || $durability == write ]] || { usage >&2; exit 2; }
[[ $prepare == default || $prepare == true || $prepare == false ]] ||
	{ usage >&2; exit 2; }
prepare_json=
[[ $prepare == default ]] || prepare_json=", \"prepare_segments\": $prepare"
((duration > 0 && connections >= threads && threads > 0 && workers > 0 &&
	batch > 0)) || { usage >&2; exit 2; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/bench/edge
build=${ALOG_BUILD_DIR:-$repo/build-release}
edge_bin=$build/edge/alog-edge
cli=$build/log/alog
python=/usr/bin/python3
[[ -x $python ]] || python=python3
for b in "$edge_bin" "$cli"; do
	if [[ ! -x $b ]]; then
		echo "run.sh: $b not found; build first:" >&2
		echo "  cmake -S $repo -B $build -DCMAKE_BUILD_TYPE=Release &&" \
		     "cmake --build $build --target alog-edge alog" >&2
		exit 1
	fi
done
for t in wrk nginx; do
	command -v "$t" >/dev/null || {
		echo "run.sh: $t not found (Debian packages wrk, nginx-light;" \
		     "./run bench installs them)" >&2
		exit 1
	}
done

results=${ALOG_BENCH_RESULTS:-$repo/bench/results}
logroot=${ALOG_BENCH_EDGE_DIR:-$repo/var/bench-edge}
mkdir -p "$results" "$logroot"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/alog-bench-edge.XXXXXX")
logdir=$(mktemp -d "$logroot/run.XXXXXX")
server_pid=

cleanup() {
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp" "$logdir"
	rmdir "$logroot" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "run.sh: $*" >&2
	exit 1
}

# ---- requests ------------------------------------------------------------

# A desktop Chrome, as most page views come from one.
ua='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'

# The bodies: bench/bodies.sh (shared with the other benchmark).
. "$(dirname "${BASH_SOURCE[0]}")/../bodies.sh"
bench_single_body >"$tmp/single.body"
bench_batch_body "$batch" >"$tmp/batch.body"

# ---- helpers -------------------------------------------------------------

free_port() {
	"$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT PID: until something accepts on PORT (10 s at most).
wait_port() {
	local i
	for ((i = 0; i < 200; i++)); do
		kill -0 "$2" 2>/dev/null || return 1
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# http_get PORT PATH: the response body (Connection: close).
http_get() {
	local fd
	exec {fd}<>"/dev/tcp/127.0.0.1/$1"
	printf 'GET %s HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n' \
		"$2" >&"$fd"
	sed '1,/^\r$/d' <&"$fd"
	exec {fd}>&-
}

# The server's processes: the PID and its children (nginx's workers).
server_pids() {
	local p=$1 c
	echo "$p"
	for c in /proc/"$p"/task/*/children; do
		[[ -r $c ]] && tr ' ' '\n' <"$c" | sed '/^$/d'
	done
	return 0
}

# utime+stime in clock ticks, summed over PIDs (fields 14, 15 of stat;
# counted after the ")" that ends the command name).
cpu_ticks() {
	local p sum=0 t
	for p in "$@"; do
		t=$(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')
		sum=$((sum + t))
	done
	echo "$sum"
}

# VmHWM in KiB, summed over PIDs.
hwm_kb() {
	local p sum=0 t
	for p in "$@"; do
		t=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status")
		sum=$((sum + t))
	done
	echo "$sum"
}

# The machine's busy clock ticks, all CPUs (/proc/stat: user nice system
# irq softirq steal).
machine_busy_ticks() {
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# run_wrk OUT URL BODY CTYPE SECONDS: one wrk run; OUT.txt is wrk's output,
# OUT.json its WRK_JSON line, OUT.time the client's CPU (/usr/bin/time).
run_wrk() {
	local out=$1 url=$2 body=$3 ctype=$4 secs=$5 rc=0
	local -a timer=()

	[[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f '%e %U %S' -o "$out.time")
	"${timer[@]}" wrk -t "$threads" -c "$connections" -d "${secs}s" \
		--timeout 10s --latency -s "$here/post.lua" "$url" -- \
		"$body" "$ctype" "$ua" >"$out.txt" 2>&1 || rc=$?
	if ((rc != 0)) || ! grep -q '^WRK_JSON ' "$out.txt"; then
		cat "$out.txt" >&2
		die "wrk failed (exit $rc) against $url"
	fi
	sed -n 's/^WRK_JSON //p' "$out.txt" >"$out.json"
}

start_nginx() {
	local d=$1 port=$2
	mkdir -p "$d"
	cat >"$d/nginx.conf" <<EOF
# The baseline: answer every request with 204 and nothing else.
worker_processes $workers;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $((connections + 1024)); }
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    client_max_body_size 1m;
    server {
        listen 127.0.0.1:$port reuseport;
        location / { return 204; }
    }
}
EOF
	nginx -e "$d/error.log" -c "$d/nginx.conf" -p "$d" 2>>"$d/stderr" &
	server_pid=$!
}

start_edge() {
	local d=$1 port=$2 log=$3
	mkdir -p "$d"
	cat >"$d/edge.json" <<EOF
{
  "listen": "127.0.0.1:$port",
  "workers": $workers,
  "worker_ring": "$ring",
  "log": { "dir": "$log", "durability": "$durability",
           "commits_in_flight": $inflight${prepare_json} },
  "limits": { "batch_events": $((batch > 1000 ? batch : 1000)),
              "connections": $((connections + 1024)) },
  "trusted_proxies": [],
  "salt_file": "",
  "geoip_db": "",
  "sites": [ { "id": "example", "domains": ["example.com", "www.example.com"] } ]
}
EOF
	"$edge_bin" --config "$d/edge.json" 2>>"$d/stderr" &
	server_pid=$!
}

# settle_health PORT OUT: /health into OUT once the requests that were in
# flight when wrk stopped are in the log and durable (next_offset ==
# durable_offset, unchanged over 100 ms; 10 s at most).
settle_health() {
	local h next durable last=-1 i
	for ((i = 0; i < 100; i++)); do
		h=$(http_get "$1" /health)
		next=$(sed -n 's/.*"next_offset":\([0-9]*\).*/\1/p' <<<"$h")
		durable=$(sed -n 's/.*"durable_offset":\([0-9]*\).*/\1/p' <<<"$h")
		[[ -n $next && $next == "$durable" && $next == "$last" ]] && break
		last=$next
		sleep 0.1
	done
	printf '%s\n' "$h" >"$2"
}

# stop_server DIR: SIGTERM, wait, keep the exit status in DIR/exit_status.
stop_server() {
	local rc=0
	kill -TERM "$server_pid" 2>/dev/null || true
	wait "$server_pid" || rc=$?
	echo "$rc" >"$1/exit_status"
	server_pid=
}

# run_case NAME SERVER PATH BODY CTYPE EVENTS_PER_REQUEST
run_case() {
	local name=$1 server=$2 path=$3 body=$4 ctype=$5 k=$6
	local d=$tmp/cases/$name-$server port log url t0 t1 c0 c1 m0 m1
	local -a pid_list

	port=$(free_port)
	log=$logdir/$name
	echo "  $name/$server: $warmup s warm-up + $duration s on port $port" >&2
	if [[ $server == edge ]]; then
		start_edge "$d" "$port" "$log"
	else
		start_nginx "$d" "$port"
	fi
	wait_port "$port" "$server_pid" || {
		cat "$d/stderr" >&2
		die "$server did not start"
	}
	url=http://127.0.0.1:$port$path
	((warmup > 0)) && run_wrk "$d/warmup" "$url" "$body" "$ctype" "$warmup"
	[[ $server == edge ]] && http_get "$port" /metrics >"$d/metrics-before.txt"
	mapfile -t pid_list < <(server_pids "$server_pid")
	m0=$(machine_busy_ticks)
	c0=$(cpu_ticks "${pid_list[@]}")
	t0=$(date +%s%N)
	run_wrk "$d/wrk" "$url" "$body" "$ctype" "$duration"
	t1=$(date +%s%N)
	c1=$(cpu_ticks "${pid_list[@]}")
	m1=$(machine_busy_ticks)
	{
		echo "name=$name"
		echo "server=$server"
		echo "path=$path"
		echo "content_type=$ctype"
		echo "body_bytes=$(wc -c <"$body")"
		echo "events_per_request=$k"
		echo "processes=${#pid_list[@]}"
		echo "cpu_ticks=$((c1 - c0))"
		echo "machine_busy_ticks=$((m1 - m0))"
		echo "clk_tck=$(getconf CLK_TCK)"
		echo "wall_ns=$((t1 - t0))"
		echo "rss_peak_kb=$(hwm_kb "${pid_list[@]}")"
	} >"$d/case.env"
	if [[ $server == edge ]]; then
		http_get "$port" /metrics >"$d/metrics-after.txt"
		settle_health "$port" "$d/health.json"
	fi
	stop_server "$d"
	if [[ $server == edge ]]; then
		"$cli" stat "$log" --json >"$d/stat.json"
		"$cli" dump "$log" --events | wc -l >"$d/dump_events"
		du -sb "$log" | cut -f1 >"$d/log_bytes"
		rm -rf "$log"
	fi
}

# ---- run -----------------------------------------------------------------

stem=$results/edge-$(date +%Y-%m-%d)
[[ -e $stem.json ]] && stem=$stem-$(date +%H%M%S)

# The log's filesystem, and for ext* whether it journals: a journal makes
# each fdatasync that changes the file's extents a journal commit
# (log.prepare_segments exists for that), so results differ by 2x.
fs=$(findmnt -no FSTYPE -T "$logdir" 2>/dev/null || stat -f -c %T "$logdir")
if [[ $fs == ext[234] ]]; then
	dev=$(findmnt -no SOURCE -T "$logdir" 2>/dev/null || true)
	dev=${dev##*/}
	if [[ -n $dev ]] && compgen -G "/proc/fs/jbd2/$dev-*" >/dev/null; then
		fs="$fs, journal"
	elif [[ -n $dev && -d /proc/fs/ext4/$dev ]]; then
		fs="$fs, no journal"
	fi
fi
echo "bench/edge: wrk -t $threads -c $connections, ${warmup}s warm-up +" \
	"${duration}s per case, $workers workers each, edge log in $logdir ($fs)" >&2
run_case single nginx /api/event "$tmp/single.body" text/plain 1
run_case single edge /api/event "$tmp/single.body" text/plain 1
run_case batch nginx /track/batch "$tmp/batch.body" application/json "$batch"
run_case batch edge /track/batch "$tmp/batch.body" application/json "$batch"

status=0
"$python" "$here/report.py" --cases "$tmp/cases" --json "$stem.json" \
	--duration "$duration" --warmup "$warmup" --connections "$connections" \
	--threads "$threads" --workers "$workers" --batch "$batch" \
	--commits-in-flight "$inflight" --worker-ring "$ring" \
	--durability "$durability" --prepare-segments "$prepare" \
	--log-dir "$logdir" --fs "$fs" --quick "$quick" \
	--user-agent "$ua" | tee "$stem.txt" || status=$?
echo "results: $stem.json $stem.txt (exit status $status)"
exit "$status"
