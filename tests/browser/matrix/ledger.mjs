// The sent-message ledger of a browser matrix cell: where each message the page handed to
// the client went. The browser says which bytes never left it (a socket's bufferedAmount
// when it was released: the tail of what was handed to it); the feed server says how many
// client messages it received. README's rule, as the browser can observe it: a message
// that left the browser before its socket broke may be lost with it; every other message
// goes out again on the next socket, in order, or comes back in an 'unsent' event.

/**
 * `record` is page.sendRecord(); `serverReceived` the feed server's client_messages_received
 * (all of it numbered messages: the cells that send use no heartbeat message). Returns the
 * figures and a list of violations (empty when the contract held).
 */
export function auditSends(record, serverReceived) {
  const violations = [];
  const unsent = new Set(record.unsent);
  const departures = []; // { id, socket }, in the order they left
  const stranded = new Map(); // id -> socket index whose buffer held it when released
  for (const socket of record.sockets) {
    let tail = 0;
    if (socket.released && socket.buffered > 0) {
      let bytes = 0;
      while (tail < socket.ids.length && bytes < socket.buffered) {
        bytes += socket.sizes[socket.ids.length - 1 - tail];
        tail += 1;
      }
    }
    const left = socket.ids.length - tail;
    for (let i = 0; i < socket.ids.length; i += 1) {
      const id = socket.ids[i];
      if (i < left) departures.push({ id, socket: socket.index });
      else if (!stranded.has(id)) stranded.set(id, socket.index);
    }
  }

  // Departures, in socket order, must go strictly up: in order, and nothing left twice.
  const departedOn = new Map();
  let previous = -1;
  let disorder = null;
  for (const { id, socket } of departures) {
    if (id <= previous && disorder === null) {
      disorder = departedOn.has(id)
        ? `message m${id} left the browser twice (socket ${departedOn.get(id)[0]} and socket ${socket}): it may be received twice`
        : `message m${id} left the browser after m${previous} (socket ${socket}): out of order`;
    }
    previous = Math.max(previous, id);
    const on = departedOn.get(id) ?? [];
    on.push(socket);
    departedOn.set(id, on);
  }
  if (disorder) violations.push(disorder);

  let lostInClient = 0;
  let strandedLost = 0;
  const strandedExamples = [];
  const neverExamples = [];
  let unsentAfterLeaving = 0;
  for (const id of record.accepted) {
    const departed = departedOn.has(id);
    if (departed && unsent.has(id)) unsentAfterLeaving += 1;
    if (departed || unsent.has(id)) continue;
    if (stranded.has(id)) {
      strandedLost += 1;
      if (strandedExamples.length < 3) strandedExamples.push(`m${id} (socket ${stranded.get(id)})`);
    } else {
      lostInClient += 1;
      if (neverExamples.length < 3) neverExamples.push(`m${id}`);
    }
  }
  if (strandedLost > 0) {
    violations.push(`${strandedLost} accepted messages were still in a broken socket's bufferedAmount (never left the browser) and were neither sent again nor handed back unsent, e.g. ${strandedExamples.join(', ')}`);
  }
  if (lostInClient > 0) {
    violations.push(`${lostInClient} accepted messages were never handed to a socket nor back in 'unsent' (queue now ${record.queued}), e.g. ${neverExamples.join(', ')}`);
  }
  if (unsentAfterLeaving > 0) {
    violations.push(`${unsentAfterLeaving} messages came back in 'unsent' after they had left the browser (a resend would duplicate them)`);
  }

  // The server's count against what left the browser.
  const distinctDeparted = departedOn.size;
  const onBrokenOnly = [...departedOn.entries()].filter(([, sockets]) => sockets.every((s) => record.sockets[s].released)).length;
  const lostInFlight = distinctDeparted - serverReceived;
  if (serverReceived > distinctDeparted) {
    violations.push(`the server received ${serverReceived} messages but only ${distinctDeparted} distinct ones left the browser: duplicates`);
  } else if (lostInFlight > onBrokenOnly) {
    violations.push(`${lostInFlight} messages that left the browser never reached the server, but only ${onBrokenOnly} left on a socket that then broke`);
  }
  return {
    violations,
    figures: {
      accepted: record.accepted.length,
      refused: record.refused.length,
      departed: distinctDeparted,
      serverReceived,
      lostInFlight: Math.max(0, lostInFlight),
      strandedResent: [...stranded.keys()].filter((id) => departedOn.has(id)).length,
      strandedLost,
      unsent: unsent.size,
    },
  };
}
