// plausible_tracker.test.js - the official Plausible tracker from npm
// (@plausible-analytics/tracker, an ES module served from node_modules by
// the test's static server) in headless Chromium, pointed at a real
// alog-edge's /api/event: what the edge stores from it.
//
// Two settings make the tracker send from this browser at all: it ignores
// localhost/127.* unless captureOnLocalhost, and it ignores automated
// browsers (navigator.webdriver) unless window.__plausible is set.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Env } = require('./harness');

const T = { timeout: 60000 };

const env = new Env();
before(() => env.setup(), { timeout: 120000 });
after(() => env.teardown());

function plausiblePage(p, body = '', config = {}) {
  const cfg = { domain: 'test', endpoint: `${env.edge.url}/api/event`, captureOnLocalhost: true, ...config };
  return env.web.page(
    p,
    `<script type="module">
import { init, track } from '/plausible.js';
window.__plausible = true;
init(${JSON.stringify(cfg)});
window.ptrack = track;
</script>
${body}`,
  );
}

// track(name, options) in the page; resolves with what its callback got,
// or 'no callback' if it was not called within 10 s.
const ptrack = (page, name, options = {}) =>
  page.evaluate(
    ([n, o]) =>
      new Promise((resolve) => {
        window.ptrack(n, { ...o, callback: resolve });
        setTimeout(() => resolve('no callback'), 10000);
      }),
    [name, options],
  );

const byOffset = (evs) => [...evs].sort((a, b) => a.offset - b.offset);

// The tracker reports engagement (scroll depth, time on page) for a page
// when it is left or hidden, as events named "engagement": when those come
// depends on focus and visibility, so most tests leave them out.
const notEngagement = (evs) => evs.filter((e) => e.name !== 'engagement');

function assertPlausibleEvent(ev) {
  assert.equal(ev.source, 'plausible');
  assert.equal(ev.site, 'test');
  assert.equal(ev.user_agent, env.userAgent);
  assert.match(ev.visitor, /^[0-9a-f]{16}$/);
  assert.notEqual(ev.visitor, '0000000000000000');
  assert.equal(ev.hostname, '127.0.0.1');
}

test('Plausible tracker: the page view is stored with url and referrer', T, async () => {
  const start = env.web.page('/p-pageview/start.html', '<a id="go" href="/p-pageview/page.html?utm_source=news">go</a>');
  const url = plausiblePage('/p-pageview/page.html');
  const page = await env.page();
  await page.goto(start);
  const answered = page.waitForResponse((r) => r.url() === `${env.edge.url}/api/event`);
  await page.click('#go');
  const res = await answered;
  assert.equal(res.status(), 202);
  assert.equal(res.headers()['access-control-allow-origin'], env.web.url);

  const evs = notEngagement(await env.eventsUnder(env.web.url + '/p-pageview/'));
  assert.equal(evs.length, 1, JSON.stringify(evs));
  const [ev] = evs;
  assert.equal(ev.kind, 'pageview');
  assert.equal(ev.name, 'pageview');
  assert.equal(ev.url, url + '?utm_source=news');
  assert.equal(ev.referrer, start);
  assert.equal(ev.utm_source, 'news');
  assert.equal(ev.flags, 0);
  assertPlausibleEvent(ev);
  assert.deepEqual(page.consoleErrors, []);
  await page.context().close();
});

test('Plausible tracker: custom events with props and revenue', T, async () => {
  const url = plausiblePage('/p-custom/index.html');
  const prefix = env.web.url + '/p-custom/';
  const page = await env.page();
  await page.goto(url);
  await env.waitUnder(prefix, 1, 'the page view');

  // The callback sees the edge's answer: CORS lets the page read it.
  assert.deepEqual(
    await ptrack(page, 'Purchase', { props: { plan: 'pro', seats: '3' }, revenue: { amount: 12.5, currency: 'EUR' } }),
    { status: 202 },
  );
  assert.deepEqual(await ptrack(page, 'Signup', { props: { plan: 'free' } }), { status: 202 });
  assert.deepEqual(await ptrack(page, 'Donation', { revenue: { amount: '0.99', currency: 'usd' } }), { status: 202 });
  assert.deepEqual(await ptrack(page, 'Scrolled', { interactive: false }), { status: 202 });
  assert.deepEqual(await ptrack(page, 'Virtual', { url: prefix + 'virtual?x=1' }), { status: 202 });
  const evs = notEngagement(byOffset(await env.eventsUnder(prefix)));

  const got = evs.map((e) => ({
    kind: e.kind,
    name: e.name,
    url: e.url,
    props: e.props,
    value: e.value_micros === undefined ? undefined : [e.value_micros, e.currency],
    flags: e.flags,
  }));
  const ev = (kind, name, props, value, flags = 0, u = url) => ({ kind, name, url: u, props, value, flags });
  assert.deepEqual(got, [
    ev('pageview', 'pageview', undefined, undefined),
    ev('event', 'Purchase', { plan: 'pro', seats: '3' }, [12500000, 'EUR']),
    ev('event', 'Signup', { plan: 'free' }, undefined),
    ev('event', 'Donation', undefined, [990000, 'USD']),
    ev('event', 'Scrolled', undefined, undefined, 4), // bit 2: non-interactive
    ev('event', 'Virtual', undefined, undefined, 0, prefix + 'virtual?x=1'),
  ]);
  for (const e of evs) assertPlausibleEvent(e);
  assert.deepEqual(page.consoleErrors, []);
  await page.context().close();
});

test('Plausible tracker: SPA navigation and outbound links', T, async () => {
  const out = `http://localhost:${env.web.port}/outside?from=plausible`;
  const url = plausiblePage('/p-spa/index.html', `<a id="out" href="${out}">outside</a>`, { outboundLinks: true });
  const prefix = env.web.url + '/p-spa/';
  const page = await env.page();
  await page.goto(url);
  await env.waitUnder(prefix, 1, 'the page view');
  await page.evaluate(() => history.pushState({}, '', '/p-spa/second'));
  await env.edge.waitFor(
    (evs) => evs.some((e) => e.name === 'pageview' && e.url === prefix + 'second'),
    'the page view after pushState',
  );
  await Promise.all([page.waitForURL(out), page.click('#out')]);
  await env.edge.waitFor(
    (evs) => evs.some((e) => e.name === 'Outbound Link: Click'),
    'the outbound link event',
  );

  const all = byOffset(await env.eventsUnder(prefix));
  const evs = notEngagement(all);
  assert.deepEqual(
    evs.map((e) => [e.kind, e.name, e.url, e.props]),
    [
      ['pageview', 'pageview', url, undefined],
      ['pageview', 'pageview', prefix + 'second', undefined],
      ['event', 'Outbound Link: Click', prefix + 'second', { url: out }],
    ],
  );
  for (const e of evs) assertPlausibleEvent(e);
  // Leaving the first page by pushState also sends its engagement, with the
  // page view (stored today as a custom event named "engagement"; its scroll
  // depth and time are not kept).
  const eng = (
    await env.edge.waitFor(
      (all) => all.filter((e) => e.name === 'engagement' && e.url === url).length && all,
      'the first page\'s engagement event',
    )
  ).find((e) => e.name === 'engagement' && e.url === url);
  assert.ok(eng.offset > evs[0].offset);
  assertPlausibleEvent(eng);
  await page.context().close();
});
