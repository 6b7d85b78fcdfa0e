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

/** Slots of the settings array (settings.rs, `slot`) that are not options. */
const SLOT = { seedHigh: 0, seedLow: 1, maxFailures: 2, heartbeat: 9, queueMaxBytes: 13 };

/**
 * The numeric options: [slot in the settings array (settings.rs, `slot`), option path,
 * must be whole, may be zero].
 */
const NUMBERS = [
  [2, 'maxFailures', true], [3, 'connectTimeoutMs'], [4, 'stabilityWindowMs', false, true],
  [5, 'closeTimeoutMs'], [6, 'backoff.initialMs'], [7, 'backoff.maxMs', false, true],
  [8, 'backoff.multiplier', false, true], [10, 'heartbeat.intervalMs'], [11, 'heartbeat.timeoutMs'],
  [12, 'queue.maxMessages', true], [13, 'queue.maxBytes', true],
];

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
  options ??= {};
  if (typeof options !== 'object') throw new TypeError('resilient-ws: options must be an object');
  const numbers = new Float64Array(14).fill(NaN);
  const fail = (path, what) => { throw new TypeError(`resilient-ws: options.${path} must be ${what}`); };
  const read = (path, type) => {
    const [outer, inner] = path.split('.');
    let from = options;
    if (inner) {
      from = options[outer] ?? {};
      if (typeof from !== 'object') fail(outer, 'an object');
    }
    const value = from[inner ?? outer];
    if (value !== undefined && typeof value !== type) fail(path, `a ${type}`);
    return value;
  };

  for (const [slot, path, whole, zeroAllowed] of NUMBERS) {
    const value = path === 'maxFailures' && options.maxFailures === null ? Infinity : read(path, 'number');
    if (value === undefined || value === Infinity) {
      numbers[slot] = value ?? NaN;
    } else if (!(value >= 0 && value < Infinity)) {
      fail(path, 'a non-negative number');
    } else if (whole && !Number.isInteger(value)) {
      fail(path, 'a whole number');
    } else if (!zeroAllowed && value === 0) {
      fail(path, 'greater than zero');
    } else {
      numbers[slot] = value;
    }
  }
  const [, , initial, max, multiplier] = numbers.subarray(4, 9);
  if ((initial || 250) > (Number.isNaN(max) ? 30_000 : max)) fail('backoff.maxMs', 'at least options.backoff.initialMs');
  if (multiplier < 1) fail('backoff.multiplier', 'at least 1');
  if (options.heartbeat) numbers[SLOT.heartbeat] = 1;

  const protocols = options.protocols ?? [];
  if (!Array.isArray(protocols) || !protocols.every((p) => typeof p === 'string')) fail('protocols', 'an array of strings');
  const urlProvider = read('urlProvider', 'function');

  const seed = read('seed', 'number');
  if (seed === undefined) {
    const [high, low] = crypto.getRandomValues(new Uint32Array(2));
    numbers[SLOT.seedHigh] = high;
    numbers[SLOT.seedLow] = low;
  } else if (!Number.isSafeInteger(seed) || seed < 0) {
    fail('seed', 'a whole number');
  } else {
    numbers[SLOT.seedHigh] = Math.floor(seed / 2 ** 32);
    numbers[SLOT.seedLow] = seed % 2 ** 32;
  }
  return {
    numbers,
    cursorField: read('cursorField', 'string'),
    resumeParam: read('resumeParam', 'string'),
    heartbeatMessage: options.heartbeat ? read('heartbeat.message', 'string') : undefined,
    protocols: [...protocols],
    urlProvider,
  };
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
  return new Error(`resilient-ws: send refused: ${outcome === 1 ? `the queue is full (${stats.queued} messages, ${stats.queuedBytes} bytes)`
    : outcome === 2 ? `the message is over the queue's bound of ${Number.isNaN(maxBytes) ? 1 << 20 : maxBytes} bytes`
      : 'the client is closing, closed or failed'}`);
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
  /** The last message event: its data is delivered as is, never copied back out of WebAssembly. */
  #inbound = null;
  #timer = 0;
  #unsent = [];
  /** Whether the session reads messages (for their cursor); otherwise it only counts them. */
  #scan;

  constructor(settings) {
    this.#scan = settings.cursorField !== undefined;
    this.#protocols = settings.protocols;
    this.#urlProvider = settings.urlProvider;
  }

  /**
   * Binds the client and where its events go; its attempt starts on the next microtask, after
   * listeners are attached. Undone when the session stops (see `state`), so that a stopped
   * client the page no longer holds can be collected; `reconnect()` binds again.
   */
  attach(raw, emit) {
    this.#raw = raw;
    this.#emit = emit;
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
      const { data, timeStamp } = event;
      this.#inbound = event;
      // Without a cursor field the session never looks inside a message: spare the copy.
      if (!this.#scan) raw.text(conn, '', timeStamp);
      else if (typeof data === 'string') raw.text(conn, data, timeStamp);
      else raw.binary(conn, new Uint8Array(data), timeStamp);
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
    this.#timer = setTimeout(() => this.#raw?.signal(SIGNAL.timeout), delayMs);
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
    const emit = this.#emit;
    // Stopped: let go of the client. WebAssembly holds this host for good, and through these
    // the page's client would stay reachable forever. Before the events, so that a listener
    // calling reconnect() binds again.
    if (state === 'closed' || state === 'failed') this.#raw = this.#emit = null;
    emit('statechange', event);
    if (state === 'open') emit('open', event);
    else if (state === 'reconnecting' && !Number.isNaN(event.delayMs)) emit('reconnecting', event);
    else if (state === 'closed') emit('close', event);
    else if (state === 'failed') {
      emit('error', event);
      emit('giveup', event);
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
