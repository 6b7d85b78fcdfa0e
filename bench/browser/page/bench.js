// The in-page side of the browser benchmark (bench/browser/run.mjs): each client kind
// receives the same feed (seq 1..N from feed-server --rate 0) with the same listener, which
// JSON.parses every message and checks its seq. Bundled by run.mjs with esbuild
// (reconnecting-websocket inlined, the built package imported at run time from /pkg).
import ReconnectingWebSocket from 'reconnecting-websocket';

// The package under test: /pkg, or another build given as ?pkg=/prefix (the runner profiles a
// build of the same code with the wasm's function names kept).
const PKG = new URLSearchParams(location.search).get('pkg') ?? '/pkg';
const { default: init, ResilientWebSocket } = await import(`${PKG}/resilient-ws.js`);

const CLOSE_TIMEOUT_MS = 5_000;

/** The listener every client gets, and what it saw: count, seq errors, first/last times. */
function makeSink(n) {
  const sink = { count: 0, bad: 0, first: 0, last: 0 };
  sink.finished = new Promise((resolve) => { sink.done = resolve; });
  const arrived = (count) => {
    if (count === 1) sink.first = performance.now();
    if (count === n) {
      sink.last = performance.now();
      sink.done();
    }
  };
  sink.listener = (event) => {
    const message = JSON.parse(event.data);
    const count = ++sink.count;
    if (message.seq !== count) sink.bad += 1;
    arrived(count);
  };
  return sink;
}

function closePlain(ws) {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.addEventListener('close', () => resolve(), { once: true });
    ws.close();
  });
}

// What resilient-ws.js does with each message the session lets through (#deliver, called by
// host.js's message(cursor) with the original event): its 'message' listeners, kept in an
// array, called in turn with a light event object (no DOM MessageEvent, no dispatchEvent),
// then onmessage.
class Relay {
  constructor() {
    this.listeners = [];
    this.onmessage = null;
  }

  deliver(received, cursor) {
    const event = { type: 'message', target: this, currentTarget: this, data: received.data, cursor, timeStamp: received.timeStamp };
    for (const { listener } of this.listeners) {
      if (event.stopped) return;
      try { listener.call(this, event); } catch (error) { reportError(error); }
    }
    if (typeof this.onmessage === 'function') this.onmessage.call(this, event);
  }
}

// What wasm-bindgen's glue does to hand each message to the session (host.js calls
// raw.text(conn, data): passStringToWasm0): the string copied into wasm memory as UTF-8, an
// ASCII loop and encodeInto for the rest; only with a cursor field (without one the session
// never reads the message). Nothing is copied back out: the host keeps the original event.
const memory = new Uint8Array(1 << 20);
const encoder = new TextEncoder();
function copyIntoMemory(text) {
  const len = text.length;
  let offset = 0;
  for (; offset < len; offset++) {
    const code = text.charCodeAt(offset);
    if (code > 0x7f) break;
    memory[offset] = code;
  }
  if (offset !== len) offset += encoder.encodeInto(text.slice(offset), memory.subarray(offset)).written;
  return offset;
}

/** A plain WebSocket whose messages go through the overhead models chosen to `listener`. */
function modelled(url, listener, { relay = false, copy = false }) {
  const ws = new WebSocket(url);
  let deliver = (event) => listener(event);
  if (relay) {
    const relayed = new Relay();
    relayed.listeners.push({ listener });
    deliver = (event) => relayed.deliver(event, null);
  }
  const hand = deliver;
  if (copy) {
    deliver = (event) => {
      copyIntoMemory(event.data);
      hand(event);
    };
  }
  ws.addEventListener('message', (event) => deliver(event));
  return () => closePlain(ws);
}

/** Each kind: (url, listener) => close(): Promise. */
const CLIENTS = {
  websocket(url, listener) {
    const ws = new WebSocket(url);
    ws.addEventListener('message', listener);
    return () => closePlain(ws);
  },
  'reconnecting-websocket'(url, listener) {
    const ws = new ReconnectingWebSocket(url);
    ws.addEventListener('message', listener);
    return () => new Promise((resolve) => {
      ws.addEventListener('close', () => resolve(), { once: true });
      ws.close();
    });
  },
  'resilient-ws'(url, listener) {
    const ws = new ResilientWebSocket(url);
    ws.addEventListener('message', listener);
    return () => ws.close();
  },
  'resilient-ws-cursor'(url, listener) {
    const ws = new ResilientWebSocket(url, { cursorField: 'seq' });
    ws.addEventListener('message', listener);
    return () => ws.close();
  },
  'model-relay': (url, listener) => modelled(url, listener, { relay: true }),
  'model-copy': (url, listener) => modelled(url, listener, { copy: true }),
  'model-both': (url, listener) => modelled(url, listener, { relay: true, copy: true }),
};

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Receives `n` messages of the feed at `url` with client `kind`; msg/s from the first to the last. */
async function run(kind, url, n, { timeoutMs = 60_000 } = {}) {
  const make = CLIENTS[kind];
  if (!make) throw new Error(`unknown client kind ${kind}`);
  const sink = makeSink(n);
  const close = make(url, sink.listener);
  try {
    await withTimeout(sink.finished, timeoutMs, `${kind} receiving ${n} messages (got ${sink.count})`);
  } finally {
    await withTimeout(Promise.resolve(close()), CLOSE_TIMEOUT_MS, `${kind} close`).catch(() => {});
  }
  const ms = sink.last - sink.first;
  return { kind, n, count: sink.count, bad: sink.bad, ms, rate: ((n - 1) * 1000) / ms };
}

window.bench = { run, kinds: Object.keys(CLIENTS), ready: false };
await init();
window.bench.ready = true;
