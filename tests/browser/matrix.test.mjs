// The browser half of the fault matrix (issue 10): every fault the feed server can make
// crossed with every traffic pattern a page has (idle, receiving fast, sending fast, both,
// a stalled main thread), each cell on a fresh feed server and page in one Chromium, each
// judged on the whole contract: the feed delivered exactly once in order with no gap, sent
// messages received, handed back unsent or lost only after leaving the browser, one socket
// at a time, the state visible, timers alive after a stall, backoff while a fault is held,
// recovery within its bound. Prints the matrix at the end; a failing cell fails the run.
//
//   ./scripts/test-browser.sh tests/browser/matrix.test.mjs
//   MATRIX_CELLS='silence|close1012/sending' ... runs only the cells whose 'fault/pattern' key matches.
import { after, before, test } from 'node:test';
import { launchBrowser } from './helpers.mjs';
import { runCell } from './matrix/cell.mjs';
import { FAULTS } from './matrix/faults.mjs';
import { renderMatrix } from './matrix/report.mjs';
import { CELL_LIMIT_MS } from './matrix/timing.mjs';
import { PATTERNS } from './matrix/traffic.mjs';

const only = process.env.MATRIX_CELLS ? new RegExp(process.env.MATRIX_CELLS) : null;
const results = new Map();
const started = Date.now();
let browser;

before(async () => { browser = await launchBrowser(); });
after(async () => {
  await browser?.close();
  const failures = [...results.entries()].filter(([, r]) => r.status === 'FAIL');
  const text = renderMatrix(FAULTS, PATTERNS, results, Date.now() - started);
  const details = failures.map(([key, r]) => `FAIL ${key}: ${r.message}`).join('\n');
  process.stdout.write(`\n${text}\n${details ? `\n${details}\n` : ''}`);
});

for (const fault of FAULTS) {
  for (const pattern of PATTERNS) {
    const key = `${fault.key}/${pattern.key}`;
    const name = `${fault.name} × ${pattern.name}`;
    const na = fault.na ?? fault.notApplicable?.(pattern) ?? null;
    if (na) {
      results.set(key, { status: 'n.a.', reason: na });
      test(name, { skip: `n.a.: ${na}` }, () => {});
      continue;
    }
    if (only && !only.test(key)) {
      test(name, { skip: 'not selected by MATRIX_CELLS' }, () => {});
      continue;
    }
    test(name, { timeout: CELL_LIMIT_MS }, async (t) => {
      results.set(key, { status: 'FAIL', message: 'did not finish' });
      try {
        const figures = await runCell(browser, fault, pattern, t);
        results.set(key, { status: 'PASS', figures });
        t.diagnostic(JSON.stringify(figures));
      } catch (error) {
        results.set(key, { status: 'FAIL', message: error.message.split('\n').join(' ') });
        throw error;
      }
    });
  }
}
