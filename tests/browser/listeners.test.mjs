// 'message' listeners are called directly (not through a DOM dispatch), so the wrapper keeps
// the DOM's rules for them itself: one registration per listener and capture flag, `once`,
// `signal`, removeEventListener, handleEvent objects, onmessage, stopImmediatePropagation, and
// a listener that throws is reported without stopping the others.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FEED_OPTIONS, createClient, launchBrowser, openPage, startFeedServer, waitForDelivered } from './helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

test("'message' listeners follow the DOM's rules", async (t) => {
  const server = await startFeedServer(['--rate', '200'], t);
  const { page, wire } = await openPage(browser, server, t);
  await createClient(page, server.feedUrl, FEED_OPTIONS);
  const attachedAt = await page.evaluate(() => {
    const { ws, cursors } = window.harness.client(0);
    const calls = { all: 0, once: 0, removed: 0, aborted: 0, object: 0, onmessage: 0, afterThrow: 0, capture: 0, stopped: 0 };
    window.listenerCalls = calls;
    const all = (e) => {
      calls.all += 1;
      if (e.target !== ws || e.type !== 'message' || typeof e.data !== 'string' || typeof e.cursor !== 'string') calls.bad = e;
    };
    ws.addEventListener('message', all);
    ws.addEventListener('message', all); // the same registration again: ignored
    ws.addEventListener('message', all, { capture: true }); // another capture flag: a second one
    ws.removeEventListener('message', all, true);
    ws.addEventListener('message', () => { calls.once += 1; }, { once: true });
    const removed = () => { calls.removed += 1; };
    ws.addEventListener('message', removed);
    ws.removeEventListener('message', removed);
    const abort = new AbortController();
    ws.addEventListener('message', () => { calls.aborted += 1; abort.abort(); }, { signal: abort.signal });
    ws.addEventListener('message', { handleEvent: () => { calls.object += 1; } });
    window.addEventListener('error', (e) => { if (e.message.includes('listener failure')) e.preventDefault(); });
    ws.addEventListener('message', () => { throw new Error('listener failure'); });
    ws.addEventListener('message', () => { calls.afterThrow += 1; });
    ws.addEventListener('message', (e) => { if (Number(e.cursor) % 2 === 0) e.stopImmediatePropagation(); });
    ws.addEventListener('message', () => { calls.stopped += 1; });
    ws.onmessage = () => { calls.onmessage += 1; };
    return cursors.length;
  });
  await waitForDelivered(page, attachedAt + 30);
  await page.evaluate(() => window.harness.client(0).ws.close());
  const { calls, delivered } = await page.evaluate(() => ({
    calls: window.listenerCalls,
    delivered: window.harness.client(0).cursors.length,
  }));
  // Every message delivered after the listeners were added reached `all`.
  assert.equal(calls.bad, undefined, 'each listener gets type, target, data and cursor');
  assert.equal(calls.all, delivered - attachedAt, `all: ${calls.all} of ${delivered - attachedAt}`);
  assert.equal(calls.once, 1, 'once: one call');
  assert.equal(calls.removed, 0, 'removed before any message: no call');
  assert.equal(calls.aborted, 1, 'signal aborted after the first call');
  assert.equal(calls.object, calls.all, 'a handleEvent object gets every message');
  assert.equal(calls.afterThrow, calls.all, 'a listener that throws does not stop the next');
  assert.ok(calls.stopped > 0 && calls.stopped < calls.all, `stopImmediatePropagation skips the rest: ${calls.stopped} of ${calls.all}`);
  assert.ok(calls.onmessage > 0 && calls.onmessage < calls.all, 'onmessage is a listener too (after the stopping one)');
  assert.deepEqual(wire.pageErrors.filter((e) => !e.includes('listener failure')), []);
});
