// The browser package against a feed served by the Python `websockets` library
// (tests/interop/websockets_server.py): server-initiated pings that the browser answers on
// its own (a quiet client stays on one connection), close codes 1001/1011/1012 that are
// each followed by a reconnection resuming exactly once from ?cursor=, and the server's
// max_size, whose 1009 close ends the session at once (no retry loop). The page comes from
// the reference feed-server (--static) and connects cross-origin to the websockets port;
// connections are counted by the server's GET /stats.
//
// Not named *.test.mjs, so the plain browser run skips it. Run by scripts/test-interop.sh,
// which installs the server into .venv-interop/ and sets INTEROP_PYTHON.
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  REPO, assertExactlyOnceInOrder, createClient, delivered, events, launchBrowser, openPage,
  resumeCursor, sleep, snapshot, startFeedServer, waitForDelivered, waitForState,
} from './helpers.mjs';
import { startListeningServer } from './interop-helpers.mjs';

const FEED_OPTIONS = { cursorField: 'seq', resumeParam: 'cursor', contiguousCursors: true, backoff: { initialMs: 50, maxMs: 500 } };

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

function python() {
  const path = process.env.INTEROP_PYTHON;
  if (!path) {
    throw new Error('INTEROP_PYTHON is not set: this suite drives a Python websockets server that '
      + 'scripts/test-interop.sh installs; run ./scripts/test-interop.sh browser (it installs it and runs this suite)');
  }
  return path;
}

/** tests/interop/websockets_server.py with `args` on a free port; SIGKILLed by `t.after`. */
async function startWebsockets(t, args) {
  return startListeningServer(t, {
    name: 'the websockets server',
    command: python(),
    args: [resolve(REPO, 'tests/interop/websockets_server.py'), ...args],
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
}

test('server-initiated pings are answered by the browser; a quiet client stays on one connection', async (t) => {
  // No messages at all. The library's keepalive pings every 200 ms and closes with 1011
  // when a pong is 300 ms late; the handler pings every 100 ms as well, counting pongs.
  const feed = await startWebsockets(t, ['--ping-interval', '0.2', '--ping-timeout', '0.3', '--probe-pings', '100']);
  const pageServer = await startFeedServer([], t);
  const { page, wire } = await openPage(browser, pageServer, t);
  // No heartbeat of the client's own: the server's pings are all there is.
  await createClient(page, feed.feedUrl, FEED_OPTIONS);
  await waitForState(page, 'open');

  const QUIET_MS = 3_000;
  const started = Date.now();
  while (Date.now() - started < QUIET_MS) {
    const lost = (await events(page)).filter((e) => e.type === 'reconnecting' || (e.type === 'statechange' && e.state !== 'open' && e.state !== 'connecting'));
    assert.deepEqual(lost, [], `the quiet client lost its connection after ${Date.now() - started} ms:\n${feed.output()}`);
    await sleep(250);
  }
  const stats = await feed.stats();
  assert.equal(stats.connections, 1, `still on the first connection: ${JSON.stringify(stats)}`);
  assert.equal(stats.live, 1, JSON.stringify(stats));
  assert.ok(stats.pongs >= 10, `the browser answered the server's pings: ${JSON.stringify(stats)}`);
  assert.equal(stats.received, 0, 'pongs are control frames, not messages');
  assert.equal(wire.sockets.length, 1, 'the page opened one socket');
  assert.deepEqual(wire.sockets[0].sent, [], 'the page itself sent nothing');
  const client = await snapshot(page);
  assert.equal(client.state, 'open');
  assert.equal(client.stats.attempts, 1);

  await page.evaluate(() => window.harness.client(0).ws.close());
  const closed = await feed.waitForStats((s) => s.live === 0, 'the close');
  assert.deepEqual(closed.closes, [{ code: 1000, sent: 1000, received: 1000 }], 'a clean close handshake');
  console.log(`websockets: ${stats.pongs} pongs in ${QUIET_MS} ms on one connection`);
});

test('close codes 1001, 1011 and 1012 each lead to a reconnection that resumes exactly once', async (t) => {
  const CLOSE_AFTER = 25;
  const feed = await startWebsockets(t, ['--rate', '200', '--close-codes', '1001,1011,1012', '--close-after', String(CLOSE_AFTER)]);
  const pageServer = await startFeedServer([], t);
  const { page, wire } = await openPage(browser, pageServer, t);
  const begun = Date.now();
  await createClient(page, feed.feedUrl, FEED_OPTIONS);
  await waitForDelivered(page, 150, 10_000);
  const took = Date.now() - begun;

  const { cursors, mismatches } = await delivered(page);
  assertExactlyOnceInOrder(cursors, 1);
  assert.deepEqual(mismatches, [], 'every cursor is the seq of its message');
  const seen = await events(page);
  const lost = seen.filter((e) => e.type === 'statechange' && e.state === 'reconnecting');
  assert.deepEqual(lost.map((e) => e.reason.match(/closed by the server with code (\d+)/)?.[1]), ['1001', '1011', '1012'],
    `the close codes, in order: ${JSON.stringify(lost)}`);
  assert.equal(seen.filter((e) => e.type === 'open').length, 4, 'four opens');
  assert.deepEqual(seen.filter((e) => e.type === 'gap' || e.type === 'giveup'), [], 'no gap, no giveup');

  const stats = await feed.stats();
  assert.equal(stats.connections, 4, JSON.stringify(stats));
  assert.equal(stats.max_live, 1, `never two sockets: ${JSON.stringify(stats)}`);
  assert.deepEqual(stats.closes.slice(0, 3).map((c) => c.sent), [1001, 1011, 1012], JSON.stringify(stats.closes));
  assert.deepEqual(stats.cursors, [null, CLOSE_AFTER, 2 * CLOSE_AFTER, 3 * CLOSE_AFTER], 'each resumed from the last delivered cursor');
  const asked = seen.filter((e) => e.type === 'statechange' && e.state === 'connecting').map((e) => e.lastCursor);
  assert.deepEqual(stats.cursors, asked, 'the server saw the cursor each attempt held');
  assert.deepEqual(wire.sockets.map((s) => resumeCursor(s.url)), stats.cursors, 'the URLs the page opened');

  await page.evaluate(() => window.harness.client(0).ws.close());
  await feed.waitForStats((s) => s.live === 0, 'the close');
  console.log(`websockets: ${cursors.length} messages exactly once across closes 1001/1011/1012 in ${took} ms`);
});

test('a message over max_size is closed 1009 and the browser client gives up without retrying', async (t) => {
  const feed = await startWebsockets(t, ['--max-size', '1024']);
  const pageServer = await startFeedServer([], t);
  const { page, wire } = await openPage(browser, pageServer, t);
  // The default retry policy, failure cap and backoff.
  await createClient(page, feed.feedUrl, {});
  await waitForState(page, 'open');
  await page.evaluate(() => {
    const { ws } = window.harness.client(0);
    ws.send('small');
    ws.send('x'.repeat(2000));
  });
  await waitForState(page, 'failed');

  const seen = await events(page);
  const failed = seen.filter((e) => e.type === 'statechange' && e.state === 'failed');
  assert.equal(failed.length, 1, JSON.stringify(seen));
  assert.match(failed[0].reason, /closed by the server with code 1009/, 'the reason names the 1009 close');
  assert.equal(seen.filter((e) => e.type === 'giveup').length, 1, "'giveup' fired once");
  assert.deepEqual(seen.filter((e) => e.type === 'reconnecting' || (e.type === 'statechange' && e.state === 'reconnecting')), [], 'no retry');

  // Well past the default backoff window (250 ms): no new attempt.
  await sleep(1_500);
  const stats = await feed.stats();
  assert.equal(stats.connections, 1, `exactly one connection: ${JSON.stringify(stats)}`);
  assert.equal(stats.received, 1, `the small message arrived: ${JSON.stringify(stats)}`);
  assert.equal(stats.closes.length, 1, JSON.stringify(stats));
  assert.equal(stats.closes[0].sent, 1009, `the server closed with 1009: ${JSON.stringify(stats)}`);
  assert.equal(wire.sockets.length, 1, 'the page opened one socket');
  const client = await snapshot(page);
  assert.equal(client.state, 'failed');
  assert.equal(client.readyState, 3);
  assert.equal(client.stats.attempts, 1);
  console.log(`websockets: ${failed[0].reason}; server: ${JSON.stringify(stats.closes)}`);
});
