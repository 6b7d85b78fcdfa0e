// A client that stopped (closed, or gave up) and that the page no longer holds can be
// collected, like a closed WebSocket; reconnect() after a stop still works. (WebAssembly holds
// the client's host for good; the host lets go of the client when the session stops.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FEED_OPTIONS, createClient, launchBrowser, openPage, startFeedServer, waitForDelivered, waitForState,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(['--js-flags=--expose-gc']); });
after(() => browser?.close());

/** In the page: whether a client stopped by `stop` ('close' or 'giveup'), then dropped, is collected (bounded: 50 GCs). */
async function collectedAfter(page, url, stop) {
  return page.evaluate(async ([url, stop]) => {
    let collected = false;
    const registry = new FinalizationRegistry(() => { collected = true; });
    // Resolves with nothing and clears its timer, so nothing it leaves behind holds the client.
    const event = (ws, name) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${name}' event within 10 s`)), 10_000);
      ws.addEventListener(name, () => { clearTimeout(timer); resolve(); }, { once: true });
    });
    await (async () => {
      const ws = new window.ResilientWebSocket(url, { cursorField: 'seq' });
      await event(ws, 'open');
      if (stop === 'close') await ws.close();
      else {
        // Listening before the server is asked: its close may arrive before the fetch's answer.
        const gaveUp = event(ws, 'giveup');
        await fetch(url.replace('ws://', 'http://').replace(/\/feed.*/, '/control/close?code=4401'));
        await gaveUp;
      }
      registry.register(ws, 'client');
    })();
    for (let i = 0; i < 50 && !collected; i += 1) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return collected;
  }, [url, stop]);
}

test('a stopped client the page dropped is collected; reconnect() after a stop works', async (t) => {
  const server = await startFeedServer(['--rate', '100'], t);
  const { page } = await openPage(browser, server, t);
  await page.evaluate(async () => {
    window.ResilientWebSocket = (await import('/pkg/resilient-ws.js')).ResilientWebSocket;
  });
  assert.equal(await collectedAfter(page, server.feedUrl, 'close'), true, 'closed, then dropped: collected');
  assert.equal(await collectedAfter(page, server.feedUrl, 'giveup'), true, 'gave up (4401), then dropped: collected');

  // The release must not cost a stopped client that is kept its reconnect().
  await createClient(page, server.feedUrl, FEED_OPTIONS);
  await waitForDelivered(page, 5);
  await page.evaluate(() => window.harness.client(0).ws.close());
  await waitForState(page, 'closed');
  const before = await page.evaluate(() => window.harness.client(0).cursors.length);
  await page.evaluate(() => window.harness.client(0).ws.reconnect());
  await waitForState(page, 'open');
  await waitForDelivered(page, before + 5);
});
