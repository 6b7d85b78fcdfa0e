// The browser package against a dashboard feed nobody here wrote: FastAPI + uvicorn
// (tests/interop/fastapi_feed.py), which pings every client each second and drops it when
// the pong is a second late. The page comes from the reference feed-server (--static) and
// connects cross-origin to the uvicorn port. A passive client stays on one connection and
// gets every broadcast; after the server crashes and restarts on the same port (keeping its
// counter and ring buffer), it resumes from its cursor, exactly once.
//
// Not named *.test.mjs, so the plain browser run skips it. Run by scripts/test-interop.sh, which installs the server into .venv-interop/ and sets
// INTEROP_PYTHON.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  REPO, assertExactlyOnceInOrder, delivered, events, launchBrowser, openPage, resumeCursor, sleep,
  snapshot, startFeedServer, waitForState, waitUntil,
} from './helpers.mjs';
import { startServerProcess } from './interop-helpers.mjs';

const PASSIVE_MS = 8_000;
const BROADCAST_MS = 50;
const START_LIMIT_MS = 20_000;
/** Bound of a wait on the server's /stats. */
const STATS_WAIT_MS = 10_000;

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

function python() {
  const path = process.env.INTEROP_PYTHON;
  if (!path) {
    throw new Error('INTEROP_PYTHON is not set: this suite drives a FastAPI + uvicorn server that '
      + 'scripts/test-interop.sh installs; run ./scripts/test-interop.sh (it installs it and runs this test)');
  }
  return path;
}

/** uvicorn serving tests/interop/fastapi_feed.py on 127.0.0.1:`port` (0: any); killed by `t.after`. */
async function startUvicorn(t, log, port = 0) {
  const { server, listening: portSeen } = await startServerProcess(t, {
    name: 'uvicorn',
    command: python(),
    args: [
      '-m', 'uvicorn', '--app-dir', resolve(REPO, 'tests/interop'), 'fastapi_feed:app',
      '--host', '127.0.0.1', '--port', String(port), '--ws-ping-interval', '1', '--ws-ping-timeout', '1',
    ],
    env: { ...process.env, FEED_LOG: log, FEED_INTERVAL_MS: String(BROADCAST_MS), PYTHONDONTWRITEBYTECODE: '1' },
    listening: (line) => {
      const match = /Uvicorn running on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      return match && Number(match[1]);
    },
    startLimitMs: START_LIMIT_MS,
  });
  server.port = portSeen;
  server.httpBase = `http://127.0.0.1:${portSeen}`;
  server.feedUrl = `ws://127.0.0.1:${portSeen}/feed`;
  return server;
}

test('a passive browser client stays on one connection, then resumes exactly once after a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rws-interop-browser-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'feed.log');
  let feed = await startUvicorn(t, log);
  const pageServer = await startFeedServer([], t);
  const { page, wire } = await openPage(browser, pageServer, t);
  // Created and listened to in one step, so the first message (the snapshot) is seen too.
  await page.evaluate(([url, options]) => {
    const index = window.harness.create(url, options);
    window.interopTexts = [];
    window.harness.client(index).ws.addEventListener('message', (e) => window.interopTexts.push(e.data));
  }, [feed.feedUrl, { cursorField: 'seq', resumeParam: 'cursor', contiguousCursors: true, backoff: { initialMs: 100, maxMs: 1000 }, maxFailures: null }]);
  await waitForState(page, 'open', 10_000);

  // Passive: uvicorn pings every second; the browser must answer or be dropped.
  const started = Date.now();
  while (Date.now() - started < PASSIVE_MS) {
    const lost = (await events(page)).filter((e) => e.type === 'close' || e.type === 'reconnecting');
    assert.deepEqual(lost, [], `the passive client lost its connection after ${Date.now() - started} ms:\n${feed.output()}`);
    await sleep(250);
  }
  let stats = await feed.stats();
  assert.equal(stats.connections, 1, `one connection: ${JSON.stringify(stats)}`);
  assert.equal(stats.live, 1);
  const texts = await page.evaluate(() => window.interopTexts);
  const head = JSON.parse(texts[0]).head;
  assert.equal(typeof head, 'number', `the first message is the snapshot: ${texts[0]}`);
  const seq = stats.seq;
  await waitUntil(async () => (await delivered(page)).cursors.at(-1) >= seq, `every broadcast up to ${seq}`);
  const passive = (await delivered(page)).cursors.filter((c) => c !== null);
  assertExactlyOnceInOrder(passive, head + 1);
  assert.ok(passive.length >= PASSIVE_MS / BROADCAST_MS / 2, `the feed moved: ${passive.length} broadcasts`);

  // A crash and a restart on the same port.
  const port = feed.port;
  await feed.kill();
  await sleep(300);
  feed = await startUvicorn(t, log, port);
  await waitUntil(async () => (await events(page)).filter((e) => e.type === 'open').length === 2,
    'the reconnection after the restart', 30_000, async () => JSON.stringify(await snapshot(page)));
  const target = (await feed.stats()).seq + 40;
  await feed.waitForStats((s) => s.seq >= target, `broadcast ${target}`, STATS_WAIT_MS);
  await waitUntil(async () => (await delivered(page)).cursors.at(-1) >= target, `every broadcast up to ${target}`);

  const { cursors, mismatches } = await delivered(page);
  const all = cursors.filter((c) => c !== null);
  assertExactlyOnceInOrder(all, head + 1);
  assert.equal(cursors.length - all.length, 2, 'one snapshot per connection');
  assert.deepEqual(mismatches.filter((m) => m.seq !== undefined), [], 'every cursor is the seq of its message');
  assert.deepEqual((await events(page)).filter((e) => e.type === 'gap'), [], 'no gap');
  stats = await feed.stats();
  assert.equal(stats.connections, 1, `restarted server: ${JSON.stringify(stats)}`);
  const lastSocket = wire.sockets.at(-1);
  assert.equal(stats.cursors.length, 1);
  assert.equal(resumeCursor(lastSocket.url), stats.cursors[0], 'the server saw the cursor the page sent');
  const attempts = (await events(page)).filter((e) => e.type === 'statechange' && e.state === 'connecting');
  assert.equal(stats.cursors[0], attempts.at(-1).lastCursor, 'resumed from the last delivered cursor');

  await page.evaluate(() => window.harness.client(0).ws.close());
  await feed.waitForStats((s) => s.live === 0, 'the close', STATS_WAIT_MS);
  assert.deepEqual((await feed.stats()).closes, [1000]);
  console.log(`browser: ${passive.length} broadcasts in ${PASSIVE_MS} ms on one connection, ${all.length} exactly once across a restart; sockets the page opened: ${wire.sockets.length}`);
});
