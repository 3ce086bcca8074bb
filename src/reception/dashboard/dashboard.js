// @ts-check
/*
 * The operators' dashboard in the browser (served inline by dashboard.ts, whose page holds every
 * element it looks up). It polls `GET /status` every second and draws it. The status is typed by
 * src/reception/status-view.ts (`tsc -p tsconfig.dashboard.json` checks this file against it),
 * yet every figure is still read defensively: a page left open across an upgrade meets a status
 * with fields it does not know or misses, and a figure then becomes "—" instead of the page
 * breaking. Every string from the status goes in through textContent, never as HTML: item paths
 * and error messages come from content servers and must not inject markup into an operator's
 * browser.
 */
/** @typedef {import('../status-view.js').StatusView} StatusView */
/** @typedef {import('../status-view.js').ServerView} ServerView */
/** @typedef {import('../status-view.js').QueueView} QueueView */
/** @typedef {NonNullable<StatusView['lastAllocation']>} AllocationView */

(() => {
  const POLL_MS = 1000;
  const TIMEOUT_MS = 3000;
  const STALE_MS = 3500;
  /** Slot use below this while anyone waits is the waste the line is meant to prevent. */
  const SLOT_USE_GOAL = 0.95;
  /**
   * @type {{ lastOk: number | null, lastError: string | null, failures: number,
   *   data: StatusView | null, receivedAt: number, offset: number }}
   */
  const conn = { lastOk: null, lastError: null, failures: 0, data: null, receivedAt: 0, offset: 0 };
  /** @type {Record<string, ReturnType<typeof buildCard>>} */
  const cards = {};

  /** @param {string} id */
  function byId(id) {
    const e = document.getElementById(id);
    if (!e) throw new Error(`the page has no #${id}`);
    return e;
  }
  function num(v) {
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  }
  function str(v) {
    return typeof v === 'string' ? v : null;
  }
  /** An ISO 8601 instant of the status, as ms since the epoch. */
  function instant(v) {
    const t = typeof v === 'string' ? Date.parse(v) : Number.NaN;
    return Number.isFinite(t) ? t : null;
  }
  function list(v) {
    return Array.isArray(v) ? v : [];
  }
  function obj(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {};
  }
  function make(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  /**
   * @param {HTMLElement} e
   * @param {unknown} text
   */
  function setText(e, text) {
    const t = text === null || text === undefined ? '\u2014' : String(text);
    if (e.textContent !== t) e.textContent = t;
  }

  function fmtBytes(n) {
    if (n === null) return null;
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) {
      n /= 1000;
      i++;
    }
    return `${i === 0 ? String(Math.round(n)) : n.toFixed(n < 100 ? 1 : 0)} ${units[i]}`;
  }
  /** Memory in binary units, the way memoryLimitMb is configured (MiB). */
  function fmtMem(n) {
    if (n === null) return null;
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return `${i === 0 ? String(Math.round(n)) : n.toFixed(n < 100 ? 1 : 0)} ${units[i]}`;
  }
  function fmtAge(ms) {
    if (ms === null) return null;
    if (ms < 0) ms = 0;
    if (ms < 10000) return `${(ms / 1000).toFixed(1)} s`;
    if (ms < 120000) return `${Math.round(ms / 1000)} s`;
    if (ms < 7200000) return `${Math.round(ms / 60000)} min`;
    return `${Math.round(ms / 3600000)} h`;
  }
  /** @param {number | null} x */
  function fmtPct(x) {
    return x === null ? null : `${Math.round(x * 100)}%`;
  }
  function fmtSeconds(s) {
    if (s === null) return null;
    if (s < 60) return `${Math.round(s)} s`;
    if (s < 3600) return `about ${Math.round(s / 60)} min`;
    return `about ${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  }
  function fmtClock(t) {
    const d = new Date(t);
    function p(n) {
      return (n < 10 ? '0' : '') + n;
    }
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  /** The reception's clock now, as best we know it (ages are computed on its clock). */
  function receptionNow() {
    return Date.now() + conn.offset;
  }
  /** How much older the picture is than when it was taken: ages keep growing while offline. */
  function sinceReceived() {
    return conn.data ? Date.now() - conn.receivedAt : 0;
  }

  /**
   * One word for a server, most serious first, and the detail that explains it.
   * @param {ServerView} s
   */
  function stateOf(s) {
    const health = str(s.health) || 'unknown';
    const cap = num(s.capacity);
    const usable = num(s.usableCapacity);
    const failures = num(s.failures) || 0;
    const since = instant(s.healthSince);
    const forHow = since !== null ? ` for ${fmtAge(receptionNow() - since)}` : '';
    if (health === 'down') {
      return {
        key: 'down',
        label: 'down',
        detail: `down${forHow}${failures ? `, ${failures} failures in a row` : ''}`,
      };
    }
    if (health !== 'up') return { key: 'unknown', label: 'unknown', detail: 'no load report yet' };
    if (s.draining === true)
      return {
        key: 'draining',
        label: 'draining',
        detail: 'shutting down: no new tickets, transfers finishing',
      };
    if (s.suspect === true)
      return {
        key: 'suspect',
        label: 'suspect',
        detail: 'a notice or transfers failed; no new tickets until its next good report',
      };
    if (cap !== null && usable !== null && usable < cap) {
      return {
        key: 'ramping',
        label: 'ramping in',
        detail: `back from down: ${usable} of ${cap} slots usable so far`,
      };
    }
    return {
      key: 'up',
      label: 'up',
      detail: `up${forHow}, taking new tickets${failures ? `; ${failures} failed polls in a row` : ''}`,
    };
  }

  /** @param {ServerView} s */
  function loads(s) {
    let cap = num(s.usableCapacity);
    if (cap === null) cap = num(s.capacity);
    const taken = (num(s.outstanding) || 0) + (num(s.untracked) || 0);
    let slot = num(s.slotLoad);
    if (slot === null && cap !== null) slot = taken / Math.max(1, cap);
    const rss = num(s.rssBytes);
    const limit = num(s.memoryLimitBytes);
    let mem = num(s.memoryShare);
    if (mem === null && rss !== null && limit !== null && limit > 0) mem = rss / limit;
    return { slot: slot, mem: mem, rss: rss, limit: limit };
  }

  function setBar(fill, share) {
    let cls = 'fill';
    if (share === null) cls += ' none';
    else if (share >= 0.9) cls += ' hot';
    else if (share >= 0.7) cls += ' warm';
    if (fill.className !== cls) fill.className = cls;
    fill.style.width = share === null ? '0' : `${Math.min(100, Math.max(0, share * 100)).toFixed(1)}%`;
  }

  function figure(dl, label, field) {
    const d = make('div');
    d.appendChild(make('dt', null, label));
    const dd = make('dd');
    dd.setAttribute('data-field', field);
    d.appendChild(dd);
    dl.appendChild(d);
    return dd;
  }
  function bar(grid, label, field) {
    grid.appendChild(make('span', 'label', label));
    const track = make('div', 'track');
    track.setAttribute('role', 'meter');
    track.setAttribute('aria-label', label);
    const fill = make('div', 'fill');
    track.appendChild(fill);
    grid.appendChild(track);
    const value = make('span', 'value');
    value.setAttribute('data-field', field);
    grid.appendChild(value);
    return { track: track, fill: fill, value: value };
  }

  function buildCard(id) {
    const card = make('article', 'card');
    card.setAttribute('data-server', id);
    const head = make('div', 'card-head');
    head.appendChild(make('h3', 'mono', id));
    const badge = make('span', 'badge');
    badge.setAttribute('data-field', 'state');
    head.appendChild(badge);
    card.appendChild(head);
    const detail = make('p', 'state-detail');
    card.appendChild(detail);
    const bars = make('div', 'bars');
    const load = bar(bars, 'slots', 'load');
    const memory = bar(bars, 'memory', 'memory');
    card.appendChild(bars);
    const dl = make('dl', 'figures');
    const tickets = make('div');
    tickets.appendChild(make('dt', null, 'tickets'));
    const tdd = make('dd');
    const out = make('span');
    out.setAttribute('data-field', 'outstanding');
    const capEl = make('span');
    capEl.setAttribute('data-field', 'capacity');
    tdd.appendChild(out);
    tdd.appendChild(document.createTextNode(' / '));
    tdd.appendChild(capEl);
    tickets.appendChild(tdd);
    dl.appendChild(tickets);
    const f = {
      active: figure(dl, 'serving', 'active'),
      untracked: figure(dl, 'untracked', 'untracked'),
      bytes: figure(dl, 'bytes/s', 'bytes'),
      distance: figure(dl, 'distance', 'distance'),
      age: figure(dl, 'last report', 'report-age'),
      polls: figure(dl, 'polls ok / failed', 'polls'),
      items: figure(dl, 'items', 'items'),
    };
    card.appendChild(dl);
    const verdict = make('p', 'verdict');
    verdict.setAttribute('data-field', 'verdict');
    card.appendChild(verdict);
    const error = make('p', 'error');
    error.setAttribute('data-field', 'error');
    card.appendChild(error);
    return {
      card: card,
      badge: badge,
      detail: detail,
      load: load,
      memory: memory,
      out: out,
      cap: capEl,
      f: f,
      verdict: verdict,
      error: error,
    };
  }

  /** @param {AllocationView} alloc */
  function allocationLabel(alloc) {
    const item = str(alloc.item);
    const at = instant(alloc.at);
    return `latest allocation${item ? `, ${item}` : ''}${at !== null ? `, ${fmtAge(receptionNow() - at)} ago` : ''}:`;
  }

  function verdictFor(id, alloc) {
    const verdicts = list(obj(obj(alloc).allocation).verdicts);
    for (let i = 0; i < verdicts.length; i++) {
      const v = obj(verdicts[i]);
      if (v.server === id) return v;
    }
    return null;
  }

  /**
   * @param {ReturnType<typeof buildCard>} c
   * @param {ServerView} s
   * @param {AllocationView | null} alloc
   */
  function renderCard(c, s, alloc) {
    const st = stateOf(s);
    if (c.card.getAttribute('data-state') !== st.key) c.card.setAttribute('data-state', st.key);
    setText(c.badge, st.label);
    setText(c.detail, st.detail);
    const l = loads(s);
    setBar(c.load.fill, l.slot);
    c.load.track.setAttribute('aria-valuenow', l.slot === null ? '' : String(Math.round(l.slot * 100)));
    setText(c.load.value, fmtPct(l.slot));
    setBar(c.memory.fill, l.mem);
    setText(
      c.memory.value,
      l.limit !== null
        ? `${fmtPct(l.mem)} of ${fmtMem(l.limit)}`
        : l.rss !== null
          ? `${fmtMem(l.rss)}, no limit`
          : null,
    );
    setText(c.out, num(s.outstanding));
    const cap = num(s.usableCapacity);
    const configured = num(s.capacity);
    setText(
      c.cap,
      cap !== null && configured !== null && cap < configured ? `${cap} (of ${configured})` : configured,
    );
    const down = s.health !== 'up';
    setText(c.f.active, down ? null : num(s.active));
    setText(c.f.untracked, num(s.untracked));
    const rate = down ? null : fmtBytes(num(s.bytesPerSecond));
    setText(c.f.bytes, rate === null ? null : `${rate}/s`);
    const dist = num(s.distance);
    const rtt = num(s.rttMs);
    let distText = null;
    if (dist !== null && rtt !== null && dist === rtt) distText = `${rtt.toFixed(1)} ms (measured)`;
    else if (dist !== null) distText = dist + (rtt !== null ? ` (set; rtt ${rtt.toFixed(1)} ms)` : ' (set)');
    setText(c.f.distance, distText);
    const age = num(s.lastReportAgeMs);
    setText(c.f.age, age === null ? 'never' : `${fmtAge(age + sinceReceived())} ago`);
    const polls = obj(s.polls);
    setText(c.f.polls, num(polls.ok) === null ? null : `${num(polls.ok)} / ${num(polls.failed) || 0}`);
    setText(c.f.items, num(s.catalogItems));

    const v = verdictFor(str(s.id), alloc);
    c.verdict.replaceChildren();
    // The verdict is from the moment of that allocation, not now: say which order and when.
    const when = alloc ? allocationLabel(alloc) : null;
    if (when !== null && v !== null) c.verdict.appendChild(make('span', 'when', `${when} `));
    if (v === null) {
      c.verdict.className = 'verdict';
      c.verdict.appendChild(
        make('span', 'muted', alloc ? 'not in the latest allocation' : 'no order allocated yet'),
      );
    } else {
      const reason = str(v.reason) || '';
      const chosen = v.candidate === true && num(v.rank) === 1;
      c.verdict.className = `verdict ${chosen ? 'chosen' : v.candidate === true ? 'candidate' : 'excluded'}`;
      const word = chosen ? 'Chosen' : v.candidate === true ? `Candidate #${num(v.rank)}` : 'Not used';
      c.verdict.appendChild(make('b', null, word));
      c.verdict.appendChild(document.createTextNode(` ${reason.replace(/^(chosen|candidate #\d+): /, '')}`));
    }
    const err = str(s.lastError);
    setText(c.error, err);
    c.error.hidden = !err;
  }

  /** @param {StatusView} d */
  function renderServers(d) {
    const container = byId('rg-servers');
    const servers = list(d.servers);
    const seen = {};
    const alloc = d.lastAllocation && typeof d.lastAllocation === 'object' ? d.lastAllocation : null;
    for (let i = 0; i < servers.length; i++) {
      const s = obj(servers[i]);
      const id = str(s.id);
      if (id === null) continue;
      seen[id] = true;
      let c = cards[id];
      if (!c) {
        c = cards[id] = buildCard(id);
      }
      if (container.children[i] !== c.card) container.insertBefore(c.card, container.children[i] || null);
      renderCard(c, s, alloc);
    }
    for (const k in cards) {
      if (!seen[k]) {
        cards[k].card.remove();
        delete cards[k];
      }
    }
    byId('rg-no-servers').hidden = servers.length > 0;
  }

  /** @param {StatusView} d */
  function renderSummary(d) {
    const servers = list(d.servers).map(obj);
    let up = 0,
      out = 0,
      cap = 0,
      active = 0,
      bytes = 0,
      haveBytes = false;
    servers.forEach((s) => {
      if (s.health === 'up') {
        up++;
        cap += num(s.usableCapacity) ?? num(s.capacity) ?? 0;
        active += num(s.active) || 0;
        const rate = num(s.bytesPerSecond);
        if (rate !== null) {
          bytes += rate;
          haveBytes = true;
        }
      }
      out += num(s.outstanding) || 0;
    });
    setText(byId('rg-sum-up'), `${up} / ${servers.length}`);
    setText(byId('rg-sum-tickets'), `${out} / ${cap}`);
    setText(byId('rg-sum-active'), active);
    setText(byId('rg-sum-bytes'), haveBytes ? `${fmtBytes(bytes)}/s` : null);
    const q = d.queue && typeof d.queue === 'object' ? d.queue : null;
    byId('rg-queue-figures').hidden = q === null;
    byId('rg-no-queue').hidden = q !== null;
    setText(byId('rg-sum-revocations'), num(d.pendingRevocations));
    renderQueue(q);
  }

  /** @param {QueueView | null} q */
  function renderQueue(q) {
    const qq = obj(q);
    const wait = num(qq.estimatedWaitSeconds);
    const range = list(qq.estimatedWaitRangeSeconds).map(num);
    const low = range.length === 2 ? range[0] : null;
    const high = range.length === 2 ? range[1] : null;
    const rate = num(qq.admissionRate);
    const held = num(qq.heldOpen);
    const use = obj(qq.slotUse);
    const useWindow = num(use.window);
    const useRun = num(use.run);
    const windowSeconds = num(use.windowSeconds);
    setText(byId('rg-sum-line'), q ? num(qq.length) : null);
    setText(byId('rg-sum-wait'), wait === null ? null : fmtSeconds(wait));
    setText(byId('rg-sum-admit'), rate === null ? null : `${rate.toFixed(2)}/s`);
    setText(byId('rg-sum-held'), held);
    setText(byId('rg-sum-slot-use'), fmtPct(useWindow));
    markGoal(byId('rg-sum-slot-use'), useWindow);
    setText(byId('rg-line-length'), num(qq.length));
    setText(byId('rg-line-held'), held);
    setText(
      byId('rg-line-wait'),
      wait === null
        ? null
        : fmtSeconds(wait) +
            (low !== null && high !== null
              ? ` (80% between ${fmtSeconds(low)} and ${fmtSeconds(high)})`
              : ''),
    );
    setText(byId('rg-line-admit'), rate === null ? null : `${rate.toFixed(2)} per second`);
    const slotUse = byId('rg-line-slot-use');
    if (!q || (useWindow === null && useRun === null && windowSeconds === null)) setText(slotUse, null);
    else if (useRun === null) setText(slotUse, 'nobody has waited yet');
    else {
      const recent =
        useWindow === null
          ? `nobody waited in the last ${windowSeconds} s`
          : `${fmtPct(useWindow)} over the last ${windowSeconds} s`;
      setText(slotUse, `${recent}; ${fmtPct(useRun)} since start`);
    }
    markGoal(slotUse, useWindow);

    const cal = obj(qq.calibration);
    const samples = num(cal.samples);
    const some = samples !== null && samples > 0;
    setText(
      byId('rg-cal-samples'),
      samples === null ? null : samples === 0 ? 'no admitted waiter yet' : `${samples} waiters`,
    );
    setText(byId('rg-cal-by-estimate'), some ? fmtPct(num(cal.admittedBeforeEstimate)) : null);
    setText(byId('rg-cal-in-range'), some ? fmtPct(num(cal.admittedInRange)) : null);
    const abs = num(cal.medianAbsoluteErrorSeconds);
    setText(byId('rg-cal-abs-error'), some && abs !== null ? `${abs.toFixed(1)} s` : null);
    setText(byId('rg-cal-rel-error'), some ? fmtPct(num(cal.medianRelativeError)) : null);
  }

  /**
   * Flags a slot-use share under the goal (only while someone waited: otherwise there is none).
   * @param {HTMLElement} e
   * @param {number | null} share
   */
  function markGoal(e, share) {
    const below = share !== null && share < SLOT_USE_GOAL;
    if (e.classList.contains('below-goal') !== below) e.classList.toggle('below-goal', below);
  }

  /** @param {StatusView} d */
  function renderAllocation(d) {
    const a = d.lastAllocation && typeof d.lastAllocation === 'object' ? d.lastAllocation : null;
    const box = byId('rg-allocation');
    box.replaceChildren();
    if (!a) {
      box.appendChild(make('p', 'empty', 'No order has been allocated since the reception started.'));
      return;
    }
    const alloc = obj(a.allocation);
    const p = make('p');
    p.appendChild(make('span', 'mono', str(a.item) || '?'));
    const choice = str(alloc.choice);
    p.appendChild(document.createTextNode(choice ? ' \u2192 server ' : ' \u2192 '));
    p.appendChild(make('b', choice ? 'mono' : null, choice || 'busy: no server had room'));
    const at = instant(a.at);
    if (at !== null) p.appendChild(make('span', 'muted', `, ${fmtAge(receptionNow() - at)} ago`));
    const ranked = list(alloc.ranked).filter((x) => typeof x === 'string');
    if (ranked.length > 1) p.appendChild(make('span', 'muted', `. Ranking: ${ranked.join(', ')}.`));
    box.appendChild(p);
  }

  /** @param {StatusView} d */
  function renderExclusions(d) {
    const rows = list(d.exclusions).map(obj);
    const body = byId('rg-exclusions');
    body.replaceChildren();
    rows.forEach((e) => {
      const tr = make('tr');
      tr.setAttribute('data-exclusion', `${str(e.server) || ''} ${str(e.path) || ''}`);
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
    let state = 'connecting';
    const now = Date.now();
    if (conn.lastOk !== null)
      state = conn.lastError ? 'offline' : now - conn.lastOk > STALE_MS ? 'stale' : 'live';
    else if (conn.lastError) state = 'offline';
    const pill = byId('rg-conn');
    if (pill.getAttribute('data-connection') !== state) pill.setAttribute('data-connection', state);
    setText(
      pill,
      { connecting: 'connecting\u2026', live: 'live', stale: 'stale', offline: 'offline' }[state],
    );
    setText(
      byId('rg-updated'),
      conn.lastOk === null ? 'never' : `${fmtClock(conn.lastOk)} (${fmtAge(now - conn.lastOk)} ago)`,
    );
    const banner = byId('rg-banner');
    let text = null;
    if (state === 'offline') {
      text =
        'Cannot reach the reception\u2019s status (' +
        conn.lastError +
        '). ' +
        (conn.lastOk === null
          ? 'Nothing to show yet'
          : `Showing the picture from ${fmtAge(now - conn.lastOk)} ago`) +
        '; retrying every second.';
    } else if (state === 'stale' && conn.lastOk !== null) {
      text = `The reception is slow to answer: the picture is ${fmtAge(now - conn.lastOk)} old.`;
    }
    banner.hidden = text === null;
    banner.className = `banner${state === 'stale' ? ' stale' : ''}`;
    if (text !== null) setText(banner, text);
    byId('rg-main').classList.toggle('stale', state === 'offline' || state === 'stale');
    document.title = (state === 'offline' ? '\u26a0 ' : '') + document.body.getAttribute('data-title');
  }

  function render() {
    renderConnection();
    const d = conn.data;
    if (!d) return;
    renderSummary(d);
    renderServers(d);
    renderAllocation(d);
    renderExclusions(d);
  }

  /**
   * @param {Response} res
   * @param {StatusView} body
   * @param {number} receivedAt
   */
  function clockOffset(res, body, receivedAt) {
    const now = instant(body.now);
    if (now !== null) return now - receivedAt;
    // The Date header has one-second resolution: trust it only when the clocks clearly differ.
    const date = Date.parse(res.headers.get('date') || '');
    return Number.isFinite(date) && Math.abs(date - receivedAt) > 2000 ? date - receivedAt : 0;
  }

  function poll() {
    const started = Date.now();
    const ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = setTimeout(() => {
      if (ctrl) ctrl.abort();
    }, TIMEOUT_MS);
    fetch('status', {
      cache: 'no-store',
      headers: { accept: 'application/json' },
      signal: ctrl ? ctrl.signal : undefined,
    })
      .then((res) => {
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        return res.json().then((body) => {
          if (body === null || typeof body !== 'object' || !Array.isArray(body.servers))
            throw new Error('not a status document');
          /** @type {StatusView} */
          const status = body;
          const at = Date.now();
          conn.offset = clockOffset(res, status, at);
          conn.data = status;
          conn.receivedAt = at;
          conn.lastOk = at;
          conn.lastError = null;
          conn.failures = 0;
        });
      })
      .catch((err) => {
        conn.failures++;
        conn.lastError =
          err && err.name === 'AbortError'
            ? `no answer within ${TIMEOUT_MS / 1000} s`
            : err && err.name === 'TypeError'
              ? 'no connection'
              : err?.message
                ? err.message
                : 'request failed';
      })
      .then(() => {
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
