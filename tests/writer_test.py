#!/usr/bin/env python3
"""writer_test.py - alog-writer against a real PostgreSQL.

Starts a private PostgreSQL 15 (initdb + pg_ctl in a temporary directory, as
the postgres user when run as root, Unix socket only) and stops it by PID
file at the end. Logs are filled by writer_gen (realistic event records, some
the writer must dead-letter). Scenarios:

  migrate    from empty, re-run, two at once; `check` on a current schema
  drift      a dropped column, a missing migration, a changed checksum, an
             empty database: check and run refuse and name the problem
  e2e        two logs, a non-superuser writer role, a read-only role, dead
             letters, enrichment of known cases, retention (an old partition
             dropped, events older than the window dead-lettered),
             partitions ahead, the consumer checkpoint file, a gap
  cache      a small session cache (swept, emptied, looked up again) gives
             the same sessions as a large one over a backlog of hours
  damage     a damaged record in a sealed segment: skipped, dead-lettered as
             a lost range, the rest written
  duplicate  one event id twice, in two batches in flight together: the
             first written, the second dead-lettered, no hang
  crash      kill -9 of the writer at random moments under load, many times,
             then PostgreSQL restarted (immediate) and stopped for a while
             under load: every record exactly once, rollups equal a recount
             from the raw events, sessions agree with the events

Every wait is bounded.
"""
import argparse
import datetime
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_private import PGBIN, Postgres, wait_for  # noqa: E402

ARGS = None
TMP = None
FAILS = []


def log(msg):
    print(f"[writer_test {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, what):
    if cond:
        log(f"ok: {what}")
    else:
        log(f"FAILED: {what}")
        FAILS.append(what)


def writer(pg, db, *args, user="postgres", timeout=300):
    p = subprocess.run([ARGS.writer, args[0], "--db", pg.conninfo(db, user)]
                       + list(args[1:]), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def gen(dirname, count, *opts):
    p = subprocess.run([ARGS.gen, dirname, str(count)] + [str(o) for o in opts],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"writer_gen: {p.stderr}")
    good, bad = p.stdout.split()[1], p.stdout.split()[3]
    return int(good), int(bad)


def start_writer(pg, db, logs, *extra):
    argv = [ARGS.writer, "run", "--db", pg.conninfo(db), "--batch", "2000"]
    for name, d in logs:
        argv += ["--log", f"{name}={d}"]
    out = open(os.path.join(TMP, "writer.log"), "a")
    return subprocess.Popen(argv + list(extra), stdout=out,
                            stderr=subprocess.STDOUT)


# ---- checks shared by the scenarios ------------------------------------------

DIMS = [("all", "''"), ("page", "coalesce(path, '')"), ("source", "source"),
        ("channel", "channel"), ("referrer", "coalesce(referrer_host, '')"),
        ("utm_source", "coalesce(utm_source, '')"),
        ("utm_medium", "coalesce(utm_medium, '')"),
        ("utm_campaign", "coalesce(utm_campaign, '')"),
        ("country", "coalesce(country::text, '')"),
        ("device", "coalesce(device, '')"),
        ("browser", "coalesce(browser, '')"), ("os", "coalesce(os, '')")]


def recount_sql(table, bucket_expr):
    parts = [f"SELECT site, {bucket_expr} AS bucket, '{d}' AS dim, {v} AS value,"
             " kind, visitor, coalesce(revenue, 0) AS rev FROM events"
             " WHERE NOT bot" for d, v in DIMS]
    parts.append(f"SELECT site, {bucket_expr}, 'event', name, kind, visitor,"
                 " coalesce(revenue, 0) FROM events WHERE NOT bot AND kind <> 1")
    recount = ("SELECT site, bucket, dim, value,"
               " count(*) FILTER (WHERE kind = 1),"
               " count(*) FILTER (WHERE kind <> 1), sum(rev)::numeric(26, 6),"
               " hll_cardinality(hll_add_agg(visitor::hll_hashval))"
               " FROM (" + " UNION ALL ".join(parts) + ") x GROUP BY 1, 2, 3, 4")
    stored = (f"SELECT site, bucket, dim, value, pageviews, events, revenue,"
              f" hll_cardinality(visitors) FROM {table}")
    return (f"SELECT (SELECT count(*) FROM (({recount}) EXCEPT ({stored})) a),"
            f" (SELECT count(*) FROM (({stored}) EXCEPT ({recount})) b),"
            f" (SELECT count(*) FROM {table})")


def check_rollups(pg, db, what):
    h = pg.val(db, recount_sql("rollup_hourly",
                               "date_trunc('hour', received_at)"))
    d = pg.val(db, recount_sql("rollup_daily",
                               "(received_at AT TIME ZONE 'UTC')::date"))
    hm, hx, hn = h.split("|")
    dm, dx, dn = d.split("|")
    check(hm == "0" and hx == "0" and int(hn) > 0,
          f"{what}: rollup_hourly equals a recount from events "
          f"({hn} rows; {hm} missing, {hx} extra)")
    check(dm == "0" and dx == "0" and int(dn) > 0,
          f"{what}: rollup_daily equals a recount from events "
          f"({dn} rows; {dm} missing, {dx} extra)")


def check_sessions(pg, db, what):
    row = pg.val(db, """
        SELECT (SELECT count(*) FROM sessions),
               (SELECT count(DISTINCT session_id) FROM events),
               (SELECT count(*) FROM (
                  SELECT s.session_id FROM sessions s JOIN (
                    SELECT session_id, count(*) FILTER (WHERE kind = 1) pv,
                           count(*) FILTER (WHERE kind <> 1) ev,
                           min(received_at) lo, max(received_at) hi
                    FROM events GROUP BY 1) e USING (session_id)
                  WHERE s.pageviews <> e.pv OR s.events <> e.ev
                     OR s.started_at <> e.lo OR s.last_seen_at <> e.hi) m),
               (SELECT count(*) FROM (
                  SELECT received_at - lag(received_at) OVER
                    (PARTITION BY session_id ORDER BY received_at) AS gap
                  FROM events) g WHERE gap >= interval '30 minutes'),
               (SELECT count(*) FROM sessions WHERE session_id NOT IN
                  (SELECT event_id FROM events))""")
    ns, nd, mismatched, gaps, badid = row.split("|")
    check(ns == nd and int(ns) > 0,
          f"{what}: one sessions row per session in events ({ns} vs {nd})")
    check(mismatched == "0",
          f"{what}: sessions' page views, events, start and end agree with "
          f"the events ({mismatched} differ)")
    check(gaps == "0" and badid == "0",
          f"{what}: no 30-minute gap inside a session, each session id is "
          f"its first event's id")


def check_exactly_once(pg, db, name, total, good, bad, what):
    row = pg.val(db, f"""
        SELECT (SELECT count(*) FROM events WHERE log_name = '{name}'),
               (SELECT count(DISTINCT log_offset) FROM events
                 WHERE log_name = '{name}'),
               (SELECT count(*) FROM dead_letters WHERE log_name = '{name}'),
               (SELECT next_offset FROM consumer_offsets
                 WHERE log_name = '{name}'),
               (SELECT count(*) FROM (SELECT log_offset FROM events
                 WHERE log_name = '{name}' INTERSECT SELECT log_offset
                 FROM dead_letters WHERE log_name = '{name}') x)""")
    n, distinct, dead, nxt, both = row.split("|")
    check(n == str(good) and distinct == str(good),
          f"{what}: log {name}: {n} events rows, {distinct} distinct offsets,"
          f" expected {good}")
    check(dead == str(bad) and both == "0",
          f"{what}: log {name}: {dead} dead letters, expected {bad}, none "
          f"also written")
    check(nxt == str(total),
          f"{what}: log {name}: next_offset {nxt} = records {total}")


# ---- scenarios ----------------------------------------------------------------

def scenario_migrate(pg):
    pg.createdb("m1")
    rc, out = writer(pg, "m1", "migrate")
    check(rc == 0 and "4 applied now" in out, "migrate from empty applies 4")
    rc, out = writer(pg, "m1", "migrate")
    check(rc == 0 and "0 applied now" in out, "migrate again applies none")
    rc, out = writer(pg, "m1", "check")
    check(rc == 0 and "current" in out, "check on a current schema: exit 0")
    n = pg.val("m1", "SELECT count(*) FROM alog_schema_migrations")
    check(n == "4", "4 migrations recorded with name and checksum")

    pg.createdb("m2")
    procs = [subprocess.Popen([ARGS.writer, "migrate", "--db",
                               pg.conninfo("m2")], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    check(all(p.returncode == 0 for p in procs),
          "three migrate at once all succeed (advisory lock)")
    check(sum("applied migration 001_events" in o for o in outs) == 1,
          "each migration applied exactly once")


def scenario_drift(pg):
    pg.createdb("d0")
    rc, out = writer(pg, "d0", "check")
    check(rc == 1 and "run alog-writer migrate" in out,
          "check on an empty database says to migrate")
    rc, out = writer(pg, "d0", "run", "--log", f"x={TMP}/nolog",
                     "--idle-exit")
    check(rc == 1 and "run alog-writer migrate" in out,
          "run on an empty database refuses")

    for db, breakit, expect in [
            ("d1", "ALTER TABLE events DROP COLUMN channel",
             "column events.channel is missing"),
            ("d2", "DELETE FROM alog_schema_migrations WHERE version = 3",
             "migration 003_rollups is not applied"),
            ("d3", "UPDATE alog_schema_migrations SET checksum = 'x'"
                   " WHERE version = 2", "migration 002_sessions has drifted"),
            ("d4", "DROP TABLE rollup_daily", "table rollup_daily is missing"),
            ("d5", "INSERT INTO alog_schema_migrations VALUES"
                   " (99, '099_future', 'x')", "use the newer writer")]:
        pg.createdb(db)
        writer(pg, db, "migrate")
        pg.sql(db, breakit)
        rc, out = writer(pg, db, "check")
        check(rc == 1 and expect in out, f"drift: check says '{expect}'")
        rc, out = writer(pg, db, "run", "--log", f"x={TMP}/nolog",
                         "--idle-exit")
        check(rc == 1 and expect in out, f"drift: run refuses: '{expect}'")


def scenario_e2e(pg):
    db = "e2e"
    pg.createdb(db)
    rc, out = writer(pg, db, "migrate")
    check(rc == 0, "e2e: migrate")
    # Login roles that are members of the writer and reader groups.
    pg.sql(db, "CREATE ROLE w LOGIN IN ROLE alog_writer;"
               " CREATE ROLE dash LOGIN IN ROLE alog_reader")
    # An old partition retention must drop; the writer creates the rest.
    pg.sql(db, "CREATE TABLE events_20200101 PARTITION OF events FOR VALUES"
               " FROM ('2020-01-01 00:00+00') TO ('2020-01-02 00:00+00')")
    pg.sql(db, "ALTER TABLE events_20200101 OWNER TO alog_writer")
    # A dead letter and a session from 2020: retention deletes them too.
    pg.sql(db, "INSERT INTO dead_letters VALUES ('gone', 7, 'old', NULL,"
               " '2020-01-01 10:00+00')")
    pg.sql(db, "INSERT INTO sessions (session_id, site, visitor, started_at,"
               " last_seen_at, pageviews, events, interactive, channel,"
               " source) VALUES (gen_random_uuid(), 'example', 1,"
               " '2020-01-01 10:00+00', '2020-01-01 10:05+00', 1, 0, 0,"
               " 'direct', '')")

    a, b, old = f"{TMP}/e2e-a", f"{TMP}/e2e-b", f"{TMP}/e2e-old"
    ga, ba = gen(a, 20000, "--seed", 1, "--bad-every", 997)
    gb, bb = gen(b, 5000, "--seed", 2, "--sites", 2)
    go, bo = gen(old, 10, "--seed", 3, "--age-days", 200)
    rc, out = writer(pg, db, "run", "--log", f"a={a}", "--log", f"b={b}",
                     "--log", f"old={old}", "--batch", "3000", "--idle-exit",
                     user="w")
    check(rc == 0, f"e2e: writer as a member of alog_writer exits 0 when idle"
          f" ({out[-300:] if rc else ''})")
    check_exactly_once(pg, db, "a", ga + ba, ga, ba, "e2e")
    check_exactly_once(pg, db, "b", gb + bb, gb, bb, "e2e")
    check_exactly_once(pg, db, "old", go + bo, 0, go + bo, "e2e")
    reasons = pg.val(db, "SELECT string_agg(DISTINCT left(reason, 45), ' | ')"
                         " FROM dead_letters")
    check("event record does not decode" in reasons and
          "PostgreSQL refused it" in reasons and
          "older than the retention window" in reasons,
          f"e2e: dead letters say why ({reasons})")
    rec = pg.val(db, "SELECT count(*) FROM dead_letters WHERE record IS NULL")
    check(rec == "0", "e2e: dead letters keep the record's bytes")
    check_rollups(pg, db, "e2e")
    check_sessions(pg, db, "e2e")

    # Enrichment of known cases, end to end.
    q = lambda s: pg.val(db, s)
    check(q("SELECT count(*) FROM events WHERE user_agent LIKE '%iPhone%' AND"
            " (browser <> 'Mobile Safari' OR os <> 'iOS' OR device <> 'mobile')")
          == "0" and q("SELECT count(*) FROM events WHERE user_agent LIKE"
                       " '%iPhone%'") != "0",
          "e2e: iPhone Safari is Mobile Safari on iOS, mobile")
    check(q("SELECT count(*) FROM events WHERE user_agent LIKE '%Googlebot%'"
            " AND NOT bot") == "0", "e2e: Googlebot is a bot")
    check(q("SELECT count(*) FROM events WHERE user_agent LIKE '%iPad%' AND"
            " device <> 'tablet'") == "0", "e2e: iPad is a tablet")
    check(q("SELECT count(*) FROM events WHERE query LIKE '%utm_%' OR"
            " query LIKE '%gclid%'") == "0" and
          q("SELECT count(*) FROM events WHERE query = 'ref=producthunt'")
          != "0", "e2e: tracking parameters removed from the query, others kept")
    check(q("SELECT count(*) FROM events WHERE url LIKE '%utm_medium=cpc%'"
            " AND channel <> 'paid'") == "0" and
          q("SELECT count(*) FROM events WHERE channel = 'paid'") != "0",
          "e2e: utm_medium=cpc from the page URL is paid")
    check(q("SELECT count(*) FROM events WHERE url LIKE '%utm_medium=email%'"
            " AND channel <> 'email'") == "0", "e2e: utm_medium=email is email")
    check(q("SELECT count(*) FROM events WHERE url NOT LIKE '%utm_%' AND"
            " referrer LIKE '%google.co.uk%' AND (channel <> 'organic' OR"
            " source <> 'Google')") == "0", "e2e: google.co.uk is organic Google")
    check(q("SELECT count(*) FROM events WHERE url NOT LIKE '%utm_%' AND"
            " referrer IS NULL AND url NOT LIKE '%ref=%' AND channel <> 'direct'")
          == "0", "e2e: no referrer, no UTM is direct")
    check(q("SELECT count(*) FROM events WHERE kind = 3 AND (revenue IS NULL"
            " OR currency <> 'EUR')") == "0" and
          q("SELECT count(*) FROM events WHERE kind = 4 AND (funnel_id IS NULL"
            " OR step_order IS NULL)") == "0",
          "e2e: revenue, currency and funnel steps are columns")
    check(q("SELECT count(*) FROM events WHERE kind = 2 AND props->>'plan' ="
            " 'pro'") != "0", "e2e: properties are jsonb")

    # Retention and partitions.
    parts = q("SELECT string_agg(c.relname, ',') FROM pg_inherits i JOIN"
              " pg_class c ON c.oid = i.inhrelid"
              " WHERE i.inhparent = 'events'::regclass")
    ahead = (datetime.datetime.utcnow() + datetime.timedelta(days=7)
             ).strftime("events_%Y%m%d")
    check("events_20200101" not in parts, "e2e: retention dropped the 2020 "
          "partition")
    check(q("SELECT count(*) FROM dead_letters WHERE log_name = 'gone'") ==
          "0" and q("SELECT count(*) FROM sessions WHERE started_at <"
                    " '2021-01-01'") == "0",
          "e2e: retention deleted a 2020 dead letter and session")
    check(ahead in parts, f"e2e: partitions exist 7 days ahead ({ahead})")

    # Roles.
    out, p = pg.sql(db, "SELECT count(*) FROM events", user="dash",
                    check_rc=False)
    check(p.returncode == 0 and int(out) == ga + gb,
          "e2e: alog_reader member can read events")
    out, p = pg.sql(db, "DELETE FROM events", user="dash", check_rc=False)
    check(p.returncode != 0 and "permission denied" in p.stderr,
          "e2e: alog_reader member cannot write")

    # The consumer checkpoint file follows the database.
    ck = subprocess.run([os.path.join(os.path.dirname(ARGS.gen), "..", "log",
                                      "alog"), "consumers", a],
                        capture_output=True, text=True)
    check(str(ga + ba) in ck.stdout and "writer" in ck.stdout,
          f"e2e: consumer checkpoint 'writer' at {ga + ba}")

    # status shows each log's offset and lag.
    rc, out = writer(pg, db, "status", "--log", f"a={a}")
    check(rc == 0 and f"{ga + ba}" in out and "current" in out,
          "e2e: status shows offsets")

    # Resume: more records later are written once, with the same sessions
    # continuing.
    ga2, ba2 = gen(a, 3000, "--seed", 1, "--bad-every", 997)
    rc, out = writer(pg, db, "run", "--log", f"a={a}", "--idle-exit", user="w")
    check_exactly_once(pg, db, "a", ga + ba + ga2 + ba2, ga + ga2, ba + ba2,
                       "e2e resume")
    check_sessions(pg, db, "e2e resume")
    check_rollups(pg, db, "e2e resume")

    # A log that is not there: a clear error, exit 1.
    rc, out = writer(pg, db, "run", "--log", f"missing={TMP}/no-such-log",
                     "--idle-exit")
    check(rc == 1 and "no-such-log" in out,
          "e2e: a log that cannot be read stops the writer (exit 1)")

    # A gap: the log starts above what the database needs.
    g = f"{TMP}/e2e-gap"
    gen(g, 10, "--first-offset", 1000)
    pg.sql(db, "INSERT INTO consumer_offsets VALUES ('gap', 5)")
    rc, out = writer(pg, db, "run", "--log", f"gap={g}", "--idle-exit")
    check(rc == 2 and "gap" in out, "e2e: a gap stops the writer (exit 2)")


def scenario_cache(pg):
    """The session cache's size and completeness change nothing: a small
    cache (swept and emptied all the time, sessions looked up again) gives
    the same sessions as a large one, over a backlog spanning hours."""
    d = f"{TMP}/cache"
    good, bad = gen(d, 40000, "--seed", 11, "--active", 300, "--span-hours",
                    8, "--batch", 64)
    tables = {}
    for db, cache, batch in (("cache_big", 1000000, 5000),
                             ("cache_small", 1024, 700)):
        pg.createdb(db)
        writer(pg, db, "migrate")
        rc, out = writer(pg, db, "run", "--log", f"c={d}", "--idle-exit",
                         "--session-cache", str(cache), "--batch", str(batch))
        check(rc == 0, f"cache: writer with --session-cache {cache} exits 0")
        check_exactly_once(pg, db, "c", good + bad, good, bad,
                           f"cache {cache}")
        check_sessions(pg, db, f"cache {cache}")
        tables[db] = pg.val(db, "SELECT md5(string_agg(t::text, ',' ORDER BY"
                                " session_id)) FROM (SELECT session_id,"
                                " started_at, last_seen_at, entry_page,"
                                " exit_page, pageviews, events FROM sessions)"
                                " t")
        n = pg.val(db, "SELECT count(*) FROM sessions WHERE duration_ms >"
                       " 0")
        check(int(n) > 0, f"cache {cache}: sessions span time ({n} longer "
              "than one event)")
    check(tables["cache_big"] == tables["cache_small"],
          "cache: a 1024-entry cache gives exactly the sessions a large one"
          " gives")


def scenario_damage(pg):
    """A damaged record in a sealed segment of the log: the writer skips
    the damaged range, dead-letters it (offsets and why, no bytes) and
    writes everything else."""
    db = "damage"
    pg.createdb(db)
    writer(pg, db, "migrate")
    d = f"{TMP}/damage"
    good, bad = gen(d, 12000, "--seed", 5, "--segment-mb", 1)
    segs = sorted(f for f in os.listdir(d) if f.endswith(".seg"))
    check(len(segs) >= 3, f"damage: the log has sealed segments ({len(segs)})")
    with open(os.path.join(d, segs[0]), "r+b") as f:
        f.seek(300000)
        b = f.read(1)
        f.seek(300000)
        f.write(bytes([b[0] ^ 0x5A]))
    rc, out = writer(pg, db, "run", "--log", f"dmg={d}", "--idle-exit")
    check(rc == 0 and "damaged records" in out,
          "damage: the writer reports the damaged range and goes on")
    row = pg.val(db, "SELECT count(*), min(reason) FROM dead_letters WHERE"
                     " record IS NULL")
    n, reason = row.split("|")
    m = re.search(r"offsets (\d+)\.\.(\d+) lost", reason or "")
    check(n == "1" and m is not None,
          f"damage: one dead letter for the lost range ({reason})")
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        rows = int(pg.val(db, "SELECT count(*) FROM events"))
        outside = int(pg.val(db, f"SELECT count(*) FROM events WHERE"
                                 f" log_offset BETWEEN {lo} AND {hi}"))
        check(rows == good - (hi - lo + 1) and outside == 0,
              f"damage: every record outside {lo}..{hi} written once "
              f"({rows} rows)")
    check(pg.val(db, "SELECT next_offset FROM consumer_offsets") ==
          str(good + bad), "damage: the offset is past the whole log")


def scenario_duplicate(pg):
    """The same event id (and time) twice in the log, at the end of one
    batch and the start of the next, in flight together: whichever way
    their transactions meet (the later one's ordering gate gives up after
    ALOG_WRITER_GATE_WAIT_S, or PostgreSQL refuses the second row), the
    writer finishes, writes the first and dead-letters the second."""
    db = "dup"
    pg.createdb(db)
    writer(pg, db, "migrate")
    d = f"{TMP}/dup"
    good, bad = gen(d, 4000, "--seed", 9, "--dup-at", 1000)
    env = dict(os.environ, ALOG_WRITER_GATE_WAIT_S="3")
    p = subprocess.run([ARGS.writer, "run", "--db", pg.conninfo(db), "--log",
                        f"dup={d}", "--idle-exit", "--batch", "1000"],
                       capture_output=True, text=True, timeout=300, env=env)
    check(p.returncode == 0, "duplicate: the writer finishes (exit 0)")
    row = pg.val(db, "SELECT count(*), count(DISTINCT event_id),"
                     " (SELECT string_agg(log_offset || ': ' || left(reason,"
                     " 60), '; ') FROM dead_letters) FROM events")
    n, distinct, dead = row.split("|")
    check(n == "3999" and distinct == "3999" and dead.startswith("1000: ")
          and "duplicate key" in dead,
          f"duplicate: the first is written, the second dead-lettered "
          f"({n} rows; {dead})")
    check(pg.val(db, "SELECT next_offset FROM consumer_offsets") == "4000",
          "duplicate: the offset is past the whole log")


def scenario_crash(pg):
    db = "crash"
    pg.createdb(db)
    writer(pg, db, "migrate")
    a, b = f"{TMP}/crash-a", f"{TMP}/crash-b"
    total_a, total_b = ARGS.events, ARGS.events // 5
    rate = max(total_a // 12, 1000)
    ga = subprocess.Popen([ARGS.gen, a, str(total_a), "--seed", "7",
                           "--bad-every", "4999", "--rate", str(rate),
                           "--batch", "64"], stdout=subprocess.PIPE, text=True)
    gb = subprocess.Popen([ARGS.gen, b, str(total_b), "--seed", "8",
                           "--rate", str(rate // 5), "--batch", "16"],
                          stdout=subprocess.PIPE, text=True)
    wait_for(lambda: os.path.exists(os.path.join(a, "LOG")) and
             os.path.exists(os.path.join(b, "LOG")), 30)
    logs = [("a", a), ("b", b)]
    kills = 0
    for i in range(ARGS.kills):
        w = start_writer(pg, db, logs)
        time.sleep(random.uniform(0.2, 1.5))
        w.kill()
        w.wait()
        kills += 1
    log(f"writer killed -9 {kills} times under load")

    w = start_writer(pg, db, logs)
    for i in range(3):
        time.sleep(random.uniform(0.5, 1.5))
        pg.kill() if i == 1 else pg.stop("immediate")
        time.sleep(random.uniform(0.2, 2.0))
        pg.start()
    log("PostgreSQL crashed (SIGQUIT, immediate stop) 3 times under load")
    check(w.poll() is None, "crash: the writer survives PostgreSQL restarts")
    # Let the generators finish, then the writer catch up.
    outa, _ = ga.communicate(timeout=600)
    outb, _ = gb.communicate(timeout=600)
    good_a, bad_a = int(outa.split()[1]), int(outa.split()[3])
    good_b, bad_b = int(outb.split()[1]), int(outb.split()[3])
    caught_up = wait_for(lambda: pg.sql(
        db, "SELECT sum(next_offset) FROM consumer_offsets",
        check_rc=False)[0] == str(total_a + total_b), 300, 0.5)
    check(caught_up, "crash: the writer catches up after the load")
    w.send_signal(signal.SIGTERM)
    try:
        rc = w.wait(timeout=60)
    except subprocess.TimeoutExpired:
        w.kill()
        rc = -9
    check(rc == 0, "crash: SIGTERM stops the writer cleanly (exit 0)")
    check_exactly_once(pg, db, "a", total_a, good_a, bad_a, "crash")
    check_exactly_once(pg, db, "b", total_b, good_b, bad_b, "crash")
    check_rollups(pg, db, "crash")
    check_sessions(pg, db, "crash")
    with open(os.path.join(TMP, "writer.log")) as f:
        text = f.read()
    check("retrying in" in text, "crash: the writer logged its reconnects")


def main():
    global ARGS, TMP
    ap = argparse.ArgumentParser()
    ap.add_argument("--writer", required=True)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--events", type=int, default=120000)
    ap.add_argument("--kills", type=int, default=15)
    ap.add_argument("--only", default="")
    ap.add_argument("--keep", action="store_true")
    ARGS = ap.parse_args()
    if not os.path.exists(f"{PGBIN}/pg_ctl"):
        print("writer_test: PostgreSQL 15 is not installed "
              "(./run installs postgresql-15)", file=sys.stderr)
        return 1
    TMP = tempfile.mkdtemp(prefix="alog-writer-test-")
    os.chmod(TMP, 0o755)  # the postgres user reaches its directory below
    pg = Postgres(os.path.join(TMP, "pg"))
    try:
        pg.init()
        pg.start()
        for name, fn in [("migrate", scenario_migrate),
                         ("drift", scenario_drift), ("e2e", scenario_e2e),
                         ("cache", scenario_cache), ("damage", scenario_damage),
                         ("duplicate", scenario_duplicate),
                         ("crash", scenario_crash)]:
            if ARGS.only and name not in ARGS.only.split(","):
                continue
            log(f"--- {name}")
            fn(pg)
    finally:
        pg.stop()
        pg.kill()
        if os.path.exists(os.path.join(TMP, "writer.log")) and FAILS:
            with open(os.path.join(TMP, "writer.log")) as f:
                print("--- writer.log (tail)\n" + "".join(f.readlines()[-40:]))
        if not ARGS.keep:
            shutil.rmtree(TMP, ignore_errors=True)
        else:
            log(f"kept {TMP}")
    if FAILS:
        log(f"{len(FAILS)} FAILED")
        return 1
    log("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
