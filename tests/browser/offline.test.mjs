// The browser's offline/online signals: offline ends the socket at once, online reconnects
// at once (not after the backoff), and what was sent while offline leaves in order.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FEED_OPTIONS, assertExactlyOnceInOrder, assertNeverTwoSockets, createClient, delivered,
  events, launchBrowser, openPage, resumeCursor, sleep, snapshot, startFeedServer,
  waitForDelivered, waitForState,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

/** A backoff window far longer than the waits below: a reconnect within them did not back off. */
const OPTIONS = { ...FEED_OPTIONS, backoff: { initialMs: 10_000, maxMs: 20_000 } };

test('offline ends the socket at once; online reconnects at once, before any backoff', async (t) => {
  const server = await startFeedServer(['--rate', '100'], t);
  const { context, page, wire } = await openPage(browser, server, t);
  await createClient(page, server.feedUrl, OPTIONS);
  await waitForDelivered(page, 10);

  await context.setOffline(true);
  await waitForState(page, 'reconnecting', 1_000);
  await server.waitForStats((s) => s.live_connections === 0, 'the server to see the socket end', 1_000);
  const offline = await snapshot(page);
  // Offline: no attempt and no backoff timer, just waiting for the network.
  await sleep(500);
  assert.equal((await snapshot(page)).state, 'reconnecting');
  assert.equal((await server.stats()).connections_accepted, 1, 'no attempt while offline');

  const online = await snapshot(page);
  await context.setOffline(false);
  await waitForState(page, 'open', 2_000);
  const opened = await snapshot(page);
  assert.ok(opened.now - online.now < 2_000, `reopened ${opened.now - online.now} ms after going online`);
  await waitForDelivered(page, opened.delivered + 10);

  const seen = await events(page);
  const waiting = seen.find((e) => e.type === 'statechange' && e.state === 'reconnecting');
  assert.equal(waiting.reason, 'network offline');
  assert.equal(waiting.delayMs, null, 'no backoff delay chosen while offline');
  assert.deepEqual(seen.filter((e) => e.type === 'reconnecting'), [], 'no backoff was scheduled at all');
  const back = seen.filter((e) => e.type === 'statechange' && e.state === 'connecting').at(-1);
  assert.equal(back.reason, 'network back online');

  const { cursors } = await delivered(page);
  assertExactlyOnceInOrder(cursors);
  assert.equal(wire.sockets.length, 2);
  assert.equal(resumeCursor(wire.sockets[1].url), offline.lastCursor, 'resumed from the last cursor');
  const stats = await assertNeverTwoSockets(server);
  assert.equal(stats.connections_accepted, 2);
  assert.equal(stats.live_connections, 1);
});

test('messages sent while offline are queued and arrive in order once online', async (t) => {
  const server = await startFeedServer(['--rate', '50'], t);
  const { context, page, wire } = await openPage(browser, server, t);
  await createClient(page, server.feedUrl, OPTIONS);
  await waitForState(page, 'open');
  await page.evaluate(() => window.harness.client(0).ws.send('before-0'));
  await server.waitForStats((s) => s.client_messages_received === 1, 'the message sent while online');

  await context.setOffline(true);
  await waitForState(page, 'reconnecting', 1_000);
  const N = 25;
  await page.evaluate((n) => {
    const { ws } = window.harness.client(0);
    for (let i = 0; i < n; i += 1) ws.send(`offline-${i}`);
  }, N);
  const queued = await snapshot(page);
  assert.equal(queued.stats.queued, N);
  await sleep(200);
  assert.equal((await server.stats()).client_messages_received, 1, 'nothing left while offline');

  await context.setOffline(false);
  await waitForState(page, 'open', 2_000);
  await server.waitForStats((s) => s.client_messages_received === 1 + N, 'the queued messages');
  const sent = await snapshot(page);
  assert.equal(sent.stats.queued, 0);
  assert.equal(sent.stats.messagesSent, 1 + N);

  // The server has no endpoint listing what it received (only the count above), so the order
  // is checked on the wire, as the browser sent the frames (DevTools protocol).
  assert.equal(wire.sockets.length, 2);
  assert.deepEqual(wire.sockets[0].sent, ['before-0']);
  assert.deepEqual(wire.sockets[1].sent, Array.from({ length: N }, (_, i) => `offline-${i}`));
  await assertNeverTwoSockets(server);
});
