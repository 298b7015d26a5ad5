#!/usr/bin/env python3
"""report.py - turn what bench/edge/run.sh collected into the table, the
JSON file and the verdicts (targets, and whether the edge kept every event).

usage: report.py --cases DIR --json FILE [run settings, see run.sh]

DIR holds one folder per case (single-nginx, single-edge, batch-nginx,
batch-edge) with case.env (server CPU ticks, wall time, peak RSS), the wrk
runs' WRK_JSON lines (warmup.json, wrk.json) and client CPU (*.time), and for
the edge /metrics before and after the measured run, /health, `alog stat
--json`, the `alog dump --events` line count and the server's exit status.

Prints the table on stdout. Exit status 0, or 1 when a case is missing, a
check failed (the log does not hold exactly the events of the requests wrk
sent, a non-2xx answer, a socket error, a server that did not exit cleanly)
or the JSON could not be written. Missed targets do not change the status.
"""
import argparse
import datetime
import json
import os
import platform
import re
import sys

CASES = [("single", "nginx"), ("single", "edge"),
         ("batch", "nginx"), ("batch", "edge")]

# Targets from the issue, printed next to the results.
TARGET_SINGLE_RATIO = 0.80     # edge req/s over nginx's 204 req/s
TARGET_SINGLE_P99_MS = 5.0
TARGET_BATCH_EVENTS_S = 500000.0


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return default


def read_env(path):
    env = {}
    for line in read(path, "").splitlines():
        k, _, v = line.partition("=")
        env[k] = v
    return env


def read_json(path):
    text = read(path)
    return json.loads(text) if text and text.strip() else None


def parse_metrics(text):
    """Prometheus text: {"name{labels}": value}."""
    out = {}
    for line in (text or "").splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(\S+)\s+(\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def delta(after, before, key):
    return after.get(key, 0.0) - before.get(key, 0.0)


def load_case(d, name, server, args, problems):
    env = read_env(os.path.join(d, "case.env"))
    wrk = read_json(os.path.join(d, "wrk.json"))
    warm = read_json(os.path.join(d, "warmup.json"))
    if not env or not wrk:
        problems.append("%s/%s: no results (case did not run)" % (name, server))
        return None
    k = int(env["events_per_request"])
    secs = wrk["duration_us"] / 1e6
    ok2xx = wrk["requests"] - wrk["errors"]["status"]
    wall = int(env["wall_ns"]) / 1e9
    cpu_s = int(env["cpu_ticks"]) / int(env["clk_tck"])
    c = {
        "name": name, "server": server, "path": env["path"],
        "content_type": env["content_type"],
        "body_bytes": int(env["body_bytes"]),
        "events_per_request": k,
        "seconds": secs,
        "requests": wrk["requests"],
        "responses_2xx": ok2xx,
        "sent": wrk["sent"],
        "req_s": wrk["requests"] / secs,
        "events_s": ok2xx * k / secs,
        "latency_ms": {key: v / 1000.0 for key, v in wrk["latency_us"].items()},
        "errors": wrk["errors"],
        "server_cpu_s": cpu_s,
        "server_cpu_pct": 100.0 * cpu_s / wall,
        "server_wall_s": wall,
        "server_processes": int(env["processes"]),
        "rss_peak_kb": int(env["rss_peak_kb"]),
        "exit_status": int((read(os.path.join(d, "exit_status"), "-1")).strip()),
        "warmup": warm,
    }
    t = read(os.path.join(d, "wrk.time"))
    if t:
        try:
            e, u, s = (float(x) for x in t.split()[-3:])
            c["client_cpu_pct"] = 100.0 * (u + s) / e
        except ValueError:
            pass
    # Everything else the machine did meanwhile (other users, the kernel's
    # own threads): busy time from /proc/stat minus server and client.
    busy = int(env.get("machine_busy_ticks", "0") or 0) / int(env["clk_tck"])
    c["machine_busy_pct"] = 100.0 * busy / wall
    if "client_cpu_pct" in c:
        c["other_cpu_pct"] = max(0.0, c["machine_busy_pct"] -
                                 c["server_cpu_pct"] - c["client_cpu_pct"])
    if server == "edge":
        mb = parse_metrics(read(os.path.join(d, "metrics-before.txt")))
        ma = parse_metrics(read(os.path.join(d, "metrics-after.txt")))
        commits = delta(ma, mb, "alog_log_commits_total")
        fsyncs = delta(ma, mb, "alog_log_fsyncs_total")
        logged = delta(ma, mb, "alog_log_next_offset")
        fs_n = delta(ma, mb, "alog_log_fsync_seconds_count")
        ap_n = delta(ma, mb, "alog_edge_append_seconds_count")
        c["log"] = {
            "events": int(logged),
            "commits": int(commits),
            "fsyncs": int(fsyncs),
            "events_per_commit": logged / commits if commits else 0.0,
            "commits_s": commits / secs,
            "commit_mean_ms": (1e3 * delta(ma, mb, "alog_log_fsync_seconds_sum")
                               / fs_n if fs_n else 0.0),
            "append_to_durable_mean_ms":
                (1e3 * delta(ma, mb, "alog_edge_append_seconds_sum") / ap_n
                 if ap_n else 0.0),
            "bytes_on_disk": int((read(os.path.join(d, "log_bytes"), "0")).strip() or 0),
            # Segment rolls in the measured run, onto a segment prepared
            # (zeroed) ahead or made the plain way (log.prepare_segments).
            "rolls_prepared": int(delta(ma, mb,
                                        'alog_log_rolls_total{segment="prepared"}')),
            "rolls_plain": int(delta(ma, mb,
                                     'alog_log_rolls_total{segment="plain"}')),
        }
        c["metrics_after"] = {
            "accepted_total": ma.get("alog_edge_events_accepted_total"),
            "next_offset": ma.get("alog_log_next_offset"),
            "durable_offset": ma.get("alog_log_durable_offset"),
        }
        health = read_json(os.path.join(d, "health.json")) or {}
        stat = read_json(os.path.join(d, "stat.json")) or {}
        dump = read(os.path.join(d, "dump_events"))
        c["verify"] = {
            "health_next_offset": health.get("log", {}).get("next_offset"),
            "stat_records": stat.get("records"),
            "dump_events": int(dump.strip()) if dump and dump.strip() else None,
        }
    return c


def verify(c, args, problems):
    """Every event the edge acknowledged, and no more than it was sent, is
    in the log; and nothing was refused or lost on the wire."""
    tag = "%s/%s" % (c["name"], c["server"])
    runs = [("measured", c)] + ([("warm-up", c["warmup"])] if c["warmup"] else [])
    sent = answered = 0
    for what, r in runs:
        e = r["errors"]
        bad = {k: v for k, v in e.items() if v}
        if bad:
            problems.append("%s %s run: wrk reported errors %s (status = "
                            "non-2xx/3xx answers)" % (tag, what, bad))
        if not 0 <= r["sent"] - r["requests"] <= args.connections:
            problems.append("%s %s run: %d sent, %d answered: more than %d in "
                            "flight at the end" % (tag, what, r["sent"],
                                                   r["requests"], args.connections))
        sent += r["sent"]
        answered += r["requests"] - r["errors"]["status"]
    if c["exit_status"] != 0:
        problems.append("%s: server exited with status %d" % (tag, c["exit_status"]))
    c["check"] = {"sent_requests": sent, "answered_2xx": answered}
    if c["server"] != "edge":
        return
    k = c["events_per_request"]
    want = sent * k
    v = c["verify"]
    c["check"].update({"expected_events": want,
                       "in_flight_at_stop": sent - answered})
    for key in ("dump_events", "stat_records", "health_next_offset"):
        if v[key] != want:
            problems.append(
                "%s: %s = %s, but wrk wrote %d requests x %d = %d events "
                "(%d answered 2xx + %d in flight when wrk stopped)"
                % (tag, key, v[key], sent, k, want, answered, sent - answered))
    # Not compared: /metrics' accepted_total counts acknowledged events, and
    # the requests in flight when wrk stopped are made durable but never
    # acknowledged (their connection is gone).


def fmt_ratio(a, b):
    return a / b if b else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--warmup", type=float, required=True)
    ap.add_argument("--connections", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--commits-in-flight", type=int, default=1)
    ap.add_argument("--worker-ring", default="defer")
    ap.add_argument("--durability", default="fsync", choices=("fsync", "write"))
    ap.add_argument("--prepare-segments", default="default",
                    choices=("default", "true", "false"))
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--log-dir", default="")
    ap.add_argument("--fs", default="")
    ap.add_argument("--quick", default="false")
    ap.add_argument("--user-agent", default="")
    args = ap.parse_args()

    problems = []
    cases = {}
    for name, server in CASES:
        c = load_case(os.path.join(args.cases, "%s-%s" % (name, server)),
                      name, server, args, problems)
        if c:
            verify(c, args, problems)
            cases[(name, server)] = c

    out = []
    p = out.append
    p("alog-edge bench: wrk -t %d -c %d --latency, %g s warm-up + %g s per case; "
      "%d workers each (edge: threads + the log's commit thread; nginx: "
      "worker_processes, listen reuseport); edge durability %s, "
      "%d commit(s) in flight, worker_ring %s, prepare_segments %s, "
      "log in %s (%s)"
      % (args.threads, args.connections, args.warmup, args.duration,
         args.workers, args.durability, args.commits_in_flight,
         args.worker_ring, args.prepare_segments, args.log_dir, args.fs))
    p("single = POST /api/event, Plausible body (text/plain); batch = POST "
      "/track/batch, %d events (application/json); nginx answers `return 204;`"
      % args.batch)
    p("events/s counts 2xx answers x events per request; cpu%% = server "
      "utime+stime over the measured run (100%% = one core of %d), wrk cpu "
      "the client's, other = the rest of the machine's busy time (noise); "
      "rss = peak VmHWM (nginx: master + workers)" % (os.cpu_count() or 0))
    p("")
    p("%-7s %-6s %6s %10s %11s %8s %8s %8s %7s %7s %8s %7s %7s"
      % ("case", "server", "body B", "req/s", "events/s", "p50 ms", "p99 ms",
         "max ms", "cpu%", "rss MB", "non-2xx", "wrk cpu", "other"))
    ratios = {}
    for name in ("single", "batch"):
        for server in ("nginx", "edge"):
            c = cases.get((name, server))
            if not c:
                p("%-7s %-6s  (missing)" % (name, server))
                continue
            p("%-7s %-6s %6d %10.0f %11.0f %8.3f %8.3f %8.2f %7.0f %7.1f %8d %6.0f%% %6.0f%%"
              % (name, server, c["body_bytes"], c["req_s"], c["events_s"],
                 c["latency_ms"]["p50"], c["latency_ms"]["p99"],
                 c["latency_ms"]["max"], c["server_cpu_pct"],
                 c["rss_peak_kb"] / 1024.0, c["errors"]["status"],
                 c.get("client_cpu_pct", float("nan")),
                 c.get("other_cpu_pct", float("nan"))))
        e, n = cases.get((name, "edge")), cases.get((name, "nginx"))
        if e and n:
            r = {
                "req_s": fmt_ratio(e["req_s"], n["req_s"]),
                "events_s": fmt_ratio(e["events_s"], n["events_s"]),
                "p50": fmt_ratio(e["latency_ms"]["p50"], n["latency_ms"]["p50"]),
                "p99": fmt_ratio(e["latency_ms"]["p99"], n["latency_ms"]["p99"]),
                "cpu_pct": fmt_ratio(e["server_cpu_pct"], n["server_cpu_pct"]),
                "rss": fmt_ratio(e["rss_peak_kb"], n["rss_peak_kb"]),
                # CPU per request: what each answer cost the server.
                "cpu_per_request": fmt_ratio(e["server_cpu_s"] / max(e["requests"], 1),
                                             n["server_cpu_s"] / max(n["requests"], 1)),
            }
            ratios[name] = r
            p("%-7s %-6s %6s %10.3f %11.3f %8.2f %8.2f %8s %7.2f %7.2f"
              % (name, "e/n", "", r["req_s"], r["events_s"], r["p50"], r["p99"],
                 "", r["cpu_pct"], r["rss"]))
        p("")
    p("edge log over the measured run (from /metrics):")
    for name in ("single", "batch"):
        c = cases.get((name, "edge"))
        if not c:
            continue
        lg = c["log"]
        p("  %-6s %9d events, %6d commits = %6d fdatasyncs (%5.0f/s), %8.1f "
          "events/commit, commit %.2f ms mean, append to durable %.2f ms mean, "
          "server cpu %.1f us/request, rolls %d prepared + %d plain"
          % (name, lg["events"], lg["commits"], lg["fsyncs"], lg["commits_s"],
             lg["events_per_commit"], lg["commit_mean_ms"],
             lg["append_to_durable_mean_ms"],
             1e6 * c["server_cpu_s"] / max(c["requests"], 1),
             lg["rolls_prepared"], lg["rolls_plain"]))
    for name in ("single", "batch"):
        c = cases.get((name, "nginx"))
        if c:
            p("  nginx %-6s server cpu %.1f us/request" %
              (name, 1e6 * c["server_cpu_s"] / max(c["requests"], 1)))
    p("")
    p("correctness (edge stopped, then its log counted):")
    for name in ("single", "batch"):
        c = cases.get((name, "edge"))
        if not c:
            continue
        ck, v = c["check"], c["verify"]
        p("  %-6s wrk wrote %d requests (%d answered 2xx + %d in flight when "
          "the warm-up and measured runs stopped) x %d = %d events; log: "
          "dump --events %s, stat %s, /health next_offset %s"
          % (name, ck["sent_requests"], ck["answered_2xx"],
             ck["in_flight_at_stop"], c["events_per_request"],
             ck["expected_events"], v["dump_events"], v["stat_records"],
             v["health_next_offset"]))
    if problems:
        for pr in problems:
            p("  VERIFY FAILED: " + pr)
    else:
        p("  ok: every request wrk wrote is in the log, exactly once; no "
          "non-2xx answer, no socket error")
    p("")

    targets = []
    se, sn = cases.get(("single", "edge")), cases.get(("single", "nginx"))
    if args.durability != "fsync":
        # The targets are for durable ingest: a write-mode run only shows
        # what the fdatasync costs.
        p("targets: not judged (durability %s answers before fdatasync)"
          % args.durability)
        se = sn = None
    be = cases.get(("batch", "edge")) if args.durability == "fsync" else None
    if se and sn:
        ratio = se["req_s"] / sn["req_s"]
        p99 = se["latency_ms"]["p99"]
        ok = ratio >= TARGET_SINGLE_RATIO and p99 < TARGET_SINGLE_P99_MS
        targets.append({
            "target": "single-event durable ingest >= 80% of nginx's 204 rate "
                      "with p99 < 5 ms",
            "ratio": ratio, "p99_ms": p99, "pass": ok})
        p("targets")
        p("  single-event durable ingest >= %.0f%% of nginx's 204 rate, p99 < "
          "%.0f ms: %.0f req/s = %.1f%% of %.0f req/s (%s), p99 %.2f ms (%s): %s"
          % (100 * TARGET_SINGLE_RATIO, TARGET_SINGLE_P99_MS, se["req_s"],
             100 * ratio, sn["req_s"],
             "ok" if ratio >= TARGET_SINGLE_RATIO else "short",
             p99, "ok" if p99 < TARGET_SINGLE_P99_MS else "over",
             "PASS" if ok else "FAIL"))
    if be:
        ok = be["events_s"] >= TARGET_BATCH_EVENTS_S
        targets.append({"target": "batch ingest >= 500,000 events/s",
                        "events_s": be["events_s"], "pass": ok})
        p("  batch ingest (%d events/request) >= %.0f events/s: %.0f events/s "
          "(%.1f%% of target): %s"
          % (args.batch, TARGET_BATCH_EVENTS_S, be["events_s"],
             100 * be["events_s"] / TARGET_BATCH_EVENTS_S,
             "PASS" if ok else "FAIL"))

    doc = {
        "benchmark": "edge",
        "format": 1,
        "date": datetime.datetime.now(datetime.timezone.utc)
                .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "client": {"tool": "wrk", "threads": args.threads,
                   "connections": args.connections, "latency": True,
                   "user_agent": args.user_agent},
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "quick": args.quick == "true",
        "workers": args.workers,
        "batch_events": args.batch,
        "edge_durability": args.durability,
        "commits_in_flight": args.commits_in_flight,
        "worker_ring": args.worker_ring,
        "prepare_segments": args.prepare_segments,
        "log_dir": args.log_dir,
        "fs": args.fs,
        "cases": [cases[k] for k in CASES if k in cases],
        "ratios_edge_over_nginx": ratios,
        "targets": targets,
        "verified": not problems,
        "problems": problems,
    }
    status = 1 if problems or len(cases) != len(CASES) else 0
    try:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, args.json)
        p("wrote %s" % args.json)
    except OSError as e:
        p("cannot write %s: %s" % (args.json, e))
        status = 1
    print("\n".join(out))
    for pr in problems:
        print("VERIFY FAILED: " + pr, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
