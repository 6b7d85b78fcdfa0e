// The outbound queue's bounds and the graceful close that flushes it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FEED_OPTIONS, assertNeverTwoSockets, createClient, events, launchBrowser, openPage, sleep,
  snapshot, startFeedServer, waitForState,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

test('send throws an Error naming the full queue, and hands nothing over silently', async (t) => {
  const server = await startFeedServer(['--rate', '20'], t);
  const { page, wire } = await openPage(browser, server, t);
  const outcome = await page.evaluate((url) => {
    const index = window.harness.create(url, { cursorField: 'seq', queue: { maxMessages: 3, maxBytes: 64 } });
    const { ws } = window.harness.client(index);
    const result = { sent: [], errors: [] };
    // Synchronously, before the first attempt even starts: everything is queued.
    for (const text of ['q-0', 'q-1', 'q-2', 'q-3']) {
      try {
        ws.send(text);
        result.sent.push(text);
      } catch (error) {
        result.errors.push({ text, isError: error instanceof Error, message: error.message });
      }
    }
    result.queued = ws.stats.queued;
    return result;
  }, server.feedUrl);
  assert.deepEqual(outcome.sent, ['q-0', 'q-1', 'q-2']);
  assert.equal(outcome.queued, 3);
  assert.equal(outcome.errors.length, 1);
  const [full] = outcome.errors;
  assert.equal(full.text, 'q-3');
  assert.ok(full.isError, 'an Error');
  assert.match(full.message, /queue is full/);
  assert.match(full.message, /3 messages/, `names the bound reached: ${full.message}`);

  // A message larger than the byte bound is refused on its own, naming that bound.
  const tooLarge = await page.evaluate(() => {
    try { window.harness.client(0).ws.send('x'.repeat(65)); return null; } catch (error) { return error.message; }
  });
  assert.match(tooLarge ?? '', /queue.*64 bytes/, `message: ${tooLarge}`);

  await waitForState(page, 'open');
  await server.waitForStats((s) => s.client_messages_received === 3, 'the three accepted messages');
  await sleep(100);
  assert.equal((await server.stats()).client_messages_received, 3, 'the refused ones never left');
  assert.deepEqual(wire.sockets[0].sent, ['q-0', 'q-1', 'q-2']);
  await assertNeverTwoSockets(server);
});

test('await close() flushes the queue, then closes', async (t) => {
  const server = await startFeedServer(['--rate', '20'], t);
  const { page, wire } = await openPage(browser, server, t);
  const N = 50;
  const result = await page.evaluate(async ([url, n]) => {
    const index = window.harness.create(url, { cursorField: 'seq' });
    const { ws } = window.harness.client(index);
    // Let the first attempt start (it is deferred to a microtask), then queue while the
    // handshake is in flight.
    for (let i = 0; i < 100 && ws.state === 'idle'; i += 1) await null;
    const stateAtSend = ws.state;
    for (let i = 0; i < n; i += 1) ws.send(`flush-${i}`);
    const queuedAtClose = ws.stats.queued;
    await ws.close(1000, 'done');
    return { stateAtSend, queuedAtClose, stateAfter: ws.state, stats: ws.stats };
  }, [server.feedUrl, N]);
  assert.equal(result.stateAtSend, 'connecting');
  assert.equal(result.queuedAtClose, N, 'all queued while the handshake was in flight');
  assert.equal(result.stateAfter, 'closed');
  assert.equal(result.stats.queued, 0);
  assert.equal(result.stats.messagesSent, N);

  const seen = await events(page);
  assert.deepEqual(seen.filter((e) => e.type === 'unsent'), [], 'nothing handed back');
  const closed = seen.find((e) => e.type === 'close');
  assert.equal(closed?.reason, 'close handshake complete');
  await server.waitForStats((s) => s.client_messages_received === N && s.live_connections === 0,
    'every message, then the end of the connection', 3_000);
  assert.deepEqual(wire.sockets[0].sent, Array.from({ length: N }, (_, i) => `flush-${i}`));
  assert.equal(wire.sockets.length, 1);
  await sleep(300);
  assert.equal((await snapshot(page)).state, 'closed', 'still closed');
  await assertNeverTwoSockets(server);
});

// close() before the first attempt began, with nothing queued: nothing to flush, so no socket
// is opened, and the deferred first attempt must not reopen the session.
test('close() right after the constructor stays closed and opens no socket', async (t) => {
  const server = await startFeedServer(['--rate', '20'], t);
  const { page, wire } = await openPage(browser, server, t);
  await page.evaluate(async (url) => {
    const index = window.harness.create(url, { cursorField: 'seq' });
    const { ws } = window.harness.client(index);
    await ws.close();
  }, server.feedUrl);
  await sleep(500);
  const client = await snapshot(page);
  assert.equal(client.state, 'closed', 'closed for good once close() resolved');
  assert.equal(client.stats.attempts, 0);
  assert.equal(wire.sockets.length, 0, 'the page opened no socket');
  assert.equal((await server.stats()).connections_accepted, 0);
});

// The package README's example: construct, send, close at once. close() flushes the queue, so
// it makes the one attempt needed to deliver 'hello', then closes for good.
test('close() right after the constructor flushes what was sent', async (t) => {
  const server = await startFeedServer(['--rate', '20'], t);
  const { page, wire } = await openPage(browser, server, t);
  await page.evaluate(async (url) => {
    const index = window.harness.create(url, { cursorField: 'seq' });
    const { ws } = window.harness.client(index);
    ws.send('hello');
    await ws.close();
  }, server.feedUrl);
  await sleep(300);
  const seen = await events(page);
  assert.deepEqual(seen.filter((e) => e.type === 'unsent'), [], "'hello' came back unsent");
  const stats = await server.stats();
  assert.equal(stats.client_messages_received, 1, "'hello' never reached the server");
  assert.equal(stats.connections_accepted, 1, 'one socket, for the flush');
  assert.equal(wire.sockets.length, 1);
  assert.equal((await snapshot(page)).state, 'closed');
});
