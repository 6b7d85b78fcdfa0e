// resilient-ws for browsers: a WebSocket that stays connected.
// The session (backoff, failure cap, resume, queue) runs in WebAssembly; host.js holds the
// browser's WebSocket and timer for it; this file gives it the shape of the browser's
// WebSocket: an EventTarget with on<type> properties.
import init, { RawClient } from './resilient_ws_wasm.js';
import {
  BrowserHost, CURSOR_SLOT, SIGNAL, STATES, STATE_SLOT, cursorText, readOptions, sendError, statsObject,
} from './host.js';

let ready = null;

/** Loads the WebAssembly module once; later calls return the same promise. */
export default function initialize(input) {
  ready ??= init(input === undefined ? undefined : { module_or_path: input });
  return ready;
}

/**
 * What 'message' listeners receive: the fields of a MessageEvent that a feed needs, plus the
 * cursor. Listeners of 'message' are called directly, not through a DOM dispatch: building
 * and dispatching a MessageEvent costs several microseconds, as much as the browser spends
 * on the frame itself.
 */
class ResilientMessageEvent {
  constructor(target, received, cursor) {
    this.type = 'message';
    this.target = this.currentTarget = target;
    this.data = received.data;
    this.cursor = cursor;
    this.timeStamp = received.timeStamp;
  }

  /** Stops the remaining listeners of this message, as on a DOM event. */
  stopImmediatePropagation() { this.stopped = true; }
}

/** The `capture` flag that, with the listener, names a registration (as the DOM compares them). */
const captureOf = (options) => (typeof options === 'boolean' ? options : !!options?.capture);

const EVENT_TYPES = ['open', 'message', 'close', 'error', 'statechange', 'reconnecting', 'giveup', 'gap', 'discontinuity', 'unsent'];
const READY_STATES = [0, 0, 1, 0, 2, 3, 3];

export class ResilientWebSocket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  #raw;
  #host;
  #settings;
  /** 'message' registrations: { listener, capture, once }; replaced, never mutated, so a
   * listener that adds or removes one does not disturb the message being delivered. */
  #onMessage = [];
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
    const host = this.#host = new BrowserHost(settings);
    this.#raw = new RawClient(url, settings.numbers, settings.cursorField,
      settings.resumeParam, settings.heartbeatMessage, host);
    this.#attach();
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
    this.#attach();
    this.#raw.signal(SIGNAL.reconnect);
  }

  /** Binds the host to this client and the browser's signals to the session (undone when it stops). */
  #attach() {
    this.#host.attach(this.#raw, (type, a, b) => this.#emit(type, a, b));
    this.#detach = watchBrowser(this.#raw);
  }

  get state() { return STATES[this.#raw.stats()[STATE_SLOT]]; }
  get readyState() { return READY_STATES[this.#raw.stats()[STATE_SLOT]]; }
  get lastCursor() {
    const stats = this.#raw.stats();
    return cursorText(stats[CURSOR_SLOT], stats[CURSOR_SLOT + 1]);
  }
  get stats() { return statsObject(this.#raw.stats()); }

  addEventListener(type, listener, options) {
    if (type !== 'message') return super.addEventListener(type, listener, options);
    const capture = captureOf(options);
    if (!listener || options?.signal?.aborted
      || this.#onMessage.some((l) => l.listener === listener && l.capture === capture)) return;
    this.#onMessage = [...this.#onMessage, { listener, capture, once: !!options?.once }];
    options?.signal?.addEventListener('abort', () => this.removeEventListener(type, listener, capture));
  }

  removeEventListener(type, listener, options) {
    if (type !== 'message') return super.removeEventListener(type, listener, options);
    const capture = captureOf(options);
    this.#onMessage = this.#onMessage.filter((l) => l.listener !== listener || l.capture !== capture);
  }

  #emit(type, a, b) {
    if (type === 'message') return this.#deliver(new ResilientMessageEvent(this, a, b));
    const event = Object.assign(new Event(type), a);
    if (type === 'close' || type === 'giveup') this.#stopped();
    this.dispatchEvent(event);
    const handler = this[`on${type}`];
    if (typeof handler === 'function') handler.call(this, event);
  }

  #deliver(event) {
    const { onmessage } = this;
    const listeners = typeof onmessage === 'function' ? [...this.#onMessage, { listener: onmessage }] : this.#onMessage;
    for (const { listener, capture, once } of listeners) {
      if (event.stopped) return;
      if (once) this.removeEventListener('message', listener, capture);
      // As with DOM events: a listener that throws is reported and the others still run.
      try {
        if (typeof listener === 'function') listener.call(this, event);
        else listener.handleEvent(event);
      } catch (error) {
        reportError(error);
      }
    }
  }

  #stopped() {
    this.#detach();
    for (const resolve of this.#closing.splice(0)) resolve();
  }
}

/**
 * Feeds the browser's online/offline and visibility signals to the session; online and a
 * tab becoming visible also check the connection at once.
 */
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
