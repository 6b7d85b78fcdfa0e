// The package's size budget (issue 4, raised by issue 12 for epochs): the .wasm and the JS a
// bundler ships, gzip -9, at most BUDGET_BYTES (25,400) together. Measured on the package scripts/build-wasm.sh built, the
// same way that script prints it (scripts/bundle-size.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BUDGET_BYTES, packageSize } from '../../scripts/bundle-size.mjs';

const pkgDir = process.env.PKG_DIR ?? fileURLToPath(new URL('../../client-wasm/pkg', import.meta.url));

test(`the package fits the size budget: wasm + JS at most ${BUDGET_BYTES} B gzip`, async () => {
  assert.ok(existsSync(pkgDir), `no package at ${pkgDir}: run ./scripts/build-wasm.sh`);
  const size = await packageSize(pkgDir);
  assert.ok(size.wasm > 1_000 && size.js > 500, `a real package was measured: ${JSON.stringify(size)}`);
  assert.ok(size.total <= BUDGET_BYTES,
    `wasm ${size.wasm} B + JS ${size.js} B = ${size.total} B gzip, over the ${BUDGET_BYTES} B budget by ${size.total - BUDGET_BYTES} B`);
});
