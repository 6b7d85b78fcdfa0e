// The package works in a Vite app with no config and no plugins: `vite build` bundles it,
// its .wasm file included (found through wasm-bindgen's `new URL(..., import.meta.url)`),
// and the built app connects, resumes after a drop and delivers everything exactly once.
//
// The app (tests/browser/vite-app/) is copied to a temp dir with the package placed in its
// node_modules/resilient-ws, as `npm install` would, so the build resolves 'resilient-ws' by
// name like any app does, and nothing is installed at test time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'vite';
import {
  REPO, assertExactlyOnceInOrder, assertNeverTwoSockets, launchBrowser, resumeCursor,
  startFeedServer,
} from './helpers.mjs';

/** The built package; scripts/test-browser.sh points this at a snapshot of client-wasm/pkg. */
const PKG_DIR = resolve(REPO, process.env.PKG_DIR ?? 'client-wasm/pkg');
const APP_SRC = resolve(REPO, 'tests/browser/vite-app');
const WAIT_MS = 5_000;

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

/** Waits (bounded) until the app has delivered at least `count` messages. */
async function waitForDelivered(page, count, timeoutMs = WAIT_MS) {
  await page.waitForFunction((count) => window.app.cursors.length >= count, count, { timeout: timeoutMs, polling: 10 })
    .catch(async (error) => {
      const seen = await page.evaluate(() => ({ delivered: window.app.cursors.length, states: window.app.states })).catch(() => null);
      throw new Error(`the app never delivered ${count} messages within ${timeoutMs} ms (now ${JSON.stringify(seen)}): ${error.message}`);
    });
}

test('a plain Vite build bundles the package and its .wasm, and the app resumes after a drop', { timeout: 30_000 }, async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'resilient-ws-vite-'));
  t.after(() => rm(tmp, { recursive: true, force: true }));
  const appDir = join(tmp, 'app');
  const outDir = join(tmp, 'dist');
  await cp(APP_SRC, appDir, {
    recursive: true,
    filter: (source) => !/[\\/](node_modules|dist)$/.test(source),
  });
  await mkdir(join(appDir, 'node_modules'));
  await cp(PKG_DIR, join(appDir, 'node_modules/resilient-ws'), { recursive: true });

  // No config file, no plugins: Vite's defaults (base '/', assets in assets/).
  const result = await build({
    root: appDir,
    configFile: false,
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  });
  const output = (Array.isArray(result) ? result : [result]).flatMap((r) => r.output);
  const wasmAssets = output.filter((o) => o.type === 'asset' && o.fileName.endsWith('.wasm'));
  assert.equal(wasmAssets.length, 1, `one .wasm asset in the build output: ${output.map((o) => o.fileName)}`);
  const wasmFile = wasmAssets[0].fileName;
  assert.match(wasmFile, /^assets\/resilient_ws_wasm_bg-[\w-]+\.wasm$/);
  const builtWasm = await readFile(join(outDir, wasmFile));
  assert.ok(builtWasm.equals(await readFile(join(PKG_DIR, 'resilient_ws_wasm_bg.wasm'))),
    'the emitted .wasm is the package\'s, unchanged');
  const chunks = output.filter((o) => o.type === 'chunk');
  assert.ok(chunks.some((c) => c.code.includes(wasmFile.slice('assets/'.length))),
    'the bundled JS refers to the emitted .wasm');
  assert.ok(!chunks.some((c) => c.code.includes('/pkg/')), 'nothing points at an unbundled package');
  assert.deepEqual((await readdir(outDir)).sort(), ['assets', 'index.html']);

  // helpers.mjs mounts tests/browser/page at / (a prefix may be mounted once), so the dist
  // is served as a site at its root would be: its index.html under /vite-app/ and its
  // assets at /assets/, where the HTML (base '/') looks for them.
  const server = await startFeedServer(['--rate', '100',
    '--static', `/vite-app=${outDir}`, '--static', `/assets=${join(outDir, 'assets')}`], t);

  const context = await browser.newContext();
  t.after(() => context.close().catch(() => {}));
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const pageErrors = [];
  const responses = [];
  const sockets = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => { if (['error', 'warning'].includes(message.type())) pageErrors.push(message.text()); });
  page.on('requestfailed', (request) => pageErrors.push(`${request.url()}: ${request.failure()?.errorText}`));
  page.on('response', (response) => responses.push({
    path: new URL(response.url()).pathname, status: response.status(), type: response.headers()['content-type'],
  }));
  page.on('websocket', (socket) => sockets.push(socket.url()));

  await page.goto(`${server.httpBase}/vite-app/`);
  await page.waitForFunction(() => window.app?.ready === true, null, { timeout: 10_000 })
    .catch((error) => { throw new Error(`the Vite app did not start: ${error.message}; page errors: ${pageErrors.join(' | ')}`); });

  // The page loaded the bundle and the emitted .wasm, nothing from /pkg.
  const wasmResponse = responses.find((r) => r.path === `/${wasmFile}`);
  assert.ok(wasmResponse, `the page fetched /${wasmFile}: ${JSON.stringify(responses)}`);
  assert.equal(wasmResponse.status, 200);
  assert.equal(wasmResponse.type, 'application/wasm');
  assert.deepEqual(responses.filter((r) => r.status >= 400 || r.path.startsWith('/pkg')), []);

  await waitForDelivered(page, 10);
  const first = await page.evaluate(() => window.app.cursors.slice());
  for (let i = 1; i < first.length; i += 1) {
    assert.ok(first[i] > first[i - 1], `cursors increase: ${JSON.stringify(first)}`);
  }

  const { connections } = await server.control('drop');
  assert.equal(connections, 1, 'one connection to drop');
  await server.waitForStats((s) => s.connections_accepted === 2 && s.live_connections === 1, 'reconnect after the drop');
  const target = (await page.evaluate(() => window.app.cursors.length)) + 10;
  await waitForDelivered(page, target);
  await page.evaluate(() => window.app.ws.close());

  const { cursors, mismatches, states, stats, state } = await page.evaluate(() => ({
    cursors: window.app.cursors,
    mismatches: window.app.mismatches,
    states: window.app.states,
    stats: window.app.ws.stats,
    state: window.app.ws.state,
  }));
  assert.equal(state, 'closed');
  assert.deepEqual(mismatches, [], 'every cursor is the seq of its message');
  assert.ok(cursors.length >= target);
  assertExactlyOnceInOrder(cursors);
  assert.ok(states.includes('reconnecting'), `states: ${states}`);
  assert.equal(stats.reconnects, 1, `stats: ${JSON.stringify(stats)}`);
  assert.equal(stats.messagesDelivered, cursors.length);

  // On the wire: two sockets to /feed, the second resuming from a delivered cursor.
  assert.equal(sockets.length, 2, `sockets: ${sockets}`);
  assert.equal(new URL(sockets[0]).pathname, '/feed');
  assert.equal(resumeCursor(sockets[0]), null);
  const resumed = resumeCursor(sockets[1]);
  assert.ok(resumed >= 10 && cursors.includes(resumed), `resumed from cursor ${resumed}`);

  const serverStats = await assertNeverTwoSockets(server);
  assert.equal(serverStats.live_connections, 0, 'close() ended the socket');
  assert.deepEqual(pageErrors, []);
});
