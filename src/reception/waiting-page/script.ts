/**
 * The waiting page's script, served as `/_rushgate/waiting.js` (the seed's Sc55–Sc56 for a
 * browser, and the "notifying a user of success of connection by sounds" remark that follows).
 * It turns the static page into a live one: a countdown to the next try, the position refreshed
 * from `GET /api/queue/{token}`, the retry itself (`POST /api/orders` with the queue token and
 * `Prefer: wait=N`, CONTRACT §3 "Admission without delay": the reception holds it open and answers
 * the moment it is this client's turn), and, once admitted, a chime (Web Audio), a notification
 * where the user allowed one, and the download started in a hidden frame while the page stays to
 * say so. A busy answer to a held request (`Preference-Applied`) is followed by the next held
 * request at once; the first one goes at once too, to learn whether the reception holds; one
 * that does not is retried at `Retry-After`, never sooner, as before.
 *
 * It is plain ES2017 kept in a string so that `tsc` ships it without a bundler or a copy step; it
 * reads everything it needs from `data-*` attributes of `#rushgate-wait` (the queue cookie is
 * HttpOnly, so the token comes from the markup). Without JavaScript the page's `<noscript>` meta
 * refresh does the retrying instead.
 */
export const WAITING_SCRIPT = `(function () {
  'use strict';
  var root = document.getElementById('rushgate-wait');
  if (!root) return;
  document.documentElement.classList.add('js');

  var data = root.dataset;
  var state = {
    token: data.queueToken || '',
    item: data.item || '',
    retryUrl: data.retryUrl || '/',
    position: Number(data.position) || 0,
    estimate: Number(data.estimate) || 0,
    range: rangeOf(data.rangeLow, data.rangeHigh),
    retryAfter: Math.max(1, Number(data.retryAfter) || 1),
    // The first held request goes at once: whether the reception holds is learned from its answer.
    dueAt: Date.now(),
    heldUntil: 0,
    inFlight: false,
    done: false,
    lastPoll: Date.now()
  };
  var POLL_MS = 3000;
  var TICK_MS = 250;
  // As rushgate get: the longest hold, since a held request is answered the moment the page is
  // admitted (the reception applies at most its maxRetryAfterSeconds).
  var MAX_HOLD_S = 30;

  function rangeOf(low, high) {
    var lo = Number(low), hi = Number(high);
    if (low === undefined || high === undefined || low === null || high === null) return null;
    if (!isFinite(lo) || !isFinite(hi) || lo < 0 || hi < lo) return null;
    return [lo, hi];
  }

  function el(id) { return document.getElementById(id); }
  function setText(id, text) {
    var node = el(id);
    if (node && node.textContent !== text) node.textContent = text;
  }

  function formatWait(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + ' s';
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return 'about ' + minutes + ' min';
    var hours = Math.floor(minutes / 60);
    return 'about ' + hours + ' h ' + (minutes % 60) + ' min';
  }

  function showQueue() {
    // Only the position sits in the live region; it changes rarely, so screen readers are not flooded.
    setText('rg-position', String(state.position));
    setText('rg-live', 'You are number ' + state.position + ' in line.');
    var wait = formatWait(state.estimate);
    if (state.range) wait += ' (likely ' + formatWait(state.range[0]) + ' to ' + formatWait(state.range[1]) + ')';
    setText('rg-wait', wait);
  }

  function showCountdown() {
    if (state.inFlight && state.heldUntil > 0) {
      // A held request: the reception answers it the moment it is our turn, or when the hold ends.
      var held = Math.max(0, Math.ceil((state.heldUntil - Date.now()) / 1000));
      setText('rg-countdown', 'listening, ' + held + ' s');
      return;
    }
    var left = Math.max(0, Math.ceil((state.dueAt - Date.now()) / 1000));
    setText('rg-countdown', state.inFlight ? 'now' : left + ' s');
  }

  // ---- sound: an AudioContext may only start after a user gesture, so unlock it on the first one.
  var audio = null;
  function audioContext() {
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    if (!audio) {
      try { audio = new AC(); } catch (e) { return null; }
    }
    return audio;
  }
  function unlockAudio() {
    var ctx = audioContext();
    if (ctx && ctx.state === 'suspended' && ctx.resume) ctx.resume().catch(function () {});
  }
  ['pointerdown', 'keydown', 'touchstart'].forEach(function (type) {
    document.addEventListener(type, unlockAudio, { once: true, passive: true });
  });

  function chime() {
    var ctx = audioContext();
    if (!ctx) return;
    if (ctx.state === 'suspended' && ctx.resume) ctx.resume().catch(function () {});
    var t0 = ctx.currentTime + 0.02;
    [659.25, 987.77].forEach(function (freq, i) {
      var start = t0 + i * 0.18;
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.type = 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.25, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.6);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.65);
    });
  }

  // ---- notifications: asked for only on the user's click, shown only where allowed.
  var notifyButton = el('rg-notify');
  if (notifyButton && 'Notification' in window && Notification.permission === 'default') {
    notifyButton.hidden = false;
    notifyButton.addEventListener('click', function () {
      unlockAudio();
      var asked = Notification.requestPermission(function () { refreshNotifyButton(); });
      if (asked && asked.then) asked.then(refreshNotifyButton, refreshNotifyButton);
    });
  }
  function refreshNotifyButton() {
    if (!notifyButton) return;
    notifyButton.hidden = !('Notification' in window) || Notification.permission !== 'default';
  }
  function notify(text) {
    try {
      if ('Notification' in window && Notification.permission === 'granted') {
        new Notification('Your download is starting', { body: text, icon: '/_rushgate/icon.svg' });
      }
    } catch (e) { /* some browsers only allow notifications from a service worker */ }
  }

  // ---- admission
  function admitted(ticket) {
    state.done = true;
    root.classList.remove('waiting');
    root.classList.add('admitted');
    document.title = 'Downloading ' + state.item;
    setText('rg-heading', 'It is your turn');
    setText('rg-live', 'It is your turn. The download has started.');
    setText('rg-status', 'Your download of ' + state.item + ' has started. You can close this page once it is saved.');
    var link = el('rg-download');
    if (link) {
      link.href = ticket.url;
      link.hidden = false;
    }
    chime();
    notify(state.item);
    // A ticket may start later than it is issued (startDelaySeconds): present it when it is valid.
    var startsIn = Math.min(60000, Math.max(0, (Date.parse(ticket.notBefore) || 0) - Date.now()));
    setTimeout(function () {
      var frame = document.createElement('iframe');
      frame.hidden = true;
      frame.title = 'download';
      frame.setAttribute('aria-hidden', 'true');
      frame.src = ticket.url;
      document.body.appendChild(frame);
    }, startsIn);
  }

  function failed(message) {
    state.done = true;
    root.classList.remove('waiting');
    root.classList.add('failed');
    setText('rg-heading', 'Something went wrong');
    setText('rg-status', message + ' ');
    var retry = el('rg-retry');
    if (retry) retry.textContent = 'Try again';
  }

  function retryAfterOf(res, body) {
    var header = Number(res.headers.get('Retry-After'));
    if (header > 0) return header;
    if (body && Number(body.retryAfterSeconds) > 0) return Number(body.retryAfterSeconds);
    return 5;
  }

  function holdSeconds() {
    return MAX_HOLD_S;
  }

  function retry() {
    var hold = holdSeconds();
    var sentAt = Date.now();
    state.inFlight = true;
    state.heldUntil = sentAt + hold * 1000;
    showCountdown();
    var payload = { item: state.item };
    if (state.token) payload.queueToken = state.token;
    // The hold plus a margin: a reception that went away must not leave the page hanging.
    var ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, (hold + 10) * 1000) : null;
    fetch('/api/orders', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', Prefer: 'wait=' + hold },
      body: JSON.stringify(payload),
      signal: ctrl ? ctrl.signal : undefined
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (body) {
        if (timer) clearTimeout(timer);
        state.inFlight = false;
        state.heldUntil = 0;
        if ((res.status === 200 || res.status === 201) && body && body.ticket && body.ticket.url) {
          admitted(body.ticket);
        } else if (res.status === 503 && body && body.status === 'busy') {
          state.token = body.queueToken || state.token;
          state.position = Number(body.position) || state.position;
          state.estimate = Number(body.estimatedWaitSeconds) || 0;
          var r = body.estimatedWaitRangeSeconds;
          state.range = r && r.length === 2 ? rangeOf(r[0], r[1]) : null;
          state.retryAfter = retryAfterOf(res, body);
          // The reception may hold for less than was asked (its cap): half of what it applied.
          var m = /(^|,)\\s*wait\\s*=\\s*(\\d+)/i.exec(res.headers.get('Preference-Applied') || '');
          var applied = m !== null;
          var appliedS = m ? Math.min(Number(m[2]), hold) : hold;
          var heldLong = Date.now() - sentAt >= (appliedS * 1000) / 2;
          // Held (and not cut short by the reception's cap): listen again at once.
          state.dueAt = applied && heldLong ? Date.now() : Date.now() + state.retryAfter * 1000;
          showQueue();
        } else if (res.status === 429 || res.status === 503) {
          state.dueAt = Date.now() + retryAfterOf(res, body) * 1000;
        } else {
          failed(body && body.error && body.error.message ? body.error.message : 'The reception answered ' + res.status + '.');
        }
      });
    }).catch(function () {
      // The reception is unreachable for now: keep the place and try again shortly.
      if (timer) clearTimeout(timer);
      state.inFlight = false;
      state.heldUntil = 0;
      state.dueAt = Date.now() + 5000;
    });
  }

  function poll() {
    if (!state.token) return;
    state.lastPoll = Date.now();
    fetch('/api/queue/' + encodeURIComponent(state.token), {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' }
    }).then(function (res) {
      if (!res.ok) return null;
      return res.json();
    }).then(function (body) {
      if (!body || state.done) return;
      if (Number(body.position) > 0) state.position = Number(body.position);
      if (body.estimatedWaitSeconds !== undefined) state.estimate = Number(body.estimatedWaitSeconds) || 0;
      showQueue();
    }).catch(function () {});
  }

  function tick() {
    if (state.done) return;
    var now = Date.now();
    if (!state.inFlight && now >= state.dueAt) retry();
    else if (!state.inFlight && now - state.lastPoll >= POLL_MS && state.dueAt - now > 1000) poll();
    showCountdown();
    setTimeout(tick, TICK_MS);
  }

  showQueue();
  tick();
})();
`;
