// What an app would write: import the package by name, load the WebAssembly once, connect.
// Vite resolves 'resilient-ws' from node_modules and bundles it, the .wasm file included.
// What the page saw goes to window.app for tests/browser/vite.test.mjs to read.
import init, { ResilientWebSocket } from 'resilient-ws';

const app = {
  ready: false,
  /** Cursors of the delivered messages, in delivery order, as numbers (this feed's are small). */
  cursors: [],
  /** Messages whose cursor disagrees with the seq in their JSON body. */
  mismatches: [],
  /** Every state the client went through, in order. */
  states: [],
  ws: null,
};
window.app = app;

await init();
const ws = new ResilientWebSocket(`ws://${location.host}/feed`, { cursorField: 'seq', resumeParam: 'cursor' });
app.ws = ws;
ws.addEventListener('statechange', (event) => {
  app.states.push(event.state);
  document.querySelector('#state').value = event.state;
});
ws.addEventListener('message', (event) => {
  const { seq } = JSON.parse(event.data);
  // Cursors come as decimal strings (exact beyond 2^53).
  if (String(seq) !== event.cursor) app.mismatches.push({ seq, cursor: event.cursor });
  app.cursors.push(Number(event.cursor));
  document.querySelector('#cursor').value = event.cursor;
});
app.ready = true;
