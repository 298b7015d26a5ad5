#!/usr/bin/env python3
"""pipeline_test.py - the whole ingest path, the way a deployment runs it.

Two alog-edge processes (each with its own log, salt and the test geo
database) take HTTP requests as they come through a reverse proxy
(X-Forwarded-For from a trusted peer); one alog-shipper sender per edge
streams its log to an alog-shipper receiver; alog-writer tails the
receiver's data directory (--logs-root, as deployed) into a private
PostgreSQL 15. Nothing is an --idle-exit run: every process keeps running
and the test waits, bounded, for the database to catch up.

  - the second edge starts after the writer: its log is found by the
    writer's rescan, not named on the command line;
  - the writer is killed (-9) while events arrive, and started again;
  - afterwards: the events table holds every event the edges acknowledged
    as stored (by the event ids they answered), exactly once, and nothing
    they acknowledged without storing (Do-Not-Track, Global Privacy
    Control, a dropped bot); each log's offset in PostgreSQL is its head;
  - enrichment end to end: country from the geo database at the edge,
    browser/OS/device, channel and source, flagged DNT kept by a site that
    keeps them; sessions per visitor; the rollups equal a recount;
  - privacy: no client address, as text or as bytes, in any edge or
    canonical log file, in any process's log, in a dump of the database or
    (as text) anywhere in PostgreSQL's data directory, WAL included.

Every wait is bounded; every process is stopped by PID.

usage: pipeline_test.py --edge E --shipper S --writer W --cli ALOG
                        --geo make_test_geo.pl
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_private import PGBIN, Postgres, wait_for  # noqa: E402
import proc_util  # noqa: E402
from proc_util import free_port  # noqa: E402

ARGS = None
TMP = None
FAILS = []
PROCS = []

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
          "(KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
          "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
          "Mobile/15E148 Safari/604.1")
FIREFOX = ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 "
           "Firefox/120.0")
GOOGLEBOT = ("Mozilla/5.0 (compatible; Googlebot/2.1; "
             "+http://www.google.com/bot.html)")

# Client addresses: the test geo database (make_test_geo.pl) knows the
# first three networks; 203.0.113.0/24 is in none of them.
VISITORS = [
    # address, user agent, country, browser, os, device
    ("192.0.2.10", CHROME, "DE", "Chrome", "Windows", "desktop"),
    ("192.0.2.11", IPHONE, "DE", "Mobile Safari", "iOS", "mobile"),
    ("198.51.100.7", FIREFOX, "FR", "Firefox", "Linux", "desktop"),
    ("2001:db8:1::5", IPHONE, "JP", "Mobile Safari", "iOS", "mobile"),
    ("203.0.113.9", CHROME, None, "Chrome", "Windows", "desktop"),
]


def session_of(ip):
    """The client's session id: not its address (a client that sends its
    own address in a field stores it; the test's must not)."""
    for i, v in enumerate(VISITORS):
        if v[0] == ip:
            return f"s{i}"
    return "s-other"


def log(msg):
    print(f"[pipeline_test {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, what):
    if cond:
        log(f"ok: {what}")
    else:
        log(f"FAILED: {what}")
        FAILS.append(what)


def wait_port(port, proc, timeout=15):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False
    ok = wait_for(lambda: up() or proc.p.poll() is not None, timeout, 0.05)
    if not ok or proc.p.poll() is not None:
        raise RuntimeError(f"{proc.name} did not start:\n{proc.text()[-2000:]}")


def Proc(name, argv, env=None):
    """A process of the running test, logged under TMP (proc_util.Proc)."""
    return proc_util.Proc(name, argv, TMP, PROCS, env)


class Edge:
    """One alog-edge and the shipper sender that streams its log."""

    def __init__(self, name, geo, receiver_port):
        self.name = name
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.log_dir = os.path.join(self.dir, "log")
        cfg = {
            "listen": f"127.0.0.1:{self.port}",
            "workers": 2,
            "log": {"dir": self.log_dir},
            "salt_file": os.path.join(self.dir, "salt"),
            "geoip_db": geo,
            "trusted_proxies": ["127.0.0.1/32"],
            "sites": [
                {"id": "example", "domains": ["example.com"]},
                {"id": "keeper", "domains": ["keeper.test"],
                 "keep_dnt": True, "bots": "flag"},
            ],
        }
        conf = os.path.join(self.dir, "edge.json")
        with open(conf, "w") as f:
            json.dump(cfg, f)
        self.proc = Proc(f"{name}-edge", [ARGS.edge, "--config", conf])
        wait_port(self.port, self.proc)
        send = os.path.join(self.dir, "send.conf")
        with open(send, "w") as f:
            f.write("transport = plain-loopback-only\n"
                    f"receiver = 127.0.0.1:{receiver_port}\n"
                    f"edge = {name}\nlog_dir = {self.log_dir}\n"
                    "backoff_min_ms = 20\nbackoff_max_ms = 500\n")
        self.sender = Proc(f"{name}-send", [ARGS.shipper, "send", "--config",
                                            send])
        self.stored = set()   # event ids the edge answered for stored events
        self.batched = 0      # events stored through /track/batch (no ids)
        self.sent_ips = set()
        self.keeper_dnt = 0   # DNT page views kept (flagged) by keeper
        self.umami = 0        # Umami page views (no ids in its replies)
        self.umami_broken = 0  # ... of them with a URL that does not parse

    def post(self, path, body, ip, ua, extra=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        h = {"Content-Type": "application/json", "User-Agent": ua,
             "X-Forwarded-For": ip}
        h.update(extra or {})
        c.request("POST", path, body=json.dumps(body), headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        self.sent_ips.add(ip)
        if r.status != 200:
            raise RuntimeError(f"{self.name} {path}: {r.status} {data[:200]}")
        return json.loads(data)

    def view(self, site, url, ip, ua, referrer=None, extra=None, stored=True):
        body = {"siteId": site, "pageUrl": url, "sessionId": session_of(ip)}
        if referrer:
            body["referrer"] = referrer
        reply = self.post("/track/view", body, ip, ua, extra)
        if stored:
            self.stored.add(reply["eventId"])
        return reply

    def head(self):
        out = subprocess.run([ARGS.cli, "stat", self.log_dir, "--json"],
                             capture_output=True, text=True, timeout=30)
        return json.loads(out.stdout)["head_offset"]


def traffic(edge, rounds, tag):
    """A realistic mix: page views from every visitor (one from a paid
    campaign, one from Google UK, one from a social network), a custom
    event, a conversion, a batch; and what must not be stored: the same
    visitors with DNT and GPC, and a crawler."""
    for r in range(rounds):
        for i, (ip, ua, *_rest) in enumerate(VISITORS):
            ref = {0: "https://www.google.co.uk/search?q=alog",
                   1: "https://t.co/abc", 2: None}.get(i % 3)
            q = "?utm_source=newsletter&utm_medium=cpc&utm_campaign=" \
                f"{tag}" if i == 4 else ""
            edge.view("example", f"https://example.com/{tag}/{r}{q}", ip, ua,
                      ref)
            edge.view("example", f"https://example.com/{tag}/{r}/next", ip,
                      ua)
            reply = edge.post("/track/event",
                              {"siteId": "example", "eventType": "signup",
                               "sessionId": session_of(ip),
                               "metadata": {"plan": "pro", "round": r}},
                              ip, ua)
            edge.stored.add(reply["eventId"])
            reply = edge.post("/track/conversion",
                              {"siteId": "example",
                               "conversionType": "purchase", "value": 9.5,
                               "currency": "eur", "sessionId": session_of(ip)},
                              ip, ua)
            edge.stored.add(reply["eventId"])
            # Opted out: acknowledged, never stored.
            edge.view("example", f"https://example.com/{tag}/dnt", ip, ua,
                      extra={"DNT": "1"}, stored=False)
            edge.view("example", f"https://example.com/{tag}/gpc", ip, ua,
                      extra={"Sec-GPC": "1"}, stored=False)
        # Umami's tracker: the path and the host apart; from a page of
        # the same site (a self-referral, so no referrer).
        reply = edge.post("/api/send", {"type": "event", "payload": {
            "website": "example", "hostname": "example.com",
            "url": f"/umami/{tag}?utm_source=gh&ref=x", "title": "Docs",
            "referrer": "https://example.com/pricing"}},
            "198.51.100.7", FIREFOX)
        edge.umami += 1
        # A URL that is no URL: the hostname still tells the referrer
        # from the same site is no referrer (direct, not a referral).
        edge.post("/api/send", {"type": "event", "payload": {
            "website": "example", "hostname": "www.example.com",
            "url": f"umami-broken-{tag}",
            "referrer": "https://example.com/pricing"}},
            "198.51.100.7", FIREFOX)
        edge.umami_broken += 1
        # A crawler: dropped by example, kept flagged by keeper.
        edge.view("example", f"https://example.com/{tag}/bot", "192.0.2.99",
                  GOOGLEBOT, stored=False)
        edge.view("keeper", f"https://keeper.test/{tag}/bot", "192.0.2.99",
                  GOOGLEBOT)
        # keeper keeps Do-Not-Track, flagged.
        edge.view("keeper", f"https://keeper.test/{tag}/dnt", "192.0.2.10",
                  CHROME, extra={"DNT": "1"})
        edge.keeper_dnt += 1
        events = [{"eventType": "scroll", "sessionId": "s-b",
                   "metadata": {"i": i}} for i in range(20)]
        reply = edge.post("/track/batch", {"siteId": "example",
                                           "events": events},
                          "198.51.100.7", FIREFOX)
        edge.batched += reply["count"]


def ip_patterns(ips):
    """Each address as text and as bytes (network order; v4-mapped v6)."""
    pats = []
    for ip in ips:
        pats.append(ip.encode())
        if ":" in ip:
            pats.append(socket.inet_pton(socket.AF_INET6, ip))
            pats.append(socket.inet_pton(socket.AF_INET6, ip).hex().encode())
        else:
            pats.append(socket.inet_aton(ip))
            pats.append(socket.inet_aton(ip).hex().encode())
            v6 = socket.inet_pton(socket.AF_INET6, "::ffff:" + ip)
            pats.append(v6)
            pats.append(v6.hex().encode())
    return pats


def grep_tree(root, pats, skip=()):
    found = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if os.path.join(d, x) not in skip]
        for f in files:
            path = os.path.join(d, f)
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            for p in pats:
                if p in data:
                    found.append(f"{os.path.relpath(path, root)}: {p!r}")
    return found


def main():
    global ARGS, TMP
    ap = argparse.ArgumentParser()
    for a in ("edge", "shipper", "writer", "cli", "geo"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--keep", action="store_true")
    ARGS = ap.parse_args()
    if not os.path.exists(f"{PGBIN}/pg_ctl"):
        print("pipeline_test: PostgreSQL 15 is not installed "
              "(./run installs postgresql-15)", file=sys.stderr)
        return 1
    TMP = tempfile.mkdtemp(prefix="alog-pipeline-test-")
    os.chmod(TMP, 0o755)
    pg = Postgres(os.path.join(TMP, "pg"))
    try:
        run(pg)
    except Exception as e:  # a harness failure is a test failure
        log(f"FAILED: {type(e).__name__}: {e}")
        FAILS.append(str(e))
    finally:
        for p in PROCS:
            p.stop()
        pg.stop()
        pg.kill()
        if FAILS:
            for p in {p.logpath: p for p in PROCS}.values():
                lines = p.text().splitlines()[-25:]
                log(f"--- last {len(lines)} lines of {p.name}")
                for line in lines:
                    print("    " + line[:300])
        if ARGS.keep:
            log(f"kept {TMP}")
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    if FAILS:
        log(f"{len(FAILS)} FAILED")
        return 1
    log("all passed")
    return 0


def run(pg):
    geo = os.path.join(TMP, "geo.mmdb")
    subprocess.run(["perl", ARGS.geo, geo, "geolite2"], check=True,
                   timeout=60)
    pg.init()
    pg.start()
    pg.createdb("alog")
    db = pg.conninfo("alog")
    p = subprocess.run([ARGS.writer, "migrate", "--db", db],
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, "writer migrate")

    canonical = os.path.join(TMP, "canonical")
    rport = free_port()
    rconf = os.path.join(TMP, "receive.conf")
    with open(rconf, "w") as f:
        f.write("transport = plain-loopback-only\n"
                f"listen = 127.0.0.1:{rport}\ndata_dir = {canonical}\n"
                "edges = edge-a,edge-b\n")
    recv = Proc("receive", [ARGS.shipper, "receive", "--config", rconf])
    wait_port(rport, recv)

    a = Edge("edge-a", geo, rport)
    traffic(a, ARGS.rounds // 2, "a1")
    # The writer as deployed: the receiver's data directory, running.
    wargv = [ARGS.writer, "run", "--db", db, "--logs-root", canonical,
             "--batch", "100"]
    w = Proc("writer", wargv)
    traffic(a, ARGS.rounds // 2, "a2")

    # kill -9 of the writer while events arrive, twice, then a fresh one.
    for i in range(2):
        time.sleep(0.5)
        w.kill9()
        traffic(a, 1, f"k{i}")
        w = Proc("writer", wargv)
    wait_for(lambda: "writing 1 logs" in w.text().split("found log")[-1],
             30)
    # A second edge joins the running writer: found by its rescan of the
    # receiver's data directory, not named anywhere.
    b = Edge("edge-b", geo, rport)
    traffic(b, ARGS.rounds // 2, "b1")
    traffic(b, 1, "b2")
    edges = (a, b)

    heads = {e.name: e.head() for e in edges}
    expect = {e.name: len(e.stored) + e.batched + e.umami + e.umami_broken
              for e in edges}
    for e in edges:
        check(heads[e.name] == expect[e.name],
              f"{e.name}: its log holds what it acknowledged as stored "
              f"({heads[e.name]} records, {expect[e.name]} expected)")

    def caught_up():
        out, _ = pg.sql("alog", "SELECT log_name || '=' || next_offset FROM"
                        " consumer_offsets ORDER BY 1", check_rc=False)
        return out == "\n".join(f"{n}={heads[n]}" for n in sorted(heads))
    check(wait_for(caught_up, 120, 0.2),
          f"the writer reaches each log's head through the shipper "
          f"({heads})")
    check("found log edge-b" in w.text(),
          "the writer found the second edge's log by itself")

    q = lambda s: pg.val("alog", s)
    # Exactly once, by the ids the edges answered.
    for e in edges:
        ids = set(q(f"SELECT string_agg(event_id::text, ',') FROM events"
                    f" WHERE log_name = '{e.name}' AND name <> 'scroll'"
                    f" AND api <> 3")
                  .split(","))
        n, distinct, scrolls, umami = q(
            f"SELECT count(*), count(DISTINCT event_id),"
            f" count(*) FILTER (WHERE name = 'scroll'),"
            f" count(*) FILTER (WHERE api = 3) FROM events"
            f" WHERE log_name = '{e.name}'").split("|")
        check(ids == e.stored and int(n) == expect[e.name] and
              int(distinct) == int(n) and int(scrolls) == e.batched and
              int(umami) == e.umami + e.umami_broken,
              f"{e.name}: every stored event in PostgreSQL exactly once "
              f"({n} rows, {len(ids ^ e.stored)} ids differ)")
    check(q("SELECT count(*) FROM dead_letters") == "0", "no dead letters")
    check(q("SELECT count(*) FROM events WHERE path LIKE '%/dnt' AND site ="
            " 'example' OR path LIKE '%/gpc' OR (path LIKE '%/bot' AND"
            " site = 'example')") == "0",
          "DNT, GPC and a dropped crawler are not stored")
    check(q("SELECT count(*) FROM events WHERE site = 'keeper' AND path LIKE"
            " '%/dnt' AND flags & 2 = 2") == str(sum(e.keeper_dnt
                                                       for e in edges)),
          "a site that keeps DNT has it, flagged")
    check(q("SELECT count(*) FROM events WHERE site = 'keeper' AND path LIKE"
            " '%/bot' AND NOT bot") == "0" and
          q("SELECT count(*) FROM events WHERE site = 'keeper' AND path LIKE"
            " '%/bot' AND device = 'bot'") != "0",
          "a kept crawler is flagged as a bot")

    # Enrichment, end to end: geo at the edge, user agent and channel in
    # the writer. Each visitor's page views say who it was.
    for ip, ua, country, browser, os_, device in VISITORS:
        tag = session_of(ip)
        row = q(f"SELECT count(*), count(DISTINCT coalesce(country, '-')),"
                f" min(coalesce(country, '-')), min(browser), min(os),"
                f" min(device), count(DISTINCT visitor) FROM events"
                f" WHERE client_session = '{tag}' AND site = 'example'")
        n, nc, c, br, o, dev, nv = row.split("|")
        check(int(n) > 0 and nc == "1" and c == (country or "-") and
              br == browser and o == os_ and dev == device and nv == "2",
              f"{ip}: country {country}, {browser} on {os_}, {device}, one"
              f" visitor per edge ({row})")
    check(q("SELECT count(*) FROM events WHERE referrer LIKE '%google.co.uk%'"
            " AND query IS NULL AND NOT (channel = 'organic' AND source ="
            " 'Google' AND referrer_host = 'www.google.co.uk')") == "0" and
          q("SELECT count(*) FROM events WHERE referrer LIKE"
            " '%google.co.uk%'") != "0",
          "Google UK is organic search from www.google.co.uk")
    check(q("SELECT count(*) FROM events WHERE referrer LIKE 'https://t.co/%'"
            " AND url NOT LIKE '%utm_%' AND channel <> 'social'") == "0" and
          q("SELECT count(*) FROM events WHERE channel = 'social'") != "0",
          "t.co is social")
    check(q("SELECT count(*) FROM events WHERE url LIKE '%utm_medium=cpc%'"
            " AND (channel <> 'paid' OR utm_campaign IS NULL OR query IS NOT"
            " NULL)") == "0" and
          q("SELECT count(*) FROM events WHERE channel = 'paid'") != "0",
          "utm_medium=cpc is paid, the UTM kept, the query cleaned")
    n_umami = sum(e.umami for e in edges)
    check(q("SELECT count(*) FROM events WHERE api = 3 AND host ="
            " 'example.com' AND path LIKE '/umami/%' AND query = 'ref=x' AND"
            " utm_source = 'gh' AND channel = 'referral' AND referrer_host"
            " IS NULL") == str(n_umami) and
          q("SELECT sum(pageviews) FROM rollup_daily WHERE dim = 'page' AND"
            " value LIKE '/umami/%'") == str(n_umami),
          "Umami's path-only URL with its hostname: host, path, query, page"
          " rollups; its self-referral is no referrer")
    n_broken = sum(e.umami_broken for e in edges)
    check(q("SELECT count(*) FROM events WHERE api = 3 AND url LIKE"
            " 'umami-broken-%' AND path IS NULL AND channel = 'direct' AND"
            " referrer_host IS NULL") == str(n_broken),
          "a URL that does not parse: no page, and the hostname makes a"
          " referrer from the same site no referrer")
    check(q("SELECT count(*) FROM events WHERE name = 'purchase' AND (revenue"
            " <> 9.5 OR currency <> 'EUR')") == "0" and
          q("SELECT count(*) FROM events WHERE name = 'signup' AND props->>"
            "'plan' = 'pro'") != "0",
          "revenue and currency are columns, properties are jsonb")

    # Sessions: one visitor's page views on one edge are one session.
    row = q("SELECT count(*), count(*) FILTER (WHERE pageviews < 2),"
            " count(DISTINCT (site, visitor)) FROM sessions WHERE site ="
            " 'example' AND device <> 'bot'")
    n, short, visitors = row.split("|")
    check(n == visitors and int(n) >= len(VISITORS),
          f"sessions: one per visitor and edge ({row})")
    # Rollups agree with the events (bots are not in rollups).
    row = q("SELECT (SELECT sum(pageviews) FROM rollup_daily WHERE dim ="
            " 'all'), (SELECT count(*) FROM events WHERE kind = 1 AND NOT"
            " bot), (SELECT round(hll_cardinality(hll_union_agg(visitors)))"
            " FROM rollup_daily WHERE dim = 'all' AND site = 'example'),"
            " (SELECT count(DISTINCT visitor) FROM events WHERE NOT bot AND"
            " site = 'example'), (SELECT sum(revenue) FROM rollup_daily"
            " WHERE dim = 'all'), (SELECT sum(revenue) FROM events"
            " WHERE NOT bot)")
    pv, pv2, hv, dv, rev, rev2 = row.split("|")
    check(pv == pv2 and hv == dv and rev == rev2,
          f"rollups: page views, visitors (hll) and revenue equal a recount"
          f" ({row})")

    # Privacy: no client address anywhere.
    ips = set()
    for e in edges:
        ips |= e.sent_ips
    ips.add("192.0.2.99")
    for e in edges:
        e.proc.stop()
        e.sender.stop()
    w.stop()
    recv.stop()
    dump = subprocess.run(
        pg.as_user + [f"{PGBIN}/pg_dump", "-d", db, "--data-only"],
        capture_output=True, timeout=120)
    check(dump.returncode == 0 and b"COPY public.events" in dump.stdout,
          "pg_dump of the database")
    text_pats = [ip.encode() for ip in ips]
    hits = [p for p in ip_patterns(ips) if p in dump.stdout]
    check(not hits, f"no client address in the database's rows ({hits[:3]})")
    pgdir = os.path.join(TMP, "pg")
    found = grep_tree(TMP, ip_patterns(ips), skip=(pgdir,))
    check(not found, "no client address in any edge log, canonical log, salt "
          f"or process log ({found[:3]})")
    pg.stop()
    found = grep_tree(pgdir, text_pats)
    check(not found, "no client address as text in PostgreSQL's data "
          f"directory, WAL included ({found[:3]})")


if __name__ == "__main__":
    sys.exit(main())
