// The dashboard page (examples/dashboard) in headless Chromium against the reference
// feed-server: its own check of the cursors it receives ("In order, no gaps, no duplicates")
// must hold over a live feed and across a dropped connection. The package reports cursors as
// decimal strings, so a check that compares them as strings or numbers fails here.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, startFeedServer, waitUntil } from './helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(() => browser?.close());

/** What the page's verification has seen (BigInt cursors as strings). */
function verification(page) {
  return page.evaluate(() => {
    const { view } = window.dashboard;
    return {
      checked: view.checked,
      problems: [...view.problems],
      first: view.firstCursor === null ? null : String(view.firstCursor),
      last: view.prevCursor === null ? null : String(view.prevCursor),
      opens: view.opens,
      verdict: document.getElementById('verify').dataset.ok ?? null,
    };
  });
}

test('the dashboard verifies a live feed across a dropped connection without false problems', async (t) => {
  const server = await startFeedServer(['--rate', '200', '--static', '/dashboard=examples/dashboard'], t);
  const context = await browser.newContext();
  t.after(() => context.close().catch(() => {}));
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${server.httpBase}/dashboard/index.html`);
  await page.waitForFunction(() => window.dashboard !== undefined, null, { timeout: 10_000 })
    .catch((error) => { throw new Error(`the dashboard did not load the package: ${error.message}; ${errors.join(' | ')}`); });

  // Past cursor 10, where "10" < "9" as strings.
  const before = await waitUntil(async () => {
    const seen = await verification(page);
    return seen.checked >= 50 ? seen : null;
  }, 'the dashboard to check 50 messages', 10_000, async () => JSON.stringify(await verification(page)));
  assert.deepEqual(before.problems, []);
  assert.equal(before.first, '1');

  await server.control('drop');
  const resumed = await waitUntil(async () => {
    const seen = await verification(page);
    return seen.opens >= 2 && seen.checked >= before.checked + 50 ? seen : null;
  }, 'the dashboard to reconnect and check 50 more', 10_000, async () => JSON.stringify(await verification(page)));
  assert.deepEqual(resumed.problems, [], 'resumed exactly once, in order');
  assert.equal(BigInt(resumed.last) - BigInt(resumed.first) + 1n, BigInt(resumed.checked));
  await waitUntil(async () => (await verification(page)).verdict === 'yes', 'the verdict to show');
  assert.deepEqual(errors, []);
});
