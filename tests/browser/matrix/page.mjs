// The in-page side of the browser fault matrix: functions run with page.evaluate. They
// count the page's sockets (window.WebSocket wrapped before the client creates any), send
// numbered messages in a loop, block the main thread (a stalled consumer: no listener runs,
// no timer fires), and sum up what the client delivered and reported, so that only
// summaries cross to Node.

/**
 * Wraps window.WebSocket, before the package opens any socket: every socket records when
 * it was created, opened and released (close() called or its close event), what was handed
 * to send() (the numbered messages as numbers, anything else as text) with each one's size,
 * and bufferedAmount when it was released, i.e. the bytes of it that never left the
 * browser. A socket created while another is still held (neither close() called nor closed)
 * is a second socket at once.
 */
export function installSocketProbe(page) {
  return page.evaluate(() => {
    if (window.matrix) return;
    const Native = window.WebSocket;
    const sockets = [];
    const objects = [];
    const overlaps = [];
    const held = (record) => record.closeCalledAt === null && record.closedAt === null;
    class ProbedWebSocket extends Native {
      constructor(url, protocols) {
        super(url, protocols);
        const record = {
          index: sockets.length, url: String(url), created: performance.now(), openedAt: null,
          closeCalledAt: null, bufferedAtCloseCall: null, closedAt: null, bufferedAtClose: null,
          code: null, ids: [], sizes: [], other: [],
        };
        const still = sockets.filter(held);
        if (still.length > 0) overlaps.push({ created: record.index, stillHeld: still.map((s) => s.index), at: record.created });
        sockets.push(record);
        objects.push(this);
        this.matrixRecord = record;
        this.addEventListener('open', () => { record.openedAt = performance.now(); });
        this.addEventListener('close', (event) => {
          record.closedAt = performance.now();
          record.bufferedAtClose = this.bufferedAmount;
          record.code = event.code;
        });
      }

      send(data) {
        const record = this.matrixRecord;
        if (typeof data === 'string') {
          const id = /^m(\d+)-/.exec(data);
          if (id) {
            record.ids.push(Number(id[1]));
            record.sizes.push(new TextEncoder().encode(data).length);
          } else {
            record.other.push(data);
          }
        } else {
          record.other.push(`<binary ${data.byteLength ?? data.size}>`);
        }
        return super.send(data);
      }

      close(...args) {
        const record = this.matrixRecord;
        if (record.closeCalledAt === null) {
          record.closeCalledAt = performance.now();
          record.bufferedAtCloseCall = this.bufferedAmount;
        }
        return super.close(...args);
      }
    }
    window.WebSocket = ProbedWebSocket;
    window.matrix = { sockets, objects, overlaps, stateErrors: [], sender: null, stalls: [] };
  });
}

/**
 * Creates the client through the test page's harness and checks, at every 'statechange',
 * that `ws.state` reads what the event says (the state is visible and current).
 */
export function createWatchedClient(page, url, options) {
  return page.evaluate(([url, options]) => {
    const index = window.harness.create(url, options);
    const { ws } = window.harness.client(index);
    // Counted as they come, so the Node side can poll cheaply: feed messages and the server's pongs (no cursor).
    window.matrix.counts = { delivered: 0, pongs: 0 };
    ws.addEventListener('message', (event) => {
      if (event.cursor === null) window.matrix.counts.pongs += 1;
      else window.matrix.counts.delivered += 1;
    });
    ws.addEventListener('statechange', (event) => {
      let read;
      try { read = ws.state; } catch (error) { read = `threw ${error}`; }
      if (read !== event.state) window.matrix.stateErrors.push({ event: event.state, read, reason: event.reason });
    });
    return index;
  }, [url, options]);
}

/**
 * Starts sending numbered messages `m<i>-<padding>` (`bytes` long) from a timer: `batch`
 * every `everyMs`, at most `max` in all. A send the client refuses (it throws: the queue is
 * full, or the session stopped) hands the message back to the page: counted, not lost.
 */
export function startSender(page, { batch, everyMs, bytes, max }) {
  return page.evaluate(({ batch, everyMs, bytes, max }) => {
    const { ws } = window.harness.client(0);
    const sender = { next: 0, accepted: [], refused: [], refusals: [], timer: 0, stopped: false };
    const pad = 'x'.repeat(bytes);
    const tick = () => {
      for (let i = 0; i < batch && sender.next < max; i += 1) {
        const id = sender.next;
        sender.next += 1;
        const text = `m${id}-${pad}`.slice(0, Math.max(bytes, `m${id}-`.length));
        try {
          ws.send(text);
          sender.accepted.push(id);
        } catch (error) {
          sender.refused.push(id);
          if (sender.refusals.length < 5) sender.refusals.push(String(error?.message ?? error));
        }
      }
      if (sender.next >= max) stop();
    };
    const stop = () => { clearInterval(sender.timer); sender.stopped = true; };
    sender.stop = stop;
    sender.timer = setInterval(tick, everyMs);
    window.matrix.sender = sender;
  }, { batch, everyMs, bytes, max });
}

export function stopSender(page) {
  return page.evaluate(() => window.matrix.sender?.stop());
}

/** Blocks the page's main thread for `ms`; resolves with the page clock (harness time) when it is free again. */
export function blockMainThread(page, ms) {
  return page.evaluate((ms) => {
    const client = window.harness.client(0);
    const from = client.now();
    const until = performance.now() + ms;
    let spins = 0;
    while (performance.now() < until && spins < 1e10) spins += 1;
    const released = client.now();
    window.matrix.stalls.push({ from, released });
    return released;
  }, ms);
}

/**
 * What the client delivered and reported, summed up in the page: the feed cursors checked
 * to be exactly 1..n in order (the null cursors of the server's pongs left out), gap
 * events, cursor/seq mismatches, state errors, and the events.
 */
export function summary(page) {
  return page.evaluate(() => {
    const client = window.harness.client(0);
    const cursors = client.cursors.filter((c) => c !== null);
    let broken = null;
    for (let i = 0; i < cursors.length; i += 1) {
      if (cursors[i] !== i + 1) {
        broken = { index: i, expected: i + 1, got: cursors[i], around: cursors.slice(Math.max(0, i - 3), i + 4) };
        break;
      }
    }
    const toClientTime = (t) => (t === null ? null : Math.round(t - client.started));
    return {
      state: client.ws.state,
      stats: client.ws.stats,
      lastCursor: client.ws.lastCursor,
      delivered: cursors.length,
      pongs: client.cursors.length - cursors.length,
      broken,
      mismatches: client.mismatches.slice(0, 5),
      events: client.events,
      stateErrors: window.matrix.stateErrors,
      overlaps: window.matrix.overlaps,
      sockets: window.matrix.sockets.map((s) => ({
        index: s.index, url: s.url, created: toClientTime(s.created), openedAt: toClientTime(s.openedAt),
        closeCalledAt: toClientTime(s.closeCalledAt), closedAt: toClientTime(s.closedAt), code: s.code,
        bufferedAtClose: s.bufferedAtClose, bufferedAtCloseCall: s.bufferedAtCloseCall,
        sent: s.ids.length, other: s.other.length,
      })),
      stalls: window.matrix.stalls,
      now: client.now(),
    };
  });
}

/** The current socket's bufferedAmount and the client's queue, to wait until all has left. */
export function outbound(page) {
  return page.evaluate(() => {
    const { sockets, objects } = window.matrix;
    const { ws } = window.harness.client(0);
    const current = sockets.at(-1);
    const held = current && current.closeCalledAt === null && current.closedAt === null;
    return {
      state: ws.state,
      queued: ws.stats.queued,
      buffered: held ? objects.at(-1).bufferedAmount : 0,
      sender: window.matrix.sender && { next: window.matrix.sender.next, stopped: window.matrix.sender.stopped },
    };
  });
}

/** The sending ledger's inputs: what the page accepted and refused, what each socket carried, what came back unsent. */
export function sendRecord(page) {
  return page.evaluate(() => {
    const sender = window.matrix.sender;
    const { ws } = window.harness.client(0);
    const unsent = [];
    for (const event of window.harness.client(0).events) {
      if (event.type !== 'unsent') continue;
      for (const text of event.messages ?? []) {
        const id = /^m(\d+)-/.exec(text);
        if (id) unsent.push(Number(id[1]));
      }
    }
    return {
      accepted: sender?.accepted ?? [],
      refused: sender?.refused ?? [],
      refusals: sender?.refusals ?? [],
      queued: ws.stats.queued,
      unsent,
      sockets: window.matrix.sockets.map((s, i) => ({
        index: s.index, ids: s.ids, sizes: s.sizes,
        released: s.closeCalledAt !== null || s.closedAt !== null,
        // The bytes that never left, read now: a socket the client closed still sends what
        // was queued before its close frame (a graceful close), and once closed the figure
        // stays (it never resets).
        buffered: window.matrix.objects[i].bufferedAmount,
      })),
    };
  });
}
