// A scriptable WebSocket server for the browser tests that need frames the feed server never
// sends (skipped cursors, cursors above 2^53, invalid UTF-8): the RFC 6455 handshake and
// unmasked server frames over node:http, no dependency. Each connection is handed to the
// test's `script(connection, url)`; the client's messages are decoded and kept, and the
// script may stop reading them (a peer that does not read).
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const TEXT = 0x1;

/** One unmasked, final server frame. */
function frame(opcode, payload) {
  const length = payload.length;
  const head = length < 126 ? Buffer.from([0x80 | opcode, length])
    : length < 65_536 ? Buffer.from([0x80 | opcode, 126, length >> 8, length & 0xff])
      : Buffer.concat([Buffer.from([0x80 | opcode, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(length)); return b; })()]);
  return Buffer.concat([head, payload]);
}

/**
 * Decodes the client's (masked) frames from `chunk` onwards; calls `message(bytes)` for each
 * whole data message (continuation frames joined). Returns a function to feed chunks to.
 */
function clientFrames(message) {
  let pending = Buffer.alloc(0);
  let parts = [];
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (pending.length < 2) return;
      const fin = pending[0] & 0x80;
      const opcode = pending[0] & 0x0f;
      let length = pending[1] & 0x7f;
      let at = 2;
      if (length === 126) {
        if (pending.length < 4) return;
        length = pending.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (pending.length < 10) return;
        length = Number(pending.readBigUInt64BE(2));
        at = 10;
      }
      if (pending.length < at + 4 + length) return;
      const mask = pending.subarray(at, at + 4);
      const payload = Buffer.from(pending.subarray(at + 4, at + 4 + length));
      for (let i = 0; i < payload.length; i += 1) payload[i] ^= mask[i % 4];
      pending = pending.subarray(at + 4 + length);
      if (opcode >= 0x8) continue; // control frames: close, ping, pong
      parts.push(payload);
      if (fin) {
        message(Buffer.concat(parts));
        parts = [];
      }
    }
  };
}

/**
 * Starts the server on a free port of 127.0.0.1; closed by `t.after`. Returns `{ url, urls }`:
 * the ws:// URL to connect to, and the request URL (path and query) of every connection so
 * far. `script(connection, url)` runs for each: `connection.text(string)` sends a text frame,
 * `connection.textBytes(bytes)` a text frame of raw bytes (invalid UTF-8 included), and
 * `connection.drop()` ends the TCP connection without a close frame (FIN), `connection.reset()`
 * with a reset (RST). `connection.received` holds the client's messages as text, in order;
 * `connection.pause()` stops reading them (the bytes stay in the OS buffers).
 */
export async function startRawServer(t, script) {
  const urls = [];
  const sockets = new Set();
  const server = createServer((request, response) => response.writeHead(426).end());
  server.on('upgrade', (request, socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // a browser that goes away mid-frame is no test failure
    const received = [];
    socket.on('data', clientFrames((bytes) => received.push(bytes.toString())));
    const accept = createHash('sha1').update(request.headers['sec-websocket-key'] + GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    urls.push(request.url);
    script({
      text: (text) => socket.write(frame(TEXT, Buffer.from(text))),
      textBytes: (bytes) => socket.write(frame(TEXT, Buffer.from(bytes))),
      drop: () => socket.end(),
      reset: () => socket.resetAndDestroy(),
      pause: () => socket.pause(),
      received,
    }, request.url);
  });
  await new Promise((listening) => server.listen(0, '127.0.0.1', listening));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((closed) => server.close(closed));
  });
  return { url: `ws://127.0.0.1:${server.address().port}/feed`, urls };
}
