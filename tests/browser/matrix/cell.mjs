// One cell of the browser fault matrix: a fresh feed server and page, a client warmed up in
// the cell's traffic pattern, the fault injected (with the main thread blocked around it in
// the stalled pattern), held and lifted, then the whole contract judged: every violation
// is collected and the cell fails with all of them.
import {
  FEED_OPTIONS, openPage, sleep, startFeedServer, waitForDelivered, waitForState, waitUntil,
} from '../helpers.mjs';
import { auditSends } from './ledger.mjs';
import {
  blockMainThread, createWatchedClient, installSocketProbe, outbound, sendRecord, startSender,
  stopSender, summary,
} from './page.mjs';
import {
  AFTER_STALL_BOUND_MS, BACKOFF, BACKOFF_FLOOR_MS, CONNECT_TIMEOUT_MS, FLAP_MAX_FAILURES, HEARTBEAT,
  HEARTBEAT_WINDOW_MS, HELD_MAX_ATTEMPTS, MAX_FAILURES, RECOVERY_BOUND_MS, SETUP_LIMIT_MS, SLACK_MS,
  STABILITY_WINDOW_MS, STALL_FAULT_AFTER_MS, STALL_MS,
} from './timing.mjs';
import { PING, SENDER } from './traffic.mjs';

/** The longest a flapping server that brings nothing new may keep the session going: the windows of FLAP_MAX_FAILURES failures, and slack. */
const CAP_BOUND_MS = BACKOFF.initialMs * (2 ** FLAP_MAX_FAILURES - 1) + FLAP_MAX_FAILURES * 100 + SLACK_MS;
/** Traffic that proves a connection carries data again. */
const EVIDENCE = { delivered: 20, received: 20, pongs: 1 };

function clientNow(page) {
  return page.evaluate(() => window.harness.client(0).now());
}

/** What the Node side polls while it waits: cheap, no arrays. */
function progress(page) {
  return page.evaluate(() => {
    const client = window.harness.client(0);
    const last = window.matrix.sockets.at(-1);
    return {
      state: client.ws.state,
      sockets: window.matrix.sockets.length,
      lastOpen: !!last && last.openedAt !== null && last.closedAt === null && last.closeCalledAt === null,
      delivered: window.matrix.counts.delivered,
      pongs: window.matrix.counts.pongs,
      now: client.now(),
    };
  });
}

/**
 * Runs the cell; resolves with its figures (for the report) or throws an Error listing every
 * violation of the contract.
 */
export async function runCell(browser, fault, pattern, t) {
  const violations = [];
  const check = (ok, message) => { if (!ok) violations.push(message); };
  const figures = {};
  const cellStarted = Date.now();
  const phases = {};
  const phase = (name) => { phases[name] = Date.now() - cellStarted; };

  const server = await startFeedServer(pattern.serverArgs, t);
  phase('server');
  const { page } = await openPage(browser, server, t);
  phase('page');
  await installSocketProbe(page);
  const flapping = fault.expect === 'cap' || fault.expect === 'progress';
  const options = {
    ...FEED_OPTIONS,
    backoff: BACKOFF,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    stabilityWindowMs: STABILITY_WINDOW_MS,
    maxFailures: flapping ? FLAP_MAX_FAILURES : MAX_FAILURES,
    heartbeat: pattern.ping ? { ...HEARTBEAT, message: PING } : HEARTBEAT,
    queue: { maxMessages: 4096, maxBytes: 1 << 20 },
  };
  await createWatchedClient(page, server.feedUrl, options);

  // Warm up: open, traffic flowing, healthy (open past the stability window).
  await waitForState(page, 'open', SETUP_LIMIT_MS);
  phase('open');
  await waitForDelivered(page, pattern.warmDelivered, SETUP_LIMIT_MS);
  if (pattern.sends) {
    await startSender(page, SENDER);
    await server.waitForStats((s) => s.client_messages_received >= 50, 'the page\'s messages reaching the server', SETUP_LIMIT_MS);
  }
  await sleep(STABILITY_WINDOW_MS + 100);
  phase('warm');
  const socketsBefore = (await progress(page)).sockets;

  // The fault.
  let stall = null;
  let releasedNode = null;
  let pageFaultAt;
  if (pattern.stalled) {
    const stallStarted = Date.now();
    stall = blockMainThread(page, STALL_MS).then((released) => { releasedNode = Date.now(); return released; });
    await sleep(STALL_FAULT_AFTER_MS);
    pageFaultAt = (Date.now() - stallStarted); // fixed up below, once the page's clock can be read
  } else {
    pageFaultAt = await clientNow(page);
  }
  await fault.inject(server);

  if (fault.expect === 'cap') {
    if (stall) await stall;
    await waitForState(page, 'failed', CAP_BOUND_MS + (stall ? 0 : fault.holdMs))
      .catch((error) => violations.push(`a flapping server that brings nothing new did not end the session at the failure cap (${FLAP_MAX_FAILURES}) within ${CAP_BOUND_MS} ms: ${error.message}`));
  } else {
    await sleep(fault.holdMs);
    if (stall) {
      await stall;
      // Held on a little after the thread is free, so the client meets the fault running.
      const tail = releasedNode + 300 - Date.now();
      if (fault.lift && tail > 0) await sleep(tail);
    }
  }
  if (fault.lift) await fault.lift(server);
  if (stall) await stall;
  const liftedNode = Date.now();
  const pageLiftAt = await clientNow(page);
  let stallRecord = null;
  if (stall) {
    [stallRecord] = (await summary(page)).stalls;
    pageFaultAt += stallRecord.from;
  }

  phase('lifted');
  let recoverFrom = Math.max(liftedNode, releasedNode ?? 0);
  if (fault.expect === 'cap') {
    // The session ended as it must (judged below); the page starts it again.
    await page.evaluate(() => {
      const { ws } = window.harness.client(0);
      if (ws.state === 'failed') ws.reconnect();
    });
    recoverFrom = Date.now();
  }

  // Recovery: a socket newer than the fault, open, and traffic on it.
  const bound = RECOVERY_BOUND_MS + (pattern.ping ? HEARTBEAT.intervalMs : 0);
  let recoveredIn = null;
  try {
    const opened = await waitUntil(async () => {
      const now = await progress(page);
      return now.state === 'open' && now.lastOpen && now.sockets > socketsBefore ? now : null;
    }, 'the client open on a new socket', bound, async () => JSON.stringify(await progress(page)));
    const serverBase = (await server.stats()).client_messages_received;
    await waitUntil(async () => {
      const now = await progress(page);
      if (pattern.receives && now.delivered < opened.delivered + EVIDENCE.delivered) return false;
      if (pattern.ping && now.pongs < opened.pongs + EVIDENCE.pongs) return false;
      if (pattern.sends && (await server.stats()).client_messages_received < serverBase + EVIDENCE.received) return false;
      return true;
    }, 'traffic on the new socket', Math.max(200, bound - (Date.now() - recoverFrom)), async () => JSON.stringify(await progress(page)));
    recoveredIn = Date.now() - recoverFrom;
    check(recoveredIn <= bound, `recovered ${recoveredIn} ms after the fault ended: bound ${bound} ms`);
  } catch (error) {
    violations.push(`no recovery within ${bound} ms of the fault's end: ${error.message}`);
  }
  figures.recoveredMs = recoveredIn;
  phase('recovered');

  // Quiesce: the sender stopped, the queue and the socket's buffer empty, the server's count still.
  if (pattern.sends) {
    await stopSender(page);
    await waitUntil(async () => {
      const now = await outbound(page);
      return now.queued === 0 && now.buffered === 0;
    }, 'the queue and bufferedAmount empty', SETUP_LIMIT_MS, async () => JSON.stringify(await outbound(page)))
      .catch((error) => violations.push(error.message));
    let last = -1;
    await waitUntil(async () => {
      const { client_messages_received: now } = await server.stats();
      const still = now === last;
      last = now;
      if (!still) await sleep(150);
      return still;
    }, 'the server\'s count of received messages to settle', SETUP_LIMIT_MS).catch((error) => violations.push(error.message));
  }

  phase('quiet');
  // ---- the contract ----
  const seen = await summary(page);
  const stats = await server.stats();
  figures.delivered = seen.delivered;
  figures.sockets = seen.sockets.length;

  // Delivery: exactly once, in order, no gap, cursors match their messages.
  check(seen.broken === null, `delivery broke: ${JSON.stringify(seen.broken)}`);
  const gaps = seen.events.filter((e) => e.type === 'gap');
  check(gaps.length === 0, `gap events: ${JSON.stringify(gaps.slice(0, 3))}`);
  check(seen.mismatches.length === 0, `cursor/seq mismatches: ${JSON.stringify(seen.mismatches)}`);

  // One socket at a time, judged in the page: none created while another was still held
  // (not yet reported closed by the browser). The server's count is reported, not judged:
  // it counts a connection until its own task has finished tearing it down, which can
  // outlast the browser's close event by a few milliseconds when the server closed it,
  // and a socket the page closed (silent row) until the closing handshake times out.
  check(seen.overlaps.length === 0, `a socket was created while another was still held: ${JSON.stringify(seen.overlaps.slice(0, 3))}`);
  figures.serverMaxLive = stats.max_live_connections;

  // State visible: every statechange read back as the getter says, and the break was visible.
  check(seen.stateErrors.length === 0, `ws.state disagreed with a statechange event: ${JSON.stringify(seen.stateErrors.slice(0, 3))}`);
  const afterFault = seen.events.filter((e) => e.t >= pageFaultAt);
  const reconnecting = afterFault.filter((e) => e.type === 'statechange' && e.state === 'reconnecting');
  check(reconnecting.length > 0, 'the client never showed a reconnecting state after the fault');
  if (fault.reason && reconnecting.length > 0) {
    check(fault.reason.test(reconnecting[0].reason), `the first reconnecting state after the fault says '${reconnecting[0].reason}', expected ${fault.reason}`);
  }
  // Noticed in time: a break at once (the server ended the socket), a silence within the heartbeat window.
  if (reconnecting.length > 0) {
    const from = stallRecord ? stallRecord.released : pageFaultAt;
    const noticeBound = (fault.silence ? HEARTBEAT_WINDOW_MS : 0) + (stallRecord ? AFTER_STALL_BOUND_MS : SLACK_MS);
    const noticed = reconnecting[0].t - from;
    figures.noticedMs = noticed;
    check(noticed <= noticeBound, `the fault was noticed ${noticed} ms after ${stallRecord ? 'the main thread was free' : 'it came'}: bound ${noticeBound} ms`);
  }

  // Timers alive after a stall: the first new socket soon after the thread is free.
  if (stallRecord) {
    const next = seen.sockets.find((s) => s.created >= stallRecord.released - 5);
    const limit = AFTER_STALL_BOUND_MS + (fault.silence ? HEARTBEAT_WINDOW_MS : 0);
    if (!next) {
      violations.push('no socket was created after the stalled main thread was released');
    } else {
      figures.afterStallMs = next.created - stallRecord.released;
      check(next.created - stallRecord.released <= limit, `the first socket after the stall came ${next.created - stallRecord.released} ms after the thread was free: bound ${limit} ms (timers alive)`);
    }
  }

  // Failure: never, except the flapping rows that bring nothing new, which must end at the cap.
  const failed = seen.events.filter((e) => e.type === 'statechange' && e.state === 'failed');
  if (fault.expect === 'cap') {
    check(failed.length === 1, `expected one failed state at the cap, saw ${failed.length}`);
    check(seen.events.filter((e) => e.type === 'giveup').length === 1, "no single 'giveup' event at the cap");
  } else {
    check(failed.length === 0, `the session failed: ${JSON.stringify(failed.slice(0, 2))}`);
  }
  check(seen.state === 'open', `the client ends the cell '${seen.state}', not open`);

  // Backoff while the fault is held: attempts bounded, delays within [floor, cap], growing when flapping.
  if (fault.retries) {
    const heldFrom = stallRecord ? stallRecord.released : pageFaultAt;
    const held = seen.sockets.filter((s) => s.created > pageFaultAt && s.created <= pageLiftAt);
    figures.heldAttempts = held.length;
    check(held.length <= HELD_MAX_ATTEMPTS, `${held.length} attempts while the fault was held (${pageLiftAt - pageFaultAt} ms): the backoff does not hold them back (at most ${HELD_MAX_ATTEMPTS})`);
    const runningHeld = pageLiftAt - heldFrom;
    if (runningHeld >= 1_000) check(held.length >= 2, `${held.length} attempts in the ${runningHeld} ms the fault was held while the page ran: retry timers stopped`);
    const retries = seen.events.filter((e) => e.type === 'reconnecting' && e.t >= pageFaultAt && e.t <= pageLiftAt);
    for (const retry of retries) {
      check(retry.delayMs <= BACKOFF.maxMs + 1, `a delay of ${retry.delayMs} ms is over the backoff cap ${BACKOFF.maxMs} ms`);
      if (retry.attempt >= 2) check(retry.delayMs >= BACKOFF_FLOOR_MS - 1, `attempt ${retry.attempt} waited ${retry.delayMs} ms: under the ${BACKOFF_FLOOR_MS} ms floor after a failure`);
    }
    if (flapping && retries.length >= 3) {
      const top = Math.max(...retries.map((r) => r.attempt));
      check(top >= 3, `flapping: ${retries.length} retries but the attempt number never passed ${top}: short connections reset the backoff`);
    }
  }
  if (fault.key === 'flapReplay') {
    check(seen.stats.replaysDropped >= 1, `no replay dropped while the server replayed (${JSON.stringify(seen.stats)})`);
  }

  // Sent messages: each reached the server once in order, came back unsent, or was lost only after leaving the browser.
  if (pattern.sends) {
    const record = await sendRecord(page);
    const audit = auditSends(record, stats.client_messages_received);
    Object.assign(figures, { sent: audit.figures });
    if (audit.violations.length > 0) {
      violations.push(...audit.violations);
      // What each socket carried, for the diagnosis: [index, messages, first id, last id, bufferedAmount now].
      figures.sockets = record.sockets.map((s) => [s.index, s.ids.length, s.ids[0] ?? null, s.ids.at(-1) ?? null, s.buffered]);
      figures.unsentIds = record.unsent.length > 0 ? [record.unsent[0], record.unsent.at(-1)] : [];
      figures.unsentEvents = seen.events.filter((e) => e.type === 'unsent').map((e) => [e.t, e.messages?.length ?? 0]);
      figures.stateTrail = seen.events.filter((e) => e.type === 'statechange' && e.t >= pageFaultAt).slice(0, 12).map((e) => `${e.t}:${e.state}`);
    }
  }

  phase('judged');
  figures.phases = phases;
  if (violations.length > 0) {
    const error = new Error(`${fault.name} × ${pattern.name}: ${violations.length} violation(s):\n  - ${violations.join('\n  - ')}\n  figures: ${JSON.stringify(figures)}`);
    error.figures = figures;
    error.violations = violations;
    throw error;
  }
  return figures;
}
