// Dead-connection detection in the browser: a server that goes silent with its socket open
// (the feed server's /control/silence) is found dead within interval + timeout, with the
// default options too; and the moments a page's timers cannot be trusted are checked at
// once: the tab becoming visible (a hidden tab's timers are throttled), the network coming
// back, and the machine waking from sleep (the page's monotonic clock and its timers stop
// while it sleeps; only the wall clock moves on).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FEED_OPTIONS, assertExactlyOnceInOrder, createClient, delivered, events, launchBrowser, openPage,
  sleep, snapshot, startFeedServer, waitForDelivered, waitForState, waitUntil,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

const HEARTBEAT_REASON = 'no traffic within the heartbeat timeout';
/** Measured times may exceed their bound by this much: timers, event dispatch, a busy machine. */
const SLACK_MS = 400;
/** Short timings, for the tests that are not about the defaults. */
const SHORT = { ...FEED_OPTIONS, backoff: { initialMs: 50, maxMs: 100 }, heartbeat: { intervalMs: 300, timeoutMs: 200 } };

/** A feed server at 100 messages/s and a client of it that has delivered a few. */
async function feedClient(t, options) {
  const server = await startFeedServer(['--rate', '100'], t);
  const opened = await openPage(browser, server, t);
  await createClient(opened.page, server.feedUrl, options);
  await waitForDelivered(opened.page, 5);
  return { server, ...opened };
}

/** The reconnecting states the client went through because its heartbeat expired. */
async function heartbeatDrops(page) {
  return (await events(page)).filter((e) => e.type === 'statechange' && e.state === 'reconnecting' && e.reason === HEARTBEAT_REASON);
}

/** Waits (bounded) until the heartbeat has dropped a connection; returns that reconnecting state. */
async function waitForHeartbeatDrop(page, timeoutMs) {
  await waitUntil(async () => (await heartbeatDrops(page)).length > 0, 'a drop by the heartbeat', timeoutMs,
    async () => JSON.stringify(await snapshot(page)));
  return (await heartbeatDrops(page))[0];
}

/**
 * Emulates a machine sleeping for `ms`: the wall clock (Date.now) jumps ahead, the page's
 * monotonic clock (performance.now) does not, and no timer fires meanwhile, as when a laptop
 * lid closes. Cumulative.
 */
function sleepMachine(page, ms) {
  return page.evaluate((ms) => {
    if (!window.wallSkew) {
      const now = Date.now.bind(Date);
      window.wallSkew = 0;
      Date.now = () => now() + window.wallSkew;
    }
    window.wallSkew += ms;
  }, ms);
}

/** After the server went silent: its reopened socket delivers again, exactly once, in order. */
async function assertRecovered(page) {
  await waitForState(page, 'open', 3_000);
  const before = (await snapshot(page)).delivered;
  await waitForDelivered(page, before + 10);
  assertExactlyOnceInOrder((await delivered(page)).cursors);
}

test('a silent connection is dropped within interval + timeout and replaced', async (t) => {
  const { server, page } = await feedClient(t, SHORT);
  const silenced = await page.evaluate(() => window.harness.client(0).now());
  await server.control('silence');
  const drop = await waitForHeartbeatDrop(page, 2_000);
  // The last message came at most a message interval (10 ms) before the silence.
  const took = drop.t - silenced;
  assert.ok(took >= 500 - 50 && took <= 500 + SLACK_MS, `dropped ${took} ms after the silence (interval + timeout: 500 ms)`);
  assert.equal((await snapshot(page)).stats.heartbeatTimeouts, 1);
  await assertRecovered(page);
});

test('the default options watch for silence: 15 s + 10 s, as natively (a machine sleep stands in for the wait)', async (t) => {
  const { server, page } = await feedClient(t, FEED_OPTIONS);
  await server.control('silence');
  // 20 s of silence is not yet dead...
  await sleepMachine(page, 20_000);
  await sleep(2_000);
  assert.equal((await snapshot(page)).state, 'open', 'open after 22 s of silence');
  // ...over 25 s is.
  await sleepMachine(page, 10_000);
  await waitForHeartbeatDrop(page, 1_000 + SLACK_MS);
  await assertRecovered(page);
});

test('heartbeat: false turns dead-connection detection off', async (t) => {
  const { server, page } = await feedClient(t, { ...FEED_OPTIONS, heartbeat: false });
  await server.control('silence');
  await sleepMachine(page, 600_000);
  await sleep(2_000);
  const client = await snapshot(page);
  assert.equal(client.state, 'open', 'a silent connection is kept');
  assert.equal(client.stats.heartbeatTimeouts, 0);
});

test('waking from sleep drops a connection that went silent at once, not a heartbeat later', async (t) => {
  const { server, page } = await feedClient(t, { ...FEED_OPTIONS, backoff: { initialMs: 50, maxMs: 100 } });
  await server.control('silence');
  const slept = await page.evaluate(() => window.harness.client(0).now());
  // A minute asleep: the page's timers, set for 25 s of monotonic time, would wait 25 s more.
  await sleepMachine(page, 60_000);
  const drop = await waitForHeartbeatDrop(page, 1_000 + SLACK_MS);
  assert.ok(drop.t - slept <= 1_000 + SLACK_MS, `dropped ${drop.t - slept} ms after waking (checked once a second)`);
  await assertRecovered(page);
});

test('a main thread blocked past the deadline: the drop comes on the next tick', async (t) => {
  const { server, page } = await feedClient(t, SHORT);
  await server.control('silence');
  // Blocked for 1.5 s, three times interval + timeout: the timer fires late.
  const unblocked = await page.evaluate(() => {
    const until = performance.now() + 1_500;
    while (performance.now() < until) { /* busy */ }
    return window.harness.client(0).now();
  });
  const drop = await waitForHeartbeatDrop(page, 1_000);
  assert.ok(drop.t - unblocked <= 100, `dropped ${drop.t - unblocked} ms after the thread was free`);
});

/**
 * Hides the tab and throttles its timers (+10 min each), lets the timers set before run out
 * while messages still flow, then silences the server and waits past interval + timeout: the
 * connection is dead, and only a re-check can notice it now. `window.unthrottle()` ends the
 * throttle as a browser does for a visible tab: what was due fires now.
 */
async function silentBehindThrottledTimers(server, page) {
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
    const real = window.setTimeout;
    const pending = new Map();
    window.setTimeout = (callback, ms) => {
      const id = real(() => { pending.delete(id); callback(); }, ms + 600_000);
      pending.set(id, { callback, due: performance.now() + ms });
      return id;
    };
    window.unthrottle = () => {
      window.setTimeout = real;
      for (const [id, { callback, due }] of pending) {
        clearTimeout(id);
        real(callback, Math.max(0, due - performance.now()));
      }
    };
  });
  await sleep(1_200); // the capped (1 s) timer armed before the throttle fires and re-arms throttled
  await server.control('silence');
  await sleep(1_000); // twice interval + timeout
  assert.equal((await snapshot(page)).state, 'open', 'no timer noticed the silence: the throttle holds');
}

/**
 * The connection went silent behind throttled timers; `trigger` ('visible' or 'online') is
 * dispatched in the page: the client must drop the connection while handling it.
 */
async function assertRecheckedAtOnce(t, trigger) {
  const { server, page } = await feedClient(t, SHORT);
  await silentBehindThrottledTimers(server, page);
  const state = await page.evaluate((trigger) => {
    if (trigger === 'visible') {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
      document.dispatchEvent(new Event('visibilitychange'));
    } else {
      window.dispatchEvent(new Event('online'));
    }
    const { state } = window.harness.client(0).ws;
    window.unthrottle();
    return state;
  }, trigger);
  assert.equal(state, 'reconnecting', `dropped while handling '${trigger}'`);
  assert.equal((await heartbeatDrops(page)).length, 1);
  await assertRecovered(page);
}

test('a tab that becomes visible re-checks at once: a silent connection is dropped in that step', (t) => assertRecheckedAtOnce(t, 'visible'));

test("an 'online' event re-checks an open connection at once", (t) => assertRecheckedAtOnce(t, 'online'));

test('with heartbeat.message, becoming visible sends it at once; no answer in timeoutMs drops the connection', async (t) => {
  const options = { ...FEED_OPTIONS, backoff: { initialMs: 50, maxMs: 100 }, heartbeat: { intervalMs: 60_000, timeoutMs: 300, message: 'ping' } };
  const { server, page, wire } = await feedClient(t, options);
  await server.control('silence');
  // Messages already on their way when the server went silent are proof of life that would
  // answer the probe: let them arrive first (nothing new for 100 ms, bounded).
  let delivered = -1;
  await waitUntil(async () => {
    const now = (await snapshot(page)).delivered;
    const quiet = now === delivered;
    delivered = now;
    if (!quiet) await sleep(100);
    return quiet;
  }, 'the feed to fall silent', 2_000);
  const checked = await page.evaluate(() => {
    document.dispatchEvent(new Event('visibilitychange'));
    return window.harness.client(0).now();
  });
  const drop = await waitForHeartbeatDrop(page, 300 + SLACK_MS);
  assert.ok(drop.t - checked >= 300 - 50 && drop.t - checked <= 300 + SLACK_MS, `dropped ${drop.t - checked} ms after the probe`);
  assert.deepEqual(wire.sockets[0].sent, ['ping'], 'the probe went out on the silent socket');
  await assertRecovered(page);
});
