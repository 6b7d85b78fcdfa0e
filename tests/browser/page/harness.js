// The in-page side of the browser tests: builds ResilientWebSocket clients from the built
// package (/pkg/resilient-ws.js, served by feed-server --static) and records everything
// they report, so the Node side can wait on and read it with page.evaluate.
import init, { ResilientWebSocket } from '/pkg/resilient-ws.js';

const LIFECYCLE = ['open', 'close', 'error', 'statechange', 'reconnecting', 'giveup', 'gap', 'unsent'];

/** A cursor (the package's decimal string) as a number for the suites' arithmetic; exact below 2^53. */
const number = (cursor) => (cursor === null ? null : Number(cursor));

class Recorder {
  constructor(url, options) {
    this.started = performance.now();
    /** Every event but 'message', in order: { type, t (ms since start), ...fields }. */
    this.events = [];
    /** Cursors of the delivered messages, in delivery order, as numbers. */
    this.cursors = [];
    /** The same, as the package handed them out (decimal strings). */
    this.cursorTexts = [];
    /** Messages whose cursor disagrees with the seq in their JSON body (compared as text: exact). */
    this.mismatches = [];
    this.ws = new ResilientWebSocket(url, options);
    for (const type of LIFECYCLE) {
      this.ws.addEventListener(type, (event) => this.#record(type, event));
    }
    this.ws.addEventListener('message', (event) => {
      const seq = /"seq":\s*"?(\d+)/.exec(event.data)?.[1] ?? null;
      if (seq !== event.cursor) this.mismatches.push({ seq, cursor: event.cursor });
      this.cursors.push(number(event.cursor));
      this.cursorTexts.push(event.cursor);
    });
  }

  #record(type, event) {
    const entry = { type, t: Math.round(performance.now() - this.started), lastCursor: number(this.ws.lastCursor) };
    for (const key of ['state', 'reason', 'attempt', 'delayMs', 'last', 'received']) {
      if (event[key] !== undefined) entry[key] = Number.isNaN(event[key]) ? null : event[key];
    }
    if (event.messages) entry.messages = event.messages.map(String);
    this.events.push(entry);
  }

  now() {
    return Math.round(performance.now() - this.started);
  }

  /** A plain snapshot for page.evaluate. */
  snapshot() {
    return {
      state: this.ws.state,
      readyState: this.ws.readyState,
      lastCursor: number(this.ws.lastCursor),
      stats: this.ws.stats,
      delivered: this.cursors.length,
      now: this.now(),
    };
  }
}

window.harness = {
  ResilientWebSocket,
  clients: [],
  /** Creates a client; returns its index in harness.clients. */
  create(url, options) {
    // A function cannot cross page.evaluate: `providerToken` stands for a urlProvider that
    // hands out the URL with a fresh ?token= on every attempt.
    if (options.providerToken) {
      let attempt = 0;
      const { providerToken, ...rest } = options;
      options = { ...rest, urlProvider: async () => `${url}?token=${providerToken}-${attempt += 1}` };
    }
    const recorder = new Recorder(url, options);
    this.clients.push(recorder);
    return this.clients.length - 1;
  },
  client(index = 0) {
    return this.clients[index];
  },
};

await init();
window.harnessReady = true;
