/* alog tracker: page views (SPA and back/forward-cache too), custom
 * events, outbound links. Nothing is sent under Do-Not-Track, Global
 * Privacy Control or localStorage.alog_ignore = "true". No cookies.
 * <script defer data-domain="example.com" src="https://edge/script.js">
 * (data-api="URL": other endpoint; data-local: count localhost too)
 * alog("Signup", {props, revenue, interactive, url, callback}) as
 * Plausible's plausible(). */
(function (w, d) {
  "use strict";
  var s = d.currentScript, l = w.location, n = w.navigator;
  var attr = function (a) { return s && s.getAttribute(a); };
  var domain = attr("data-domain") || l.hostname;
  var api = attr("data-api") ||
    (s && s.src ? new URL(s.src).origin : "") + "/api/event";
  var local = s && s.hasAttribute("data-local");
  var last;
  function off() {
    try { if (w.localStorage.alog_ignore === "true") return 1; } catch (e) {}
    return n.doNotTrack === "1" || w.doNotTrack === "1" ||
      n.msDoNotTrack === "1" || n.globalPrivacyControl === true ||
      !local && (/^localhost$|^127\.|^\[::1\]$/.test(l.hostname) ||
        l.protocol === "file:");
  }
  function send(name, o) {
    o = o || {};
    var cb = o.callback || function () {};
    if (off()) return cb();
    var b = { n: name, u: o.url || o.u || l.href, d: domain, r: d.referrer || null };
    if (o.props) b.p = o.props;
    if (o.revenue) b.revenue = o.revenue;
    if (o.interactive === false) b.i = false;
    var body = JSON.stringify(b);
    /* A beacon outlives the page (outbound clicks); its answer is unseen. */
    if (!o.callback && n.sendBeacon &&
        n.sendBeacon(api, new Blob([body], { type: "text/plain" }))) return;
    var x = new XMLHttpRequest();
    x.open("POST", api, true);
    x.setRequestHeader("Content-Type", "text/plain");
    x.onloadend = function () { cb({ status: x.status }); };
    x.send(body);
  }
  function page() {
    if (last === l.pathname + l.search) return;
    last = l.pathname + l.search;
    send("pageview");
  }
  var hp = w.history.pushState;
  if (hp) {
    w.history.pushState = function () { hp.apply(this, arguments); page(); };
    w.addEventListener("popstate", page);
  }
  w.addEventListener("pageshow", function (e) {
    if (e.persisted) { last = 0; page(); }
  });
  function click(e) {
    var a = e.target.closest && e.target.closest("a[href]");
    if (a && a.host && a.host !== l.host && /^https?:/.test(a.protocol) &&
        (e.type === "click" || e.button === 1))
      send("Outbound Link: Click", { props: { url: a.href } });
  }
  d.addEventListener("click", click);
  d.addEventListener("auxclick", click);
  var q = w.alog && w.alog.q || [];
  w.alog = function (name, o) { send(name, o); };
  if (d.visibilityState === "prerender")
    d.addEventListener("visibilitychange", function v() {
      if (d.visibilityState === "visible") { page(); d.removeEventListener("visibilitychange", v); }
    });
  else page();
  for (var i = 0; i < q.length; i++) w.alog.apply(w, q[i]);
})(window, document);
