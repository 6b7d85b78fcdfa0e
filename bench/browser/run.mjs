// Browser benchmarks of resilient-ws (issue "Benchmarks", item 7), run by ./scripts/bench.sh
// (after the native suites, into the same BENCHMARKS.md) or alone by ./scripts/bench-browser.sh:
//
//   7.  receive throughput in headless Chromium, one page, one feed-server (--rate 0): the wasm
//       client vs the browser's WebSocket vs reconnecting-websocket, JSON.parse per message in
//       all, N messages each, alternating rounds, medians; with the CPU time per message of the
//       renderer's main thread, of all of Chromium and of the server (/proc schedstat);
//   7a. models of resilient-ws's per-message JS costs on a plain WebSocket (the listeners called
//       with a light event, the copy of the string into wasm memory), in the same rounds, to say
//       where its time goes;
//   7b. a V8 CPU profile of one run of the WebSocket and of resilient-ws;
//   7c. bundle sizes (minified, gzip -9) of resilient-ws (as scripts/bundle-size.mjs measures
//       it for the size budget) vs reconnecting-websocket, partysocket, socket.io-client and
//       centrifuge (esbuild: ESM, browser, minified).
//
//   node bench/browser/run.mjs [--messages N] [--repeats R] [--model-repeats R] [--budget S]
//                              [--quiet-wait S] [--warmup N] [--out FILE] [--section FILE]
//                              [--no-models] [--no-profile] [--quick]
//
// Prints the tables; --out FILE also writes them as a report of their own (machine, command,
// date), --section FILE as a section for BENCHMARKS.md (./scripts/bench.sh puts it after the
// native suites, under their header). Environment: FEED_SERVER (a release feed-server binary), PKG_DIR (the
// built package), PKG_NAMED_DIR (optional: the same build with wasm function names, profiled
// instead), CHROMIUM. Nothing is asserted; figures are printed.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';
import { BUDGET_BYTES, packageSize } from '../../scripts/bundle-size.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '../..');
const FEED_SERVER = resolve(REPO, process.env.FEED_SERVER ?? 'target/release/feed-server');
const PKG_DIR = resolve(REPO, process.env.PKG_DIR ?? 'client-wasm/pkg');
/** Optional: the same build with the wasm's function names kept (wasm-bindgen --keep-debug, no
 * wasm-opt), used only for the CPU profile so that wasm time can be told apart by function. */
const PKG_NAMED_DIR = process.env.PKG_NAMED_DIR ? resolve(REPO, process.env.PKG_NAMED_DIR) : null;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** Padding of each feed message: `{"seq":N,"ts_ms":0,"data":"<30 letters>"}` is 62-66 B. */
const PAYLOAD_BYTES = 30;
const TARGET_RATIO = 0.95;
/** Child processes (feed-server, Chromium) killed, and temporary directories removed, if this runner is interrupted. */
const CHILDREN = new Set();
const TEMP_DIRS = new Set();
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const child of CHILDREN) child.kill('SIGKILL');
    // Chromium may still be writing its profile for a moment after SIGKILL.
    setTimeout(() => {
      for (const dir of TEMP_DIRS) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      process.exit(130);
    }, 300);
  });
}

function track(child) {
  CHILDREN.add(child);
  child.once('exit', () => CHILDREN.delete(child));
  return child;
}
/** Messages of each profiled run (the profile is of a shorter run than the others). */
const PROFILE_MESSAGES = 30_000;

const USAGE = `usage: node bench/browser/run.mjs [--messages N] [--repeats R] [--model-repeats R] [--budget S]
                                  [--quiet-wait S] [--warmup N] [--out FILE] [--section FILE]
                                  [--no-models] [--no-profile] [--quick]
  --messages N   messages per throughput run (default 30000: ~1.5 s a run at ~20k msg/s)
  --repeats R    runs per client, alternating, median reported (default 7)
  --model-repeats R  runs per model (7a), in the first R rounds (default 3)
  --budget S     start no round that would end the timed runs after S seconds (default 75);
                 at least one round runs
  --quiet-wait S first wait up to S seconds for the machine to be under 15% busy (default 0;
                 on a shared machine other jobs move the figures by tens of percent)
  --warmup N     messages of one untimed run per client first (default 5000)
  --out FILE     also write the tables to FILE as a report (machine, command, date)
  --section FILE also write them to FILE as a section of BENCHMARKS.md (no header of its own:
                 ./scripts/bench.sh adds it after the native suites)
  --no-models    skip the overhead models (a plain WebSocket + one of resilient-ws's costs each)
  --no-profile   skip the CPU profile of one resilient-ws run
  --quick        10000 messages, 1 run: a smoke run (~20 s)`;

function parseArgs(argv) {
  const options = { messages: 30_000, repeats: 7, modelRepeats: 3, budget: 75, quietWait: 0, warmup: 5_000, out: null, section: null, models: true, profile: true, quick: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    const count = (min) => {
      const text = value();
      const number = Number(text);
      if (!Number.isInteger(number) || number < min) throw new Error(`${arg}: want a whole number >= ${min}, got ${text}`);
      return number;
    };
    switch (arg) {
      case '--messages': options.messages = count(2); break;
      case '--repeats': options.repeats = count(1); break;
      case '--model-repeats': options.modelRepeats = count(1); break;
      case '--warmup': options.warmup = count(2); break;
      case '--budget': options.budget = count(1); break;
      case '--quiet-wait': options.quietWait = count(0); break;
      case '--out': options.out = value(); break;
      case '--section': options.section = value(); break;
      case '--no-models': options.models = false; break;
      case '--no-profile': options.profile = false; break;
      case '--quick': Object.assign(options, { quick: true, messages: 10_000, repeats: 1, modelRepeats: 1, warmup: 2_000 }); break;
      case '-h': case '--help': throw new Error('');
      default: throw new Error(`unknown argument ${arg}`);
    }
  }
  options.warmup = Math.min(options.warmup, options.messages);
  return options;
}

// ---------------------------------------------------------------------------------------------
// Formatting: the same Markdown shape as bench/src/report.rs.

function thousands(value) {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-';
}

function ratio(value, target = undefined) {
  if (!Number.isFinite(value)) return '-';
  const missed = target !== undefined && value < target;
  return `${value.toFixed(2)}${missed ? ' (missed)' : ''}`;
}

function percent(value) {
  return Number.isFinite(value) ? `${(value * 100).toFixed(0)}%` : '-';
}

function bytes(value) {
  return `${value.toLocaleString('en-US')} B`;
}

function median(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function utcDate(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())} UTC`;
}

function table({ title, what, columns, rows, notes = [] }) {
  const widths = columns.map((column, i) => Math.max(column.length, ...rows.map((row) => String(row[i] ?? '').length)));
  const line = (cells) => `|${cells.map((cell, i) => ` ${String(cell ?? '').padEnd(widths[i])} |`).join('')}`;
  let out = `### ${title}\n\n`;
  if (what) out += `${what}\n\n`;
  out += `${line(columns)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`;
  for (const row of rows) out += `${line(row)}\n`;
  if (notes.length) out += `\n${notes.map((note) => `- ${note}`).join('\n')}\n`;
  return out;
}

/** The software this runner adds to the machine's description. */
function software(chromiumVersion) {
  return [
    ['browser', `headless Chromium ${chromiumVersion} (${CHROMIUM}, driven over the DevTools protocol on a pipe)`],
    ['Node', process.version],
    ['esbuild', esbuild.version],
  ];
}

function machine(chromiumVersion) {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  return [
    ['CPU', cpu],
    ['cores (`nproc`)', String(os.availableParallelism())],
    ['memory', `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ['OS', `${os.type()} ${os.release()}`],
    ...software(chromiumVersion),
  ];
}

const SETUP = 'Measured in one headless Chromium page against one feed-server on 127.0.0.1, all clients in the same run.';
const QUICK_NOTE = ' (quick: scaled down, figures are indicative only)';

/** The tables as a report of their own: title, command, date, machine. */
function standaloneReport(options, command, chromiumVersion, tables) {
  return [
    '# resilient-ws browser benchmarks',
    '',
    `Generated by \`${command}\` on ${utcDate(new Date())}${options.quick ? QUICK_NOTE : ''}; the program is bench/browser/run.mjs.`,
    '',
    `${SETUP} Benchmarks print figures; nothing here is asserted.`,
    '',
    '| machine | |',
    '|---|---|',
    ...machine(chromiumVersion).map(([k, v]) => `| ${k} | ${v} |`),
    '',
    ...tables,
  ].join('\n');
}

/** The tables as the browser section of BENCHMARKS.md, whose header (machine, command, date) is the native suites'. */
function sectionReport(options, chromiumVersion, tables) {
  const setup = software(chromiumVersion).map(([k, v]) => `${k}: ${v}`).join('; ');
  return [
    '## Browser',
    '',
    `By bench/browser/run.mjs${options.quick ? QUICK_NOTE : ''}. ${SETUP} ${setup}.`,
    '',
    ...tables,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// 7c. Bundle sizes.

/** The JS peers, each bundled from a one-line entry re-exporting its main class. */
const PEERS = [
  { name: 'reconnecting-websocket', imports: '`ReconnectingWebSocket` (default)', entry: "export { default as ReconnectingWebSocket } from 'reconnecting-websocket';" },
  { name: 'partysocket', imports: '`PartySocket` (default)', entry: "export { default as PartySocket } from 'partysocket';" },
  { name: 'partysocket/ws', imports: '`WebSocket` (its reconnecting WebSocket alone)', entry: "export { default as WebSocket } from 'partysocket/ws';" },
  { name: 'socket.io-client', imports: '`io`', entry: "export { io } from 'socket.io-client';" },
  { name: 'centrifuge', imports: '`Centrifuge`', entry: "export { Centrifuge } from 'centrifuge';" },
];

function packageVersion(name) {
  if (name === 'resilient-ws') return JSON.parse(readFileSync(join(PKG_DIR, 'package.json'), 'utf8')).version;
  const base = name.split('/')[0];
  return JSON.parse(readFileSync(join(REPO, 'node_modules', base, 'package.json'), 'utf8')).version;
}

/**
 * resilient-ws as scripts/bundle-size.mjs measures it for the size budget (the .wasm gzip, plus
 * the package entry bundled and minified by esbuild, gzip), then each peer.
 */
async function bundleSizes() {
  const ours = await packageSize(PKG_DIR);
  const results = [{
    name: 'resilient-ws', version: packageVersion('resilient-ws'), imports: 'the package entry (`resilient-ws.js`)',
    jsMin: NaN, jsGzip: ours.js, wasmBytes: statSync(join(PKG_DIR, 'resilient_ws_wasm_bg.wasm')).size, wasmGzip: ours.wasm, totalGzip: ours.total,
  }];
  for (const peer of PEERS) {
    const built = await esbuild.build({
      stdin: { contents: peer.entry, resolveDir: REPO, sourcefile: `${peer.name}-entry.js`, loader: 'js' },
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'browser',
      legalComments: 'none',
      define: { 'process.env.NODE_ENV': '"production"' },
      write: false,
      logLevel: 'silent',
    });
    const js = built.outputFiles[0].contents;
    const jsGzip = gzipSync(js, { level: 9 }).length;
    results.push({ ...peer, version: packageVersion(peer.name), jsMin: js.length, jsGzip, wasmBytes: 0, wasmGzip: 0, totalGzip: jsGzip });
  }
  return results;
}

function sizeTable(sizes) {
  const ours = sizes.find((s) => s.name === 'resilient-ws');
  const orDash = (value) => (Number.isFinite(value) && value > 0 ? bytes(value) : '-');
  return table({
    title: '7c. Bundle sizes',
    what: 'What a page downloads, in bytes; gzip = Node\'s zlib at level 9. resilient-ws is measured by scripts/bundle-size.mjs, as its size budget is: the `.wasm` as built by `./scripts/build-wasm.sh` (after wasm-opt) gzipped, plus the package entry `resilient-ws.js` bundled with everything it imports (host.js, the wasm-bindgen glue) and minified by esbuild, gzipped (two requests, each gzipped on its own). Each peer is bundled by esbuild from a one-line entry re-exporting its main class (ESM, platform browser, `minify`, no legal comments, `process.env.NODE_ENV` = "production"), then gzipped.',
    columns: ['library', 'version', 'imports', 'JS minified', 'JS gzip', 'wasm', 'wasm gzip', 'total gzip', 'gzip ÷ resilient-ws'],
    rows: sizes.map((s) => [
      s.name, s.version, s.imports, orDash(s.jsMin), bytes(s.jsGzip), orDash(s.wasmBytes), orDash(s.wasmGzip), bytes(s.totalGzip), ratio(s.totalGzip / ours.totalGzip),
    ]),
    notes: [
      `resilient-ws: ${bytes(ours.totalGzip)} gzip against its budget of ${bytes(BUDGET_BYTES)} (tests/browser/size.test.mjs); bundle-size.mjs reports the minified JS only gzipped, hence the dash`,
    ],
  });
}

// ---------------------------------------------------------------------------------------------
// The feed server, the page and the browser.

async function buildPage(dir) {
  mkdirSync(dir, { recursive: true });
  cpSync(join(HERE, 'page/index.html'), join(dir, 'index.html'));
  await esbuild.build({
    entryPoints: [join(HERE, 'page/bench.js')],
    outfile: join(dir, 'bench.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
  });
}

async function startFeedServer(args) {
  if (!existsSync(FEED_SERVER)) {
    throw new Error(`${FEED_SERVER} is missing: run ./scripts/bench.sh or ./scripts/bench-browser.sh (or cargo build --release -p resilient-ws-examples --bin feed-server)`);
  }
  // No welcome frame: the raw WebSocket baselines count every frame as a feed message.
  const child = track(spawn(FEED_SERVER, ['--listen', '127.0.0.1:0', '--no-welcome', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] }));
  const stderr = [];
  child.stderr.on('data', (chunk) => stderr.push(chunk));
  const exited = new Promise((done) => child.once('exit', (code, signal) => done(code ?? signal)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    if (await Promise.race([exited, sleep(3_000, 'timeout')]) === 'timeout') {
      child.kill('SIGKILL');
      await exited;
    }
  };
  const lines = createInterface({ input: child.stdout });
  const first = await Promise.race([
    new Promise((done) => lines.once('line', done)),
    exited.then((code) => { throw new Error(`feed-server exited (${code}): ${Buffer.concat(stderr).toString().slice(-2000)}`); }),
    sleep(10_000, undefined, { ref: false }).then(() => { throw new Error('feed-server printed nothing within 10 s'); }),
  ]).catch(async (error) => { await stop(); throw error; });
  lines.on('line', () => {});
  const match = /^listening on (ws:\/\/([^/]+)\/feed)$/.exec(first);
  if (!match) {
    await stop();
    throw new Error(`unexpected first line from feed-server: ${first}`);
  }
  return { feedUrl: match[1], httpBase: `http://${match[2]}`, stop, pid: child.pid };
}

// CPU time from /proc/PID/task/TID/schedstat (ns on CPU, per thread): the feed-server's, the
// page's renderer main thread's (the thread that runs the page's JS and dispatches its
// events), and all of Chromium's (every process and thread under the browser).

function readText(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // gone meanwhile
  }
}

function threadsCpuNs(pid) {
  let total = 0;
  let main = 0;
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return { total, main };
  }
  for (const tid of tids) {
    const ns = Number(readText(`/proc/${pid}/task/${tid}/schedstat`)?.split(' ')[0] ?? 0);
    total += ns;
    if (tid === String(pid)) main = ns;
  }
  return { total, main };
}

/** `root` and every process under it. */
function descendants(root) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readText(`/proc/${entry}/stat`);
    if (!stat) continue;
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(entry));
  }
  const out = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

function cpuSnapshot(serverPid, browserPid) {
  let chromium = 0;
  let renderer = 0;
  for (const pid of descendants(browserPid)) {
    const { total, main } = threadsCpuNs(pid);
    chromium += total;
    if (readText(`/proc/${pid}/cmdline`)?.includes('--type=renderer')) renderer += main;
  }
  return { server: threadsCpuNs(serverPid).total, chromium, renderer };
}

/** The whole machine's busy and stolen CPU time so far, ns (/proc/stat, USER_HZ = 100). */
function machineCpuNs() {
  const fields = readText('/proc/stat')?.split('\n')[0].trim().split(/\s+/).slice(1).map(Number) ?? [];
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return { busy: (user + nice + system + irq + softirq) * 1e7, steal: steal * 1e7 };
}

/** Waits (at most `seconds`) until the machine is under 15% busy for a second; returns how busy it was. */
async function waitForQuiet(seconds, log) {
  const deadline = Date.now() + seconds * 1000;
  for (let announced = false; ;) {
    const before = { machine: machineCpuNs(), wall: Number(process.hrtime.bigint()) };
    await sleep(1000);
    const { others } = otherLoad(before, { machine: machineCpuNs(), wall: Number(process.hrtime.bigint()) }, 0);
    if (others < 0.15 || Date.now() >= deadline) return others;
    if (!announced) log(`waiting up to ${seconds} s for the machine to quieten (now ${percent(others)} busy)`);
    announced = true;
  }
}

/**
 * What else used the machine during a run: the busy CPU time of every process but Chromium, the
 * feed-server and this runner, and the time the hypervisor stole, each as a share of all cores.
 */
function otherLoad(before, after, ours) {
  const capacity = ((after.wall - before.wall) * os.availableParallelism());
  return {
    others: Math.max(0, after.machine.busy - before.machine.busy - ours) / capacity,
    steal: (after.machine.steal - before.machine.steal) / capacity,
  };
}

// ---------------------------------------------------------------------------------------------
// Chromium, driven over the DevTools protocol on a pipe (--remote-debugging-pipe), with only
// the Runtime and (for the profile) Profiler domains. Not Playwright: Playwright enables the
// Network domain on every page, and Chromium then reports every WebSocket frame to it, which
// cut the page's receive rate from ~23k to ~13.6k msg/s here: it would measure the instrumentation.

class Cdp {
  #out;
  #next = 0;
  #pending = new Map();

  constructor(out, input) {
    this.#out = out;
    let buffered = Buffer.alloc(0);
    input.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (let end = buffered.indexOf(0); end >= 0; end = buffered.indexOf(0)) {
        const message = JSON.parse(buffered.subarray(0, end).toString('utf8'));
        buffered = buffered.subarray(end + 1);
        const waiter = message.id !== undefined && this.#pending.get(message.id);
        if (!waiter) continue; // an event: none is enabled that matters here
        this.#pending.delete(message.id);
        if (message.error) waiter.reject(new Error(`${waiter.method}: ${message.error.message}`));
        else waiter.resolve(message.result);
      }
    });
    input.on('close', () => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error(`${waiter.method}: the browser went away`));
      this.#pending.clear();
    });
  }

  send(method, params = {}, sessionId = undefined) {
    const id = ++this.#next;
    this.#out.write(`${JSON.stringify({ id, method, params, sessionId })}\0`);
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject, method }));
  }
}

class Page {
  constructor(cdp, sessionId) {
    this.cdp = cdp;
    this.sessionId = sessionId;
  }

  send(method, params = {}) {
    return this.cdp.send(method, params, this.sessionId);
  }

  /** Evaluates `expression` in the page, awaiting a promise; returns the value (JSON). */
  async evaluate(expression) {
    const { result, exceptionDetails } = await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    if (exceptionDetails) throw new Error(`in the page: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
    return result.value;
  }

  async waitFor(expression, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await this.evaluate(expression).catch(() => false)) return;
      if (Date.now() > deadline) {
        const errors = await this.evaluate('JSON.stringify(window.pageErrors ?? [])').catch(() => '');
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${errors}`);
      }
      await sleep(50);
    }
  }
}

async function launchChromium(dir) {
  const child = spawn(CHROMIUM, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--no-default-browser-check', '--disable-extensions',
    '--disable-renderer-backgrounding', '--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows',
    '--js-flags=--expose-gc', `--user-data-dir=${join(dir, 'profile')}`, '--remote-debugging-pipe', 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  track(child);
  const stderr = [];
  child.stderr.on('data', (chunk) => { stderr.push(chunk); if (stderr.length > 200) stderr.shift(); });
  const exited = new Promise((done) => child.once('exit', (code, signal) => done(code ?? signal)));
  const cdp = new Cdp(child.stdio[3], child.stdio[4]);
  const close = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    await Promise.race([cdp.send('Browser.close').catch(() => {}), sleep(2_000)]);
    if (await Promise.race([exited, sleep(3_000, 'timeout')]) === 'timeout') {
      child.kill('SIGKILL');
      await exited;
    }
  };
  try {
    const version = await Promise.race([
      cdp.send('Browser.getVersion'),
      exited.then((code) => { throw new Error(`chromium exited (${code}): ${Buffer.concat(stderr).toString().slice(-2000)}`); }),
      sleep(15_000, undefined, { ref: false }).then(() => { throw new Error('chromium did not answer within 15 s'); }),
    ]);
    return {
      version: version.product.replace(/^[^/]*\//, ''),
      close,
      async openPage(url) {
        const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
        const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
        const page = new Page(cdp, sessionId);
        page.browserPid = child.pid;
        await page.send('Page.navigate', { url });
        return page;
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// 7. Receive throughput.

const MAIN = [
  { id: 'websocket', kind: 'websocket', label: 'browser `WebSocket` (baseline)' },
  { id: 'reconnecting-websocket', kind: 'reconnecting-websocket', label: 'reconnecting-websocket' },
  { id: 'resilient-ws', kind: 'resilient-ws', label: 'resilient-ws (no cursor)', target: true },
  { id: 'resilient-ws-cursor', kind: 'resilient-ws-cursor', label: 'resilient-ws, `cursorField: \'seq\'`', target: true },
];
const MODELS = [
  { id: 'model-relay', kind: 'model-relay', label: '+ relay: the listeners called in turn with a light event object (no DOM dispatch)' },
  { id: 'model-copy', kind: 'model-copy', label: '+ one copy in: the JS string → UTF-8 in a memory buffer (with `cursorField` only; no copy back out)' },
  { id: 'model-both', kind: 'model-both', label: '+ both (the JS side of resilient-ws\'s path, no wasm work, no JS↔wasm calls)' },
];

async function gc(page) {
  await page.evaluate('window.gc?.()');
  await sleep(50);
}

async function runOnce(page, server, spec, n) {
  const sample = () => ({ ...cpuSnapshot(server.pid, page.browserPid), node: process.cpuUsage(), machine: machineCpuNs(), wall: Number(process.hrtime.bigint()) });
  const before = sample();
  const args = [spec.kind, server.feedUrl, n].map((arg) => JSON.stringify(arg)).join(', ');
  const result = await page.evaluate(`window.bench.run(${args})`);
  const after = sample();
  // Per message, over the whole run (connect and close included: small beside n messages).
  result.cpu = Object.fromEntries(['server', 'chromium', 'renderer'].map((key) => [key, (after[key] - before[key]) / n]));
  const node = process.cpuUsage(before.node);
  const ours = (result.cpu.server + result.cpu.chromium) * n + (node.user + node.system) * 1e3;
  result.load = otherLoad(before, after, ours);
  if (result.bad) throw new Error(`${spec.id}: ${result.bad} messages out of order or malformed in ${n}`);
  return result;
}

async function throughput(page, server, options, log) {
  // The models run in the first rounds only: the clients get the most runs.
  const specsOf = (round) => (options.models && round < options.modelRepeats ? [...MAIN, ...MODELS] : MAIN);
  const everything = specsOf(0);
  for (const spec of everything) {
    await runOnce(page, server, spec, options.warmup);
  }
  const runs = new Map(everything.map((spec) => [spec.id, []]));
  const started = Date.now();
  let rounds = 0;
  for (let round = 0; round < options.repeats; round++) {
    const roundStarted = Date.now();
    const specs = specsOf(round);
    // Alternating: each round starts one client later, so no client always runs first.
    const order = specs.map((_, i) => specs[(i + round) % specs.length]);
    for (const spec of order) {
      await gc(page);
      const result = await runOnce(page, server, spec, options.messages);
      runs.get(spec.id).push(result);
      log(`  round ${round + 1}: ${spec.id.padEnd(24)} ${thousands(result.rate).padStart(8)} msg/s; CPU ns/msg: renderer main thread ${result.cpu.renderer.toFixed(0).padStart(5)}, Chromium ${result.cpu.chromium.toFixed(0).padStart(5)}, server ${result.cpu.server.toFixed(0).padStart(4)}; other processes ${percent(result.load.others)}, steal ${percent(result.load.steal)}`);
    }
    rounds = round + 1;
    const now = Date.now();
    const nextRound = ((now - roundStarted) * specsOf(rounds).length) / specs.length;
    if (rounds < options.repeats && now - started + nextRound > options.budget * 1000) {
      log(`  stopping after ${rounds} rounds: another would overrun the ${options.budget} s budget`);
      break;
    }
  }
  const figures = new Map();
  figures.rounds = rounds;
  figures.modelRounds = Math.min(rounds, options.modelRepeats);
  const all = [...runs.values()].flat();
  figures.load = {
    others: median(all.map((r) => r.load.others)),
    othersMax: Math.max(...all.map((r) => r.load.others)),
    steal: median(all.map((r) => r.load.steal)),
  };
  const base = runs.get('websocket');
  for (const [id, list] of runs) {
    figures.set(id, {
      // Paired with the baseline's run of the same round, then the median over rounds: steadier
      // than comparing medians when the machine's load changes between rounds.
      pairedRatio: median(list.map((r, i) => r.rate / base[i].rate)),
      pairedRenderer: median(list.map((r, i) => r.cpu.renderer - base[i].cpu.renderer)),
      rate: median(list.map((r) => r.rate)),
      rates: list.map((r) => r.rate),
      renderer: median(list.map((r) => r.cpu.renderer)),
      chromium: median(list.map((r) => r.cpu.chromium)),
      server: median(list.map((r) => r.cpu.server)),
      serverShare: median(list.map((r) => (r.cpu.server * r.n) / (r.ms * 1e6))),
    });
  }
  return figures;
}

function throughputTables(figures, options, profile) {
  const baseline = figures.get('websocket');
  const ns = (value) => (Number.isFinite(value) ? value.toFixed(0) : '-');
  const plus = (value) => (Number.isFinite(value) ? `${value >= 0 ? '+' : ''}${value.toFixed(0)}` : '-');
  const spread = (f) => (f.rates.length > 1 ? `${thousands(Math.min(...f.rates))}-${thousands(Math.max(...f.rates))}` : '-');
  const tables = [];
  const rows = MAIN.map((spec) => {
    const f = figures.get(spec.id);
    return [
      spec.label, thousands(f.rate), spread(f), ratio(f.rate / baseline.rate, spec.target ? TARGET_RATIO : undefined),
      ns(f.renderer), ratio(f.renderer / baseline.renderer), ns(f.chromium), ns(f.server), `${(f.serverShare * 100).toFixed(0)}%`,
    ];
  });
  const ours = figures.get('resilient-ws');
  const rws = figures.get('reconnecting-websocket');
  tables.push(table({
    title: '7. Browser receive throughput',
    what: `${thousands(options.messages)} messages of 62-66 B (\`{"seq":N,"ts_ms":0,"data":"<30 letters>"}\`) from one feed-server (\`--rate 0 --total ${options.messages} --payload-bytes ${PAYLOAD_BYTES}\`, release build) to one page in headless Chromium, each client in turn on a fresh connection, with the same listener: \`JSON.parse(event.data)\`, a check that \`seq\` is 1, 2, 3... (every run was complete and in order) and a counter. msg/s from the first message to the last, median of ${figures.rounds} runs${figures.rounds < options.repeats ? ` (of ${options.repeats} asked: the time budget)` : ''} (clients alternating, each round starting one client later, \`gc()\` before each run) after one untimed run of ${thousands(options.warmup)} per client. Target for resilient-ws: ≥ ${TARGET_RATIO} × the browser's WebSocket. CPU ns/msg (medians; whole run, connect and close included) from /proc/*/task/*/schedstat: the page's renderer main thread (where the page's JS runs and every event is dispatched), all of Chromium's processes and threads, and the feed-server.`,
    columns: ['client', 'msg/s', `range of ${figures.rounds}`, 'ratio', 'renderer main thread CPU ns/msg', 'renderer CPU ratio', 'Chromium CPU ns/msg', 'server CPU ns/msg', 'server busy'],
    rows,
    notes: [
      `paired by round (each run ÷ the baseline's run in the same round, median over rounds): resilient-ws ${ratio(ours.pairedRatio, TARGET_RATIO)}, with \`cursorField\` ${ratio(figures.get('resilient-ws-cursor').pairedRatio, TARGET_RATIO)}, reconnecting-websocket ${ratio(rws.pairedRatio)}`,
      `resilient-ws: ${plus(ours.renderer - baseline.renderer)} ns/msg on the renderer's main thread over the browser's WebSocket (${ns(baseline.renderer)}), ${plus(ours.chromium - baseline.chromium)} ns/msg in all of Chromium; reconnecting-websocket ${plus(rws.renderer - baseline.renderer)} and ${plus(rws.chromium - baseline.chromium)}`,
      'msg/s is bounded by Chromium, not by the server (server busy = its CPU time ÷ the run\'s duration); the browser\'s own per-frame cost (network service → renderer IPC, task, MessageEvent) dominates every row, and the page, the browser\'s processes and the server share the machine\'s cores, so the throughput ratio understates a client\'s own cost: read the CPU ratio beside it',
      `the machine is shared: during the timed runs other processes used ${percent(figures.load.others)} of its CPU (median over runs; max ${percent(figures.load.othersMax)}) and the hypervisor stole ${percent(figures.load.steal)}; figures from a loaded machine move by tens of percent, resilient-ws's more than the baseline's`,
      'the page is driven over the DevTools protocol with only the Runtime domain (no Playwright: with the Network domain on, as Playwright has it, Chromium reports every frame to the driver, and the same page received ~13.6k msg/s where it received ~23k without)',
      'every client with its defaults (reconnecting-websocket: `new ReconnectingWebSocket(url)`; resilient-ws: `new ResilientWebSocket(url)`, no heartbeat) and the listener added with `addEventListener(\'message\', ...)`',
    ],
  }));
  if (options.models) {
    const rowsModel = [['browser `WebSocket` (baseline, as above)', thousands(baseline.rate), ratio(1), ns(baseline.renderer), '0']];
    for (const spec of MODELS) {
      const f = figures.get(spec.id);
      rowsModel.push([spec.label, thousands(f.rate), ratio(f.rate / baseline.rate), ns(f.renderer), plus(f.pairedRenderer)]);
    }
    for (const id of ['resilient-ws', 'resilient-ws-cursor']) {
      const f = figures.get(id);
      rowsModel.push([`${MAIN.find((spec) => spec.id === id).label} (as above)`, thousands(f.rate), ratio(f.rate / baseline.rate), ns(f.renderer), plus(f.pairedRenderer)]);
    }
    const extra = (id) => figures.get(id).pairedRenderer;
    const total = extra('resilient-ws');
    const both = extra('model-both');
    tables.push(table({
      title: '7a. Where resilient-ws\'s time goes: models',
      what: `The first ${figures.modelRounds} rounds of the runs above (alternating with the clients; medians of ${figures.modelRounds}): a plain browser WebSocket whose messages go through one of the things resilient-ws does per message before reaching the same listener, modelled in JS on the page. Per message, resilient-ws's host (host.js \`BrowserHost\`) hands the message to the session in wasm with the event's own \`timeStamp\` as the time (\`raw.text(conn, data, timeStamp)\`: with \`cursorField\` wasm-bindgen's glue copies the string into wasm memory as UTF-8, the one copy; without one an empty string goes in, since the session then never reads the message); the session answers with \`host.message(cursor)\`, and the wrapper calls the \`message\` listeners in turn with a light event object carrying the original data, never copied back out (resilient-ws.js \`#deliver\`: no \`MessageEvent\`, no \`dispatchEvent\`, which cost ~5 µs a message in this browser). No microtask, channel, task or clock read runs per message. What resilient-ws costs beyond "both" is the session's work in wasm (its bookkeeping, the cursor scan with \`cursorField\`, the allocation and free of the copy) and the calls between JS and wasm (\`raw.text\` in, \`host.message\` out). Compare the CPU columns: the throughput of these rows is as noisy as above. + ns/msg = the median over rounds of (this row − the baseline in the same round).`,
      columns: ['path', 'msg/s', 'ratio', 'renderer main thread CPU ns/msg', '+ ns/msg (paired)'],
      rows: rowsModel,
      notes: [
        `of resilient-ws's ${plus(total)} ns/msg on the renderer's main thread, the JS-side model ("both") accounts for ${plus(both)} (relay ${plus(extra('model-relay'))}, copy in ${plus(extra('model-copy'))}); ${total >= both ? `the remaining ${plus(total - both)} ns/msg is wasm work and crossings` : `more than all of it: the models overshoot by ${(both - total).toFixed(0)} ns/msg`}`,
        'a run\'s renderer CPU per message moves by several µs from run to run here, the baseline\'s too (11.8-24.3 µs in one series of 8; the thread\'s wake-ups per message depend on how far it lags the network), so the rows of this table are indicative and need not add up; 7b attributes the time directly',
      ],
    }));
  }
  if (profile) tables.push(profileTable(profile));
  return tables;
}

// ---------------------------------------------------------------------------------------------
// A CPU profile of one run (Chrome DevTools Protocol, V8's sampling profiler).

function categorize(frame) {
  const { functionName: name, url } = frame;
  if (name === '(idle)') return '(idle): V8 reports the thread waiting for a task';
  if (name === '(garbage collector)') return 'garbage collection';
  if (name === '(program)') return '(program): native, outside JS (event loop, WebSocket, DOM events)';
  if (name === '(root)') return null;
  if (url.startsWith('wasm://') || url.endsWith('.wasm') || /^(wasm-function|\$)/.test(name)) return 'wasm (RawClient: driver, session)';
  if (url.endsWith('/resilient_ws_wasm.js')) return 'wasm-bindgen glue (the copy in, calls to the host)';
  if (url.endsWith('/host.js')) return 'host.js BrowserHost (socket events in, `message` out)';
  if (url.endsWith('/resilient-ws.js')) return 'resilient-ws.js wrapper (the listeners, the light event)';
  if (url.endsWith('/bench.js')) return 'listener (JSON.parse, check)';
  if (!url) return `native: ${name || '(anonymous)'}`;
  return `other JS: ${url.split('/').pop()}`;
}

async function profileRun(page, server, spec, n) {
  await page.send('Profiler.enable');
  await page.send('Profiler.setSamplingInterval', { interval: 50 });
  await gc(page);
  await page.send('Profiler.start');
  const started = Date.now();
  const result = await runOnce(page, server, spec, n);
  const { profile } = await page.send('Profiler.stop');
  await page.send('Profiler.disable');
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byCategory = new Map();
  const byFunction = new Map();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const node = nodes.get(profile.samples[i]);
    const category = categorize(node.callFrame);
    if (!category) continue;
    total += dt;
    byCategory.set(category, (byCategory.get(category) ?? 0) + dt);
    const name = (node.callFrame.functionName || '(anonymous)').replace(/::h[0-9a-f]{16}\b/g, '').replace(/\[[0-9a-f]{16}\]/g, '');
    const fn = `${category}\t${name}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt);
  }
  return { spec, n, result, totalUs: total, wallMs: Date.now() - started, byCategory, byFunction };
}

function profileTable(profiles) {
  const categories = new Set();
  for (const p of profiles) for (const c of p.byCategory.keys()) categories.add(c);
  const rows = [...categories]
    .map((c) => [c, ...profiles.map((p) => (p.byCategory.get(c) ?? 0) * 1000 / p.n)])
    .filter((row) => row.slice(1).some((v) => v >= 5))
    .sort((a, b) => b[profiles.length] - a[profiles.length])
    .map(([c, ...values]) => [c, ...values.map((v) => v.toFixed(0))]);
  const ours = profiles.at(-1);
  const perMsg = (us) => `${(us * 1000 / ours.n).toFixed(0)} ns/msg`;
  const functions = [...ours.byFunction.entries()].sort((a, b) => b[1] - a[1]).map(([key, us]) => [...key.split('\t'), us]);
  const top = functions.filter(([category]) => !category.startsWith('(') && !category.startsWith('wasm (')).slice(0, 10)
    .map(([, name, us]) => `\`${name}\` ${perMsg(us)}`);
  const wasmTop = functions.filter(([category]) => category.startsWith('wasm (')).slice(0, 10)
    .map(([, name, us]) => `\`${name}\` ${perMsg(us)}`);
  return table({
    title: '7b. Where resilient-ws\'s time goes: CPU profile',
    what: `V8's sampling profiler (DevTools protocol, 50 µs interval) over one run of ${thousands(profiles[0].n)} messages per client, on the page's renderer main thread: self time per message by where it was spent, ns/msg (categories under 5 ns/msg in every column left out). The profiler slows everything down somewhat; read the columns against each other. ${profiles.named ? 'resilient-ws is profiled from the same build with the wasm\'s function names kept (wasm-bindgen `--keep-debug`, before wasm-opt), loaded in a second page.' : 'The .wasm is stripped of names, so wasm functions show only as `wasm-function[N]` (run through ./scripts/bench.sh or ./scripts/bench-browser.sh for names).'}`,
    columns: ['spent in', ...profiles.map((p) => `${p.spec.id} ns/msg`)],
    rows,
    notes: [
      `resilient-ws's heaviest JS and native functions (self time): ${top.join(', ')}`,
      `its heaviest wasm functions: ${wasmTop.join(', ')}`,
    ],
  });
}

// ---------------------------------------------------------------------------------------------

async function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (error.message) console.error(error.message);
    console.error(USAGE);
    process.exit(2);
  }
  const started = Date.now();
  const log = (message) => console.error(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}`);
  const command = `./scripts/bench-browser.sh${process.argv.slice(2).map((a) => ` ${a}`).join('')}`;

  log('bundle sizes');
  const sizes = await bundleSizes();
  const sizeMarkdown = sizeTable(sizes);
  console.log(sizeMarkdown);

  const dir = mkdtempSync(join(os.tmpdir(), 'rws-bench-browser-'));
  TEMP_DIRS.add(dir);
  let server;
  let browser;
  try {
    await buildPage(join(dir, 'site'));
    server = await startFeedServer(['--rate', '0', '--total', String(options.messages), '--payload-bytes', String(PAYLOAD_BYTES),
      '--static', `/=${join(dir, 'site')}`, '--static', `/pkg=${PKG_DIR}`, ...(PKG_NAMED_DIR ? ['--static', `/pkg-named=${PKG_NAMED_DIR}`] : [])]);
    log(`feed-server at ${server.feedUrl}`);
    browser = await launchChromium(dir);
    const page = await browser.openPage(`${server.httpBase}/index.html`);
    await page.waitFor('window.bench?.ready === true', 10_000, 'the bench page to load the package');

    if (options.quietWait > 0) log(`machine ${percent(await waitForQuiet(options.quietWait, log))} busy before the runs`);
    log(`throughput: ${thousands(options.messages)} messages × ${options.repeats} runs per client`);
    const figures = await throughput(page, server, options, log);
    let profiles;
    if (options.profile) {
      log('CPU profile');
      profiles = [];
      let profiled = page;
      if (PKG_NAMED_DIR) {
        profiled = await browser.openPage(`${server.httpBase}/index.html?pkg=/pkg-named`);
        await profiled.waitFor('window.bench?.ready === true', 10_000, 'the bench page to load the named package');
      }
      const n = Math.min(options.messages, PROFILE_MESSAGES);
      for (const spec of [MAIN[0], MAIN[2]]) profiles.push(await profileRun(profiled, server, spec, n));
      profiles.named = PKG_NAMED_DIR !== null;
    }
    const tables = throughputTables(figures, options, profiles);
    for (const t of tables) console.log(t);

    tables.push(sizeMarkdown);
    if (options.out) {
      writeFileSync(resolve(options.out), standaloneReport(options, command, browser.version, tables));
      log(`wrote ${options.out}`);
    }
    if (options.section) {
      writeFileSync(resolve(options.section), sectionReport(options, browser.version, tables));
      log(`wrote ${options.section}`);
    }
  } finally {
    await browser?.close().catch(() => {});
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
