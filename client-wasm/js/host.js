// The browser half of the driver. The session (resilient-ws-core, in WebAssembly) decides
// everything; this file owns what only JavaScript can hold: the WebSocket, one timer, the
// options object. RawClient calls the BrowserHost's methods to carry out its commands and
// report its events; the socket's events go back into RawClient.

/** State numbers (report.rs, `field::STATE`) to names. */
export const STATES = ['idle', 'connecting', 'open', 'reconnecting', 'closing', 'closed', 'failed'];

/** RawClient.stats, in order (client.rs); then the state's number and the last cursor's halves. */
const STATS = ['attempts', 'reconnects', 'staleInputs', 'replaysDropped', 'messagesDelivered',
  'messagesSent', 'heartbeatTimeouts', 'queued', 'queuedBytes', 'consecutiveFailures'];
export const STATE_SLOT = 10;
export const CURSOR_SLOT = 11;

/** RawClient.signal's inputs (client.rs, `signal`). */
export const SIGNAL = { start: 0, reconnect: 1, online: 2, offline: 3, checkLiveness: 4, timeout: 5 };

/** Slots of the settings array (settings.rs, `slot`) written by name; the seed's two halves go in 0 and 1. */
const HEARTBEAT_SLOT = 9;
const QUEUE_BYTES_SLOT = 13;
const CONTIGUOUS_SLOT = 14;

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


/**
 * A cursor's high and low 32 bits (report.rs, `cursor_halves`) as a decimal string, or null
 * for none: exact to 2^64 - 1, where a number is exact only to 2^53.
 */
export const cursorText = (high, low) => (high >= 0 // false for NaN, which stands for none
  ? `${high ? (BigInt(high) << 32n) + BigInt(low) : low}` : null);

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
  const numbers = new Float64Array(15).fill(NaN);
  const fail = (path, what) => { throw new TypeError(`resilient-ws: options.${path} must be ${what}`); };
  const read = (path, type) => {
    const [outer, inner] = path.split('.');
    let from = options;
    if (inner) {
      from = options[outer] ?? {};
      // `false` leaves a group at its defaults (`heartbeat: false` is read as off above).
      if (from !== false && typeof from !== 'object') fail(outer, 'an object');
    }
    const value = from[inner ?? outer];
    if (value !== undefined && typeof value !== type) fail(path, `a ${type}`);
    return value;
  };

  // The heartbeat is on unless turned off.
  if (options.heartbeat === false) numbers[HEARTBEAT_SLOT] = 0;
  if (read('contiguousCursors', 'boolean')) numbers[CONTIGUOUS_SLOT] = 1;
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

  const protocols = options.protocols ?? [];
  if (!Array.isArray(protocols) || !protocols.every((p) => typeof p === 'string')) fail('protocols', 'an array of strings');
  const urlProvider = read('urlProvider', 'function');

  const seed = read('seed', 'number');
  if (seed !== undefined && !(Number.isSafeInteger(seed) && seed >= 0)) fail('seed', 'a whole number');
  // The seed's high and low 32 bits, into the first two slots.
  numbers.set(seed === undefined ? crypto.getRandomValues(new Uint32Array(2)) : [Math.floor(seed / 2 ** 32), seed % 2 ** 32]);
  return {
    numbers,
    cursorField: read('cursorField', 'string'),
    resumeParam: read('resumeParam', 'string'),
    heartbeatMessage: read('heartbeat.message', 'string'),
    welcome: read('welcome', 'boolean') !== false,
    protocols: [...protocols],
    urlProvider,
  };
}

/** `text` parsed as JSON, or undefined. */
const parseJson = (text) => { try { return JSON.parse(text); } catch { return undefined; } };

/** RawClient.stats() as an object. */
export function statsObject(values) {
  const stats = {};
  STATS.forEach((name, i) => { stats[name] = values[i]; });
  return stats;
}

/** The Error for a refused send (RawClient.sendText's answer), with the queue's figures. */
export function sendError(outcome, stats, settings) {
  const maxBytes = settings.numbers[QUEUE_BYTES_SLOT];
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
  /** How far the wall clock was ahead of the monotonic one at the start; the time slept since. */
  #ahead = Date.now() - performance.now();
  #slept = 0;
  #unsent = [];
  /** Whether the session reads messages (for their cursor); otherwise it only counts them. */
  #scan;
  /** Whether a connection's first message may be the server's welcome (resilient-ws-server). */
  #welcome;

  constructor(settings) {
    this.#scan = settings.cursorField !== undefined;
    this.#welcome = settings.welcome;
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
    let failed;
    let first = this.#welcome;
    socket.onopen = () => {
      raw.opened(conn);
      // On an open socket an error event means the browser failed the connection: the server
      // broke the protocol. A connection that merely drops fires none (Chromium, as the spec).
      socket.onerror = () => { failed = 1; };
    };
    socket.onmessage = (event) => {
      const { data, timeStamp } = event;
      this.#inbound = event;
      // Without a cursor field the session never looks inside a message: spare the copy.
      const at = timeStamp + this.#slept;
      if (first) {
        first = false;
        // The hub's welcome opens so; read with the browser's JSON parser, not delivered.
        const welcome = typeof data === 'string' && data.startsWith('{"type":"welcome",') && parseJson(data);
        if (typeof welcome?.epoch === 'string') return raw.welcome(conn, welcome.epoch, !!welcome.resumed, `${welcome.reason}`, at);
      }
      if (!this.#scan) raw.text(conn, '', at);
      else if (typeof data === 'string') raw.text(conn, data, at);
      else raw.binary(conn, new Uint8Array(data), at);
    };
    // The close event carries the code: 1006 whatever the browser failed on, so code 0 tells.
    // bufferedAmount keeps its value after the close: the bytes that never left.
    socket.onclose = ({ code, reason }) => raw.ended(conn, failed ? 0 : code, failed ? 'invalid UTF-8 or a bad frame' : reason, socket.bufferedAmount);
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

  /** Bytes handed to the socket and not yet sent: what has left counts as written. */
  buffered(conn) {
    return this.#current(conn)?.bufferedAmount;
  }

  /**
   * The session's clock: the page's monotonic clock, which stops while the machine sleeps,
   * plus the time it slept, seen as the wall clock running ahead of it. So a deadline that
   * passed during the sleep (a silent connection's) is due at once on waking.
   */
  now() {
    const mono = performance.now();
    const slept = Date.now() - mono - this.#ahead;
    // A jump of over a second: the clocks' slow drift apart is not sleep.
    if (slept > this.#slept + 1000) this.#slept = slept;
    return mono + this.#slept;
  }

  arm(delayMs) {
    clearTimeout(this.#timer);
    // At most a second: each firing reads the clocks (`now`), so a wake from sleep is seen
    // within a second rather than when a timer set before it runs out.
    this.#timer = setTimeout(() => this.#raw?.signal(SIGNAL.timeout), Math.min(delayMs, 1000));
  }

  message(high, low) {
    this.#emit('message', this.#inbound, cursorText(high, low));
  }

  state(fields, detail) {
    // The slots of report.rs `field`, in order.
    const [stateCode, attempt, delayMs, reasonCode, kind, code, failure, count] = fields;
    const state = STATES[stateCode];
    const reason = REASONS[reasonCode] ?? disconnectText(kind, code, detail);
    const event = { state, reason };
    if (state === 'connecting' || state === 'reconnecting') event.attempt = attempt;
    if (state === 'reconnecting') event.delayMs = delayMs;
    if (state === 'failed') {
      const last = disconnectText(kind, code, detail);
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

  gap(lastHigh, lastLow, high, low) {
    this.#emit('gap', { last: cursorText(lastHigh, lastLow), received: cursorText(high, low) });
  }

  discontinuity(previousEpoch, epoch, reason, high, low) {
    this.#emit('discontinuity', { previousEpoch: previousEpoch || null, epoch, reason, lastCursor: cursorText(high, low) });
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
