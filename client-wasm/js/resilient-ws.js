// resilient-ws for browsers: a WebSocket that stays connected.
// The session (backoff, failure cap, resume, queue) runs in WebAssembly; host.js holds the
// browser's WebSocket and timer for it; this file gives it the shape of the browser's
// WebSocket: an EventTarget with on<type> properties.
import init, { RawClient } from './resilient_ws_wasm.js';
import { BrowserHost, CURSOR_SLOT, SIGNAL, STATES, STATE_SLOT, readOptions, sendError, statsObject } from './host.js';

let ready = null;

/** Loads the WebAssembly module once; later calls return the same promise. */
export default function initialize(input) {
  ready ??= init(input === undefined ? undefined : { module_or_path: input });
  return ready;
}

const EVENT_TYPES = ['open', 'message', 'close', 'error', 'statechange', 'reconnecting', 'giveup', 'gap', 'unsent'];
const READY_STATES = [0, 0, 1, 0, 2, 3, 3];

export class ResilientWebSocket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  #raw;
  #settings;
  #detach;
  /** close() promises waiting for the session to stop. */
  #closing = [];

  constructor(url, options = {}) {
    super();
    if (ready === null) {
      throw new Error('resilient-ws: await init() before constructing a ResilientWebSocket');
    }
    for (const type of EVENT_TYPES) this[`on${type}`] = null;
    url = String(url);
    const settings = this.#settings = readOptions(url, options);
    const host = new BrowserHost(settings, (type, a, b) => this.#emit(type, a, b));
    this.#raw = new RawClient(url, settings.numbers, settings.cursorField,
      settings.resumeParam, settings.heartbeatMessage, host);
    host.attach(this.#raw.handle());
    this.#detach = watchBrowser(this.#raw);
  }

  /** Queues a message (string, ArrayBuffer or typed array); throws an Error naming the bound when the queue is full. */
  send(data) {
    let outcome;
    if (typeof data === 'string') outcome = this.#raw.sendText(data);
    else if (data instanceof ArrayBuffer) outcome = this.#raw.sendBytes(new Uint8Array(data));
    else if (ArrayBuffer.isView(data)) outcome = this.#raw.sendBytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else throw new TypeError('resilient-ws: send() takes a string, an ArrayBuffer or a typed array');
    if (outcome !== 0) throw sendError(outcome, this.stats, this.#settings);
  }

  /** Flushes the queue, then closes; resolves once closed. */
  async close(code = 1000, reason = '') {
    const refused = this.#raw.close(code, String(reason));
    if (refused === 1) throw new RangeError('resilient-ws: close code must be 1000 or 3000-4999');
    if (refused === 2) throw new SyntaxError('resilient-ws: close reason must be at most 123 bytes of UTF-8');
    if (this.readyState === 3) {
      this.#detach();
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#closing.push(resolve));
  }

  /** Starts again after 'close' or 'giveup'. */
  reconnect() {
    this.#detach();
    this.#detach = watchBrowser(this.#raw);
    this.#raw.signal(SIGNAL.reconnect);
  }

  get state() { return STATES[this.#raw.stats()[STATE_SLOT]]; }
  get readyState() { return READY_STATES[this.#raw.stats()[STATE_SLOT]]; }
  get lastCursor() {
    const cursor = this.#raw.stats()[CURSOR_SLOT];
    return Number.isNaN(cursor) ? null : cursor;
  }
  get stats() { return statsObject(this.#raw.stats()); }

  #emit(type, a, b) {
    let event;
    if (type === 'message') {
      event = new MessageEvent('message', { data: a });
      event.cursor = b;
    } else {
      event = Object.assign(new Event(type), a);
    }
    if (type === 'close' || type === 'giveup') this.#stopped();
    this.dispatchEvent(event);
    const handler = this[`on${type}`];
    if (typeof handler === 'function') handler.call(this, event);
  }

  #stopped() {
    this.#detach();
    for (const resolve of this.#closing.splice(0)) resolve();
  }
}

/** Feeds the browser's online/offline and visibility signals to the session. */
function watchBrowser(raw) {
  if (typeof window === 'undefined') return () => {};
  const online = () => raw.signal(SIGNAL.online);
  const offline = () => raw.signal(SIGNAL.offline);
  const visible = () => { if (document.visibilityState === 'visible') raw.signal(SIGNAL.checkLiveness); };
  window.addEventListener('online', online);
  window.addEventListener('offline', offline);
  document.addEventListener('visibilitychange', visible);
  if (navigator.onLine === false) raw.signal(SIGNAL.offline);
  let attached = true;
  return () => {
    if (!attached) return;
    attached = false;
    window.removeEventListener('online', online);
    window.removeEventListener('offline', offline);
    document.removeEventListener('visibilitychange', visible);
  };
}

export { initialize as init };
