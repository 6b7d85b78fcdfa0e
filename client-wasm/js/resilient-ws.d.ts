// Type definitions for resilient-ws (browser).

/** Loads the WebAssembly module. Await it once before constructing a client. */
export default function init(input?: RequestInfo | URL | Response | BufferSource | WebAssembly.Module): Promise<unknown>;
export { init };

/**
 * A cursor: a decimal string of a whole number up to 2^64 - 1 (a JS number is exact only to
 * 2^53). Compare two with `BigInt(a) < BigInt(b)`, not `<` on the strings.
 */
export type Cursor = string;

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed' | 'failed';

export interface ResilientWebSocketOptions {
  /** Where each message's cursor is: a top-level JSON field ('seq') or a JSON pointer ('/meta/seq'). */
  cursorField?: string;
  /** Resume with ?<resumeParam>=<last cursor> on every reconnect. */
  resumeParam?: string;
  /**
   * The server's cursors go up by exactly one per message (default false): a skip is then
   * reported as a 'gap' event (the message is still delivered).
   */
  contiguousCursors?: boolean;
  /**
   * Read the server's welcome, the first message of each connection when it opens with
   * `{"type":"welcome",` (default true; resilient-ws-server's hub sends it): it is not
   * delivered, its epoch goes back beside the resume cursor (`&epoch=`), and a stream that
   * does not continue the one resumed from is reported as a 'discontinuity' event.
   */
  welcome?: boolean;
  /** Consecutive failed attempts before giving up (default 10); null never gives up. */
  maxFailures?: number | null;
  /** Deadline for each handshake in ms (default 10000). */
  connectTimeoutMs?: number;
  /** How long a connection must stay open (or deliver a message) to count as healthy, in ms (default 5000). */
  stabilityWindowMs?: number;
  /** Deadline for close() to flush and finish, in ms (default 5000). */
  closeTimeoutMs?: number;
  /** Backoff with full jitter: the window starts at initialMs (default 250), grows by multiplier (default 2) up to maxMs (default 30000). */
  backoff?: { initialMs?: number; maxMs?: number; multiplier?: number };
  /**
   * Dead-connection detection, on by default (intervalMs 15000, timeoutMs 10000); `false` turns
   * it off. Without `message`, a connection with no inbound traffic for intervalMs + timeoutMs
   * is dropped and replaced. With `message`, that message is sent after intervalMs of silence
   * and the connection is dropped if nothing arrives within timeoutMs. Time the machine slept
   * counts as silence; coming online or the tab becoming visible checks at once (and sends
   * `message`, when set).
   */
  heartbeat?: false | { intervalMs?: number; timeoutMs?: number; message?: string };
  /**
   * Bounds of the outbound queue (default 1024 messages, 1 MiB). Messages the socket has not
   * yet sent (still in its bufferedAmount) count against them too.
   */
  queue?: { maxMessages?: number; maxBytes?: number };
  /** Subprotocols to offer. */
  protocols?: string[];
  /** Called before every attempt for the URL to use (a fresh token each time); the resume parameter is added to it. */
  urlProvider?: () => string | Promise<string>;
  /** Fixes the jitter seed (default random), to replay a run. */
  seed?: number;
}

/**
 * What 'message' listeners receive. Not a DOM MessageEvent: listeners of 'message' are called
 * directly (a DOM dispatch per message would cost as much as the browser's own work for it).
 */
export interface ResilientMessageEvent {
  readonly type: 'message';
  /** The message: a string, or an ArrayBuffer for a binary one. */
  readonly data: string | ArrayBuffer;
  /** The message's cursor (a decimal string), or null when it has none. */
  readonly cursor: Cursor | null;
  readonly target: ResilientWebSocket;
  readonly currentTarget: ResilientWebSocket;
  /** performance.now() when it was delivered. */
  readonly timeStamp: number;
  /** The remaining listeners of this message are skipped. */
  stopImmediatePropagation(): void;
}

export interface StateChangeEvent extends Event {
  readonly state: ConnectionState;
  /** Why, in plain words. */
  readonly reason: string;
  /** For 'reconnecting': the number of the next attempt. */
  readonly attempt?: number;
  /** For 'reconnecting': the backoff delay chosen, in ms (NaN while waiting for the network). */
  readonly delayMs?: number;
  /** For 'failed' (and its 'error' and 'giveup' events): why the client gave up. */
  readonly error?: string;
}

/** With `contiguousCursors`: the server skipped cursors after `last`; `received` was delivered. */
export interface GapEvent extends Event {
  readonly last: Cursor;
  readonly received: Cursor;
}

/**
 * The server could not continue the stream from the last cursor: its history changed (a new
 * epoch) or no longer reaches back that far. Cursors after it start afresh.
 */
export interface DiscontinuityEvent extends Event {
  /** The epoch of the cursor resumed from, or null when unknown. */
  readonly previousEpoch: string | null;
  readonly epoch: string;
  /** The server's reason, e.g. 'epoch_changed', 'cursor_too_old'. */
  readonly reason: string;
  /** The last cursor delivered before it. */
  readonly lastCursor: Cursor | null;
}

export interface UnsentEvent extends Event {
  /** Messages accepted by send() that never left the socket's buffer, oldest first. */
  readonly messages: Array<string | ArrayBuffer>;
}

export interface ResilientWebSocketEventMap {
  open: StateChangeEvent;
  message: ResilientMessageEvent;
  close: StateChangeEvent;
  error: StateChangeEvent;
  statechange: StateChangeEvent;
  reconnecting: StateChangeEvent;
  giveup: StateChangeEvent;
  gap: GapEvent;
  discontinuity: DiscontinuityEvent;
  unsent: UnsentEvent;
}

export interface ResilientStats {
  attempts: number;
  reconnects: number;
  staleInputs: number;
  replaysDropped: number;
  messagesDelivered: number;
  /** Messages that left the socket's buffer. */
  messagesSent: number;
  heartbeatTimeouts: number;
  queued: number;
  queuedBytes: number;
  consecutiveFailures: number;
}

export class ResilientWebSocket extends EventTarget {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;

  constructor(url: string | URL, options?: ResilientWebSocketOptions);

  /** Queues a message; throws an Error naming the bound when the queue is full. */
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  /** Flushes the queue, then closes; resolves once closed. */
  close(code?: number, reason?: string): Promise<void>;
  /** Starts again after 'close' or 'giveup'. */
  reconnect(): void;

  readonly state: ConnectionState;
  readonly readyState: 0 | 1 | 2 | 3;
  /** The cursor of the last message delivered (a decimal string), or null. */
  readonly lastCursor: Cursor | null;
  readonly stats: ResilientStats;

  onopen: ((this: ResilientWebSocket, ev: StateChangeEvent) => unknown) | null;
  onmessage: ((this: ResilientWebSocket, ev: ResilientMessageEvent) => unknown) | null;
  onclose: ((this: ResilientWebSocket, ev: StateChangeEvent) => unknown) | null;
  onerror: ((this: ResilientWebSocket, ev: StateChangeEvent) => unknown) | null;
  onstatechange: ((this: ResilientWebSocket, ev: StateChangeEvent) => unknown) | null;
  onreconnecting: ((this: ResilientWebSocket, ev: StateChangeEvent) => unknown) | null;
  ongiveup: ((this: ResilientWebSocket, ev: StateChangeEvent) => unknown) | null;
  ongap: ((this: ResilientWebSocket, ev: GapEvent) => unknown) | null;
  ondiscontinuity: ((this: ResilientWebSocket, ev: DiscontinuityEvent) => unknown) | null;
  onunsent: ((this: ResilientWebSocket, ev: UnsentEvent) => unknown) | null;

  addEventListener<K extends keyof ResilientWebSocketEventMap>(
    type: K,
    listener: (this: ResilientWebSocket, ev: ResilientWebSocketEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof ResilientWebSocketEventMap>(
    type: K,
    listener: (this: ResilientWebSocket, ev: ResilientWebSocketEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}
