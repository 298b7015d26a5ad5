#!/usr/bin/env bash
# cli_test.sh - integration test of the `alog` CLI against real log directories.
#
# Usage: tests/cli_test.sh path/to/alog
#
# Creates logs with `alog append --create` in a scratch directory, then checks
# ls, stat, dump (text and --json), verify, tail and tail -f, the error
# messages and exit codes (missing directory, foreign directory, bad numbers,
# bad options, over-long lines), and that verify reports a byte flipped in a
# record payload, in the active segment and in a sealed one, and that tail -f
# follows across segment rolls. Stops at the first failed assertion with a
# message saying what was expected and what came out.
#
# Segments are 64 MiB (not settable from the CLI), so the roll tests write
# ~210 MB and need about 300 MB of scratch space at their peak; takes ~3 s.
set -euo pipefail

ALOG=${1:?usage: cli_test.sh path/to/alog}
[[ -x $ALOG ]] || { echo "cli_test: $ALOG is not an executable" >&2; exit 2; }
command -v python3 >/dev/null || { echo "cli_test: needs python3" >&2; exit 2; }

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/alog-cli-test.XXXXXX")
BG_PIDS=()
cleanup() {
	local pid
	for pid in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$SCRATCH"
}
trap cleanup EXIT

PASSED=0
OUT=$SCRATCH/out
ERR=$SCRATCH/err
RC=0
CURRENT=""

fail() {
	echo "FAIL [$CURRENT]: $*" >&2
	echo "--- stdout (first 20 lines):" >&2
	head -n 20 "$OUT" >&2 2>/dev/null || true
	echo "--- stderr (first 20 lines):" >&2
	head -n 20 "$ERR" >&2 2>/dev/null || true
	echo "$PASSED passed, 1 failed" >&2
	exit 1
}

pass() {
	PASSED=$((PASSED + 1))
}

# run NAME CMD...: run the command, stdout to $OUT, stderr to $ERR, status to $RC.
run() {
	CURRENT=$1
	shift
	set +e
	"$@" >"$OUT" 2>"$ERR"
	RC=$?
	set -e
}

expect_rc() {
	[[ $RC -eq $1 ]] || fail "exit status $RC, expected $1"
}

expect_out() { # exact stdout
	local got
	got=$(cat "$OUT")
	[[ $got == "$1" ]] || fail "stdout is not exactly: $1"
}

expect_out_has() {
	grep -qF -- "$1" "$OUT" || fail "stdout lacks: $1"
}

expect_out_lacks() {
	! grep -qF -- "$1" "$OUT" || fail "stdout should not have: $1"
}

expect_err_has() {
	grep -qF -- "$1" "$ERR" || fail "stderr lacks: $1"
}

expect_out_matches() { # extended regex, some line
	grep -qE -- "$1" "$OUT" || fail "no stdout line matches /$1/"
}

expect_lines() {
	local n
	n=$(wc -l <"$OUT")
	[[ $n -eq $1 ]] || fail "stdout has $n lines, expected $1"
}

# check_py NAME PYTHON: run a python check reading $OUT; it fails by raising.
check_py() {
	CURRENT=$1
	python3 - "$OUT" <<<"$2" 2>"$ERR.py" || {
		cat "$ERR.py" >&2
		fail "python check failed"
	}
}

# ---------------------------------------------------------------------------
# Help and usage errors
# ---------------------------------------------------------------------------
run "help" "$ALOG" --help
expect_rc 0
expect_out_has "usage: alog COMMAND DIR"
expect_out_has "verify"
pass

run "help for a command" "$ALOG" dump --help
expect_rc 0
expect_out_has "usage: alog dump DIR"
expect_out_has "--from N"
pass

run "no arguments" "$ALOG"
expect_rc 1
expect_err_has "usage: alog COMMAND DIR"
pass

run "unknown command" "$ALOG" frobnicate /tmp
expect_rc 1
expect_err_has "unknown command 'frobnicate'"
pass

run "missing DIR" "$ALOG" ls
expect_rc 1
expect_err_has "missing DIR"
expect_err_has "usage: alog ls"
pass

run "unknown option" "$ALOG" ls "$SCRATCH" --bogus
expect_rc 1
expect_err_has "unknown option '--bogus'"
pass

run "option of another command" "$ALOG" stat "$SCRATCH" --from 3
expect_rc 1
expect_err_has "unknown option '--from'"
pass

for bad in abc -1 " 5" 5x 0x10 +3 "" 18446744073709551616; do
	run "bad number '$bad'" "$ALOG" dump "$SCRATCH" --from "$bad"
	expect_rc 1
	expect_err_has "is not a number"
	pass
done

run "bad -n" "$ALOG" tail "$SCRATCH" -n -5
expect_rc 1
expect_err_has "is not a number"
pass

run "missing value" "$ALOG" dump "$SCRATCH" --count
expect_rc 1
expect_err_has "needs a value"
pass

run "bad durability" "$ALOG" append "$SCRATCH/x" --durability sometimes </dev/null
expect_rc 1
expect_err_has "is not fsync or write"
pass

# ---------------------------------------------------------------------------
# Missing and foreign directories
# ---------------------------------------------------------------------------
MISSING=$SCRATCH/does-not-exist
FOREIGN=$SCRATCH/foreign
mkdir "$FOREIGN"
echo "not a log" >"$FOREIGN/notes.txt"

for cmd in ls stat dump verify tail; do
	run "$cmd on missing dir" "$ALOG" "$cmd" "$MISSING"
	expect_rc 2
	expect_err_has "alog: $MISSING: no such directory"
	pass

	run "$cmd on foreign dir" "$ALOG" "$cmd" "$FOREIGN"
	expect_rc 2
	expect_err_has "alog: $FOREIGN: not an alog log directory (no LOG file)"
	pass
done

run "append to missing dir without --create" "$ALOG" append "$MISSING" <<<"x"
expect_rc 2
expect_err_has "alog: $MISSING: no such directory"
[[ ! -e $MISSING ]] || fail "append without --create created $MISSING"
pass

EMPTY=$SCRATCH/empty
run "append --create with no input" "$ALOG" append "$EMPTY" --create </dev/null
expect_rc 0
expect_err_has "appended 0 records"
pass

run "stat on an empty log" "$ALOG" stat "$EMPTY"
expect_rc 0
expect_out_matches '^last offset +empty$'
expect_out_matches '^records +0$'
pass

run "stat --json on an empty log" "$ALOG" stat "$EMPTY" --json
expect_rc 0
expect_out_has '"last_offset":null'
pass

run "ls on an empty log" "$ALOG" ls "$EMPTY"
expect_rc 0
expect_out_matches '^0 +- +0 +64B/64\.0MiB +[0-9]+s +active$'
pass

for cmd in dump tail; do
	run "$cmd on an empty log" "$ALOG" "$cmd" "$EMPTY"
	expect_rc 0
	expect_lines 0
	pass
done

run "verify on an empty log" "$ALOG" verify "$EMPTY"
expect_rc 0
expect_out "0 records ok in 1 segment, no damage"
pass

BADLOG=$SCRATCH/badlog
mkdir "$BADLOG"
cp "$EMPTY/LOG" "$BADLOG/LOG"
# Flip the byte, do not overwrite it: byte 20 is in the random identity,
# and writing 'X' over a byte that already was 'X' damaged nothing (1 run
# in 256 failed).
python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(20); b = f.read(1); f.seek(20); f.write(bytes([b[0] ^ 0xFF]))' \
	"$BADLOG/LOG"
for cmd in stat dump; do
	run "$cmd with a damaged LOG file" "$ALOG" "$cmd" "$BADLOG"
	expect_rc 3
	expect_err_has "alog: $BADLOG: LOG file is damaged (checksum mismatch)"
	pass
done

FOREIGN_LOG=$SCRATCH/foreign-log
mkdir "$FOREIGN_LOG"
echo "my own log file, 64 bytes or more, nothing to do with alog at all" >"$FOREIGN_LOG/LOG"
for cmd in ls verify; do
	run "$cmd with a foreign LOG file" "$ALOG" "$cmd" "$FOREIGN_LOG"
	expect_rc 2
	expect_err_has "alog: $FOREIGN_LOG: LOG file is not an alog LOG file"
	pass
done

run "a file instead of a directory" "$ALOG" ls "$EMPTY/LOG"
expect_rc 2
expect_err_has "alog: $EMPTY/LOG: not a directory"
pass

# ---------------------------------------------------------------------------
# A small log
# ---------------------------------------------------------------------------
LOG=$SCRATCH/log
LONG=$(printf 'L%.0s' $(seq 1 500))
# Records 0..99 are "record-N"; then the odd ones at offsets 100..107.
# The empty lines in between must be skipped, not appended.
{
	for i in $(seq 0 99); do
		echo "record-$i"
		if ((i % 25 == 0)); then echo; fi
	done
	printf 'tab\there\n'              # 100
	printf 'back\\slash "quoted"\n'   # 101
	printf 'h\xc3\xa9llo \xe2\x9c\x93\n' # 102: héllo ✓ (UTF-8)
	printf 'bad\xffbyte\n'            # 103: not UTF-8
	printf 'ctl\x01\x7f\n'            # 104: control characters
	printf 'cr\r\n'                   # 105: CR kept in the payload
	printf '%s\n' "$LONG"             # 106: 500 bytes
	printf 'no newline at end'        # 107
} >"$SCRATCH/input"

run "append --create" "$ALOG" append "$LOG" --create <"$SCRATCH/input"
expect_rc 0
expect_err_has "appended 108 records, offsets 0..107"
[[ -f $LOG/LOG ]] || fail "no LOG file in $LOG"
pass

run "stat" "$ALOG" stat "$LOG"
expect_rc 0
expect_out_matches '^identity +[0-9a-f]{32}$'
expect_out_matches '^created +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
expect_out_matches '^first offset +0$'
expect_out_matches '^last offset +107$'
expect_out_matches '^head +108$'
expect_out_matches '^records +108$'
expect_out_matches '^segments +1$'
expect_out_matches '^disk used +.*\([0-9]+ bytes\)$'
pass

run "stat --json" "$ALOG" stat "$LOG" --json
expect_rc 0
check_py "stat --json fields" '
import json, sys
s = json.load(open(sys.argv[1]))
assert len(s["identity"]) == 32, s
assert s["first_offset"] == 0 and s["last_offset"] == 107, s
assert s["head_offset"] == 108 and s["records"] == 108, s
assert s["segments"] == 1 and s["disk_bytes"] > 0, s
'
pass

run "ls" "$ALOG" ls "$LOG"
expect_rc 0
expect_lines 2
expect_out_matches '^BASE +LAST +RECORDS +DATA/FILE +AGE +STATE$'
expect_out_matches '^0 +107 +108 +[0-9.]+(B|KiB)/[0-9.]+MiB +[0-9]+s +active$'
pass

run "ls --json" "$ALOG" ls "$LOG" --json
expect_rc 0
check_py "ls --json fields" '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 1, rows
r = rows[0]
assert r["base_offset"] == 0 and r["last_offset"] == 107, r
assert r["records"] == 108 and r["state"] == "active" and not r["sealed"], r
assert 64 < r["data_bytes"] <= r["file_bytes"], r
'
pass

# ---------------------------------------------------------------------------
# dump
# ---------------------------------------------------------------------------
run "dump" "$ALOG" dump "$LOG"
expect_rc 0
expect_lines 108
expect_out_matches '^0 [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z 8 record-0$'
expect_out_matches '^99 [^ ]+ 9 record-99$'
pass

TS='[^ ]+'
run "dump escapes payloads" "$ALOG" dump "$LOG" --from 100
expect_rc 0
expect_lines 8
expect_out_matches "^100 $TS 8 tab\\\\there\$"
expect_out_matches "^101 $TS 19 back\\\\\\\\slash \"quoted\"\$"
expect_out_matches "^102 $TS 10 héllo ✓\$"
expect_out_matches "^103 $TS 8 bad\\\\xffbyte\$"
expect_out_matches "^104 $TS 5 ctl\\\\x01\\\\x7f\$"
expect_out_matches "^105 $TS 3 cr\\\\r\$"
expect_out_matches "^106 $TS 500 L{200}…\\(\\+300 bytes\\)\$"
expect_out_matches "^107 $TS 17 no newline at end\$"
pass

run "dump --full" "$ALOG" dump "$LOG" --from 106 --count 1 --full
expect_rc 0
expect_lines 1
expect_out_matches "^106 $TS 500 L{500}\$"
pass

run "dump --from --count" "$ALOG" dump "$LOG" --from 5 --count 3
expect_rc 0
expect_lines 3
[[ $(cut -d' ' -f1 "$OUT" | tr '\n' ' ') == "5 6 7 " ]] || fail "offsets are not 5 6 7"
pass

run "dump --from=N --count=0" "$ALOG" dump --from=5 --count=0 "$LOG"
expect_rc 0
expect_lines 0
pass

run "dump --from the end" "$ALOG" dump "$LOG" --from 108
expect_rc 0
expect_lines 0
pass

run "dump --from past the end" "$ALOG" dump "$LOG" --from 1000
expect_rc 2
expect_err_has "offset 1000 is outside the log (records 0..107)"
pass

run "dump --json" "$ALOG" dump "$LOG" --json
expect_rc 0
expect_lines 108
check_py "dump --json is valid and exact" '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
assert [r["offset"] for r in recs] == list(range(108))
for r in recs:
    assert set(r) == {"offset", "time_ms", "len", "data"}, r
    assert r["time_ms"] > 1600000000000, r
assert recs[0]["data"] == "record-0" and recs[0]["len"] == 8
assert recs[100]["data"] == "tab\there"
assert recs[101]["data"] == "back\\slash \"quoted\""
assert recs[102]["data"] == "h\u00e9llo \u2713" and recs[102]["len"] == 10
assert recs[103]["data"] == "bad\u00ffbyte", recs[103]   # documented: byte as \u00NN
assert recs[104]["data"] == "ctl\u0001\u007f"
assert recs[105]["data"] == "cr\r"
assert recs[106]["data"] == "L" * 500 and recs[106]["len"] == 500
assert recs[107]["data"] == "no newline at end"
'
grep -qF '"data":"bad\u00ffbyte"' "$OUT" || fail "invalid byte not written as \\u00ff"
grep -qF '"data":"ctl\u0001\u007f"' "$OUT" || fail "controls not written as \\u00NN"
pass

# ---------------------------------------------------------------------------
# verify and tail
# ---------------------------------------------------------------------------
run "verify clean" "$ALOG" verify "$LOG"
expect_rc 0
expect_out_has "108 records ok (offsets 0..107) in 1 segment,"
expect_out_has "no damage"
pass

run "tail" "$ALOG" tail "$LOG"
expect_rc 0
expect_lines 10
[[ $(head -n 1 "$OUT" | cut -d' ' -f1) == 98 ]] || fail "tail does not start at 98"
[[ $(tail -n 1 "$OUT" | cut -d' ' -f1) == 107 ]] || fail "tail does not end at 107"
pass

run "tail -n 3 --json" "$ALOG" tail "$LOG" -n 3 --json
expect_rc 0
expect_lines 3
expect_out_has '{"offset":105,'
pass

run "tail -n larger than the log" "$ALOG" tail "$LOG" -n5000
expect_rc 0
expect_lines 108
pass

run "tail -n 0" "$ALOG" tail "$LOG" -n 0
expect_rc 0
expect_lines 0
pass

run "tail --from" "$ALOG" tail "$LOG" --from 104
expect_rc 0
expect_lines 4
pass

run "tail --from and -n" "$ALOG" tail "$LOG" --from 1 -n 1
expect_rc 1
expect_err_has "give --from or -n, not both"
expect_err_has "usage: alog tail"
pass

# tail -f: start after the last record, append, and see the new records
# arrive; then stop it with a signal and expect a clean exit.
follow_test() { # SIGNAL FIRST_NEW_OFFSET
	local sig=$1 first=$2 pid rc deadline len
	CURRENT="tail -f, stopped by SIG$sig"
	"$ALOG" tail "$LOG" -f -n 0 >"$SCRATCH/follow.out" 2>"$SCRATCH/follow.err" &
	pid=$!
	BG_PIDS+=("$pid")
	printf 'follow-%s-1\nfollow-%s-2\nfollow-%s-3\n' "$sig" "$sig" "$sig" |
		"$ALOG" append "$LOG" 2>"$ERR" || fail "append while following failed: $(cat "$ERR")"
	grep -qF "appended 3 records, offsets $first..$((first + 2))" "$ERR" ||
		fail "append said: $(cat "$ERR")"
	deadline=$((SECONDS + 10))
	while (($(wc -l <"$SCRATCH/follow.out") < 3)); do
		((SECONDS < deadline)) || {
			cp "$SCRATCH/follow.out" "$OUT"
			cp "$SCRATCH/follow.err" "$ERR"
			fail "tail -f printed $(wc -l <"$OUT") of 3 new records in 10 s"
		}
		kill -0 "$pid" 2>/dev/null || fail "tail -f exited early: $(cat "$SCRATCH/follow.err")"
		sleep 0.05
	done
	len=$((${#sig} + 9)) # "follow-$sig-1"
	grep -qE "^$first [^ ]+ $len follow-$sig-1\$" "$SCRATCH/follow.out" || {
		cp "$SCRATCH/follow.out" "$OUT"
		fail "tail -f output is wrong"
	}
	grep -qE "^$((first + 2)) [^ ]+ $len follow-$sig-3\$" "$SCRATCH/follow.out" ||
		fail "tail -f missed the last record"
	kill -"$sig" "$pid"
	set +e
	wait "$pid"
	rc=$?
	set -e
	[[ $rc -eq 0 ]] || fail "tail -f exited $rc after SIG$sig, expected 0"
	[[ $(wc -l <"$SCRATCH/follow.out") -eq 3 ]] || fail "tail -f printed extra lines"
	pass
}
follow_test TERM 108
follow_test INT 111

run "append --durability write" "$ALOG" append "$LOG" --durability write <<<"written"
expect_rc 0
expect_err_has "appended 1 records, offsets 114..114"
pass

# One writer at a time: hold the log open through a fifo, wait until its
# first record is visible (so it has the lock), then try a second writer.
mkfifo "$SCRATCH/fifo"
"$ALOG" append "$LOG" <"$SCRATCH/fifo" 2>"$SCRATCH/holder.err" &
HOLDER=$!
BG_PIDS+=("$HOLDER")
exec 3>"$SCRATCH/fifo"
echo "held" >&3
CURRENT="first writer holds the log"
deadline=$((SECONDS + 10))
until "$ALOG" dump "$LOG" --from 115 >"$SCRATCH/held.out" 2>/dev/null &&
	grep -q ' held$' "$SCRATCH/held.out"; do
	((SECONDS < deadline)) || fail "first writer's record not visible in 10 s"
	sleep 0.05
done
pass
run "second writer is refused" "$ALOG" append "$LOG" <<<"second"
expect_rc 2
expect_err_has "alog: $LOG: another process has the log open for writing"
pass
exec 3>&-
CURRENT="first writer finishes"
wait "$HOLDER" || fail "first writer exited $?: $(cat "$SCRATCH/holder.err")"
grep -qF "appended 1 records, offsets 115..115" "$SCRATCH/holder.err" ||
	fail "first writer said: $(cat "$SCRATCH/holder.err")"
pass

# ---------------------------------------------------------------------------
# Over-long lines: an error with the line number; earlier lines stay.
# ---------------------------------------------------------------------------
{
	echo "before-1"
	echo "before-2"
	python3 -c 'import sys; sys.stdout.write("x" * (1 << 20 | 1) + "\n")'
	echo "after"
} >"$SCRATCH/long-input"
run "line longer than record_bytes_max" "$ALOG" append "$LOG" <"$SCRATCH/long-input"
expect_rc 2
expect_err_has "stdin line 3: longer than record_bytes_max (1048576 bytes)"
expect_err_has "appended 2 records, offsets 116..117"
pass

run "records before the long line stay" "$ALOG" dump "$LOG" --from 116
expect_rc 0
expect_lines 2
expect_out_matches '^117 [^ ]+ 8 before-2$'
pass

python3 -c 'import sys; sys.stdout.write("y" * (1 << 20) + "\n")' >"$SCRATCH/max-input"
run "line of exactly record_bytes_max" "$ALOG" append "$LOG" <"$SCRATCH/max-input"
expect_rc 0
expect_err_has "appended 1 records, offsets 118..118"
pass

run "verify after appends" "$ALOG" verify "$LOG"
expect_rc 0
expect_out_has "119 records ok (offsets 0..118)"
pass

# ---------------------------------------------------------------------------
# Damage in the active segment: flip one payload byte of record 50.
# Records start at position 64; each is a 32-byte header and its payload.
# ---------------------------------------------------------------------------
"$ALOG" dump "$LOG" --json >"$SCRATCH/lens.json"
flip_byte() { # SEGMENT_FILE LENS_JSON BASE OFFSET: prints the record's position
	python3 - "$@" <<'EOF'
import json, sys
seg, lens, base, target = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pos = 64
for line in open(lens, encoding="utf-8"):
    r = json.loads(line)
    if r["offset"] < base:
        continue
    if r["offset"] == target:
        break
    pos += 32 + r["len"]
else:
    sys.exit("offset %d not found" % target)
with open(seg, "r+b") as f:
    f.seek(pos + 32 + r["len"] // 2)
    b = f.read(1)
    f.seek(pos + 32 + r["len"] // 2)
    f.write(bytes([b[0] ^ 0x20]))
print(pos)
EOF
}
SEG0=$LOG/00000000000000000000.seg
POS=$(flip_byte "$SEG0" "$SCRATCH/lens.json" 0 50)

run "verify finds damage in the active segment" "$ALOG" verify "$LOG"
expect_rc 3
expect_out_has "damaged record in segment 00000000000000000000.seg at file position $POS (offset 50):"
expect_out_has "lost offsets 50..50 (1 record)"
expect_out_has "118 records ok (offsets 0..118)"
expect_out_has "1 damaged range, 1 record lost: DAMAGED"
expect_out_lacks "appended while verifying"
pass

run "dump stops at damage" "$ALOG" dump "$LOG"
expect_rc 3
expect_lines 50
expect_err_has "damaged record in segment 00000000000000000000.seg at file position $POS (offset 50)"
pass

run "dump before the damage is fine" "$ALOG" dump "$LOG" --count 50
expect_rc 0
expect_lines 50
pass

# ---------------------------------------------------------------------------
# A log with a sealed segment (segments are 64 MiB by default): ls shows
# sealed + active, and verify finds a flipped byte inside the sealed one.
# ---------------------------------------------------------------------------
# Active segments are preallocated to 64 MiB: free each log when done.
rm -rf "$LOG" "$EMPTY"

BIG=$SCRATCH/big
python3 -c '
import sys
for i in range(70):
    sys.stdout.write("%06d" % i + "z" * 999994 + "\n")
' | "$ALOG" append "$BIG" --create 2>"$ERR" || fail "big append failed: $(cat "$ERR")"
CURRENT="big append"
expect_err_has "appended 70 records, offsets 0..69"
pass

run "ls with a sealed segment" "$ALOG" ls "$BIG"
expect_rc 0
expect_lines 3
expect_out_matches '^0 +[0-9]+ +[0-9]+ +[0-9.]+MiB/[0-9.]+MiB +[0-9]+s +sealed$'
expect_out_matches '^[1-9][0-9]* +69 +[0-9]+ +.* +active$'
pass

run "ls --json with a sealed segment" "$ALOG" ls "$BIG" --json
expect_rc 0
check_py "segments are dense" '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2, rows
assert rows[0]["sealed"] and rows[0]["state"] == "sealed", rows
assert rows[0]["data_bytes"] == rows[0]["file_bytes"], rows  # sealed: truncated
assert rows[1]["base_offset"] == rows[0]["last_offset"] + 1, rows
assert rows[0]["records"] + rows[1]["records"] == 70, rows
'
SEALED_NEXT=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["next_offset"])' "$OUT")
pass

run "stat with two segments" "$ALOG" stat "$BIG"
expect_rc 0
expect_out_matches '^segments +2$'
expect_out_matches '^last offset +69$'
pass

run "verify big clean" "$ALOG" verify "$BIG"
expect_rc 0
expect_out_has "70 records ok (offsets 0..69) in 2 segments"
pass

"$ALOG" dump "$BIG" --json >"$SCRATCH/big-lens.json"
BIGPOS=$(flip_byte "$BIG/00000000000000000000.seg" "$SCRATCH/big-lens.json" 0 10)
run "verify finds damage in a sealed segment" "$ALOG" verify "$BIG"
expect_rc 3
expect_out_has "damaged record in segment 00000000000000000000.seg at file position $BIGPOS (offset 10):"
expect_out_matches '^  lost offsets 10\.\.[0-9]+ \([0-9]+ records?\)$'
expect_out_has "1 damaged range,"
expect_out_has "DAMAGED"
pass

run "dump from the active segment is unaffected" "$ALOG" dump "$BIG" --from "$SEALED_NEXT" --count 1
expect_rc 0
expect_lines 1
pass

# ---------------------------------------------------------------------------
# tail -f across segment rolls: a follower started on an empty log sees all
# 140 records (about 2 rolls) in order, and no false damage at the seams.
# ---------------------------------------------------------------------------
rm -rf "$BIG"

ROLL=$SCRATCH/roll
"$ALOG" append "$ROLL" --create </dev/null 2>/dev/null
"$ALOG" tail "$ROLL" -f >"$SCRATCH/roll.out" 2>"$SCRATCH/roll.err" &
ROLL_PID=$!
BG_PIDS+=("$ROLL_PID")
python3 -c '
import sys
for i in range(140):
    sys.stdout.write("%06d" % i + "z" * 999994 + "\n")
' | "$ALOG" append "$ROLL" 2>"$ERR" || fail "append for the roll test failed: $(cat "$ERR")"
CURRENT="tail -f across segment rolls"
deadline=$((SECONDS + 20))
while (($(wc -l <"$SCRATCH/roll.out") < 140)); do
	if ! kill -0 "$ROLL_PID" 2>/dev/null; then
		cp "$SCRATCH/roll.err" "$ERR"
		: >"$OUT"
		fail "tail -f exited after $(wc -l <"$SCRATCH/roll.out") of 140 records"
	fi
	((SECONDS < deadline)) || fail "tail -f printed $(wc -l <"$SCRATCH/roll.out") of 140 records in 20 s"
	sleep 0.05
done
[[ $(cut -d' ' -f1 "$SCRATCH/roll.out" | tr '\n' ' ') == "$(seq -s ' ' 0 139) " ]] ||
	fail "tail -f across rolls did not print offsets 0..139 in order"
kill -TERM "$ROLL_PID"
wait "$ROLL_PID" || fail "tail -f exited $? after SIGTERM"
pass

run "ls after rolls" "$ALOG" ls "$ROLL"
expect_rc 0
expect_lines 4
pass

echo "$PASSED passed, 0 failed"
