// Tails this server's /feed with resilient-ws: reconnects with backoff, and resumes with
// ?cursor=<last seq> so nothing is lost or repeated across a break.
import init, { ResilientWebSocket } from '/pkg/resilient-ws.js';

await init();
const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/feed`;
const ws = new ResilientWebSocket(url, { cursorField: 'seq', resumeParam: 'cursor' });

const log = (text) => {
  const item = document.createElement('li');
  item.textContent = text;
  document.getElementById('log').prepend(item);
  while (document.getElementById('log').children.length > 50) document.getElementById('log').lastChild.remove();
};

ws.addEventListener('statechange', (e) => {
  document.getElementById('state').textContent = e.state;
  log(`[${e.state}] ${e.reason}`);
});
ws.addEventListener('message', (e) => {
  // e.cursor is a decimal string (exact above 2^53), or null for a message without one.
  document.getElementById('cursor').textContent = e.cursor ?? 'none';
  log(e.data);
});
ws.addEventListener('gap', (e) => log(`[discontinuity] nothing between #${e.last} and #${e.received}`));
window.feed = ws;
