// harness.js - what the browser tests share: a real alog-edge on loopback
// with its own log directory, a tiny static HTTP server for the test pages,
// headless Chromium through playwright-core, and bounded polling of what
// reached the edge's log (read back with `alog dump DIR --events --json`).
//
// Every wait here has a deadline; nothing asserts on how long anything took.
// Binaries come from ALOG_EDGE and ALOG_CLI (run.sh sets them from its
// arguments); the defaults are the ones in build/.
'use strict';

const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..');
const EDGE_BIN = process.env.ALOG_EDGE || path.join(ROOT, 'build/edge/alog-edge');
const ALOG_BIN = process.env.ALOG_CLI || path.join(ROOT, 'build/log/alog');
const CHROMIUM = process.env.ALOG_CHROMIUM || '/usr/bin/chromium';
const PLAUSIBLE_JS = require.resolve('@plausible-analytics/tracker');

const WAIT_MS = 10000; // every poll gives up after this
const POLL_MS = 100;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll fn() until it returns a truthy value; fail with what() after WAIT_MS.
async function until(fn, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline)
      throw new Error(`gave up after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(POLL_MS);
  }
}

// A port for the edge. alog-edge binds with SO_REUSEPORT, so a second
// process binding the same port would silently share its connections. Other
// tests on this machine take ephemeral ports (listen on port 0: 32768 and
// up); take one below that range that nobody listens on, and check after
// the edge is up that it is the only listener (listeners()).
function freePort() {
  const tryPort = (port) =>
    new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  return (async () => {
    for (;;) {
      const port = 20000 + crypto.randomInt(10000);
      if (await tryPort(port)) return port;
    }
  })();
}

// How many sockets listen on TCP port (IPv4 and IPv6, any address).
function listeners(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 3 && cols[3] === '0A' && cols[1].endsWith(':' + hex)) n++;
    }
  }
  return n;
}

function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.setTimeout(WAIT_MS, () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
  });
}

// ---- The edge -------------------------------------------------------------

class Edge {
  constructor(dir, sites) {
    this.dir = dir;
    this.logDir = path.join(dir, 'log');
    this.sites = sites;
    this.stderr = '';
  }

  async start() {
    // The port is picked free and then handed over, so another process can
    // take it in between: try a few times.
    for (let attempt = 1; ; attempt++) {
      if (attempt > 5) throw new Error(`alog-edge could not get a port of its own:\n${this.stderr}`);
      this.port = await freePort();
      this.url = `http://127.0.0.1:${this.port}`;
      const cfg = {
        listen: `127.0.0.1:${this.port}`,
        workers: 1,
        log: { dir: this.logDir },
        salt_file: path.join(this.dir, 'salt'),
        sites: this.sites,
      };
      fs.writeFileSync(path.join(this.dir, 'edge.json'), JSON.stringify(cfg, null, 2));
      this.proc = spawn(EDGE_BIN, ['--config', path.join(this.dir, 'edge.json')], {
        stdio: ['ignore', 'inherit', 'pipe'],
      });
      this.stderr = '';
      this.proc.stderr.on('data', (d) => (this.stderr += d));
      this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
      let gone = null;
      this.exited.then((r) => (gone = r));
      try {
        await until(async () => {
          if (gone) return true;
          try {
            return (await get(`${this.url}/ready`)).status === 200;
          } catch {
            return false;
          }
        }, 'alog-edge /ready');
      } catch (e) {
        this.proc.kill('SIGKILL');
        throw e;
      }
      if (!gone) {
        if (listeners(this.port) === 1) return this;
        this.proc.kill('SIGKILL'); // sharing its port: start again elsewhere
        await this.exited;
        continue;
      }
      if (!/in use|EADDRINUSE/i.test(this.stderr))
        throw new Error(`alog-edge exited at start (${JSON.stringify(gone)}):\n${this.stderr}`);
    }
  }

  // SIGTERM and wait; the edge must stop cleanly (exit 0: under ASan this
  // also means no leak was reported).
  async stop() {
    if (!this.proc) return null;
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), WAIT_MS);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }

  // Every stored event, decoded by the alog CLI.
  events() {
    return new Promise((resolve, reject) => {
      execFile(ALOG_BIN, ['dump', this.logDir, '--events', '--json'], { maxBuffer: 64 << 20 }, (err, out, errOut) => {
        if (err) return reject(new Error(`alog dump: ${err.message}\n${errOut}`));
        resolve(out.split('\n').filter(Boolean).map((l) => JSON.parse(l)));
      });
    });
  }

  // Poll the log until pred(events) returns something truthy; return that.
  async waitFor(pred, what) {
    let seen = [];
    return until(async () => pred((seen = await this.events())), () => `${what}; the log holds ${JSON.stringify(seen, null, 1)}`);
  }
}

// ---- The static server ------------------------------------------------------

// Serves registered pages (path -> HTML), the Plausible tracker's ES module
// at /plausible.js straight from node_modules, and a blank page otherwise.
class Web {
  constructor() {
    this.pages = new Map();
  }

  async start() {
    this.server = http.createServer((req, res) => {
      const p = new URL(req.url, 'http://x').pathname;
      if (p === '/plausible.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(fs.readFileSync(PLAUSIBLE_JS));
      } else if (this.pages.has(p)) {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(this.pages.get(p));
      } else if (p === '/favicon.ico') {
        res.writeHead(204);
        res.end();
      } else {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end('<!doctype html><title>elsewhere</title><p>elsewhere');
      }
    });
    this.server.keepAliveTimeout = 1000;
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  // Register html at path; returns the page's full URL.
  page(p, html) {
    this.pages.set(p, `<!doctype html><meta charset="utf-8"><title>${p}</title>\n${html}`);
    return this.url + p;
  }

  stop() {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(r));
  }
}

// ---- The browser ----------------------------------------------------------

async function launchBrowser() {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing (apt-get install chromium)`);
  // Playwright gives every launch a fresh temporary --user-data-dir and
  // removes it on close; it never downloads a browser of its own here.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

// A desktop Chrome user agent for this Chromium: its own with "Headless"
// taken out, because the edge drops "HeadlessChrome" as a bot (on purpose).
async function desktopUserAgent(browser) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const ua = await page.evaluate(() => navigator.userAgent);
  await ctx.close();
  return ua.replace('HeadlessChrome', 'Chrome');
}

// Everything one test file needs. setup() in before(), teardown() in after().
class Env {
  async setup() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alog-browser-'));
    this.web = await new Web().start();
    this.edge = await new Edge(this.dir, [{ id: 'test', domains: ['localhost', '127.0.0.1'] }]).start();
    this.browser = await launchBrowser();
    this.userAgent = await desktopUserAgent(this.browser);
    return this;
  }

  // A fresh context (own storage) whose requests to the edge are recorded
  // in page.edgeRequests as {method, url, body}.
  async page(contextOptions = {}) {
    const ctx = await this.browser.newContext({ userAgent: this.userAgent, ...contextOptions });
    ctx.setDefaultTimeout(WAIT_MS);
    const page = await ctx.newPage();
    page.edgeRequests = [];
    page.on('request', (r) => {
      if (r.url().startsWith(this.edge.url + '/api/'))
        page.edgeRequests.push({ method: r.method(), url: r.url(), body: r.postData(), type: r.resourceType() });
    });
    page.consoleErrors = [];
    page.on('pageerror', (e) => page.consoleErrors.push(String(e)));
    return page;
  }

  // Stored events whose url starts with prefix (each test uses its own path).
  async eventsUnder(prefix) {
    return (await this.edge.events()).filter((e) => (e.url || '').startsWith(prefix));
  }

  // Wait until at least n events under prefix are stored; return them all.
  async waitUnder(prefix, n, what = `${n} event(s) under ${prefix}`) {
    return this.edge.waitFor((evs) => {
      const mine = evs.filter((e) => (e.url || '').startsWith(prefix));
      return mine.length >= n && mine;
    }, what);
  }

  async teardown() {
    if (this.browser) await this.browser.close().catch(() => {});
    if (this.web) await this.web.stop();
    let status = null;
    if (this.edge) status = await this.edge.stop();
    if (status && !process.env.ALOG_KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
    if (status)
      assert.deepEqual(status, { code: 0, signal: null }, `alog-edge did not stop cleanly:\n${this.edge.stderr}`);
  }
}

module.exports = { Env, until, get, sleep, WAIT_MS };
