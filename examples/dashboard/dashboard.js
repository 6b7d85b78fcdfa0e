// The resilient-ws dashboard: one ResilientWebSocket on this server's /feed, everything it
// reports made visible, and buttons that ask the same server (GET /control/...) to break things.
// Plain ES module, no build step: the feed server serves this directory at / and the browser
// package at /pkg (see scripts/dashboard.sh).

const FEED_ROWS = 36;
const TIMELINE_ROWS = 15;
const SPARK_SECONDS = 60;
const TICK_MS = 100;
const SERVER_POLL_MS = 1000;

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat('en-US');

/** Everything the page has seen, kept apart from the DOM. */
const view = {
  state: 'idle',
  reason: '',
  attempt: null,
  retryAt: null,
  openSince: null,
  connectedMs: 0,
  startedAt: performance.now(),
  opens: 0,
  feedCount: 0,
  pongs: 0,
  other: 0,
  pendingRows: [],
  // Verification of the cursors received: strictly +1 each time.
  firstCursor: null,
  prevCursor: null,
  checked: 0,
  problems: [],
  // Messages per second, with the worst state seen in that second.
  buckets: new Map(),
  server: null,
  faults: null,
};

const feedUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/feed`;
$('feed-url').textContent = feedUrl;

let ws = null;
// Whether a /control/stats poll is in flight (declared before the first pollServer() below).
let polling = false;
try {
  const { default: init, ResilientWebSocket } = await import('/pkg/resilient-ws.js');
  await init();
  ws = new ResilientWebSocket(feedUrl, {
    cursorField: 'seq',
    resumeParam: 'cursor',
    heartbeat: { intervalMs: 2000, timeoutMs: 2000, message: '{"type":"ping"}' },
    backoff: { initialMs: 250, maxMs: 5000 },
    maxFailures: 20,
  });
  window.dashboard = { ws, view };
  attach(ws);
} catch (error) {
  setState('failed', `cannot load /pkg/resilient-ws.js: ${error.message ?? error}`);
  $('verify').dataset.ok = 'no';
  $('verify-text').textContent =
    'The browser package did not load. Build it with ./scripts/build-wasm.sh and serve it at /pkg (./scripts/dashboard.sh does both).';
}

setInterval(tick, TICK_MS);
pollServer();
setInterval(pollServer, SERVER_POLL_MS);
wireFaultButtons();
renderFeedEmpty();
tick();

// ---- client events ---------------------------------------------------------------------------

function attach(ws) {
  ws.addEventListener('statechange', (e) => {
    setState(e.state, e.reason, e.attempt, e.delayMs);
    let detail = e.reason;
    if (e.state === 'reconnecting' && Number.isFinite(e.delayMs)) {
      detail = `${e.reason} · attempt ${e.attempt}, retry in ${formatMs(e.delayMs)}`;
    }
    addTimeline(e.state, detail);
  });
  ws.addEventListener('open', () => {
    view.opens += 1;
    if (view.opens > 1) {
      const cursor = ws.lastCursor;
      view.pendingRows.push({
        divider: cursor === null ? 'reconnected, starting from the beginning' : `reconnected · resumed after #${fmt.format(cursor)}`,
      });
    }
  });
  ws.addEventListener('message', (e) => onMessage(e.data, e.cursor));
  ws.addEventListener('gap', (e) => {
    const text = `server could not resume after #${e.last}; next was #${e.received}`;
    addProblem(text);
    addTimeline('gap', text);
    view.pendingRows.push({ divider: `gap: #${e.last} → #${e.received}`, bad: true });
  });
  ws.addEventListener('giveup', () => {
    $('reconnect').classList.add('attention');
  });
  $('reconnect').addEventListener('click', () => {
    $('reconnect').classList.remove('attention');
    addTimeline('fault', 'you: reconnect() after giving up');
    ws.reconnect();
  });
}

function onMessage(data, cursor) {
  let message = null;
  if (typeof data === 'string') {
    try {
      message = JSON.parse(data);
    } catch {
      message = null;
    }
  }
  if (message?.type === 'pong') {
    view.pongs += 1;
    return;
  }
  if (cursor === null || cursor === undefined) {
    view.other += 1;
    return;
  }
  view.feedCount += 1;
  bucket().count += 1;
  verify(cursor);
  view.pendingRows.push({
    seq: cursor,
    ts: message?.ts_ms,
    data: message?.data ?? String(data),
  });
  if (view.pendingRows.length > FEED_ROWS * 4) {
    view.pendingRows.splice(0, view.pendingRows.length - FEED_ROWS);
  }
}

/**
 * Checks one cursor against the previous one. The package reports cursors as decimal strings
 * (exact above 2^53), so they are compared as BigInt: as strings "10" < "9", and as numbers
 * large cursors round.
 */
function verify(cursorText) {
  const cursor = BigInt(cursorText);
  view.checked += 1;
  if (view.prevCursor === null) {
    view.firstCursor = cursor;
  } else if (cursor === view.prevCursor) {
    addProblem(`duplicate #${fmt.format(cursor)}`);
  } else if (cursor < view.prevCursor) {
    addProblem(`out of order: #${fmt.format(cursor)} after #${fmt.format(view.prevCursor)}`);
  } else if (cursor > view.prevCursor + 1n) {
    const missing = cursor - view.prevCursor - 1n;
    addProblem(`gap: ${fmt.format(missing)} missing after #${fmt.format(view.prevCursor)}`);
  }
  // Resynchronise, so one bad cursor is reported once or twice, not on every later message.
  view.prevCursor = cursor;
}

function addProblem(text) {
  view.problems.push(text);
}

function setState(state, reason, attempt, delayMs) {
  const now = performance.now();
  if (view.state === 'open' && state !== 'open' && view.openSince !== null) {
    view.connectedMs += now - view.openSince;
    view.openSince = null;
  }
  if (state === 'open' && view.openSince === null) view.openSince = now;
  view.state = state;
  view.reason = reason ?? '';
  view.attempt = attempt ?? null;
  view.retryAt = state === 'reconnecting' && Number.isFinite(delayMs) ? now + delayMs : null;
  bucket().states.add(state);

  const badge = $('badge');
  badge.dataset.state = state;
  $('badge-state').textContent = STATE_LABELS[state] ?? state;
  badge.title = view.reason;
  $('reconnect').disabled = !(state === 'failed' || state === 'closed');
  if (state !== 'failed') $('reconnect').classList.remove('attention');
  renderBadgeDetail();
}

const STATE_LABELS = {
  idle: 'Idle',
  connecting: 'Connecting…',
  open: 'Open',
  reconnecting: 'Reconnecting',
  closing: 'Closing…',
  closed: 'Closed',
  failed: 'Failed',
};

// ---- rendering -------------------------------------------------------------------------------

function tick() {
  flushFeed();
  renderBadgeDetail();
  renderCounters();
  renderVerify();
  if (view.state !== 'open') bucket().states.add(view.state);
  drawSpark();
}

function renderBadgeDetail() {
  const now = performance.now();
  let detail = '';
  switch (view.state) {
    case 'open':
      detail = view.openSince === null ? '' : `for ${formatDuration(now - view.openSince)}`;
      break;
    case 'reconnecting':
      if (view.retryAt !== null) {
        const left = view.retryAt - now;
        detail = left > 0
          ? `attempt ${view.attempt} · retry in ${(left / 1000).toFixed(1)} s`
          : `attempt ${view.attempt} · retrying…`;
      } else {
        detail = view.reason;
      }
      break;
    case 'connecting':
      detail = view.attempt ? `attempt ${view.attempt}` : '';
      break;
    case 'failed':
    case 'closed':
      detail = view.reason;
      break;
    default:
      detail = '';
  }
  setText('badge-detail', detail);
}

function renderCounters() {
  const stats = ws?.stats;
  setCounter('c-delivered', fmt.format(view.feedCount));
  setText('c-delivered-hint', `feed messages · ${plural(view.pongs, 'pong')} hidden`);
  if (stats) {
    setCounter('c-reconnects', fmt.format(stats.reconnects));
    setText(
      'c-reconnects-hint',
      `${plural(stats.attempts, 'attempt')} · ${plural(stats.heartbeatTimeouts, 'heartbeat timeout')}`,
    );
    setCounter('c-replays', fmt.format(stats.replaysDropped));
  }
  const cursor = ws?.lastCursor ?? null;
  setCounter('c-cursor', cursor === null ? '—' : `#${fmt.format(cursor)}`);
  if (view.server?.head !== undefined && cursor !== null) {
    const behind = Math.max(0, Number(BigInt(view.server.head) - BigInt(cursor)));
    setText('c-cursor-hint', behind <= 1 ? `live · server head #${fmt.format(view.server.head)}` : `${fmt.format(behind)} behind server head`);
  } else {
    setText('c-cursor-hint', 'resumes from here on reconnect');
  }
  const now = performance.now();
  const connected = view.connectedMs + (view.openSince === null ? 0 : now - view.openSince);
  const total = now - view.startedAt;
  setCounter('c-uptime', view.openSince === null ? '—' : formatDuration(now - view.openSince));
  setText(
    'c-uptime-hint',
    `${formatDuration(connected)} of ${formatDuration(total)} (${total > 0 ? Math.round((100 * connected) / total) : 0}%)`,
  );
}

function renderVerify() {
  const el = $('verify');
  if (!ws) return;
  if (view.problems.length > 0) {
    el.dataset.ok = 'no';
    const shown = view.problems.slice(-3).join(' · ');
    setText('verify-text', `${view.problems.length} problem${view.problems.length === 1 ? '' : 's'} in the cursors received: ${shown}`);
  } else if (view.checked > 0) {
    el.dataset.ok = 'yes';
    const range = `#${fmt.format(view.firstCursor)} → #${fmt.format(view.prevCursor)}`;
    const reconnects = view.opens > 1 ? `, across ${plural(view.opens - 1, 'reconnect')}` : '';
    setHtml(
      'verify-text',
      `In order, no gaps, no duplicates <span class="quiet">· ${plural(view.checked, 'message')} checked, ${range}${reconnects}</span>`,
    );
  }
}

function renderFeedEmpty() {
  const list = $('feed');
  if (list.children.length === 0) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'Waiting for the feed…';
    list.append(li);
  }
}

function flushFeed() {
  if (view.pendingRows.length === 0) return;
  const rows = view.pendingRows.splice(0).slice(-FEED_ROWS);
  const list = $('feed');
  list.querySelector('.empty')?.remove();
  const fragment = document.createDocumentFragment();
  for (const row of rows.reverse()) fragment.append(feedRow(row));
  list.prepend(fragment);
  while (list.children.length > FEED_ROWS) list.lastElementChild.remove();
}

function feedRow(row) {
  const li = document.createElement('li');
  li.className = 'new';
  if (row.divider) {
    li.classList.add('divider');
    if (row.bad) li.classList.add('bad');
    li.textContent = row.divider;
    return li;
  }
  li.append(
    span('seq', fmt.format(row.seq)),
    span('ts', Number.isFinite(row.ts) ? `+${formatServerTime(row.ts)}` : '—'),
    span('data', row.data),
  );
  return li;
}

function span(className, text) {
  const el = document.createElement('span');
  el.className = className;
  el.textContent = text;
  return el;
}

function addTimeline(state, text) {
  const list = $('timeline');
  const li = document.createElement('li');
  li.className = 'new';
  const time = document.createElement('time');
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = formatClock(now);
  const pill = document.createElement('span');
  pill.className = 'pill';
  pill.dataset.state = state;
  pill.textContent = state === 'fault' ? 'fault' : state;
  const reason = span('reason', text || '');
  reason.title = text || '';
  li.append(time, pill, reason);
  list.prepend(li);
  while (list.children.length > TIMELINE_ROWS) list.lastElementChild.remove();
}

// ---- throughput sparkline ---------------------------------------------------------------------

function bucket(second = Math.floor(Date.now() / 1000)) {
  let entry = view.buckets.get(second);
  if (!entry) {
    entry = { count: 0, states: new Set() };
    view.buckets.set(second, entry);
    for (const key of view.buckets.keys()) {
      if (key < second - SPARK_SECONDS - 1) view.buckets.delete(key);
    }
  }
  return entry;
}

function drawSpark() {
  const canvas = $('spark');
  const dpr = window.devicePixelRatio || 1;
  const width = Math.round(canvas.clientWidth * dpr);
  const height = Math.round(canvas.clientHeight * dpr);
  if (width === 0 || height === 0) return;
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext('2d');
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  ctx.clearRect(0, 0, width, height);

  const nowSecond = Math.floor(Date.now() / 1000);
  const seconds = [];
  for (let i = SPARK_SECONDS - 1; i >= 0; i -= 1) seconds.push(view.buckets.get(nowSecond - i));
  // Scale to the typical second, so a catch-up burst does not flatten the rest.
  const counts = seconds.map((b) => b?.count ?? 0).filter((c) => c > 0).sort((a, b) => a - b);
  const typical = counts.length ? counts[Math.floor(counts.length * 0.75)] : 1;
  const scale = Math.max(4, typical * 1.6);
  // The median of the last 5 complete seconds: a catch-up burst after a resume does not count.
  const recent = seconds.slice(-6, -1).map((b) => b?.count ?? 0).sort((a, b) => a - b);
  const rate = recent[2];
  setText('rate', `${rate.toFixed(1)} msg/s`);

  const gap = Math.max(1, Math.round(2 * dpr));
  const barWidth = (width - gap * (SPARK_SECONDS - 1)) / SPARK_SECONDS;
  const baseline = height - 1 * dpr;
  ctx.fillStyle = color('--line');
  ctx.fillRect(0, baseline, width, 1 * dpr);
  seconds.forEach((entry, index) => {
    const x = index * (barWidth + gap);
    const states = entry?.states ?? new Set();
    // Seconds spent without a connection are shaded behind the bars.
    let outage = null;
    if (states.has('failed') || states.has('closed')) outage = color('--bad');
    else if (states.has('reconnecting')) outage = color('--warn');
    if (outage) {
      ctx.globalAlpha = 0.22;
      ctx.fillStyle = outage;
      ctx.fillRect(x - gap / 2, 0, barWidth + gap, baseline);
      ctx.globalAlpha = 1;
      ctx.fillStyle = outage;
      ctx.fillRect(x - gap / 2, baseline - 2 * dpr, barWidth + gap, 2 * dpr);
    }
    const count = entry?.count ?? 0;
    if (count === 0) return;
    const clipped = count > scale;
    const barHeight = Math.max(2 * dpr, (Math.min(count, scale) / scale) * (baseline - 2 * dpr));
    ctx.fillStyle = color('--ok');
    ctx.globalAlpha = index === SPARK_SECONDS - 1 ? 0.5 : 0.9;
    roundRect(ctx, x, baseline - barHeight, barWidth, barHeight, Math.min(3 * dpr, barWidth / 2));
    if (clipped) {
      ctx.globalAlpha = 1;
      ctx.fillStyle = color('--accent');
      ctx.fillRect(x, baseline - barHeight, barWidth, 2 * dpr);
    }
    ctx.globalAlpha = 1;
  });
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  if (ctx.roundRect) ctx.roundRect(x, y, w, h, [r, r, 0, 0]);
  else ctx.rect(x, y, w, h);
  ctx.fill();
}

// ---- the server: faults and stats ------------------------------------------------------------

function wireFaultButtons() {
  for (const button of document.querySelectorAll('[data-control]')) {
    button.addEventListener('click', () => injectFault(button));
  }
}

async function injectFault(button) {
  const what = button.dataset.what;
  button.classList.add('busy');
  try {
    const answer = await control(button.dataset.control);
    let summary = 'done';
    if (answer.connections !== undefined) {
      summary = plural(answer.connections, 'connection');
    } else if (answer.down_ms !== undefined) {
      summary = `down for ${formatMs(answer.down_ms)}`;
    } else if (answer.faults) {
      view.faults = answer.faults;
      summary = describeFaults(answer.faults);
    }
    // Some faults act on the next connection: end the current one so they show at once.
    if (button.dataset.then) {
      const then = await control(button.dataset.then);
      if (then.connections !== undefined) summary += `, ${button.dataset.then} ${plural(then.connections, 'connection')}`;
    }
    setText('fault-result', `${what}: ${summary}`);
    addTimeline('fault', `you: ${what} (${summary})`);
  } catch (error) {
    setText('fault-result', `${what}: ${error.message}`);
    addTimeline('fault', `you: ${what} — not delivered: ${error.message}`);
  } finally {
    button.classList.remove('busy');
  }
}

async function control(path, timeoutMs = 3000) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const response = await fetch(`/control/${path}`, { cache: 'no-store', signal: abort.signal });
    const body = await response.json().catch(() => ({}));
    if (!response.ok || body.ok === false) throw new Error(body.error ?? `HTTP ${response.status}`);
    return body;
  } catch (error) {
    if (error.name === 'AbortError') throw new Error('server did not answer');
    if (error instanceof TypeError) throw new Error('server unreachable');
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** The faults in force, in words (the answer of /control/faults). */
function describeFaults(faults) {
  const parts = [];
  if (faults.drop_every) parts.push(`drop every ${faults.drop_every}`);
  if (faults.silent_after) parts.push(`silent after ${faults.silent_after}`);
  if (faults.close_after) parts.push(`close ${faults.close_after.code} after ${faults.close_after.after}`);
  if (faults.refuse) {
    const count = faults.refuse.remaining ?? 'all';
    parts.push(`refuse ${faults.refuse.status} (${count} left)`);
  }
  if (faults.replay_overlap) parts.push(`replay ${faults.replay_overlap} on resume`);
  return parts.length ? parts.join(' · ') : 'no faults';
}

async function pollServer() {
  if (polling) return;
  polling = true;
  try {
    const [stats, faults] = await Promise.all([control('stats', 900), control('faults', 900)]);
    view.server = stats;
    view.faults = faults.faults;
    const active = describeFaults(faults.faults);
    const faultText = active === 'no faults' ? '' : ` · <span class="active">${escapeHtml(active)}</span>`;
    setHtml(
      'server',
      `server · head <b>#${fmt.format(stats.head)}</b> · <b>${stats.live_connections}</b> live socket${stats.live_connections === 1 ? '' : 's'} · ${fmt.format(stats.connections_accepted)} accepted · ${fmt.format(stats.handshakes_refused)} refused${faultText}`,
    );
  } catch {
    view.server = null;
    setHtml('server', 'server · <span class="down">unreachable (restarting?)</span>');
  } finally {
    polling = false;
  }
}

// ---- small helpers ---------------------------------------------------------------------------

function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}

function setHtml(id, html) {
  const el = $(id);
  if (el.innerHTML !== html) el.innerHTML = html;
}

/** Sets a counter and flashes it when it changes (not on every tick). */
function setCounter(id, text) {
  const el = $(id);
  if (el.textContent === text) return;
  el.textContent = text;
  if (id !== 'c-delivered' && id !== 'c-cursor' && id !== 'c-uptime') {
    el.classList.remove('bump');
    void el.offsetWidth;
    el.classList.add('bump');
  }
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

function plural(count, noun) {
  return `${fmt.format(count)} ${noun}${count === 1 ? '' : 's'}`;
}

function formatMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function formatDuration(ms) {
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

function formatServerTime(ms) {
  const m = Math.floor(ms / 60000);
  const s = ((ms % 60000) / 1000).toFixed(3).padStart(6, '0');
  return `${m}:${s}`;
}

function formatClock(date) {
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}
