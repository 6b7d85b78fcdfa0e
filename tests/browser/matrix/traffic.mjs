// The columns of the browser fault matrix: what the page is doing when the fault comes.

/** The page's sender: 10 messages of 100 bytes every 5 ms (up to ~2,000 a second), at most 30,000. */
export const SENDER = { batch: 10, everyMs: 5, bytes: 100, max: 30_000 };
/** The app-level ping of the idle pattern; the feed server answers it with {"type":"pong"}. */
export const PING = '{"type":"ping"}';

/**
 * Each column: `serverArgs` (the feed server's rate: an idle feed ends after 20 messages),
 * `sends` (the page sends fast), `receives` (the feed flows: recovery is proven by new
 * messages), `ping` (an app-level ping keeps an idle connection checked; its pong proves
 * recovery), `stalled` (the page's main thread is blocked while the fault comes: the
 * browser's slow consumer, no listener runs and no timer fires), `warmDelivered`.
 */
export const PATTERNS = [
  { key: 'idle', name: 'idle', serverArgs: ['--rate', '200', '--total', '20'], ping: true, warmDelivered: 20 },
  { key: 'receiving', name: 'receiving fast', serverArgs: ['--rate', '1000'], receives: true, warmDelivered: 200 },
  // A slow feed keeps the connection from looking dead to the idle timeout.
  { key: 'sending', name: 'sending fast', serverArgs: ['--rate', '20'], sends: true, warmDelivered: 3 },
  { key: 'both', name: 'both', serverArgs: ['--rate', '1000'], receives: true, sends: true, warmDelivered: 200 },
  { key: 'stalled', name: 'consumer stalled', serverArgs: ['--rate', '200'], receives: true, stalled: true, warmDelivered: 20 },
];
