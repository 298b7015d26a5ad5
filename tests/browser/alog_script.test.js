// alog_script.test.js - alog's own tracker (edge/script/alog.js, served by
// the edge at GET /script.js) in headless Chromium against a real
// alog-edge: what the page sends, and what the edge's log then holds.
//
// Each test uses pages under its own path and looks only at events whose
// url starts with it. "Nothing sent" is checked at both ends: the page's
// requests to the edge, and the log, after a barrier beacon sent later
// from the same browser has been answered.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { Env, get } = require('./harness');

const SCRIPT_SRC = path.resolve(__dirname, '../../edge/script/alog.js');
const GZIP_BUDGET_BYTES = 1536;
const T = { timeout: 60000 };

const env = new Env();
before(() => env.setup(), { timeout: 120000 });
after(() => env.teardown());

// The snippet a site pastes, as docs would give it.
const tag = () => `<script defer data-domain="test" data-local src="${env.edge.url}/script.js"></script>`;

// Wait for the next response from the edge's /api/event to the page.
const edgeAnswer = (page) =>
  page.waitForResponse((r) => r.url() === `${env.edge.url}/api/event`);

// Call window.alog(name, {callback}) in the page; resolves with what the
// callback got, or 'no callback' if it was not called within 10 s.
const alogCallback = (page, name) =>
  page.evaluate(
    (n) =>
      new Promise((resolve) => {
        window.alog(n, { callback: resolve });
        setTimeout(() => resolve('no callback'), 10000);
      }),
    name,
  );

// Sorted by log offset, i.e. in arrival order.
const byOffset = (evs) => [...evs].sort((a, b) => a.offset - b.offset);

function assertBrowserEvent(ev) {
  assert.equal(ev.site, 'test');
  assert.equal(ev.source, 'plausible'); // alog.js speaks Plausible's /api/event
  assert.equal(ev.user_agent, env.userAgent);
  assert.match(ev.user_agent, /Chrome\/\d+/);
  assert.match(ev.visitor, /^[0-9a-f]{16}$/);
  assert.notEqual(ev.visitor, '0000000000000000');
  assert.equal(ev.hostname, '127.0.0.1');
  assert.ok(!('country' in ev), 'no geo database, so no country');
}

test('GET /script.js serves edge/script/alog.js within the gzip budget', T, async (t) => {
  const r = await get(`${env.edge.url}/script.js`);
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^application\/javascript/);
  assert.equal(r.headers['access-control-allow-origin'], '*');
  assert.ok(r.body.equals(fs.readFileSync(SCRIPT_SRC)), 'the edge serves the script in the tree (rebuild alog-edge?)');
  const gz = zlib.gzipSync(r.body, { level: 9 }).length;
  t.diagnostic(`script.js: ${r.body.length} bytes, ${gz} bytes gzipped (budget ${GZIP_BUDGET_BYTES})`);
  assert.ok(gz <= GZIP_BUDGET_BYTES, `script.js is ${gz} bytes gzipped, over the ${GZIP_BUDGET_BYTES}-byte budget`);
});

test('a page view is stored with url, referrer, site, user agent and visitor', T, async () => {
  const start = env.web.page('/pageview/start.html', '<a id="go" href="/pageview/page.html?q=1">go</a>');
  const url = env.web.page('/pageview/page.html', tag());
  const page = await env.page();
  await page.goto(start);
  const answered = edgeAnswer(page);
  await page.click('#go');
  assert.equal((await answered).status(), 202);

  // 2xx only once durable: the event is in the log now.
  const evs = await env.eventsUnder(env.web.url + '/pageview/');
  assert.equal(evs.length, 1, JSON.stringify(evs));
  const [ev] = evs;
  assert.equal(ev.kind, 'pageview');
  assert.equal(ev.name, 'pageview');
  assert.equal(ev.url, url + '?q=1');
  assert.equal(ev.referrer, start);
  assert.equal(ev.flags, 0);
  assertBrowserEvent(ev);
  assert.deepEqual(page.edgeRequests.map((r) => r.method), ['POST']);
  assert.deepEqual(page.consoleErrors, []);
  await page.context().close();
});

test('SPA navigation: pushState and popstate record page views', T, async () => {
  const url = env.web.page('/spa/index.html', tag());
  const prefix = env.web.url + '/spa/';
  const page = await env.page();
  await page.goto(url);
  await env.waitUnder(prefix, 1, 'the first page view');
  await page.evaluate(() => history.pushState({}, '', '/spa/second?tab=2'));
  await env.waitUnder(prefix, 2, 'the page view after pushState');
  // The same path and query again is not a new page view (it would be
  // stored before the next one, so the order below would catch it);
  // going back to the first page is one (popstate).
  await page.evaluate(() => history.pushState({ again: 1 }, '', '/spa/second?tab=2'));
  await page.evaluate(() => history.go(-2));
  const evs = byOffset(await env.waitUnder(prefix, 3, 'the page view after history.go(-2)'));

  assert.deepEqual(
    evs.map((e) => [e.kind, e.url]),
    [
      ['pageview', url],
      ['pageview', prefix + 'second?tab=2'],
      ['pageview', url],
    ],
  );
  for (const ev of evs) assertBrowserEvent(ev);
  assert.equal(new Set(evs.map((e) => e.visitor)).size, 1, 'one visitor all along');
  assert.deepEqual(page.consoleErrors, []);
  await page.context().close();
});

test('custom events: props, revenue, non-interactive, callback, queued calls', T, async () => {
  // The queue stub sites paste above the tag, so calls made before the
  // script has loaded are not lost.
  const url = env.web.page(
    '/custom/index.html',
    `<script>window.alog = window.alog || function () { (window.alog.q = window.alog.q || []).push(arguments) };
alog("Queued", {props: {early: "yes"}});</script>\n${tag()}`,
  );
  const prefix = env.web.url + '/custom/';
  const page = await env.page();
  await page.goto(url);
  await env.waitUnder(prefix, 2, 'the page view and the queued event');
  await page.evaluate(() => {
    window.alog('Signup', { props: { plan: 'pro' } });
    window.alog('Purchase', { props: { sku: 'A1' }, revenue: { amount: '12.50', currency: 'EUR' } });
    window.alog('Scrolled', { interactive: false });
  });
  await env.waitUnder(prefix, 5, 'Signup, Purchase and Scrolled');
  // With a callback the tracker waits for the edge's answer (readable
  // through CORS) instead of firing a beacon.
  assert.deepEqual(await alogCallback(page, 'Called'), { status: 202 });
  const evs = byOffset(await env.eventsUnder(prefix));

  const got = evs.map((e) => ({
    kind: e.kind,
    name: e.name,
    props: e.props,
    value: e.value_micros === undefined ? undefined : [e.value_micros, e.currency],
    flags: e.flags,
  }));
  const ev = (kind, name, props, value, flags = 0) => ({ kind, name, props, value, flags });
  // Beacons sent in the same turn travel on separate connections, so the
  // edge may store them in either order: the page view and the queued call
  // form one group, the three calls in one evaluate() another. Groups are
  // ordered by the waits above; within a group only the set is compared.
  const byName = (evs) => [...evs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  assert.equal(got.length, 6, JSON.stringify(got));
  assert.deepEqual(
    [byName(got.slice(0, 2)), byName(got.slice(2, 5)), got.slice(5)],
    [
      byName([ev('pageview', 'pageview', undefined, undefined), ev('event', 'Queued', { early: 'yes' }, undefined)]),
      byName([
        ev('event', 'Signup', { plan: 'pro' }, undefined),
        ev('event', 'Purchase', { sku: 'A1' }, [12500000, 'EUR']),
        ev('event', 'Scrolled', undefined, undefined, 4), // bit 2: non-interactive
      ]),
      [ev('event', 'Called', undefined, undefined)],
    ],
  );
  for (const e of evs) {
    assert.equal(e.url, url);
    assertBrowserEvent(e);
  }
  assert.deepEqual(page.consoleErrors, []);
  await page.context().close();
});

test('outbound link clicks (left and middle button) are stored with the url', T, async () => {
  const out = `http://localhost:${env.web.port}/outside?from=alog`;
  const url = env.web.page(
    '/outbound/index.html',
    `${tag()}\n<a id="in" href="/outbound/other.html">inside</a> <a id="out" href="${out}">outside</a>`,
  );
  const prefix = env.web.url + '/outbound/';
  const page = await env.page();
  await page.goto(url);
  await env.waitUnder(prefix, 1, 'the page view');
  // Middle click opens a new tab and keeps this page.
  await page.click('#out', { button: 'middle' });
  await env.waitUnder(prefix, 2, 'the middle-click outbound event');
  await Promise.all([page.waitForURL(out), page.click('#out')]);
  const evs = byOffset(await env.waitUnder(prefix, 3, 'the outbound event after leaving the page'));

  assert.deepEqual(
    evs.map((e) => [e.kind, e.name, e.url, e.props]),
    [
      ['pageview', 'pageview', url, undefined],
      ['event', 'Outbound Link: Click', url, { url: out }],
      ['event', 'Outbound Link: Click', url, { url: out }],
    ],
  );
  for (const e of evs) assertBrowserEvent(e);
  await page.context().close();
});

// Load a tracked page with init() run before any script, drive everything
// the tracker could send (custom event, SPA navigation, a callback, an
// outbound click), then send a barrier beacon from the page it lands on.
// Once the barrier is answered, every earlier request would have been seen
// and stored: there must be none but the barrier.
async function assertNothingSent(name, init, scriptTag = tag()) {
  const prefix = `${env.web.url}/${name}/`;
  const out = `http://localhost:${env.web.port}/outside?from=${name}`;
  const url = env.web.page(`/${name}/index.html`, `${scriptTag}\n<a id="out" href="${out}">outside</a>`);
  const page = await env.page();
  await page.addInitScript(init);
  await page.goto(url);
  await page.waitForFunction(() => typeof window.alog === 'function');
  await page.evaluate(() => {
    window.alog('Signup', { props: { plan: 'pro' } });
    history.pushState({}, '', 'second');
  });
  assert.equal(await alogCallback(page, 'Called'), undefined, 'an ignored event calls back with no result');
  await Promise.all([page.waitForURL(out), page.click('#out')]);

  const answered = edgeAnswer(page);
  const queued = await page.evaluate(
    ([api, u]) => navigator.sendBeacon(api, new Blob([JSON.stringify({ n: 'barrier', u, d: 'test' })], { type: 'text/plain' })),
    [`${env.edge.url}/api/event`, prefix + 'barrier'],
  );
  assert.ok(queued, 'the barrier beacon was queued');
  assert.equal((await answered).status(), 202);
  const evs = await env.waitUnder(prefix, 1, 'the barrier');

  assert.equal(page.edgeRequests.length, 1, `requests: ${JSON.stringify(page.edgeRequests)}`);
  assert.deepEqual(evs.map((e) => e.name), ['barrier']);
  assert.deepEqual(page.consoleErrors, []);
  await page.context().close();
}

test('Global Privacy Control: nothing is sent, nothing is stored', T, () =>
  assertNothingSent('gpc', () => {
    Object.defineProperty(navigator, 'globalPrivacyControl', { get: () => true, configurable: true });
  }));

test('Do-Not-Track: nothing is sent, nothing is stored', T, () =>
  assertNothingSent('dnt', () => {
    Object.defineProperty(navigator, 'doNotTrack', { get: () => '1', configurable: true });
  }));

test('GPC and DNT together: nothing is sent, nothing is stored', T, () =>
  assertNothingSent('gpc-dnt', () => {
    Object.defineProperty(navigator, 'globalPrivacyControl', { get: () => true, configurable: true });
    Object.defineProperty(navigator, 'doNotTrack', { get: () => '1', configurable: true });
  }));

test('localStorage.alog_ignore = "true": nothing is sent, nothing is stored', T, () =>
  assertNothingSent('ignore', () => {
    try {
      localStorage.setItem('alog_ignore', 'true');
    } catch {
      /* opaque origins (about:blank) have no storage */
    }
  }));

test('without data-local a page on 127.0.0.1 sends nothing', T, () =>
  assertNothingSent(
    'no-local',
    () => {},
    `<script defer data-domain="test" src="${env.edge.url}/script.js"></script>`,
  ));

test('headless Chromium\'s own user agent is answered but dropped as a bot', T, async () => {
  const url = env.web.page('/bot/index.html', tag());
  const page = await env.page({ userAgent: undefined });
  assert.match(await page.evaluate(() => navigator.userAgent), /HeadlessChrome/);
  const answered = edgeAnswer(page);
  await page.goto(url);
  assert.equal((await answered).status(), 202);
  // The answer comes after any append is durable, so a stored event would
  // be visible now.
  assert.deepEqual(await env.eventsUnder(env.web.url + '/bot/'), []);
  await page.context().close();
});
