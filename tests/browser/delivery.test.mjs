// Exactly-once, in-order delivery across abrupt drops and a server restart, and resume from
// the last delivered cursor (checked on the wire and against the server's replay overlap).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FEED_OPTIONS, assertExactlyOnceInOrder, assertNeverTwoSockets, createClient, delivered,
  events, launchBrowser, openPage, resumeCursor, snapshot, startFeedServer, waitForDelivered,
  waitForState,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

/** Fast retries, never giving up: the restart's refused attempts must not end the session. */
const OPTIONS = { ...FEED_OPTIONS, backoff: { initialMs: 100, maxMs: 500 }, maxFailures: null };

async function closeClient(page) {
  await page.evaluate(() => window.harness.client(0).ws.close());
  assert.equal((await snapshot(page)).state, 'closed');
}

test('a urlProvider URL gets the resume parameter from the session on every attempt', async (t) => {
  const server = await startFeedServer(['--rate', '200'], t);
  const { page, wire } = await openPage(browser, server, t);
  await createClient(page, server.feedUrl, { ...OPTIONS, providerToken: 'T' });
  await waitForState(page, 'open');
  await waitForDelivered(page, 20);
  await server.control('drop');
  await server.waitForStats((s) => s.connections_accepted === 2 && s.live_connections === 1, 'reconnect after the drop');
  await waitForDelivered(page, 40);
  await closeClient(page);

  const { cursors } = await delivered(page);
  assertExactlyOnceInOrder(cursors);
  const attempts = (await events(page)).filter((e) => e.type === 'statechange' && e.state === 'connecting');
  assert.equal(wire.sockets.length, 2, `sockets: ${wire.sockets.map((s) => s.url)}`);
  assert.equal(new URL(wire.sockets[0].url).search, '?token=T-1', 'the provider URL, nothing to resume yet');
  const second = new URL(wire.sockets[1].url);
  assert.equal(second.searchParams.get('token'), 'T-2', 'a fresh URL from the provider');
  assert.equal(resumeCursor(wire.sockets[1].url), attempts[1].lastCursor, 'resumed from the last delivered cursor');
});

test('exactly-once in-order delivery across drops and a server restart', async (t) => {
  const server = await startFeedServer(['--rate', '200'], t);
  const { page, wire } = await openPage(browser, server, t);
  await createClient(page, server.feedUrl, OPTIONS);
  await waitForState(page, 'open');
  let target = 40;
  await waitForDelivered(page, target);

  for (let drop = 1; drop <= 3; drop += 1) {
    const { connections } = await server.control('drop');
    assert.equal(connections, 1, 'one connection to drop');
    await server.waitForStats((s) => s.connections_accepted === drop + 1 && s.live_connections === 1,
      `reconnect after drop ${drop}`);
    target += 40;
    await waitForDelivered(page, target);
  }

  await server.control('restart?down_ms=800');
  // Down: the control endpoint is unreachable too; waitForStats retries through it.
  await server.waitForStats((s) => s.listening && s.connections_accepted === 5 && s.live_connections === 1,
    'reconnect after the restart', 8_000);
  target += 40;
  await waitForDelivered(page, target);
  await closeClient(page);

  const { cursors, mismatches } = await delivered(page);
  assert.deepEqual(mismatches, [], 'every cursor is the seq of its message');
  assertExactlyOnceInOrder(cursors);
  const { stats } = await snapshot(page);
  assert.equal(stats.reconnects, 4, `reconnects: ${JSON.stringify(stats)}`);
  assert.equal(stats.replaysDropped, 0, 'the server resumed right after the cursor sent');
  assert.equal(stats.messagesDelivered, cursors.length);
  assert.deepEqual((await events(page)).filter((e) => e.type === 'gap'), [], 'no gap');

  // On the wire: every socket the page opened (refused ones during the restart too) asked
  // for the cursor delivered last before its attempt began; the first asked for none.
  const attempts = (await events(page)).filter((e) => e.type === 'statechange' && e.state === 'connecting');
  assert.equal(wire.sockets.length, attempts.length, `sockets the page opened: ${wire.sockets.map((s) => s.url)}`);
  assert.equal(resumeCursor(wire.sockets[0].url), null);
  for (let i = 1; i < attempts.length; i += 1) {
    assert.equal(resumeCursor(wire.sockets[i].url), attempts[i].lastCursor, `socket ${i} resumed from the last delivered cursor`);
  }

  const server_stats = await assertNeverTwoSockets(server);
  assert.equal(server_stats.live_connections, 0, 'close() ended the socket');
  // What the server sent beyond what was delivered can only be frames in flight at a drop.
  assert.ok(server_stats.messages_sent - cursors.length <= 4 * 64,
    `messages_sent ${server_stats.messages_sent} vs delivered ${cursors.length}`);
});

test('resume sends the last cursor: replayed overlap is dropped, nothing twice', async (t) => {
  const server = await startFeedServer(['--rate', '200'], t);
  // Every resumed connection starts 5 messages before the cursor it was given.
  await server.control('faults?replay_overlap=5');
  const { page, wire } = await openPage(browser, server, t);
  await createClient(page, server.feedUrl, OPTIONS);
  let target = 30;
  await waitForDelivered(page, target);
  for (let drop = 1; drop <= 2; drop += 1) {
    await server.control('drop');
    await server.waitForStats((s) => s.connections_accepted === drop + 1 && s.live_connections === 1,
      `reconnect after drop ${drop}`);
    target += 30;
    await waitForDelivered(page, target);
  }
  await closeClient(page);

  const { cursors } = await delivered(page);
  assertExactlyOnceInOrder(cursors);
  const { stats } = await snapshot(page);
  assert.equal(stats.reconnects, 2);
  // Exactly 5 per resume: the client resumed from its last delivered cursor (an older one
  // would replay more, a newer one would leave a gap) and dropped the overlap.
  assert.equal(stats.replaysDropped, 10, `stats: ${JSON.stringify(stats)}`);
  assert.deepEqual((await events(page)).filter((e) => e.type === 'gap'), []);
  const resumed = wire.sockets.slice(1).map((s) => resumeCursor(s.url));
  assert.equal(resumed.length, 2);
  for (const cursor of resumed) assert.ok(cursors.includes(cursor), `resume cursor ${cursor} was delivered`);
  await assertNeverTwoSockets(server);
});
