// The client's timings in every cell of the browser fault matrix, and the bounds derived
// from them (the native matrix's are in tests/tests/fault_matrix/timing.rs).

/** Backoff window: first 50 ms, doubling up to 400 ms; the floor under a delay after a failure is 50 ms (the initial window). */
export const BACKOFF = { initialMs: 50, maxMs: 400 };
export const BACKOFF_FLOOR_MS = 50;
/** Dead after 400 + 300 ms of silence (the browser cannot ping: an idle timeout, or an app ping in the idle pattern). */
export const HEARTBEAT = { intervalMs: 400, timeoutMs: 300 };
export const HEARTBEAT_WINDOW_MS = HEARTBEAT.intervalMs + HEARTBEAT.timeoutMs;
export const CONNECT_TIMEOUT_MS = 1_000;
/** A connection open this long counts as healthy. */
export const STABILITY_WINDOW_MS = 300;
/** High enough that no held fault here reaches it (about 8 attempts in 1.2 s): the rows other than flapping must recover, not give up. */
export const MAX_FAILURES = 20;
/** The failure cap of the flapping rows: a flapping server that brings nothing new must end the session there. */
export const FLAP_MAX_FAILURES = 4;

/** Slack on every bound for a loaded 2-core machine: timers, event dispatch, polling. */
export const SLACK_MS = 1_000;
/**
 * From the fault lifted (or the main thread free again, if later) to the client open on a
 * new socket with traffic flowing: the longest backoff window, a handshake, a dead
 * connection the heartbeat may have to find, and the slack. The idle pattern needs one
 * heartbeat interval more: its proof of traffic is the server's answer to the ping.
 */
export const RECOVERY_BOUND_MS = BACKOFF.maxMs + CONNECT_TIMEOUT_MS + HEARTBEAT_WINDOW_MS + SLACK_MS;

/** How long the stalled pattern blocks the page's main thread: twice the heartbeat window. */
export const STALL_MS = 1_500;
/** The fault comes this long after the main thread was blocked. */
export const STALL_FAULT_AFTER_MS = 200;
/**
 * Timers alive: once the main thread is free, the first new socket must come within the
 * longest backoff window plus slack (a break the page learns of at release: a close event
 * waiting in its queue), or a heartbeat window more (a silence: the messages that waited in
 * the queue are delivered first and count as proof of life, as natively).
 */
export const AFTER_STALL_BOUND_MS = BACKOFF.maxMs + 600;

/** Attempts during a held fault: with this backoff a growing window makes about 8 in 1.5 s; a client without backoff makes hundreds. */
export const HELD_MAX_ATTEMPTS = 20;
/** Bound of the warm-up and of every wait that is not itself a contract bound. */
export const SETUP_LIMIT_MS = 8_000;
/** Backstop of a whole cell (node:test timeout). */
export const CELL_LIMIT_MS = 30_000;
