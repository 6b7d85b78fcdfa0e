// The rows of the browser fault matrix: what goes wrong, through the feed server's /control
// endpoints. The names follow the native matrix (tests/tests/fault_matrix/fault.rs) so the
// two tables line up; a row that cannot be made in a browser here says why.

const HEARTBEAT_REASON = 'no traffic within the heartbeat timeout';

/**
 * Each row: `name`; `na` (a reason: the row does not apply in the browser) or `inject(server)`
 * and `lift(server)` with `holdMs` between them; `expect`: 'recover' (the client reconnects
 * and resumes), 'cap' (a flapping server that brings nothing new: the session must end at
 * the failure cap, then `reconnect()` recovers), or 'progress' (flapping with new data: the
 * session goes on at backoff pace); `retries` when the client must keep attempting while
 * the fault is held (backoff checked); `reason` a pattern the reason of the client's
 * reconnecting state must match; `notApplicable(pattern)` for single cells.
 */
export const FAULTS = [
  {
    key: 'reset',
    name: 'TCP reset',
    na: 'the feed server ends connections with FIN only (/control/drop): an RST needs a /control/reset (SO_LINGER 0) or the fault proxy',
  },
  {
    key: 'blackhole',
    name: 'blackhole',
    na: 'packets vanishing needs the page behind a fault proxy (or netns); the server-silent row is its application-level form',
  },
  {
    key: 'stall',
    name: 'stalled handshakes',
    na: 'the feed server cannot hold a handshake unanswered: needs a /control/stall_handshakes or the fault proxy',
  },
  {
    key: 'slow',
    name: 'slow reads, then reset',
    na: 'the feed server reads at full speed: needs a /control/slow_reads (bytes/s) so bufferedAmount fills',
  },
  {
    key: 'silence',
    name: 'server silent (socket open)',
    inject: (server) => server.control('silence'),
    holdMs: 0,
    expect: 'recover',
    reason: new RegExp(HEARTBEAT_REASON),
    silence: true,
  },
  ...[1000, 1001, 1011, 1012, 1013, 1014].map((code) => ({
    key: `close${code}`,
    name: `server close ${code}`,
    inject: (server) => server.control(`close?code=${code}`),
    holdMs: 0,
    expect: 'recover',
    reason: new RegExp(`code ${code}`),
  })),
  {
    key: 'drop',
    name: 'server drop (1006)',
    inject: (server) => server.control('drop'),
    holdMs: 0,
    expect: 'recover',
  },
  {
    key: 'restart',
    name: 'server restart',
    inject: (server) => server.control('restart?down_ms=800'),
    holdMs: 800,
    lift: (server) => server.waitForStats((s) => s.listening, 'the feed server listening again', 5_000),
    expect: 'recover',
  },
  refusal('refuse', 'refused 503', ''),
  // The page cannot see the header (every refusal is close 1006): the cell checks the backoff instead.
  refusal('refuseRetryAfter', 'refused 503, Retry-After 1', '&retry_after=1'),
  {
    key: 'refuseRetryAfter0',
    name: 'refused 503, Retry-After 0',
    na: "the browser hides the refusal's headers (close 1006): from the page it is the 'refused 503' row",
  },
  flapping('flapNothing', 'flapping, no data', 'drop_every=0', 'drop_every=off', 'cap'),
  {
    ...flapping('flapNew', 'flapping, new data', 'drop_every=1', 'drop_every=off', 'progress'),
    notApplicable: (pattern) => (pattern.key === 'idle' ? 'an idle feed has no new data for each short connection to bring' : null),
  },
  flapping('flapReplay', 'flapping, replays', 'drop_every=1&replay_overlap=1', 'drop_every=off&replay_overlap=0', 'cap'),
];

/** The current connection drops and every handshake is refused with 503 (`extra`: more query), for 1.2 s. */
function refusal(key, name, extra) {
  return {
    key,
    name,
    inject: async (server) => { await server.control(`refuse?status=503${extra}`); await server.control('drop'); },
    holdMs: 1_200,
    lift: (server) => server.control('refuse?status=off'),
    expect: 'recover',
    retries: true,
  };
}

/**
 * The current connection drops and every new one is dropped by the server (`faults`, the
 * /control/faults query; `cleared` undoes it), for 1.5 s.
 */
function flapping(key, name, faults, cleared, expect) {
  return {
    key,
    name,
    inject: async (server) => { await server.control(`faults?${faults}`); await server.control('drop'); },
    holdMs: 1_500,
    lift: (server) => server.control(`faults?${cleared}`),
    expect,
    retries: true,
  };
}
