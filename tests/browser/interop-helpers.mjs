// Shared by the browser interop suites (tests/browser/interop*.suite.mjs): running a
// third-party server as a child process, waiting (bounded) until it says where it listens,
// reading its GET /stats, and SIGKILLing it when the test ends.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { REPO, waitUntil } from './helpers.mjs';

/**
 * Spawns `command` with `args` (in the repository, with `env`); SIGKILLed by `t.after`.
 * Every stdout and stderr line is kept (the last 40 for failure messages) and passed to
 * `listening`, whose last truthy answer is where the server listens. Resolves to
 * `{ server, listening }` once there is one; rejects when the server exits first or when
 * `startLimitMs` passes. `name` names the server in those errors.
 *
 * The server: `child`, `output()`, `stats()` (its GET /stats, parsed), `waitForStats(predicate,
 * what, timeoutMs)` (polls /stats until `predicate` holds; bounded) and `kill()`. Its
 * `httpBase` is for the caller to set.
 */
export async function startServerProcess(t, { name, command, args, env, listening, startLimitMs }) {
  const child = spawn(command, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env });
  const output = [];
  const exited = new Promise((done) => child.once('exit', (code, signal) => done(code ?? signal)));
  const server = {
    child,
    output: () => output.slice(-40).join('\n'),
    async stats() {
      const response = await fetch(`${this.httpBase}/stats`, { signal: AbortSignal.timeout(2_000) });
      return response.json();
    },
    /** Polls /stats until `predicate` holds; bounded. */
    waitForStats(predicate, what, timeoutMs = 5_000) {
      return waitUntil(async () => {
        const stats = await this.stats().catch(() => null);
        return stats && predicate(stats) ? stats : null;
      }, what, timeoutMs, async () => JSON.stringify(await this.stats().catch((e) => String(e))));
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  t.after(() => server.kill());
  let found;
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      output.push(line);
      const value = listening(line);
      if (value) found = value;
    });
  }
  await Promise.race([
    waitUntil(() => found, `${name} to listen`, startLimitMs, () => server.output()),
    exited.then((code) => { throw new Error(`${name} exited (${code}) before listening:\n${server.output()}`); }),
  ]);
  return { server, listening: found };
}

/**
 * A server that prints `listening on 127.0.0.1:PORT` (tests/interop/websockets_server.py,
 * tests/interop/ws_server.mjs), started as `startServerProcess` does within 10 s; its
 * `httpBase` and `feedUrl` (ws://…/feed) are set.
 */
export async function startListeningServer(t, { name, command, args, env }) {
  const { server, listening: address } = await startServerProcess(t, {
    name,
    command,
    args,
    env,
    listening: (line) => /^listening on (127\.0\.0\.1:\d+)$/.exec(line)?.[1],
    startLimitMs: 10_000,
  });
  server.httpBase = `http://${address}`;
  server.feedUrl = `ws://${address}/feed`;
  return server;
}
