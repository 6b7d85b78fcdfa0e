// Messages the browser has not written yet (still in the socket's bufferedAmount): `send`
// while open stays within the queue's bounds when the peer stops reading, and what the
// socket never wrote when it breaks goes out on the next connection, in order, exactly once.
// A page-side spy on WebSocket sees what the package handed to each socket and what was
// still buffered when it closed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createClient, events, launchBrowser, openPage, snapshot, startFeedServer, waitForState, waitUntil,
} from './helpers.mjs';
import { startRawServer } from './raw-server.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

/**
 * Replaces the page's WebSocket with a subclass that records, per socket, each message
 * handed to `send` with the byte offset where it ends, and `bufferedAmount` at the close.
 */
function spyOnSockets(page) {
  return page.evaluate(() => {
    const Native = window.WebSocket;
    window.spied = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        const record = { handed: [], bytes: 0, bufferedAtClose: null, socket: this };
        window.spied.push(record);
        this.addEventListener('close', () => { record.bufferedAtClose = this.bufferedAmount; });
      }

      send(data) {
        const record = window.spied.find((r) => r.socket === this);
        record.bytes += typeof data === 'string' ? new TextEncoder().encode(data).length : data.byteLength;
        record.handed.push({ text: String(data), end: record.bytes });
        super.send(data);
      }
    };
  });
}

/**
 * In the page: sends `size`-byte messages named by their index until `send` keeps refusing
 * (the queue is full) for `refusedMs`, or `stopAtBuffered` bytes wait in the socket, or
 * `limit` messages went; yields to the browser every few sends so it can move bytes out.
 */
function sendUntilFull(page, { size, limit, refusedMs = 400, stopAtBuffered = Infinity }) {
  return page.evaluate(async ([size, limit, refusedMs, stopAtBuffered]) => {
    const { ws } = window.harness.client(0);
    const socket = window.spied.at(-1).socket;
    const sleep = (ms) => new Promise((done) => { setTimeout(done, ms); });
    const accepted = [];
    let refusal = null;
    let refusedSince = null;
    let peakBuffered = 0;
    for (let i = 0; accepted.length < limit && i < limit * 4; i += 1) {
      const text = `${accepted.length}:`.padEnd(size, 'x');
      try {
        ws.send(text);
        accepted.push(text);
        refusedSince = null;
      } catch (error) {
        refusal = error.message;
        refusedSince ??= performance.now();
        if (performance.now() - refusedSince >= refusedMs) break;
        await sleep(20);
      }
      peakBuffered = Math.max(peakBuffered, socket.bufferedAmount);
      if (socket.bufferedAmount >= stopAtBuffered) break;
      if (i % 4 === 3) await sleep(0);
    }
    const stillRefused = refusedSince !== null;
    return { accepted: accepted.map((text) => text.split(':')[0]), refusal, stillRefused, peakBuffered, stats: ws.stats };
  }, [size, limit, refusedMs, stopAtBuffered]);
}

test('send while open stays within the queue bounds when the peer stops reading', async (t) => {
  const feed = await startFeedServer([], t);
  const raw = await startRawServer(t, (connection) => connection.pause());
  const { page } = await openPage(browser, feed, t);
  await spyOnSockets(page);
  const maxBytes = 256 * 1024;
  const size = 32 * 1024;
  await createClient(page, raw.url, { queue: { maxBytes }, heartbeat: false });
  await waitForState(page, 'open');

  // 64 MiB at most: far more than the OS and the browser buffer on loopback.
  const sent = await sendUntilFull(page, { size, limit: 2048 });
  const detail = `${sent.accepted.length} messages accepted, bufferedAmount peaked at ${sent.peakBuffered} B, stats ${JSON.stringify(sent.stats)}`;
  assert.ok(sent.stillRefused, `send never stayed refused while the peer read nothing: ${detail}`);
  assert.match(sent.refusal, /queue is full/, detail);
  assert.ok(sent.peakBuffered <= maxBytes + size,
    `bufferedAmount grew past the queue's ${maxBytes} B (+ one message): ${detail}`);

  // Still bounded a while later, and still refusing: nothing drains into the buffer behind it.
  await new Promise((done) => { setTimeout(done, 500); });
  const later = await page.evaluate(() => {
    const { ws } = window.harness.client(0);
    let refused = false;
    try { ws.send('one more'); } catch { refused = true; }
    return { refused, buffered: window.spied.at(-1).socket.bufferedAmount, state: ws.state };
  });
  assert.equal(later.state, 'open');
  assert.ok(later.refused, 'the queue is still full');
  assert.ok(later.buffered <= maxBytes + size, `bufferedAmount ${later.buffered} B`);
});

test('messages still in the browser buffer when the connection breaks go out on the next one, in order, once', async (t) => {
  const feed = await startFeedServer([], t);
  const connections = [];
  const raw = await startRawServer(t, (connection) => {
    connections.push(connection);
    // The first connection reads nothing, so what the page sends piles up in its buffers.
    if (connections.length === 1) connection.pause();
  });
  const { page } = await openPage(browser, feed, t);
  await spyOnSockets(page);
  await createClient(page, raw.url, { backoff: { initialMs: 50, maxMs: 200 } });
  await waitForState(page, 'open');
  const size = 16 * 1024;
  const sent = await sendUntilFull(page, { size, limit: 4096, stopAtBuffered: 512 * 1024 });
  assert.ok(sent.peakBuffered > 4 * size, `the browser buffered little (${sent.peakBuffered} B): the test needs messages in bufferedAmount at the break`);

  // The server ends the connection with a reset while the page has bytes buffered.
  connections[0].reset();
  await waitUntil(() => connections.length >= 2, 'the next connection', 5_000);
  const first = await page.evaluate(() => {
    const { handed, bytes, bufferedAtClose } = window.spied[0];
    return { handed: handed.map(({ text, end }) => ({ index: text.split(':')[0], end })), bytes, bufferedAtClose };
  });
  assert.ok(first.bufferedAtClose !== null, 'the first socket closed');
  // Bytes that left bufferedAmount before the break were written: they may be lost with
  // the connection. Everything else must come again.
  const left = first.bytes - first.bufferedAtClose;
  const written = new Set(first.handed.filter(({ end }) => end <= left).map(({ index }) => index));
  const expected = sent.accepted.filter((index) => !written.has(index));
  assert.ok(expected.length >= 2, `the break caught ${first.bufferedAtClose} B buffered; ${expected.length} messages to resend`);

  const resent = () => connections[1].received.map((text) => text.split(':')[0]);
  await waitUntil(async () => {
    const unsent = (await events(page)).some((e) => e.type === 'unsent');
    return unsent || resent().length >= expected.length;
  }, `${expected.length} messages on the next connection`, 10_000,
  () => `${resent().length} arrived: ${JSON.stringify(resent().slice(0, 5))}...`).catch((error) => {
    throw new Error(`${error.message}; ${sent.accepted.length} accepted, ${written.size} had left the buffer (${left} of ${first.bytes} B) before the break`);
  });
  await new Promise((done) => { setTimeout(done, 200); }); // anything sent twice would show now
  const unsent = (await events(page)).filter((e) => e.type === 'unsent');
  assert.deepEqual(unsent, [], 'nothing came back unsent: the session kept running');
  assert.deepEqual(resent(), expected, 'every message still buffered at the break, once, in order');
  assert.equal(connections[0].received.filter((text) => !written.has(text.split(':')[0])).length, 0,
    'the first connection received only messages that had left the buffer');
  const client = await snapshot(page);
  assert.equal(client.stats.queued, 0);
  assert.equal(client.state, 'open');
});

test('a connection that keeps breaking with bytes buffered: they go out on the next one, and come back unsent when the session gives up', async (t) => {
  const feed = await startFeedServer([], t);
  const connections = [];
  // No connection reads: what the page sends piles up in the browser's buffer every time.
  const raw = await startRawServer(t, (connection) => {
    connections.push(connection);
    connection.pause();
  });
  const { page, wire } = await openPage(browser, feed, t);
  await spyOnSockets(page);
  // Three short connections that bring nothing: the third failure ends the session.
  const rounds = 3;
  await createClient(page, raw.url, { backoff: { initialMs: 50, maxMs: 200 }, maxFailures: rounds, heartbeat: false });
  const accepted = [];
  for (let round = 0; round < rounds; round += 1) {
    await waitUntil(() => connections.length > round, `connection ${round + 1}`, 5_000);
    await waitForState(page, 'open');
    const sent = await sendUntilFull(page, { size: 16 * 1024, limit: 4096, stopAtBuffered: 256 * 1024 });
    accepted.push(...sent.accepted);
    assert.ok(sent.peakBuffered > 4 * 16 * 1024, `round ${round + 1}: the browser buffered little (${sent.peakBuffered} B)`);
    connections[round].reset();
    await waitUntil(() => page.evaluate((n) => window.spied[n].bufferedAtClose !== null, round), `socket ${round + 1} closed`, 5_000);
  }
  await waitForState(page, 'failed');

  // Per socket, the messages that left its buffer before it broke (they may be lost with it);
  // every other accepted message went out on a later socket or came back unsent, once, in order.
  const sockets = await page.evaluate(() => window.spied.map(({ handed, bytes, bufferedAtClose }) => ({
    handed: handed.map(({ text, end }) => ({ index: text.split(':')[0], end })), bytes, bufferedAtClose,
  })));
  assert.equal(sockets.length, rounds);
  const departed = [];
  for (const socket of sockets) {
    const left = socket.bytes - socket.bufferedAtClose;
    const gone = socket.handed.filter(({ end }) => end <= left).map(({ index }) => index);
    departed.push(...gone);
  }
  // The test needs bytes stranded in breaking sockets. The kernel's send buffer grows while a
  // connection lives, so one socket may drain into it before its reset: at least two of the
  // three must break with bytes still in the browser's buffer.
  const stranded = sockets.filter(({ bufferedAtClose }) => bufferedAtClose > 0).length;
  assert.ok(stranded >= 2, `only ${stranded} of ${rounds} sockets broke with bytes buffered: the test needs bytes stranded`);
  const unsent = (await events(page)).filter((e) => e.type === 'unsent');
  const returned = unsent.flatMap((e) => e.messages.map((text) => text.split(':')[0]));
  assert.equal(unsent.length, 1, `one 'unsent' event when the session gave up (${departed.length} of ${accepted.length} accepted messages had left the browser; page errors: ${wire.pageErrors.join(' | ') || 'none'})`);
  assert.deepEqual([...departed, ...returned], accepted,
    'each accepted message left the browser once, in order, or came back unsent, in order');
  assert.deepEqual(wire.pageErrors, [], 'no page error');
  assert.equal((await snapshot(page)).stats.queued, 0);
});
