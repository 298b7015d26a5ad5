#!/usr/bin/env python3
"""bench/writer/run.py - alog-writer throughput against PostgreSQL's own COPY.

In one run, on one private PostgreSQL 15 (tests/pg_private.py):

 1. writer_gen fills a log with N realistic events (default 10,000,000;
    --active visitors at a time, each sending 1..15 events: sessions as real
    traffic makes them; receive times spread over the last --span-hours, a
    backlog of a day by default);
 2. alog-writer writes the log into a freshly migrated database: decode,
    user agents, sources, sessions, hll rollups, offsets, one transaction per
    batch (rows/s = events / wall time of `alog-writer run --idle-exit`);
 3. the baseline: the same rows the writer produced, already enriched
    (events, and the final sessions and rollup rows), exported and loaded with
    COPY (psql \\copy, one stream, as the writer's client-side COPY) into a
    second freshly migrated database with the same tables and indexes.

Reports rows/s of both and their ratio (target >= 0.80), the writer's time
per stage and its user-agent cache hit rate. Writes --json.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests"))
from pg_private import Postgres  # noqa: E402

SESSION_COLS = ("session_id, site, visitor, started_at, last_seen_at, "
                "entry_page, exit_page, exit_at, pageviews, events, "
                "interactive, channel, source, referrer_host, utm_source, "
                "utm_medium, utm_campaign, country, device, browser, os")


def psql(pg, db, *commands):
    argv = ["/usr/lib/postgresql/15/bin/psql", "-X", "-q", "-v",
            "ON_ERROR_STOP=1", "-d", pg.conninfo(db)]
    for c in commands:
        argv += ["-c", c]
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"psql: {p.stderr}")
    return p.stdout


def timed(fn):
    t0 = time.monotonic()
    out = fn()
    return time.monotonic() - t0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writer", required=True)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--dir", required=True, help="scratch directory")
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--active", type=int, default=2000)
    ap.add_argument("--span-hours", type=int, default=24)
    ap.add_argument("--batch", type=int, default=20000)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()

    root = os.path.join(args.dir, "writer-bench")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    # The server gets the settings a host that ingests would have.
    # The server's files live under /tmp: the postgres user it runs as
    # may not be allowed into the checkout (a home directory, say).
    pgroot = tempfile.mkdtemp(prefix="alog-writer-bench-pg-")
    os.chmod(pgroot, 0o755)
    pg = Postgres(os.path.join(pgroot, "pg"),
                  "max_wal_size = 8GB\ncheckpoint_timeout = 15min\n"
                  "wal_compression = on\n")
    pg.init()
    pg.start()
    result = {"events": args.events, "span_hours": args.span_hours,
              "batch": args.batch,
              "connections": args.connections, "active": args.active}
    try:
        log = os.path.join(root, "log")
        t, _ = timed(lambda: subprocess.run(
            [args.gen, log, str(args.events), "--active", str(args.active),
             "--span-hours", str(args.span_hours), "--quiet"], check=True))
        print(f"log: {args.events} events generated in {t:.1f} s")

        pg.createdb("writer")
        pg.createdb("baseline")
        for db in ("writer", "baseline"):
            subprocess.run([args.writer, "migrate", "--db", pg.conninfo(db)],
                           check=True, capture_output=True)
        # Same partitions in the baseline (the writer makes them itself).
        empty = os.path.join(root, "empty")
        subprocess.run([args.gen, empty, "0", "--quiet"], check=True)
        subprocess.run([args.writer, "run", "--db", pg.conninfo("baseline"),
                        "--log", f"empty={empty}", "--idle-exit"], check=True,
                       capture_output=True)

        # Each measured phase starts from a checkpoint: neither pays for
        # the other's dirty buffers.
        psql(pg, "writer", "CHECKPOINT")
        t_writer, p = timed(lambda: subprocess.run(
            [args.writer, "run", "--db", pg.conninfo("writer"), "--log",
             f"bench={log}", "--idle-exit", "--batch", str(args.batch),
             "--connections", str(args.connections)],
            capture_output=True, text=True))
        if p.returncode != 0:
            print(p.stderr)
            raise RuntimeError("alog-writer failed")
        last = [line for line in p.stderr.splitlines() if " events in " in line][-1]
        counts = psql(pg, "writer",
                      "\\pset tuples_only on",
                      "SELECT count(*) FROM events").split()
        rows = int(counts[-1])
        m = re.search(r"user agents cached (\d+) / parsed (\d+); ms decode "
                      r"(\d+) lookup (\d+) enrich\+sessions (\d+) copy (\d+) "
                      r"sessions-sql (\d+) rollups (\d+) commit (\d+)", last)
        hits, misses, *ms = [int(x) for x in m.groups()]
        stages = dict(zip(["decode", "lookup", "enrich_sessions", "copy",
                           "sessions_sql", "rollups", "commit"], ms))
        stages["enrich_sessions"] -= stages["lookup"]
        result.update(writer_s=t_writer, writer_rows=rows,
                      writer_rows_per_s=rows / t_writer,
                      ua_cache_hit_rate=hits / max(hits + misses, 1),
                      stage_ms=stages)
        print(f"writer: {rows} rows in {t_writer:.1f} s = "
              f"{rows / t_writer:,.0f} rows/s "
              f"(--batch {args.batch} --connections {args.connections})")

        files = {n: os.path.join(root, n + ".copy")
                 for n in ("events", "sessions", "hourly", "daily")}
        psql(pg, "writer",
             f"\\copy (SELECT * FROM events) TO '{files['events']}'",
             f"\\copy (SELECT {SESSION_COLS} FROM sessions) TO "
             f"'{files['sessions']}'",
             f"\\copy rollup_hourly TO '{files['hourly']}'",
             f"\\copy rollup_daily TO '{files['daily']}'")
        sizes = {n: os.path.getsize(f) for n, f in files.items()}
        psql(pg, "baseline", "CHECKPOINT")
        t_base, _ = timed(lambda: psql(
            pg, "baseline",
            f"\\copy events FROM '{files['events']}'",
            f"\\copy sessions ({SESSION_COLS}) FROM '{files['sessions']}'",
            f"\\copy rollup_hourly FROM '{files['hourly']}'",
            f"\\copy rollup_daily FROM '{files['daily']}'"))
        result.update(baseline_s=t_base, baseline_rows_per_s=rows / t_base,
                      ratio=t_base / t_writer, copy_bytes=sizes)
        print(f"baseline: COPY of the same enriched rows (events "
              f"{sizes['events'] / 1e6:.0f} MB, sessions, rollups) in "
              f"{t_base:.1f} s = {rows / t_base:,.0f} rows/s")
        print(f"ratio writer / COPY baseline: {t_base / t_writer:.2f} "
              f"(target >= 0.80)")
        per = {k: v * 1000.0 / rows for k, v in stages.items()}
        print("writer time per event by stage (us; PostgreSQL's stages "
              "overlap across connections): " +
              ", ".join(f"{k} {v:.2f}" for k, v in per.items()))
        print(f"user-agent cache hit rate: {100 * hits / max(hits + misses, 1):.3f}% "
              f"({misses} parsed)")
        result["stage_us_per_event"] = per
    finally:
        pg.stop()
        pg.kill()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pgroot, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
