// The browser package against a broadcast feed served by the Node `ws` library
// (tests/interop/ws_server.mjs): resume with ?cursor= after sockets ended by ws.terminate()
// (no close frame), and a half-open socket (paused by the server: never read, never
// answered, never closed) that the client's heartbeat must find dead within its
// interval + timeout. The page comes from the reference feed-server (--static) and connects
// cross-origin to the ws port; connections are counted by the server's GET /stats.
//
// Not named *.test.mjs, so the plain browser run skips it. Run by scripts/test-interop.sh,
// which installs `ws` into tests/interop/node_modules and sets INTEROP_NODE and
// INTEROP_NODE_MODULES.
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  REPO, assertExactlyOnceInOrder, createClient, delivered, events, launchBrowser, openPage,
  resumeCursor, snapshot, startFeedServer, waitForDelivered, waitUntil,
} from './helpers.mjs';
import { startListeningServer } from './interop-helpers.mjs';

const FEED_OPTIONS = { cursorField: 'seq', resumeParam: 'cursor', contiguousCursors: true, backoff: { initialMs: 50, maxMs: 500 } };
const HEARTBEAT = { intervalMs: 300, timeoutMs: 300 };
/** Measured times may exceed their bound by this much: timers, event dispatch, a busy machine. */
const SLACK_MS = 300;

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

function node() {
  if (!process.env.INTEROP_NODE_MODULES) {
    throw new Error('INTEROP_NODE_MODULES is not set: this suite drives a Node ws server that '
      + 'scripts/test-interop.sh installs; run ./scripts/test-interop.sh browser (it installs it and runs this suite)');
  }
  return process.env.INTEROP_NODE ?? process.execPath;
}

/** tests/interop/ws_server.mjs with `args` on a free port; SIGKILLed by `t.after`. */
async function startWs(t, args) {
  return startListeningServer(t, {
    name: 'the ws server',
    command: node(),
    args: [resolve(REPO, 'tests/interop/ws_server.mjs'), ...args],
    env: process.env,
  });
}

/** Creates the client and, in the same step, records when each message was delivered (harness time). */
function createTimedClient(page, url, options) {
  return page.evaluate(([url, options]) => {
    const index = window.harness.create(url, options);
    const client = window.harness.client(index);
    window.messageTimes = [];
    client.ws.addEventListener('message', (e) => window.messageTimes.push({ t: client.now(), cursor: e.cursor }));
    return index;
  }, [url, options]);
}

test('sockets ended by terminate() are replaced and the broadcast resumes exactly once', async (t) => {
  const TERMINATE_AFTER = 30;
  const feed = await startWs(t, ['--rate', '100', '--terminate-after', String(TERMINATE_AFTER), '--terminate-count', '3']);
  const pageServer = await startFeedServer([], t);
  const { page, wire } = await openPage(browser, pageServer, t);
  const begun = Date.now();
  await createClient(page, feed.feedUrl, FEED_OPTIONS);
  await waitForDelivered(page, 180, 10_000);
  const took = Date.now() - begun;

  const { cursors, mismatches } = await delivered(page);
  assertExactlyOnceInOrder(cursors, 1);
  assert.deepEqual(mismatches, [], 'every cursor is the seq of its message');
  const seen = await events(page);
  const lost = seen.filter((e) => e.type === 'statechange' && e.state === 'reconnecting');
  assert.equal(lost.length, 3, JSON.stringify(seen));
  // No close frame: the browser reports 1006 (abnormal closure).
  for (const e of lost) assert.match(e.reason, /1006|connection lost/, `terminate() sends no close frame: ${e.reason}`);
  assert.equal(seen.filter((e) => e.type === 'open').length, 4, 'four opens');
  assert.deepEqual(seen.filter((e) => e.type === 'gap' || e.type === 'giveup'), [], 'no gap, no giveup');

  const stats = await feed.stats();
  assert.equal(stats.connections, 4, JSON.stringify(stats));
  assert.equal(stats.terminated, 3, JSON.stringify(stats));
  assert.equal(stats.max_live, 1, `never two sockets: ${JSON.stringify(stats)}`);
  const asked = seen.filter((e) => e.type === 'statechange' && e.state === 'connecting').map((e) => e.lastCursor);
  assert.deepEqual(stats.cursors, asked, 'each resumed from its last delivered cursor');
  assert.equal(stats.cursors[0], null);
  // At most TERMINATE_AFTER further on each time: terminate() may discard what was still unwritten.
  for (let i = 1; i < stats.cursors.length; i += 1) {
    assert.ok(stats.cursors[i] > (stats.cursors[i - 1] ?? 0) && stats.cursors[i] <= (stats.cursors[i - 1] ?? 0) + TERMINATE_AFTER,
      `connection ${i + 1} resumed further on: ${JSON.stringify(stats.cursors)}`);
  }
  assert.deepEqual(wire.sockets.map((s) => resumeCursor(s.url)), stats.cursors, 'the URLs the page opened');

  await page.evaluate(() => window.harness.client(0).ws.close());
  await waitUntil(async () => (await feed.stats()).live === 0, 'the close');
  assert.deepEqual((await feed.stats()).closes, [1006, 1006, 1006, 1000]);
  console.log(`ws: ${cursors.length} broadcasts exactly once across 3 terminate()s in ${took} ms; resumed from ${JSON.stringify(stats.cursors)}; reason: ${lost[0].reason}`);
});

test('a half-open socket is found by the heartbeat within interval + timeout, then the feed resumes', async (t) => {
  const HALFOPEN_AFTER = 40;
  const feed = await startWs(t, ['--rate', '50', '--halfopen-after', String(HALFOPEN_AFTER)]);
  const pageServer = await startFeedServer([], t);
  const { page, wire } = await openPage(browser, pageServer, t);
  // No message: an idle timeout on inbound traffic (the server would not answer one anyway).
  await createTimedClient(page, feed.feedUrl, { ...FEED_OPTIONS, heartbeat: HEARTBEAT });
  await waitUntil(async () => (await events(page)).filter((e) => e.type === 'open').length === 2,
    'the reconnection', 10_000, async () => `${JSON.stringify(await snapshot(page))}\n${feed.output()}`);
  await waitForDelivered(page, 100, 10_000);

  const { cursors, mismatches } = await delivered(page);
  assertExactlyOnceInOrder(cursors, 1);
  assert.deepEqual(mismatches, []);
  const seen = await events(page);
  const dead = seen.filter((e) => e.type === 'statechange' && e.state === 'reconnecting');
  assert.equal(dead.length, 1, JSON.stringify(seen));
  assert.match(dead[0].reason, /heartbeat/, `found dead by the heartbeat: ${dead[0].reason}`);
  assert.equal(dead[0].lastCursor, HALFOPEN_AFTER, 'frozen after 40 messages');

  // From the last message on the frozen socket to the decision that it is dead.
  const times = await page.evaluate(() => window.messageTimes);
  const last = times.filter((m) => m.t <= dead[0].t).at(-1);
  // Cursors are decimal strings in the browser API.
  assert.equal(last.cursor, String(HALFOPEN_AFTER), JSON.stringify(times.slice(35, 45)));
  const detection = dead[0].t - last.t;
  const bound = HEARTBEAT.intervalMs + HEARTBEAT.timeoutMs;
  assert.ok(detection <= bound + SLACK_MS, `found dead after ${detection} ms, bound ${bound} + ${SLACK_MS} ms`);
  // Rounded times, and the session reads its clock a little before the listener does.
  assert.ok(detection >= bound - 25, `found dead after only ${detection} ms: before ${bound} ms of silence`);
  const reopened = seen.filter((e) => e.type === 'open')[1];
  const firstAfter = times.find((m) => m.cursor === String(HALFOPEN_AFTER + 1));

  const stats = await feed.stats();
  assert.equal(stats.connections, 2, JSON.stringify(stats));
  assert.equal(stats.frozen, 1, JSON.stringify(stats));
  assert.deepEqual(stats.cursors, [null, HALFOPEN_AFTER], 'resumed from the last message on the frozen socket');
  assert.deepEqual(wire.sockets.map((s) => resumeCursor(s.url)), stats.cursors, 'the URLs the page opened');
  const client = await snapshot(page);
  assert.equal(client.stats.heartbeatTimeouts, 1, JSON.stringify(client.stats));
  assert.equal(client.state, 'open');

  await page.evaluate(() => window.harness.client(0).ws.close());
  await waitUntil(async () => (await feed.stats()).closes.includes(1000), 'the close of the second connection');
  console.log(`ws: half-open socket found dead ${detection} ms after its last message (bound ${bound} ms); `
    + `reopened after ${reopened.t - dead[0].t} ms, next message ${firstAfter.t - last.t} ms after the last one; ${cursors.length} exactly once`);
});
