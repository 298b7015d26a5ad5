#!/usr/bin/env python3
"""demo_events.py - a made-up but realistic stream of analytics events.

Prints one JSON event per line on stdout, in time order, the way the edge will
write them into the log once privacy is applied at the door: a country from the
geo lookup and a daily-salted keyed visitor hash, never an IP address. Used by
`./run demo` to fill a log; deterministic for a given --seed and --start-ms.

    tests/demo_events.py --count 50000 --seed 1 | build/log/alog append DIR --create
"""

import argparse
import hashlib
import json
import random
import sys
import time

SITES = {
    "example.com": [
        "/", "/pricing", "/about", "/contact", "/features", "/docs",
        "/docs/getting-started", "/docs/api", "/docs/self-hosting",
        "/blog", "/blog/privacy-first-analytics",
        "/blog/why-we-dropped-cookies", "/blog/group-commit-explained",
        "/blog/io-uring-for-the-rest-of-us", "/blog/gdpr-without-banners",
        "/blog/2024-in-review", "/changelog", "/careers", "/signup", "/login",
    ],
    "shop.example.org": [
        "/", "/cart", "/checkout", "/checkout/done", "/search",
        "/c/shoes", "/c/jackets", "/c/bags", "/p/trail-runner-3",
        "/p/rain-shell", "/p/city-backpack", "/p/wool-socks", "/returns",
    ],
    "docs.example.net": [
        "/", "/install", "/configure", "/faq", "/reference/cli",
        "/reference/http-api", "/reference/log-format", "/troubleshooting",
    ],
}
SITE_WEIGHTS = [0.55, 0.30, 0.15]

# (referrer, utm_source, utm_medium, utm_campaign, weight)
SOURCES = [
    ("", None, None, None, 30),
    ("https://www.google.com/", None, None, None, 28),
    ("https://duckduckgo.com/", None, None, None, 6),
    ("https://www.bing.com/", None, None, None, 4),
    ("https://news.ycombinator.com/", None, None, None, 5),
    ("https://www.reddit.com/r/selfhosted/", None, None, None, 4),
    ("https://github.com/", None, None, None, 3),
    ("https://t.co/", "twitter", "social", "launch", 3),
    ("https://www.linkedin.com/", "linkedin", "social", "launch", 2),
    ("", "newsletter", "email", "2024-11-weekly", 6),
    ("https://www.google.com/", "google", "cpc", "brand", 5),
    ("https://mastodon.social/", "mastodon", "social", None, 2),
    ("https://lobste.rs/", None, None, None, 2),
]

# (country, weight, languages)
COUNTRIES = [
    ("US", 24, ["en-US"]), ("DE", 14, ["de-DE", "en-US"]),
    ("GB", 9, ["en-GB"]), ("FR", 7, ["fr-FR"]), ("NL", 5, ["nl-NL", "en-US"]),
    ("IN", 6, ["en-IN"]), ("BR", 4, ["pt-BR"]), ("CA", 4, ["en-CA", "fr-CA"]),
    ("JP", 3, ["ja-JP"]), ("ES", 3, ["es-ES"]), ("SE", 3, ["sv-SE", "en-US"]),
    ("PL", 3, ["pl-PL"]), ("AU", 3, ["en-AU"]), ("IT", 3, ["it-IT"]),
    ("CH", 2, ["de-CH", "fr-CH"]), ("AT", 2, ["de-AT"]), ("KR", 2, ["ko-KR"]),
    ("MX", 2, ["es-MX"]), ("ZA", 1, ["en-ZA"]),
]

# (device, user agent, screens, weight)
DEVICES = [
    ("desktop",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
     ["1920x1080", "2560x1440", "1366x768", "1536x864"], 30),
    ("desktop",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/18.1 Safari/605.1.15",
     ["1440x900", "1512x982", "1728x1117", "2560x1440"], 12),
    ("desktop",
     "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
     ["1920x1080", "2560x1440", "3840x2160"], 6),
    ("desktop",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 "
     "Firefox/133.0",
     ["1920x1080", "1366x768"], 5),
    ("mobile",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) "
     "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 "
     "Safari/604.1",
     ["390x844", "393x852", "430x932", "375x667"], 22),
    ("mobile",
     "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
     ["412x915", "360x800", "384x854"], 18),
    ("tablet",
     "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
     ["820x1180", "1024x1366", "768x1024"], 5),
    ("bot",
     "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     ["1920x1080"], 2),
]

# custom events: (name, weight, props maker)
EVENTS = [
    ("signup", 3, lambda r: {"plan": r.choice(["free", "team", "business"])}),
    ("download", 4, lambda r: {"file": r.choice(
        ["alog-1.0.tar.gz", "whitepaper.pdf", "alog_1.0_amd64.deb"])}),
    ("outbound", 5, lambda r: {"href": r.choice(
        ["https://github.com/", "https://www.postgresql.org/",
         "https://kernel.dk/io_uring.pdf"])}),
    ("search", 4, lambda r: {"results": r.randint(0, 40)}),
    ("add_to_cart", 4, lambda r: {"sku": r.choice(
        ["TR3-42", "RS-M", "CB-20L", "WS-3PK"]), "qty": r.randint(1, 3)}),
    ("purchase", 1, lambda r: {"revenue": round(r.uniform(19, 320), 2),
                               "currency": "EUR"}),
    ("video_play", 2, lambda r: {"video": "intro", "position_s": 0}),
]


def pick(rng, items, weight_index):
    return rng.choices(items, weights=[i[weight_index] for i in items])[0]


class Visitor:
    """One simulated browser: what the edge would know about it."""

    def __init__(self, rng, salt):
        self.country, _, langs = pick(rng, COUNTRIES, 1)
        self.lang = rng.choice(langs)
        self.device, self.ua, screens, _ = pick(rng, DEVICES, 3)
        self.screen = rng.choice(screens)
        # The edge derives this from (salt of the day, site, IP, UA) with a
        # keyed hash and forgets the inputs; here a random id stands in.
        secret = rng.getrandbits(64).to_bytes(8, "little")
        self.hash = hashlib.blake2b(secret, key=salt,
                                    digest_size=8).hexdigest()


def session(rng, site, visitor, t_ms):
    """The events of one visit: a landing page, then a few more."""
    pages = SITES[site]
    referrer, source, medium, campaign, _ = pick(rng, SOURCES, 4)
    npages = min(1 + int(rng.expovariate(0.6)), 12)
    path = rng.choice(pages[:10]) if rng.random() < 0.7 else "/"
    out = []
    for i in range(npages):
        url = "https://" + site + path
        ev = {"type": "pageview", "site": site, "url": url}
        if i == 0:
            if source:
                ev["url"] = url + "?utm_source=" + source + \
                    "&utm_medium=" + medium + \
                    ("&utm_campaign=" + campaign if campaign else "")
                ev["utm_source"] = source
                ev["utm_medium"] = medium
                if campaign:
                    ev["utm_campaign"] = campaign
            ev["referrer"] = referrer
        else:
            ev["referrer"] = prev_url
        out.append((t_ms, ev))
        prev_url = url
        if visitor.device != "bot" and rng.random() < 0.12:
            name, _, props = pick(rng, EVENTS, 1)
            t_ms += rng.randint(500, 20000)
            out.append((t_ms, {"type": "event", "site": site, "name": name,
                               "url": url, "props": props(rng)}))
        t_ms += rng.randint(2000, 90000)
        path = rng.choice(pages)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50000,
                    help="events to print (default 50000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start-ms", type=int, default=None,
                    help="time of the first event (default: 24 h ago)")
    ap.add_argument("--span-ms", type=int, default=24 * 3600 * 1000,
                    help="time the stream covers (default 24 h)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    start = args.start_ms
    if start is None:
        start = int(time.time() * 1000) - args.span_ms
    salt = rng.getrandbits(128).to_bytes(16, "little")
    visitors = [Visitor(rng, salt) for _ in range(max(args.count // 6, 1))]

    # Sessions start at random times; merge them into one time-ordered stream.
    pending = []
    n = 0
    while n < args.count:
        site = rng.choices(list(SITES), weights=SITE_WEIGHTS)[0]
        v = rng.choice(visitors)
        # leave room for the visit itself, so no event lands after the span
        t0 = start + int(rng.random() * max(args.span_ms - 1800000, 1))
        for t, ev in session(rng, site, v, t0):
            rec = {"type": ev.pop("type"), "ts": t}
            rec.update(ev)
            rec.update(country=v.country, device=v.device, ua=v.ua,
                       screen=v.screen, lang=v.lang, visitor=v.hash)
            pending.append(rec)
            n += 1
    pending.sort(key=lambda e: e["ts"])
    out = sys.stdout
    for ev in pending[:args.count]:
        out.write(json.dumps(ev, separators=(",", ":")))
        out.write("\n")


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        sys.exit(1)
