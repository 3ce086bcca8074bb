/**
 * The operators' live dashboard (CONTRACT §6: `GET /dashboard` on the reception's internal port):
 * one self-contained HTML page — inline style and script, nothing fetched from anywhere else, a
 * Content-Security-Policy that forbids it — that polls the internal API's `GET /status` every
 * second and draws what the load condition monitor (the seed's module 132) and the allocator
 * (module 133) see: a card per content server (up, down, draining, ramping in, suspect; slot load
 * and memory share; outstanding tickets against capacity; clients being served; bytes/s;
 * distance; age of its last load report; the latest allocation's verdict on it, the way
 * mirrorbits' `?mirrorlist` explains itself), the waiting line, and the item copies that disagree
 * with the majority. When polling fails the page says so and greys the last picture out rather
 * than showing old numbers as if they were live. The script reads every field defensively, so a
 * status that gains or loses fields degrades a figure to "—" instead of breaking the page; fields
 * the status does not carry yet (`bytesPerSecond`, `memoryLimitBytes`, `healthSince`,
 * `queue.estimatedWaitSeconds`, `now`) are shown as soon as it does. Pure: this module only
 * builds a string; the internal API serves it.
 */

export interface DashboardOptions {
  /** Shown in the heading and the window title; defaults to "rushgate reception". */
  title?: string;
}

const escapeHtml = (s: string): string =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

/**
 * Everything the page may load: its own inline style and script, and `status` on its own origin.
 * `default-src 'none'` is what makes "no CDN" hold even if someone edits the page later.
 */
const CSP =
  "default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; " +
  "img-src data:; base-uri 'none'; form-action 'none'";

const STYLE = `:root {
  color-scheme: light dark;
  --bg: #f4f6f8; --card: #ffffff; --text: #1d2330; --muted: #5a6478; --line: #d8dee6; --track: #e6eaef;
  --up: #1a7f37; --up-bg: #dafbe1; --down: #c6262e; --down-bg: #ffe3e1;
  --drain: #8a5a00; --drain-bg: #fff3c4; --ramp: #0b63c5; --ramp-bg: #dcefff;
  --suspect: #b34700; --suspect-bg: #ffe9d6; --unknown: #57606a; --unknown-bg: #eaeef2;
  --ok: #2da44e; --warm: #d4a72c; --hot: #d1242f;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 15px; line-height: 1.45;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #0f1319; --card: #171c24; --text: #e7ebf2; --muted: #a3adbf; --line: #2b3340; --track: #262e3a;
    --up: #4ac26b; --up-bg: #12361f; --down: #ff7b72; --down-bg: #4a1618; --drain: #e3b341; --drain-bg: #3b2e05;
    --ramp: #6cb6ff; --ramp-bg: #0d2d52; --suspect: #ffa657; --suspect-bg: #452206; --unknown: #a3adbf; --unknown-bg: #262e3a; }
}
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--text); }
body { padding: 1rem 1.25rem 2rem; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; margin-bottom: .75rem; }
h1 { font-size: 1.3rem; margin: 0; flex: 1 1 auto; }
h2 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
.mono, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .92em; }
.muted { color: var(--muted); }
.conn { display: inline-flex; align-items: center; gap: .4rem; font-weight: 600; padding: .2rem .7rem; border-radius: 999px;
  background: var(--unknown-bg); color: var(--unknown); }
.conn::before { content: ""; width: .6rem; height: .6rem; border-radius: 50%; background: currentColor; }
.conn[data-connection="live"] { background: var(--up-bg); color: var(--up); }
.conn[data-connection="stale"] { background: var(--drain-bg); color: var(--drain); }
.conn[data-connection="offline"] { background: var(--down-bg); color: var(--down); }
.banner { border-radius: .6rem; padding: .6rem .9rem; margin: 0 0 .75rem; font-weight: 600;
  background: var(--down-bg); color: var(--down); border: 1px solid currentColor; }
.banner.stale { background: var(--drain-bg); color: var(--drain); }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(9.5rem, 1fr)); gap: .5rem; margin: 0; }
.summary div { background: var(--card); border: 1px solid var(--line); border-radius: .6rem; padding: .45rem .7rem; }
.summary dt { font-size: .78rem; color: var(--muted); }
.summary dd { margin: 0; font-size: 1.2rem; font-weight: 650; font-variant-numeric: tabular-nums; }
.servers { display: grid; grid-template-columns: repeat(auto-fill, minmax(24rem, 1fr)); gap: .75rem; }
.card { background: var(--card); border: 1px solid var(--line); border-left: .4rem solid var(--unknown); border-radius: .6rem;
  padding: .7rem .9rem; }
.card-head { display: flex; align-items: center; justify-content: space-between; gap: .5rem; margin-bottom: .4rem; }
.card-head h3 { margin: 0; font-size: 1.15rem; }
.badge { font-weight: 700; font-size: .8rem; letter-spacing: .04em; text-transform: uppercase; padding: .15rem .6rem;
  border-radius: 999px; background: var(--unknown-bg); color: var(--unknown); }
.card[data-state="up"] { border-left-color: var(--up); }
.card[data-state="up"] .badge { background: var(--up-bg); color: var(--up); }
.card[data-state="down"] { border-left-color: var(--down); background: linear-gradient(var(--down-bg), var(--card) 4rem); }
.card[data-state="down"] .badge { background: var(--down); color: #fff; }
.card[data-state="draining"] { border-left-color: var(--drain); }
.card[data-state="draining"] .badge { background: var(--drain-bg); color: var(--drain); }
.card[data-state="ramping"] { border-left-color: var(--ramp); }
.card[data-state="ramping"] .badge { background: var(--ramp-bg); color: var(--ramp); }
.card[data-state="suspect"] { border-left-color: var(--suspect); }
.card[data-state="suspect"] .badge { background: var(--suspect-bg); color: var(--suspect); }
.card[data-state="down"] .figures, .card[data-state="down"] .bars { opacity: .6; }
.state-detail { font-size: .85rem; color: var(--muted); margin: -.2rem 0 .4rem; min-height: 1.2em; }
.bars { display: grid; grid-template-columns: 4.2rem 1fr 8.5rem; align-items: center; gap: .25rem .5rem; margin: .2rem 0 .5rem; }
.bars .label { font-size: .82rem; color: var(--muted); }
.bars .value { font-size: .85rem; text-align: right; font-variant-numeric: tabular-nums; }
.track { height: .7rem; background: var(--track); border-radius: .35rem; overflow: hidden; }
.fill { height: 100%; width: 0; background: var(--ok); border-radius: .35rem; }
.fill.warm { background: var(--warm); }
.fill.hot { background: var(--hot); }
.fill.none { background: transparent; }
.figures { display: grid; grid-template-columns: repeat(2, 1fr); gap: .15rem 1rem; margin: 0; }
.figures div { display: flex; justify-content: space-between; gap: .5rem; border-bottom: 1px dotted var(--line); padding: .1rem 0; }
.figures dt { color: var(--muted); font-size: .85rem; white-space: nowrap; }
.figures dd { margin: 0; font-variant-numeric: tabular-nums; text-align: right; white-space: nowrap; }
.verdict { margin: .55rem 0 0; padding: .4rem .6rem; border-radius: .4rem; font-size: .85rem; background: var(--bg); }
.verdict .when { display: block; font-size: .78rem; color: var(--muted); margin-bottom: .1rem; }
.verdict.chosen { background: var(--up-bg); }
.verdict.excluded { background: var(--unknown-bg); }
.error { margin: .4rem 0 0; font-size: .82rem; color: var(--down); word-break: break-word; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: .6rem; overflow: hidden; }
th, td { text-align: left; padding: .4rem .7rem; border-bottom: 1px solid var(--line); vertical-align: top; font-size: .9rem; }
th { font-size: .78rem; color: var(--muted); font-weight: 600; background: var(--bg); }
td.path { word-break: break-all; }
.queue-figures { max-width: 44rem; }
.empty { color: var(--muted); margin: .2rem 0; }
main.stale { filter: grayscale(1); opacity: .55; }
@media (max-width: 28rem) { .servers { grid-template-columns: 1fr; } .figures { grid-template-columns: 1fr; } }
`;

/*
 * The browser side. Plain ES2017 with no template literals, so that it can live in this
 * String.raw template untouched (no `${…}` and no backtick inside). Every string from the status
 * goes into the page through textContent, never as HTML: item paths and error messages come from
 * content servers and must not be able to inject markup into an operator's browser.
 */
const SCRIPT = String.raw`(function () {
  'use strict';
  var POLL_MS = 1000;
  var TIMEOUT_MS = 3000;
  var STALE_MS = 3500;
  var conn = { lastOk: null, lastError: null, failures: 0, data: null, receivedAt: 0, offset: 0 };
  var cards = {};

  function byId(id) { return document.getElementById(id); }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }
  function str(v) { return typeof v === 'string' ? v : null; }
  function list(v) { return Array.isArray(v) ? v : []; }
  function obj(v) { return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {}; }
  function make(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function setText(e, text) { var t = text === null || text === undefined ? '\u2014' : String(text); if (e.textContent !== t) e.textContent = t; }

  function fmtBytes(n) {
    if (n === null) return null;
    var units = ['B', 'kB', 'MB', 'GB', 'TB'];
    var i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 100 ? 1 : 0)) + ' ' + units[i];
  }
  /** Memory in binary units, the way memoryLimitMb is configured (MiB). */
  function fmtMem(n) {
    if (n === null) return null;
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 100 ? 1 : 0)) + ' ' + units[i];
  }
  function fmtAge(ms) {
    if (ms === null) return null;
    if (ms < 0) ms = 0;
    if (ms < 10000) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 120000) return Math.round(ms / 1000) + ' s';
    if (ms < 7200000) return Math.round(ms / 60000) + ' min';
    return Math.round(ms / 3600000) + ' h';
  }
  function fmtPct(x) { return x === null ? null : Math.round(x * 100) + '%'; }
  function fmtSeconds(s) {
    if (s === null) return null;
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return 'about ' + Math.round(s / 60) + ' min';
    return 'about ' + Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
  }
  function fmtClock(t) {
    var d = new Date(t);
    function p(n) { return (n < 10 ? '0' : '') + n; }
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }
  /** The reception's clock now, as best we know it (ages are computed on its clock). */
  function receptionNow() { return Date.now() + conn.offset; }
  /** How much older the picture is than when it was taken: ages keep growing while offline. */
  function sinceReceived() { return conn.data ? Date.now() - conn.receivedAt : 0; }

  /** One word for a server, most serious first, and the detail that explains it. */
  function stateOf(s) {
    var health = str(s.health) || 'unknown';
    var cap = num(s.capacity);
    var usable = num(s.usableCapacity);
    var failures = num(s.failures) || 0;
    var since = num(s.healthSince);
    var forHow = since !== null ? ' for ' + fmtAge(receptionNow() - since) : '';
    if (health === 'down') {
      return { key: 'down', label: 'down', detail: 'down' + forHow + (failures ? ', ' + failures + ' failures in a row' : '') };
    }
    if (health !== 'up') return { key: 'unknown', label: 'unknown', detail: 'no load report yet' };
    if (s.draining === true) return { key: 'draining', label: 'draining', detail: 'shutting down: no new tickets, transfers finishing' };
    if (s.suspect === true) return { key: 'suspect', label: 'suspect', detail: 'a notice or transfers failed; no new tickets until its next good report' };
    if (cap !== null && usable !== null && usable < cap) {
      return { key: 'ramping', label: 'ramping in', detail: 'back from down: ' + usable + ' of ' + cap + ' slots usable so far' };
    }
    return { key: 'up', label: 'up', detail: 'up' + forHow + ', taking new tickets' + (failures ? '; ' + failures + ' failed polls in a row' : '') };
  }

  function loads(s) {
    var cap = num(s.usableCapacity);
    if (cap === null) cap = num(s.capacity);
    var taken = (num(s.outstanding) || 0) + (num(s.untracked) || 0);
    var slot = num(s.slotLoad);
    if (slot === null && cap !== null) slot = taken / Math.max(1, cap);
    var rss = num(s.rssBytes);
    var limit = num(s.memoryLimitBytes);
    var mem = num(s.memoryShare);
    if (mem === null && rss !== null && limit !== null && limit > 0) mem = rss / limit;
    return { slot: slot, mem: mem, rss: rss, limit: limit };
  }

  function setBar(fill, share) {
    var cls = 'fill';
    if (share === null) cls += ' none';
    else if (share >= 0.9) cls += ' hot';
    else if (share >= 0.7) cls += ' warm';
    if (fill.className !== cls) fill.className = cls;
    fill.style.width = share === null ? '0' : Math.min(100, Math.max(0, share * 100)).toFixed(1) + '%';
  }

  function figure(dl, label, field) {
    var d = make('div');
    d.appendChild(make('dt', null, label));
    var dd = make('dd');
    dd.setAttribute('data-field', field);
    d.appendChild(dd);
    dl.appendChild(d);
    return dd;
  }
  function bar(grid, label, field) {
    grid.appendChild(make('span', 'label', label));
    var track = make('div', 'track');
    track.setAttribute('role', 'meter');
    track.setAttribute('aria-label', label);
    var fill = make('div', 'fill');
    track.appendChild(fill);
    grid.appendChild(track);
    var value = make('span', 'value');
    value.setAttribute('data-field', field);
    grid.appendChild(value);
    return { track: track, fill: fill, value: value };
  }

  function buildCard(id) {
    var card = make('article', 'card');
    card.setAttribute('data-server', id);
    var head = make('div', 'card-head');
    head.appendChild(make('h3', 'mono', id));
    var badge = make('span', 'badge');
    badge.setAttribute('data-field', 'state');
    head.appendChild(badge);
    card.appendChild(head);
    var detail = make('p', 'state-detail');
    card.appendChild(detail);
    var bars = make('div', 'bars');
    var load = bar(bars, 'slots', 'load');
    var memory = bar(bars, 'memory', 'memory');
    card.appendChild(bars);
    var dl = make('dl', 'figures');
    var tickets = make('div');
    tickets.appendChild(make('dt', null, 'tickets'));
    var tdd = make('dd');
    var out = make('span');
    out.setAttribute('data-field', 'outstanding');
    var capEl = make('span');
    capEl.setAttribute('data-field', 'capacity');
    tdd.appendChild(out);
    tdd.appendChild(document.createTextNode(' / '));
    tdd.appendChild(capEl);
    tickets.appendChild(tdd);
    dl.appendChild(tickets);
    var f = {
      active: figure(dl, 'serving', 'active'),
      untracked: figure(dl, 'untracked', 'untracked'),
      bytes: figure(dl, 'bytes/s', 'bytes'),
      distance: figure(dl, 'distance', 'distance'),
      age: figure(dl, 'last report', 'report-age'),
      polls: figure(dl, 'polls ok / failed', 'polls'),
      items: figure(dl, 'items', 'items'),
    };
    card.appendChild(dl);
    var verdict = make('p', 'verdict');
    verdict.setAttribute('data-field', 'verdict');
    card.appendChild(verdict);
    var error = make('p', 'error');
    error.setAttribute('data-field', 'error');
    card.appendChild(error);
    return { card: card, badge: badge, detail: detail, load: load, memory: memory, out: out, cap: capEl, f: f, verdict: verdict, error: error };
  }

  function allocationLabel(alloc) {
    var item = str(alloc.item);
    var at = num(alloc.at);
    return 'latest allocation' + (item ? ', ' + item : '') + (at !== null ? ', ' + fmtAge(receptionNow() - at) + ' ago' : '') + ':';
  }

  function verdictFor(id, alloc) {
    var verdicts = list(obj(obj(alloc).allocation).verdicts);
    for (var i = 0; i < verdicts.length; i++) {
      var v = obj(verdicts[i]);
      if (v.server === id) return v;
    }
    return null;
  }

  function renderCard(c, s, alloc) {
    var st = stateOf(s);
    if (c.card.getAttribute('data-state') !== st.key) c.card.setAttribute('data-state', st.key);
    setText(c.badge, st.label);
    setText(c.detail, st.detail);
    var l = loads(s);
    setBar(c.load.fill, l.slot);
    c.load.track.setAttribute('aria-valuenow', l.slot === null ? '' : String(Math.round(l.slot * 100)));
    setText(c.load.value, fmtPct(l.slot));
    setBar(c.memory.fill, l.mem);
    setText(c.memory.value, l.limit !== null ? fmtPct(l.mem) + ' of ' + fmtMem(l.limit) : l.rss !== null ? fmtMem(l.rss) + ', no limit' : null);
    setText(c.out, num(s.outstanding));
    var cap = num(s.usableCapacity);
    var configured = num(s.capacity);
    setText(c.cap, cap !== null && configured !== null && cap < configured ? cap + ' (of ' + configured + ')' : configured);
    var down = s.health !== 'up';
    setText(c.f.active, down ? null : num(s.active));
    setText(c.f.untracked, num(s.untracked));
    var rate = down ? null : fmtBytes(num(s.bytesPerSecond));
    setText(c.f.bytes, rate === null ? null : rate + '/s');
    var dist = num(s.distance);
    var rtt = num(s.rttMs);
    var distText = null;
    if (dist !== null && rtt !== null && dist === rtt) distText = rtt.toFixed(1) + ' ms (measured)';
    else if (dist !== null) distText = dist + (rtt !== null ? ' (set; rtt ' + rtt.toFixed(1) + ' ms)' : ' (set)');
    setText(c.f.distance, distText);
    var age = num(s.lastReportAgeMs);
    setText(c.f.age, age === null ? 'never' : fmtAge(age + sinceReceived()) + ' ago');
    var polls = obj(s.polls);
    setText(c.f.polls, num(polls.ok) === null ? null : num(polls.ok) + ' / ' + (num(polls.failed) || 0));
    setText(c.f.items, num(s.catalogItems));

    var v = verdictFor(str(s.id), alloc);
    c.verdict.replaceChildren();
    // The verdict is from the moment of that allocation, not now: say which order and when.
    var when = alloc ? allocationLabel(alloc) : null;
    if (when !== null && v !== null) c.verdict.appendChild(make('span', 'when', when + ' '));
    if (v === null) {
      c.verdict.className = 'verdict';
      c.verdict.appendChild(make('span', 'muted', alloc ? 'not in the latest allocation' : 'no order allocated yet'));
    } else {
      var reason = str(v.reason) || '';
      var chosen = v.candidate === true && num(v.rank) === 1;
      c.verdict.className = 'verdict ' + (chosen ? 'chosen' : v.candidate === true ? 'candidate' : 'excluded');
      var word = chosen ? 'Chosen' : v.candidate === true ? 'Candidate #' + num(v.rank) : 'Not used';
      c.verdict.appendChild(make('b', null, word));
      c.verdict.appendChild(document.createTextNode(' ' + reason.replace(/^(chosen|candidate #\d+): /, '')));
    }
    var err = str(s.lastError);
    setText(c.error, err);
    c.error.hidden = !err;
  }

  function renderServers(d) {
    var container = byId('rg-servers');
    var servers = list(d.servers);
    var seen = {};
    var alloc = d.lastAllocation && typeof d.lastAllocation === 'object' ? d.lastAllocation : null;
    for (var i = 0; i < servers.length; i++) {
      var s = obj(servers[i]);
      var id = str(s.id);
      if (id === null) continue;
      seen[id] = true;
      var c = cards[id];
      if (!c) { c = cards[id] = buildCard(id); }
      if (container.children[i] !== c.card) container.insertBefore(c.card, container.children[i] || null);
      renderCard(c, s, alloc);
    }
    for (var k in cards) {
      if (!seen[k]) { cards[k].card.remove(); delete cards[k]; }
    }
    byId('rg-no-servers').hidden = servers.length > 0;
  }

  function renderSummary(d) {
    var servers = list(d.servers).map(obj);
    var up = 0, out = 0, cap = 0, active = 0, bytes = 0, haveBytes = false;
    servers.forEach(function (s) {
      if (s.health === 'up') {
        up++;
        cap += num(s.usableCapacity) !== null ? num(s.usableCapacity) : num(s.capacity) || 0;
        active += num(s.active) || 0;
        if (num(s.bytesPerSecond) !== null) { bytes += num(s.bytesPerSecond); haveBytes = true; }
      }
      out += num(s.outstanding) || 0;
    });
    setText(byId('rg-sum-up'), up + ' / ' + servers.length);
    setText(byId('rg-sum-tickets'), out + ' / ' + cap);
    setText(byId('rg-sum-active'), active);
    setText(byId('rg-sum-bytes'), haveBytes ? fmtBytes(bytes) + '/s' : null);
    var q = d.queue && typeof d.queue === 'object' ? d.queue : null;
    byId('rg-queue-figures').hidden = q === null;
    byId('rg-no-queue').hidden = q !== null;
    var qq = obj(q);
    setText(byId('rg-sum-line'), q ? num(qq.length) : null);
    var wait = num(qq.estimatedWaitSeconds);
    setText(byId('rg-sum-wait'), wait === null ? null : fmtSeconds(wait));
    var rate = num(qq.admissionRate);
    setText(byId('rg-sum-admit'), rate === null ? null : rate.toFixed(2) + '/s');
    setText(byId('rg-sum-revocations'), num(d.pendingRevocations));
    setText(byId('rg-line-length'), num(qq.length));
    setText(byId('rg-line-wait'), wait === null ? null : fmtSeconds(wait));
    setText(byId('rg-line-admit'), rate === null ? null : rate.toFixed(2) + ' per second');
    var cal = obj(qq.calibration);
    var samples = num(cal.samples);
    setText(byId('rg-line-calibration'), samples === null ? null : samples === 0 ? 'no admitted waiter yet'
      : fmtPct(num(cal.admittedBeforeEstimate)) + ' admitted within their first estimate; median error ' +
        (num(cal.medianAbsoluteErrorSeconds) || 0).toFixed(1) + ' s (' + samples + ' waiters)');
  }

  function renderAllocation(d) {
    var a = d.lastAllocation && typeof d.lastAllocation === 'object' ? d.lastAllocation : null;
    var box = byId('rg-allocation');
    box.replaceChildren();
    if (!a) { box.appendChild(make('p', 'empty', 'No order has been allocated since the reception started.')); return; }
    var alloc = obj(a.allocation);
    var p = make('p');
    p.appendChild(make('span', 'mono', str(a.item) || '?'));
    var choice = str(alloc.choice);
    p.appendChild(document.createTextNode(choice ? ' \u2192 server ' : ' \u2192 '));
    p.appendChild(make('b', choice ? 'mono' : null, choice || 'busy: no server had room'));
    var at = num(a.at);
    if (at !== null) p.appendChild(make('span', 'muted', ', ' + fmtAge(receptionNow() - at) + ' ago'));
    var ranked = list(alloc.ranked).filter(function (x) { return typeof x === 'string'; });
    if (ranked.length > 1) p.appendChild(make('span', 'muted', '. Ranking: ' + ranked.join(', ') + '.'));
    box.appendChild(p);
  }

  function renderExclusions(d) {
    var rows = list(d.exclusions).map(obj);
    var body = byId('rg-exclusions');
    body.replaceChildren();
    rows.forEach(function (e) {
      var tr = make('tr');
      tr.setAttribute('data-exclusion', (str(e.server) || '') + ' ' + (str(e.path) || ''));
      tr.appendChild(make('td', 'mono', str(e.server) || '?'));
      tr.appendChild(make('td', 'mono path', str(e.path) || '?'));
      tr.appendChild(make('td', null, str(e.reason) || ''));
      body.appendChild(tr);
    });
    byId('rg-exclusions-table').hidden = rows.length === 0;
    byId('rg-no-exclusions').hidden = rows.length > 0;
    setText(byId('rg-exclusions-count'), rows.length);
  }

  function renderConnection() {
    var state = 'connecting';
    var now = Date.now();
    if (conn.lastOk !== null) state = conn.lastError ? 'offline' : now - conn.lastOk > STALE_MS ? 'stale' : 'live';
    else if (conn.lastError) state = 'offline';
    var pill = byId('rg-conn');
    if (pill.getAttribute('data-connection') !== state) pill.setAttribute('data-connection', state);
    setText(pill, { connecting: 'connecting\u2026', live: 'live', stale: 'stale', offline: 'offline' }[state]);
    setText(byId('rg-updated'), conn.lastOk === null ? 'never'
      : fmtClock(conn.lastOk) + ' (' + fmtAge(now - conn.lastOk) + ' ago)');
    var banner = byId('rg-banner');
    var text = null;
    if (state === 'offline') {
      text = 'Cannot reach the reception\u2019s status (' + conn.lastError + '). ' +
        (conn.lastOk === null ? 'Nothing to show yet' : 'Showing the picture from ' + fmtAge(now - conn.lastOk) + ' ago') +
        '; retrying every second.';
    } else if (state === 'stale') {
      text = 'The reception is slow to answer: the picture is ' + fmtAge(now - conn.lastOk) + ' old.';
    }
    banner.hidden = text === null;
    banner.className = 'banner' + (state === 'stale' ? ' stale' : '');
    if (text !== null) setText(banner, text);
    byId('rg-main').classList.toggle('stale', state === 'offline' || state === 'stale');
    document.title = (state === 'offline' ? '\u26a0 ' : '') + document.body.getAttribute('data-title');
  }

  function render() {
    renderConnection();
    var d = conn.data;
    if (!d) return;
    renderSummary(d);
    renderServers(d);
    renderAllocation(d);
    renderExclusions(d);
  }

  function clockOffset(res, body, receivedAt) {
    var now = num(body.now);
    if (now !== null) return now - receivedAt;
    // The Date header has one-second resolution: trust it only when the clocks clearly differ.
    var date = Date.parse(res.headers.get('date') || '');
    return isFinite(date) && Math.abs(date - receivedAt) > 2000 ? date - receivedAt : 0;
  }

  function poll() {
    var started = Date.now();
    var ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctrl) ctrl.abort(); }, TIMEOUT_MS);
    fetch('status', { cache: 'no-store', headers: { accept: 'application/json' }, signal: ctrl ? ctrl.signal : undefined })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json().then(function (body) {
          if (body === null || typeof body !== 'object' || !Array.isArray(body.servers)) throw new Error('not a status document');
          var at = Date.now();
          conn.offset = clockOffset(res, body, at);
          conn.data = body;
          conn.receivedAt = at;
          conn.lastOk = at;
          conn.lastError = null;
          conn.failures = 0;
        });
      })
      .catch(function (err) {
        conn.failures++;
        conn.lastError = err && err.name === 'AbortError' ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s'
          : err && err.name === 'TypeError' ? 'no connection'
          : err && err.message ? err.message : 'request failed';
      })
      .then(function () {
        clearTimeout(timer);
        render();
        setTimeout(poll, Math.max(0, POLL_MS - (Date.now() - started)));
      });
  }

  document.documentElement.classList.add('js');
  setInterval(renderConnection, 500);
  render();
  poll();
})();
`;

export function renderDashboard(opts: DashboardOptions = {}): string {
  const title = escapeHtml(opts.title ?? 'rushgate reception');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${title} — dashboard</title>
<style>
${STYLE}</style>
</head>
<body data-title="${title} — dashboard">
<header>
  <h1>${title} <span class="muted">— live dashboard</span></h1>
  <span id="rg-conn" class="conn" data-connection="connecting" role="status" aria-live="polite">connecting…</span>
  <span class="muted">last updated <span id="rg-updated">never</span></span>
</header>
<p id="rg-banner" class="banner" role="alert" hidden></p>
<noscript><p class="banner">This dashboard needs JavaScript. The raw picture is at <a href="status">status</a>.</p></noscript>
<main id="rg-main">
<dl class="summary" aria-label="Totals">
  <div><dt>servers up</dt><dd id="rg-sum-up">—</dd></div>
  <div><dt>tickets / usable slots</dt><dd id="rg-sum-tickets">—</dd></div>
  <div><dt>clients being served</dt><dd id="rg-sum-active">—</dd></div>
  <div><dt>throughput</dt><dd id="rg-sum-bytes">—</dd></div>
  <div><dt>waiting in line</dt><dd id="rg-sum-line">—</dd></div>
  <div><dt>estimated wait</dt><dd id="rg-sum-wait">—</dd></div>
  <div><dt>admissions</dt><dd id="rg-sum-admit">—</dd></div>
  <div><dt>pending revocations</dt><dd id="rg-sum-revocations">—</dd></div>
</dl>

<h2>Content servers</h2>
<div id="rg-servers" class="servers" aria-live="off"></div>
<p id="rg-no-servers" class="empty" hidden>The status lists no content servers.</p>

<h2>Latest allocation</h2>
<div id="rg-allocation" data-section="allocation"><p class="empty">Waiting for the first status…</p></div>

<h2>Waiting line</h2>
<div data-section="queue">
<dl id="rg-queue-figures" class="figures queue-figures">
  <div><dt>waiting</dt><dd id="rg-line-length">—</dd></div>
  <div><dt>estimated wait</dt><dd id="rg-line-wait">—</dd></div>
  <div><dt>admitted</dt><dd id="rg-line-admit">—</dd></div>
  <div><dt>calibration</dt><dd id="rg-line-calibration">—</dd></div>
</dl>
<p id="rg-no-queue" class="empty" hidden>The status says nothing about a waiting line.</p>
</div>

<h2>Item copies that disagree (<span id="rg-exclusions-count">0</span>)</h2>
<div data-section="exclusions">
<p id="rg-no-exclusions" class="empty">Every server's copy of every item agrees with the majority.</p>
<table id="rg-exclusions-table" hidden>
  <thead><tr><th>server</th><th>item</th><th>why that copy is not used</th></tr></thead>
  <tbody id="rg-exclusions"></tbody>
</table>
</div>
</main>
<script>
${SCRIPT}</script>
</body>
</html>
`;
}
