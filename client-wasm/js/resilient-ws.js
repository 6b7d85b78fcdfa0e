// resilient-ws for browsers: a WebSocket that stays connected.
// The session (backoff, failure cap, resume, queue) runs in WebAssembly; this file gives
// it the shape of the browser's WebSocket: an EventTarget with on<type> properties.
import init, { RawClient } from './resilient_ws_wasm.js';

let ready = null;

/** Loads the WebAssembly module once; later calls return the same promise. */
export default function initialize(input) {
  ready ??= init(input === undefined ? undefined : { module_or_path: input });
  return ready;
}

const EVENT_TYPES = ['open', 'message', 'close', 'error', 'statechange', 'reconnecting', 'giveup', 'gap', 'unsent'];

export class ResilientWebSocket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  #raw;
  #detach;

  constructor(url, options = {}) {
    super();
    if (ready === null) {
      throw new Error('resilient-ws: await init() before constructing a ResilientWebSocket');
    }
    for (const type of EVENT_TYPES) this[`on${type}`] = null;
    this.#raw = new RawClient(String(url), options, (type, a, b) => this.#emit(type, a, b));
    this.#detach = watchBrowser(this.#raw);
  }

  /** Queues a message (string, ArrayBuffer or typed array); throws an Error naming the bound when the queue is full. */
  send(data) {
    if (typeof data === 'string') return this.#raw.sendText(data);
    if (data instanceof ArrayBuffer) return this.#raw.sendBytes(new Uint8Array(data));
    if (ArrayBuffer.isView(data)) return this.#raw.sendBytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    throw new TypeError('resilient-ws: send() takes a string, an ArrayBuffer or a typed array');
  }

  /** Flushes the queue, then closes; resolves once closed. */
  async close(code = 1000, reason = '') {
    try {
      await this.#raw.close(code, reason);
    } finally {
      this.#detach();
    }
  }

  /** Starts again after 'close' or 'giveup'. */
  reconnect() {
    this.#detach();
    this.#detach = watchBrowser(this.#raw);
    this.#raw.reconnect();
  }

  get state() { return this.#raw.state; }
  get readyState() { return this.#raw.readyState; }
  get lastCursor() { return this.#raw.lastCursor ?? null; }
  get stats() { return this.#raw.stats; }

  #emit(type, a, b) {
    let event;
    if (type === 'message') {
      event = new MessageEvent('message', { data: a });
      event.cursor = b;
    } else {
      event = Object.assign(new Event(type), a);
    }
    if (type === 'close' || type === 'giveup') this.#detach();
    this.dispatchEvent(event);
    const handler = this[`on${type}`];
    if (typeof handler === 'function') handler.call(this, event);
  }
}

/** Feeds the browser's online/offline and visibility signals to the session. */
function watchBrowser(raw) {
  if (typeof window === 'undefined') return () => {};
  const online = () => raw.setOnline(true);
  const offline = () => raw.setOnline(false);
  const visible = () => { if (document.visibilityState === 'visible') raw.checkLiveness(); };
  window.addEventListener('online', online);
  window.addEventListener('offline', offline);
  document.addEventListener('visibilitychange', visible);
  if (navigator.onLine === false) raw.setOnline(false);
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
