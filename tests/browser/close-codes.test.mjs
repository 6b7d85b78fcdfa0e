// How the server's refusals end (or don't end) the session: a 4401 close is fatal, a refused
// handshake is retried with backoff up to maxFailures, invalid UTF-8 is fatal as natively
// while a reset connection (the same 1006 to the page) is retried.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FEED_OPTIONS, assertNeverTwoSockets, createClient, events, launchBrowser, openPage, sleep,
  snapshot, startFeedServer, waitForDelivered, waitForState,
} from './helpers.mjs';
import { startRawServer } from './raw-server.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

test('a 4401 close ends the session without retry', async (t) => {
  const server = await startFeedServer(['--rate', '100'], t);
  const { page, wire } = await openPage(browser, server, t);
  await createClient(page, server.feedUrl, { ...FEED_OPTIONS, backoff: { initialMs: 50, maxMs: 100 } });
  await waitForDelivered(page, 5);
  const { connections } = await server.control('close?code=4401');
  assert.equal(connections, 1);
  await waitForState(page, 'failed');

  const seen = await events(page);
  const failed = seen.filter((e) => e.type === 'statechange' && e.state === 'failed');
  assert.equal(failed.length, 1);
  assert.match(failed[0].reason, /4401/, 'the reason names the close code');
  assert.equal(seen.filter((e) => e.type === 'giveup').length, 1, "'giveup' fired once");
  assert.equal(seen.filter((e) => e.type === 'error').length, 1, "'error' fired once");
  const afterFailure = seen.slice(seen.indexOf(failed[0]) + 1);
  assert.deepEqual(afterFailure.filter((e) => e.type === 'statechange'), [], 'no state after failed');

  // Well past the backoff window (100 ms): no new attempt.
  await sleep(1_000);
  const stats = await assertNeverTwoSockets(server);
  assert.equal(stats.connections_accepted, 1, 'never reconnected');
  assert.equal(stats.live_connections, 0);
  assert.equal(wire.sockets.length, 1, 'the page opened one socket');
  const client = await snapshot(page);
  assert.equal(client.state, 'failed');
  assert.equal(client.readyState, 3);
  assert.equal(client.stats.attempts, 1);
});

// Browsers hide the HTTP status of a refused handshake: the page sees only close 1006, the
// same as a dropped connection. So a 401 — fatal for the native client — is retried here
// with backoff until maxFailures, then the session gives up. This is expected (see
// client-wasm/js/README.md), not a bug.
test('a refused handshake (HTTP 401) is retried with backoff up to maxFailures, then gives up', async (t) => {
  const server = await startFeedServer(['--rate', '100'], t);
  await server.control('refuse?status=401&count=1000');
  const { page, wire } = await openPage(browser, server, t);
  const initialMs = 100;
  await createClient(page, server.feedUrl, { ...FEED_OPTIONS, maxFailures: 4, backoff: { initialMs, maxMs: 2000 } });
  await waitForState(page, 'failed', 8_000);

  const seen = await events(page);
  const attempts = seen.filter((e) => e.type === 'statechange' && e.state === 'connecting');
  const retries = seen.filter((e) => e.type === 'reconnecting');
  assert.equal(attempts.length, 4, 'maxFailures attempts');
  assert.equal(retries.length, 3, 'a backoff before each retry');
  for (const [i, retry] of retries.entries()) {
    const failures = i + 1;
    assert.equal(retry.attempt, failures + 1);
    // Full jitter: a delay in [0, initial * 2^failures].
    const window = initialMs * 2 ** failures;
    assert.ok(retry.delayMs >= 0 && retry.delayMs <= window, `retry ${i}: delay ${retry.delayMs} ms within [0, ${window}]`);
    // The next attempt waited out the delay. The delay counts from the session's clock
    // reading at the start of its step, the recorded time from the event's dispatch a little
    // later (more on a loaded machine): hence the slack.
    const waited = attempts[i + 1].t - retry.t;
    assert.ok(waited >= retry.delayMs - 20, `retry ${i}: attempted after ${waited} ms, delay was ${retry.delayMs} ms`);
  }
  assert.equal(seen.filter((e) => e.type === 'giveup').length, 1);
  const failed = seen.find((e) => e.type === 'statechange' && e.state === 'failed');
  assert.match(failed.reason, /1006|connection lost|closed/i, `reason: ${failed.reason}`);

  await sleep(800);
  const stats = await assertNeverTwoSockets(server, { expectConnections: false });
  assert.equal(stats.handshakes_refused, 4, 'the server refused exactly maxFailures handshakes');
  assert.equal(stats.connections_accepted, 0);
  assert.equal(wire.sockets.length, 4);
  const client = await snapshot(page);
  assert.equal(client.state, 'failed');
  assert.equal(client.stats.attempts, 4);
  assert.equal(client.stats.consecutiveFailures, 4);
});

test('a handshake refused fewer times than maxFailures is retried until it connects', async (t) => {
  const server = await startFeedServer(['--rate', '100'], t);
  await server.control('refuse?status=503&count=2');
  const { page } = await openPage(browser, server, t);
  await createClient(page, server.feedUrl, { ...FEED_OPTIONS, maxFailures: 5, backoff: { initialMs: 50, maxMs: 500 } });
  await waitForState(page, 'open', 5_000);
  await waitForDelivered(page, 5);
  const client = await snapshot(page);
  assert.equal(client.stats.attempts, 3);
  const stats = await assertNeverTwoSockets(server);
  assert.equal(stats.handshakes_refused, 2);
  assert.equal(stats.connections_accepted, 1);
});

test('invalid UTF-8 in a text message ends the session, as natively; a reset connection is retried', async (t) => {
  // Connection 1 sends a message and resets; connection 2 sends one and then invalid UTF-8.
  // The page sees close 1006 both times; only the browser's error event tells them apart.
  const raw = await startRawServer(t, (connection) => {
    const first = raw.urls.length === 1;
    connection.text(JSON.stringify({ seq: first ? 1 : 2 }));
    setTimeout(() => (first ? connection.reset() : connection.textBytes([0x7b, 0xff, 0xfe, 0x7d])), 100);
  });
  const { page } = await openPage(browser, await startFeedServer([], t), t);
  await createClient(page, raw.url, { ...FEED_OPTIONS, backoff: { initialMs: 50, maxMs: 100 } });
  await waitForState(page, 'failed', 3_000);

  const seen = await events(page);
  const lost = seen.filter((e) => e.type === 'statechange' && e.state === 'reconnecting');
  assert.equal(lost.length, 1, `the reset was retried once: ${JSON.stringify(seen)}`);
  assert.match(lost[0].reason, /connection lost/);
  const [failed] = seen.filter((e) => e.type === 'statechange' && e.state === 'failed');
  // The browser hides which violation it was (natively: 1007 for UTF-8, 1002 for a bad frame).
  assert.match(failed.reason, /code 1002: invalid UTF-8 or a bad frame/);
  assert.equal(seen.filter((e) => e.type === 'giveup').length, 1);
  await sleep(500); // five backoff windows: no retry after the failure
  assert.equal(raw.urls.length, 2, `sockets: ${JSON.stringify(raw.urls)}`);
  assert.equal((await snapshot(page)).delivered, 2, 'both messages before the faults were delivered');
});
