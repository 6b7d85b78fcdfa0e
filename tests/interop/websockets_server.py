"""A feed served by the Python `websockets` library (its asyncio server), for the interop
suites: server-initiated pings, close codes chosen per connection, and the max_size limit.

    python tests/interop/websockets_server.py [--ping-interval S --ping-timeout S]
        [--probe-pings MS] [--max-size BYTES] [--rate MSGS_PER_SEC]
        [--close-codes 1001,1011,1012 --close-after N]

Prints ``listening on 127.0.0.1:PORT`` on stdout once it listens (``--port 0``: any free port),
then one line per connection opened and closed.

``ws://ADDR/feed?cursor=N`` streams ``{"seq": n, ...}`` from n = N + 1 (from 1 without a
cursor); the messages are produced at ``--rate`` per second for everyone (0: none, a quiet
connection). Connection number i (from 1) is closed by the server with the i-th code of
``--close-codes`` after ``--close-after`` messages on it; later connections stay open.

``--ping-interval``/``--ping-timeout`` are the library's own keepalive (it closes with 1011
when a pong is late). ``--probe-pings MS`` makes each handler ping as well, every MS, and
count the pongs (``pongs`` in the stats), closing with 1011 if one is later than
``--ping-timeout`` (default 1 s).

``GET /stats`` answers ``{"connections", "live", "max_live", "seq", "pongs", "received",
"cursors": [...], "closes": [{"code", "sent", "received"}, ...]}`` (close codes: the
connection's, the one the server sent, the one it received; null when none).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


class Feed:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.close_codes = [int(c) for c in args.close_codes.split(",")] if args.close_codes else []
        self.messages: list[str] = []
        self.changed = asyncio.Event()
        self.accepted = 0
        self.live = 0
        self.max_live = 0
        self.pongs = 0
        self.received = 0
        self.cursors: list[int | None] = []
        self.closes: list[list] = []

    async def produce(self) -> None:
        if self.args.rate <= 0:
            return
        interval = 1 / self.args.rate
        while True:
            await asyncio.sleep(interval)
            seq = len(self.messages) + 1
            self.messages.append(json.dumps({"seq": seq, "source": "python-websockets"}))
            self.changed.set()
            self.changed = asyncio.Event()

    def stats(self) -> dict:
        return {
            "connections": self.accepted,
            "live": self.live,
            "max_live": self.max_live,
            "seq": len(self.messages),
            "pongs": self.pongs,
            "received": self.received,
            "cursors": self.cursors,
            "closes": self.closes,
        }

    async def handle(self, ws: ServerConnection) -> None:
        self.accepted += 1
        number = self.accepted
        self.live += 1
        self.max_live = max(self.max_live, self.live)
        query = parse_qs(urlsplit(ws.request.path).query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        self.cursors.append(cursor)
        print(f"connection {number} opened cursor={cursor}", flush=True)
        tasks = [asyncio.create_task(self.receive(ws))]
        if self.args.probe_pings:
            tasks.append(asyncio.create_task(self.probe(ws)))
        try:
            await self.send_feed(ws, number, cursor or 0)
        except ConnectionClosed:
            pass
        finally:
            await ws.wait_closed()
            for task in tasks:
                task.cancel()
            self.live -= 1
            sent = ws.protocol.close_sent.code if ws.protocol.close_sent else None
            received = ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None
            self.closes.append({"code": ws.close_code, "sent": sent, "received": received})
            print(f"connection {number} closed code={ws.close_code} sent={sent} received={received}", flush=True)

    async def send_feed(self, ws: ServerConnection, number: int, cursor: int) -> None:
        close_code = self.close_codes[number - 1] if number <= len(self.close_codes) else None
        sent_here = 0
        next_index = cursor
        while True:
            while next_index < len(self.messages):
                await ws.send(self.messages[next_index])
                next_index += 1
                sent_here += 1
                if close_code is not None and sent_here >= self.args.close_after:
                    await ws.close(close_code, f"interop: closing with {close_code}")
                    return
            changed = self.changed
            await asyncio.wait(
                [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(ws.wait_closed())],
                return_when=asyncio.FIRST_COMPLETED,
            )
            if ws.close_code is not None:
                return

    async def receive(self, ws: ServerConnection) -> None:
        try:
            async for _ in ws:
                self.received += 1
        except ConnectionClosed:
            pass

    async def probe(self, ws: ServerConnection) -> None:
        interval = self.args.probe_pings / 1000
        timeout = self.args.ping_timeout or 1.0
        try:
            while True:
                await asyncio.sleep(interval)
                pong = await ws.ping()
                try:
                    await asyncio.wait_for(pong, timeout)
                except asyncio.TimeoutError:
                    print("probe: pong timed out", flush=True)
                    await ws.close(1011, "probe: pong timed out")
                    return
                self.pongs += 1
        except ConnectionClosed:
            pass


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ping-interval", type=float, default=None)
    parser.add_argument("--ping-timeout", type=float, default=None)
    parser.add_argument("--probe-pings", type=int, default=0)
    parser.add_argument("--max-size", type=int, default=2**20)
    parser.add_argument("--rate", type=float, default=0)
    parser.add_argument("--close-codes", default="")
    parser.add_argument("--close-after", type=int, default=10)
    args = parser.parse_args()
    feed = Feed(args)

    def process_request(connection: ServerConnection, request):
        if urlsplit(request.path).path == "/stats":
            response = connection.respond(HTTPStatus.OK, json.dumps(feed.stats()) + "\n")
            response.headers["Content-Type"] = "application/json"
            return response
        return None

    async with serve(
        feed.handle,
        args.host,
        args.port,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        max_size=args.max_size,
        process_request=process_request,
    ) as server:
        host, port = next(iter(server.sockets)).getsockname()[:2]
        print(f"listening on {host}:{port}", flush=True)
        producer = asyncio.create_task(feed.produce())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        producer.cancel()


if __name__ == "__main__":
    asyncio.run(main())
