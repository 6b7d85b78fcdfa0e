// The browser half of the driver. The session (resilient-ws-core, in WebAssembly) decides
// everything; this file owns what only JavaScript can hold: the WebSocket, one timer, the
// options object. RawClient calls the BrowserHost's methods to carry out its commands and
// report its events; the socket's events go back into RawClient.

/** State numbers (report.rs, `field::STATE`) to names. */
export const STATES = ['idle', 'connecting', 'open', 'reconnecting', 'closing', 'closed', 'failed'];

/** RawClient.stats, in order (client.rs); then the state's number and the last cursor. */
const STATS = ['attempts', 'reconnects', 'staleInputs', 'replaysDropped', 'messagesDelivered',
  'messagesSent', 'heartbeatTimeouts', 'queued', 'queuedBytes', 'consecutiveFailures'];
export const STATE_SLOT = 10;
export const CURSOR_SLOT = 11;

/** RawClient.signal's inputs (client.rs, `signal`). */
export const SIGNAL = { start: 0, reconnect: 1, online: 2, offline: 3, checkLiveness: 4, timeout: 5 };

/** Slots of the settings array (settings.rs, `slot`). */
const SLOT = {
  seedHigh: 0, seedLow: 1, maxFailures: 2, connectTimeoutMs: 3, stabilityWindowMs: 4,
  closeTimeoutMs: 5, backoffInitialMs: 6, backoffMaxMs: 7, backoffMultiplier: 8, heartbeat: 9,
  heartbeatIntervalMs: 10, heartbeatTimeoutMs: 11, queueMaxMessages: 12, queueMaxBytes: 13,
};

/** Slots of the fields RawClient reports a state change with (report.rs, `field`). */
const FIELD = { state: 0, attempt: 1, delayMs: 2, reason: 3, disconnect: 4, code: 5, failure: 6, failureCount: 7 };

const REASONS = ['connect requested', 'handshake complete', null, 'backoff elapsed', 'network offline',
  'network back online', 'close requested', 'close handshake complete', 'close timed out'];

/**
 * Checks the page's options and lays them out for RawClient. A bad field throws an Error
 * that names it; nothing else is read from the object afterwards.
 */
export function readOptions(url, options) {
  if (!/^wss?:\/\//i.test(url)) throw new SyntaxError('resilient-ws: the URL must start with ws:// or wss://');
  const numbers = new Float64Array(14).fill(NaN);
  const settings = { numbers, cursorField: undefined, resumeParam: undefined, heartbeatMessage: undefined, protocols: [], urlProvider: undefined };
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object') throw new TypeError('resilient-ws: options must be an object');

  settings.cursorField = string(options, 'cursorField');
  settings.resumeParam = string(options, 'resumeParam');
  if (options.maxFailures === null) numbers[SLOT.maxFailures] = Infinity;
  else number(numbers, SLOT.maxFailures, options, 'maxFailures', true);
  number(numbers, SLOT.connectTimeoutMs, options, 'connectTimeoutMs');
  number(numbers, SLOT.stabilityWindowMs, options, 'stabilityWindowMs');
  number(numbers, SLOT.closeTimeoutMs, options, 'closeTimeoutMs');
  const backoff = object(options, 'backoff');
  number(numbers, SLOT.backoffInitialMs, backoff, 'backoff.initialMs');
  number(numbers, SLOT.backoffMaxMs, backoff, 'backoff.maxMs');
  number(numbers, SLOT.backoffMultiplier, backoff, 'backoff.multiplier');
  const heartbeat = object(options, 'heartbeat');
  if (options.heartbeat) {
    numbers[SLOT.heartbeat] = 1;
    number(numbers, SLOT.heartbeatIntervalMs, heartbeat, 'heartbeat.intervalMs');
    number(numbers, SLOT.heartbeatTimeoutMs, heartbeat, 'heartbeat.timeoutMs');
    settings.heartbeatMessage = string(heartbeat, 'heartbeat.message');
  }
  const queue = object(options, 'queue');
  number(numbers, SLOT.queueMaxMessages, queue, 'queue.maxMessages', true);
  number(numbers, SLOT.queueMaxBytes, queue, 'queue.maxBytes', true);

  for (const [slot, name] of [[SLOT.maxFailures, 'maxFailures'], [SLOT.connectTimeoutMs, 'connectTimeoutMs'],
    [SLOT.closeTimeoutMs, 'closeTimeoutMs'], [SLOT.backoffInitialMs, 'backoff.initialMs'],
    [SLOT.heartbeatIntervalMs, 'heartbeat.intervalMs'], [SLOT.heartbeatTimeoutMs, 'heartbeat.timeoutMs'],
    [SLOT.queueMaxMessages, 'queue.maxMessages'], [SLOT.queueMaxBytes, 'queue.maxBytes']]) {
    if (numbers[slot] === 0) throw new RangeError(`resilient-ws: options.${name} must be greater than zero`);
  }
  const initial = numbers[SLOT.backoffInitialMs];
  const max = numbers[SLOT.backoffMaxMs];
  if ((Number.isNaN(initial) ? 250 : initial) > (Number.isNaN(max) ? 30_000 : max)) {
    throw new RangeError('resilient-ws: options.backoff.maxMs must be at least options.backoff.initialMs');
  }
  if (numbers[SLOT.backoffMultiplier] < 1) throw new RangeError('resilient-ws: options.backoff.multiplier must be at least 1');

  const { protocols, urlProvider } = options;
  if (protocols !== undefined) {
    if (!Array.isArray(protocols)) throw new TypeError('resilient-ws: options.protocols must be an array of strings');
    if (!protocols.every((p) => typeof p === 'string')) throw new TypeError('resilient-ws: options.protocols must hold strings');
    settings.protocols = [...protocols];
  }
  if (urlProvider !== undefined) {
    if (typeof urlProvider !== 'function') throw new TypeError('resilient-ws: options.urlProvider must be a function returning a URL');
    settings.urlProvider = urlProvider;
  }

  let seed = options.seed;
  if (seed === undefined) {
    const words = crypto.getRandomValues(new Uint32Array(2));
    numbers[SLOT.seedHigh] = words[0];
    numbers[SLOT.seedLow] = words[1];
  } else {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new TypeError('resilient-ws: options.seed must be a whole number');
    numbers[SLOT.seedHigh] = Math.floor(seed / 2 ** 32);
    numbers[SLOT.seedLow] = seed % 2 ** 32;
  }
  return settings;
}

function leaf(name) { return name.slice(name.lastIndexOf('.') + 1); }

function string(from, name) {
  const value = from[leaf(name)];
  if (value === undefined || typeof value === 'string') return value;
  throw new TypeError(`resilient-ws: options.${name} must be a string`);
}

function object(from, name) {
  const value = from[name];
  if (value === undefined || value === null) return {};
  if (typeof value === 'object') return value;
  throw new TypeError(`resilient-ws: options.${name} must be an object`);
}

function number(numbers, slot, from, name, whole = false) {
  const value = from[leaf(name)];
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`resilient-ws: options.${name} must be a non-negative number`);
  }
  if (whole && !Number.isInteger(value)) throw new TypeError(`resilient-ws: options.${name} must be a whole number`);
  numbers[slot] = value;
}

/** RawClient.stats() as an object. */
export function statsObject(values) {
  const stats = {};
  STATS.forEach((name, i) => { stats[name] = values[i]; });
  return stats;
}

/** The Error for a refused send (RawClient.sendText's answer), with the queue's figures. */
export function sendError(outcome, stats, settings) {
  const maxBytes = settings.numbers[SLOT.queueMaxBytes];
  const why = outcome === 1 ? `the outbound queue is full (${stats.queued} messages, ${stats.queuedBytes} bytes waiting)`
    : outcome === 2 ? `the message is larger than the outbound queue's bound of ${Number.isNaN(maxBytes) ? 1 << 20 : maxBytes} bytes`
      : 'the client is closing, closed or failed';
  return new Error(`resilient-ws: send refused: ${why}`);
}

/** A disconnect (report.rs `describe`) in plain words, worded as the native client words it. */
function disconnectText(kind, code, detail) {
  switch (kind) {
    case 1: return `closed by the server with code ${code}${detail ? ` (${detail})` : ''}`;
    case 2: return `connection lost: ${detail}`;
    case 3: return `closed by the client with code ${code}: ${detail}`;
    case 4: return `TLS failed: ${detail}`;
    case 5: return `server refused the handshake with HTTP ${code}`;
    case 6: return 'no handshake within the connect deadline';
    case 7: return 'no traffic within the heartbeat timeout';
    default: return '';
  }
}

/** The sockets and the timer of one client, and where its events go: `emit(type, a, b)`. */
export class BrowserHost {
  #raw = null;
  #emit;
  #protocols;
  #urlProvider;
  #socket = null;
  #conn = -1;
  /** The last message fed in: delivered as is, never copied back out of WebAssembly. */
  #inbound = null;
  #timer = 0;
  #unsent = [];

  constructor(settings, emit) {
    this.#emit = emit;
    this.#protocols = settings.protocols;
    this.#urlProvider = settings.urlProvider;
  }

  /** Binds the client; its first attempt starts on the next microtask, after listeners are attached. */
  attach(raw) {
    this.#raw = raw;
    queueMicrotask(() => raw.signal(SIGNAL.start));
  }

  open(conn, url) {
    const provider = this.#urlProvider;
    if (!provider) return this.#connect(conn, url);
    // Ask the page for a fresh URL first; the attempt's deadline runs meanwhile.
    let provided;
    try {
      provided = Promise.resolve(provider()).catch(() => Promise.reject('urlProvider rejected'));
    } catch {
      provided = Promise.reject('urlProvider threw');
    }
    const raw = this.#raw;
    provided.then(
      (url) => {
        const resumed = raw.resumeUrl(conn, typeof url === 'string' ? url : '');
        if (resumed === undefined) return; // the session moved on meanwhile
        if (typeof url === 'string') this.#connect(conn, resumed);
        else raw.ended(conn, 1006, 'urlProvider must resolve to a URL string');
      },
      (why) => {
        if (raw.resumeUrl(conn, '') !== undefined) raw.ended(conn, 1006, why);
      },
    );
  }

  #connect(conn, url) {
    const raw = this.#raw;
    let socket;
    try {
      socket = new WebSocket(url, this.#protocols);
    } catch (error) {
      // Reported from a fresh task, so the session is not re-entered from its own step.
      const detail = String(error?.message ?? 'the browser refused to open the socket');
      queueMicrotask(() => raw.ended(conn, 1006, detail));
      return;
    }
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => raw.opened(conn);
    socket.onmessage = (event) => {
      const data = event.data;
      this.#inbound = data;
      if (typeof data === 'string') raw.text(conn, data);
      else raw.binary(conn, new Uint8Array(data));
    };
    // An error event always precedes the close event, which carries the code.
    socket.onclose = (event) => raw.ended(conn, event.code, event.reason);
    this.#socket = socket;
    this.#conn = conn;
  }

  #current(conn) {
    return conn === this.#conn ? this.#socket : null;
  }

  sendText(conn, text) {
    try { this.#current(conn)?.send(text); } catch { /* the close event reports it */ }
  }

  sendBytes(conn, bytes) {
    // `bytes` views WebAssembly memory: send a copy.
    try { this.#current(conn)?.send(bytes.slice()); } catch { /* the close event reports it */ }
  }

  close(conn, code, reason) {
    try { this.#current(conn)?.close(code, reason); } catch { /* the close deadline ends it */ }
  }

  /** Drops the socket now; nothing it fires afterwards reaches the session. */
  abort(conn) {
    const socket = this.#current(conn);
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = null;
    try { socket.close(); } catch { /* already closing */ }
    this.#socket = null;
    this.#conn = -1;
  }

  arm(delayMs) {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#raw.signal(SIGNAL.timeout), delayMs);
  }

  message(cursor) {
    this.#emit('message', this.#inbound, Number.isNaN(cursor) ? null : cursor);
  }

  state(fields, detail) {
    const state = STATES[fields[FIELD.state]];
    const kind = fields[FIELD.disconnect];
    const reason = REASONS[fields[FIELD.reason]] ?? disconnectText(kind, fields[FIELD.code], detail);
    const event = { state, reason };
    if (state === 'connecting' || state === 'reconnecting') event.attempt = fields[FIELD.attempt];
    if (state === 'reconnecting') event.delayMs = fields[FIELD.delayMs];
    if (state === 'failed') {
      const failure = fields[FIELD.failure];
      const count = fields[FIELD.failureCount];
      const last = disconnectText(kind, fields[FIELD.code], detail);
      event.error = failure === 2 ? `gave up after ${count} failed attempts: ${last}`
        : failure === 3 ? `gave up after retrying for ${count} ms: ${last}` : `rejected: ${last}`;
    }
    this.#emit('statechange', event);
    if (state === 'open') this.#emit('open', event);
    else if (state === 'reconnecting' && !Number.isNaN(event.delayMs)) this.#emit('reconnecting', event);
    else if (state === 'closed') this.#emit('close', event);
    else if (state === 'failed') {
      this.#emit('error', event);
      this.#emit('giveup', event);
    }
  }

  gap(last, received) {
    this.#emit('gap', { last, received });
  }

  unsentText(text) {
    this.#unsent.push(text);
  }

  unsentBytes(bytes) {
    this.#unsent.push(bytes.slice().buffer);
  }

  unsentDone() {
    const messages = this.#unsent;
    this.#unsent = [];
    this.#emit('unsent', { messages });
  }
}
