#!/usr/bin/env python3
"""demo_traffic.py - send a realistic workload to a running alog-edge.

Browsers on three sites: page views through the Plausible-compatible
/api/event (what script.js sends), custom events, conversions and funnel
steps through alog's /track/* API from a server-side sender, Umami-style
page views, some crawlers (dropped at the door) and some visitors with
Do-Not-Track (acknowledged, not stored). Client addresses come from the
documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) in
X-Forwarded-For, as a reverse proxy on loopback would send them; the edge
hashes them with the day's salt and forgets them.

    tests/demo_traffic.py --port 8080 --requests 3000
Prints a summary of the answers; exits 1 if any request failed.
"""
import argparse
import http.client
import json
import random
import sys
import threading

SITES = {
    "example": ("example.com", ["/", "/pricing", "/docs", "/docs/api",
                                "/blog/privacy-first-analytics",
                                "/blog/group-commit-explained", "/signup"]),
    "shop": ("shop.example.org", ["/", "/c/shoes", "/p/trail-runner-3",
                                  "/cart", "/checkout", "/checkout/done"]),
    "docs": ("docs.example.net", ["/", "/install", "/configure", "/faq"]),
}
REFERRERS = [None, None, "https://www.google.com/", "https://www.bing.com/",
             "https://news.ycombinator.com/", "https://t.co/xyz",
             "https://duckduckgo.com/", "https://github.com/alog/alog"]
UTM = [None, None, None, "?utm_source=newsletter&utm_medium=email",
       "?utm_source=twitter&utm_medium=social&utm_campaign=launch",
       "?utm_source=google&utm_medium=cpc&utm_campaign=brand"]
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
]
BOTS = ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "curl/8.4.0"]
NETS = ["192.0.2.", "198.51.100.", "203.0.113."]


def one_request(rng):
    site = rng.choice(list(SITES))
    host, pages = SITES[site]
    page = "https://%s%s%s" % (host, rng.choice(pages), rng.choice(UTM) or "")
    ua = rng.choice(BOTS) if rng.random() < 0.03 else rng.choice(UAS)
    headers = {"User-Agent": ua,
               "X-Forwarded-For": rng.choice(NETS) + str(rng.randint(1, 254))}
    if rng.random() < 0.02:
        headers["DNT"] = "1"
    r = rng.random()
    if r < 0.6:
        headers.update({"Content-Type": "text/plain",
                        "Origin": "https://" + host})
        body = {"n": "pageview", "u": page, "d": host,
                "r": rng.choice(REFERRERS)}
        return "/api/event", headers, body
    headers["Content-Type"] = "application/json"
    if r < 0.7:
        body = {"type": "event", "payload": {
            "website": site, "hostname": host, "url": page.split(host, 1)[1],
            "title": "Page", "screen": rng.choice(["1920x1080", "390x844"]),
            "language": rng.choice(["en-US", "de-DE", "fr-FR"]),
            "referrer": rng.choice(REFERRERS) or ""}}
        return "/api/send", headers, body
    session = "s%06d" % rng.randint(0, 5000)
    if r < 0.85:
        body = {"siteId": site, "eventType": rng.choice(
            ["signup_click", "video_play", "search", "download"]),
            "sessionId": session, "pageUrl": page,
            "metadata": {"variant": rng.choice(["a", "b"])}}
        return "/track/event", headers, body
    if r < 0.92:
        body = {"siteId": site, "conversionType": "purchase",
                "sessionId": session, "value": round(rng.uniform(5, 250), 2),
                "currency": rng.choice(["EUR", "USD"])}
        return "/track/conversion", headers, body
    if r < 0.97:
        step = rng.randint(1, 4)
        body = {"siteId": site, "funnelId": "checkout",
                "stepId": ["cart", "address", "payment", "done"][step - 1],
                "stepOrder": step, "sessionId": session}
        return "/track/funnel", headers, body
    body = {"siteId": site, "events": [
        {"eventType": "scroll_depth", "sessionId": session,
         "metadata": {"depth": d}} for d in (25, 50, 75, 100)]}
    return "/track/batch", headers, body


def worker(port, n, seed, counts, lock):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(n):
        path, headers, body = one_request(rng)
        try:
            conn.request("POST", path, json.dumps(body), headers)
            resp = conn.getresponse()
            resp.read()
            key = "%s %d" % (path, resp.status)
        except (OSError, http.client.HTTPException) as e:
            key = "error %s" % type(e).__name__
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        with lock:
            counts[key] = counts.get(key, 0) + 1
    conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    counts, lock = {}, threading.Lock()
    per = max(1, a.requests // a.connections)
    threads = [threading.Thread(target=worker,
                                args=(a.port, per, a.seed * 1000 + i, counts, lock))
               for i in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = 0
    for k in sorted(counts):
        print("  %-26s %6d" % (k, counts[k]))
        if not (k.endswith(" 200") or k.endswith(" 202")):
            bad += counts[k]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
