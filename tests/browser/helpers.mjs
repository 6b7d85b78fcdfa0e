// Shared helpers of the browser end-to-end tests: a feed-server per test, one headless
// Chromium per file (playwright-core driving Debian's chromium), a page that imports the
// built package, and bounded waits everywhere.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export { sleep };

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FEED_SERVER = process.env.FEED_SERVER ?? resolve(REPO, 'target/debug/feed-server');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** The built package; scripts/test-browser.sh points this at a snapshot of client-wasm/pkg. */
const PKG_DIR = process.env.PKG_DIR ?? 'client-wasm/pkg';
const SERVER_START_MS = 10_000;
const DEFAULT_WAIT_MS = 5_000;

/**
 * Starts a feed-server on a free port of 127.0.0.1 serving the test page at / and the
 * package at /pkg. `args` are extra flags (e.g. ['--rate', '200']). Registers its kill with
 * `t.after` when a test context is given, so it goes away on failure too.
 */
export async function startFeedServer(args = [], t = undefined) {
  if (!existsSync(FEED_SERVER)) {
    throw new Error(`${FEED_SERVER} is missing: run scripts/test-browser.sh (or cargo build -p resilient-ws-examples --bin feed-server)`);
  }
  const child = spawn(FEED_SERVER, [
    '--listen', '127.0.0.1:0',
    '--static', '/=tests/browser/page',
    '--static', `/pkg=${PKG_DIR}`,
    ...args,
  ], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr = [];
  child.stderr.on('data', (chunk) => stderr.push(chunk));
  const exited = new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
  const server = new FeedServer(child, exited, stderr);
  t?.after(() => server.stop());
  const lines = createInterface({ input: child.stdout });
  const first = await Promise.race([
    new Promise((done) => lines.once('line', done)),
    exited.then(({ code, signal }) => { throw new Error(`feed-server exited (${code ?? signal}) before listening: ${server.stderr()}`); }),
    sleep(SERVER_START_MS, undefined, { ref: false }).then(() => { throw new Error(`feed-server printed nothing within ${SERVER_START_MS} ms`); }),
  ]).catch(async (error) => { await server.stop(); throw error; });
  lines.on('line', () => {}); // keep draining stdout
  const match = /^listening on (ws:\/\/([^/]+)\/feed)$/.exec(first);
  if (!match) {
    await server.stop();
    throw new Error(`unexpected first line from feed-server: ${first}`);
  }
  server.feedUrl = match[1];
  server.httpBase = `http://${match[2]}`;
  return server;
}

class FeedServer {
  constructor(child, exited, stderr) {
    this.child = child;
    this.exited = exited;
    this.stderrChunks = stderr;
  }

  stderr() {
    return Buffer.concat(this.stderrChunks).toString().slice(-2000);
  }

  /** GET /control/<path>; returns the parsed JSON answer, throws on a non-2xx status. */
  async control(path) {
    const response = await fetch(`${this.httpBase}/control/${path}`, { signal: AbortSignal.timeout(2_000) });
    const body = await response.text();
    if (!response.ok) throw new Error(`/control/${path}: ${response.status} ${body}`);
    return JSON.parse(body);
  }

  stats() {
    return this.control('stats');
  }

  /** Polls /control/stats until `predicate(stats)` holds; connection errors (a restart) are retried. */
  async waitForStats(predicate, what, timeoutMs = DEFAULT_WAIT_MS) {
    return waitUntil(async () => {
      const stats = await this.stats().catch(() => null);
      return stats && predicate(stats) ? stats : null;
    }, what, timeoutMs, async () => JSON.stringify(await this.stats().catch((e) => String(e))));
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const ended = await Promise.race([this.exited, sleep(3_000, null, { ref: false })]);
    if (ended === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** Polls `probe` (sync or async) every 25 ms until it returns something truthy; bounded. */
export async function waitUntil(probe, what, timeoutMs = DEFAULT_WAIT_MS, describe = undefined) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) {
      const detail = describe ? `; last seen: ${await describe()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(25);
  }
}

/** Launches headless Chromium (with `extraArgs` too); call once per test file (before), close it in after. */
export function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', ...extraArgs],
  });
}

/**
 * Opens the test page from `server` in a fresh context (its own offline switch) and waits
 * for the package to load. Records the page's WebSockets as the browser saw them (URL,
 * frames sent, close), and page errors. The context is closed by `t.after`.
 */
export async function openPage(browser, server, t) {
  const context = await browser.newContext();
  t.after(() => context.close().catch(() => {}));
  const page = await context.newPage();
  page.setDefaultTimeout(DEFAULT_WAIT_MS);
  const wire = { sockets: [], pageErrors: [] };
  page.on('pageerror', (error) => wire.pageErrors.push(String(error)));
  page.on('console', (message) => { if (message.type() === 'error') wire.pageErrors.push(message.text()); });
  page.on('requestfailed', (request) => wire.pageErrors.push(`${request.url()}: ${request.failure()?.errorText}`));
  page.on('response', (response) => { if (response.status() >= 400) wire.pageErrors.push(`${response.url()}: HTTP ${response.status()}`); });
  page.on('websocket', (socket) => {
    const record = { url: socket.url(), sent: [], received: 0, closed: false };
    wire.sockets.push(record);
    socket.on('framesent', ({ payload }) => record.sent.push(String(payload)));
    socket.on('framereceived', () => { record.received += 1; });
    socket.on('close', () => { record.closed = true; });
  });
  await page.goto(`${server.httpBase}/index.html`);
  await page.waitForFunction(() => window.harnessReady === true, null, { timeout: 10_000 })
    .catch((error) => { throw new Error(`the test page did not load the package: ${error.message}; page errors: ${wire.pageErrors.join(' | ')}`); });
  return { context, page, wire };
}

/** Feed client options used by most tests: cursor in `seq`, resume with ?cursor=, and a 'gap' event on any skip (the feed server's cursors go up by one), so "no gap" checks can fail. */
export const FEED_OPTIONS = { cursorField: 'seq', resumeParam: 'cursor', contiguousCursors: true };

/** Creates a client in the page; returns its index. */
export function createClient(page, url, options = {}) {
  return page.evaluate(([url, options]) => window.harness.create(url, options), [url, options]);
}

/** The client's state, lastCursor, stats and delivered count. */
export function snapshot(page, index = 0) {
  return page.evaluate((index) => window.harness.client(index).snapshot(), index);
}

/** The events the client reported (all but 'message'). */
export function events(page, index = 0) {
  return page.evaluate((index) => window.harness.client(index).events, index);
}

/** The delivered cursors, in order, and any cursor/seq mismatches. */
export function delivered(page, index = 0) {
  return page.evaluate((index) => {
    const client = window.harness.client(index);
    return { cursors: client.cursors, mismatches: client.mismatches };
  }, index);
}

/** Waits (bounded) until the client is in `state`. */
export async function waitForState(page, state, timeoutMs = DEFAULT_WAIT_MS, index = 0) {
  await page.waitForFunction(([index, state]) => window.harness.client(index).ws.state === state,
    [index, state], { timeout: timeoutMs, polling: 10 })
    .catch(async (error) => {
      throw new Error(`client never reached '${state}' within ${timeoutMs} ms (now ${JSON.stringify(await snapshot(page, index).catch(() => null))}): ${error.message}`);
    });
}

/** Waits (bounded) until the client has delivered at least `count` messages. */
export async function waitForDelivered(page, count, timeoutMs = DEFAULT_WAIT_MS, index = 0) {
  await page.waitForFunction(([index, count]) => window.harness.client(index).cursors.length >= count,
    [index, count], { timeout: timeoutMs, polling: 10 })
    .catch(async (error) => {
      throw new Error(`client never delivered ${count} messages within ${timeoutMs} ms (now ${JSON.stringify(await snapshot(page, index).catch(() => null))}): ${error.message}`);
    });
}

/** Asserts the delivered cursors are exactly 1, 2, ..., n: nothing lost, nothing twice, in order. */
export function assertExactlyOnceInOrder(cursors, from = 1) {
  for (let i = 0; i < cursors.length; i += 1) {
    if (cursors[i] !== from + i) {
      assert.fail(`delivery broke at index ${i}: expected cursor ${from + i}, got ${cursors[i]} (around: ${JSON.stringify(cursors.slice(Math.max(0, i - 3), i + 4))})`);
    }
  }
}

/** Never two open sockets: the server never saw more than one live connection at once. */
export async function assertNeverTwoSockets(server, { expectConnections = true } = {}) {
  const stats = await server.stats();
  if (expectConnections) {
    assert.equal(stats.max_live_connections, 1, `max_live_connections: ${JSON.stringify(stats)}`);
  } else {
    assert.ok(stats.max_live_connections <= 1, `max_live_connections: ${JSON.stringify(stats)}`);
  }
  return stats;
}

/** The cursor a socket URL resumed from (?cursor=N), or null. */
export function resumeCursor(url) {
  const value = new URL(url).searchParams.get('cursor');
  return value === null ? null : Number(value);
}
