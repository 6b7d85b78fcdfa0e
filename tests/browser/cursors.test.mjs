// Cursors as the page sees them: a skip fires 'gap' when the cursors are contiguous, and a
// cursor above 2^53 (where a JS number rounds) is delivered, resumed from and reported
// exactly. The feed server never skips and counts from 1, so these use the scriptable
// server in raw-server.mjs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FEED_OPTIONS, createClient, delivered, events, launchBrowser, openPage, startFeedServer,
  waitForDelivered,
} from './helpers.mjs';
import { startRawServer } from './raw-server.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

/** The cursors client `index` was handed, as the package gave them (decimal strings). */
const cursorTexts = (page, index = 0) => page.evaluate((index) => window.harness.client(index).cursorTexts, index);

test("a skipped cursor fires 'gap' with contiguousCursors, and only with it", async (t) => {
  const raw = await startRawServer(t, (connection) => {
    for (const seq of [1, 2, 4, 5]) connection.text(JSON.stringify({ seq }));
  });
  const { page } = await openPage(browser, await startFeedServer([], t), t);
  await createClient(page, raw.url, { cursorField: 'seq', contiguousCursors: true });
  await createClient(page, raw.url, { cursorField: 'seq' });
  await waitForDelivered(page, 4, 5_000, 0);
  await waitForDelivered(page, 4, 5_000, 1);

  const gaps = (await events(page, 0)).filter((e) => e.type === 'gap');
  assert.deepEqual(gaps.map(({ last, received }) => ({ last, received })), [{ last: '2', received: '4' }],
    'one gap, from the last cursor before it to the one after, as decimal strings');
  assert.deepEqual(await cursorTexts(page, 0), ['1', '2', '4', '5'], 'the message after the gap is delivered too');
  assert.deepEqual((await events(page, 1)).filter((e) => e.type === 'gap'), [], 'no gap without contiguousCursors');
  assert.deepEqual((await delivered(page, 1)).mismatches, []);
});

test('cursors above 2^53 are delivered, reported and resumed from exactly', async (t) => {
  // 2^53 + 1 is the first whole number a JS number cannot hold; u64's largest comes last.
  const FIRST = ['9007199254740993', '9007199254740994'];
  const SECOND = ['18446744073709551614', '18446744073709551615'];
  const raw = await startRawServer(t, (connection, url) => {
    // The first connection sends two and drops; the resumed one sends the rest.
    const seqs = url.includes('cursor=') ? SECOND : FIRST;
    for (const seq of seqs) connection.text(`{"seq":${seq}}`);
    if (seqs === FIRST) setTimeout(() => connection.drop(), 100);
  });
  const { page, wire } = await openPage(browser, await startFeedServer([], t), t);
  await createClient(page, raw.url, { ...FEED_OPTIONS, contiguousCursors: false, backoff: { initialMs: 50, maxMs: 100 } });
  await waitForDelivered(page, 4);

  assert.deepEqual(await cursorTexts(page), [...FIRST, ...SECOND]);
  assert.equal(await page.evaluate(() => window.harness.client(0).ws.lastCursor), SECOND[1]);
  assert.deepEqual((await delivered(page)).mismatches, [], "every cursor is its message's seq, digit for digit");
  assert.deepEqual(raw.urls, ['/feed', `/feed?cursor=${FIRST[1]}`], 'resumed from the exact last cursor');
  assert.equal(new URL(wire.sockets[1].url).searchParams.get('cursor'), FIRST[1]);
});

test('a cursor of 2^53 + 1 after 2^53 - 1 is a gap, not a replay', async (t) => {
  // As numbers, 2^53 - 1 and 2^53 + 1 are one apart after rounding (2^53 + 1 becomes 2^53).
  const raw = await startRawServer(t, (connection) => {
    for (const seq of ['9007199254740991', '9007199254740993']) connection.text(`{"seq":${seq}}`);
  });
  const { page } = await openPage(browser, await startFeedServer([], t), t);
  await createClient(page, raw.url, { cursorField: 'seq', contiguousCursors: true });
  await waitForDelivered(page, 2);
  const gaps = (await events(page)).filter((e) => e.type === 'gap');
  assert.deepEqual(gaps.map(({ last, received }) => ({ last, received })),
    [{ last: '9007199254740991', received: '9007199254740993' }]);
});
