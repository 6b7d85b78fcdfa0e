"""A live dashboard feed written the way many FastAPI dashboards are: each connection gets
initial data (a snapshot), then the handler blocks on ``receive_text()`` while a background
task broadcasts numbered updates (``{"seq": N, ...}``) to every connection.

Run it under uvicorn, which pings each client every second and drops it when no pong comes
back within a second::

    python -m uvicorn --app-dir tests/interop fastapi_feed:app --host 127.0.0.1 --port 0 \
        --ws-ping-interval 1 --ws-ping-timeout 1

uvicorn prints ``Uvicorn running on http://127.0.0.1:PORT`` on stderr when it listens.

Resume: ``/feed?cursor=N`` replays the recent broadcasts after N (from a ring buffer), then
goes live. Without a cursor a client gets the snapshot and the live updates after it.

Restarts keep the feed: every broadcast is appended to the event log ``FEED_LOG`` (a file)
before it is sent, and a new process reloads the counter and the ring buffer from it.

Environment: ``FEED_LOG`` (path, required), ``FEED_INTERVAL_MS`` (between broadcasts,
default 50), ``FEED_RING`` (broadcasts kept for resume, default 2000).

``GET /stats`` answers ``{"connections": accepted, "live": open now, "max_live": most open
at once, "seq": last broadcast, "cursors": [cursor each connection asked for, or null],
"closes": [close code of each ended connection]}``. Each connection is also logged on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections import deque
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket, WebSocketDisconnect


class Feed:
    """The broadcaster's state: the counter, the ring buffer and the connected clients."""

    def __init__(self, log_path: str, ring: int) -> None:
        self.log_path = log_path
        self.ring: deque[tuple[int, str]] = deque(maxlen=ring)
        self.seq = 0
        if os.path.exists(log_path):
            with open(log_path, encoding="utf-8") as log:
                for line in log:
                    line = line.strip()
                    if not line:
                        continue
                    seq = json.loads(line)["seq"]
                    self.ring.append((seq, line))
                    self.seq = seq
        self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed at shutdown
        self.clients: set[WebSocket] = set()
        self.accepted = 0
        self.live = 0
        self.max_live = 0
        self.cursors: list[int | None] = []
        self.closes: list[int] = []

    def next_message(self) -> str:
        """The next update, appended to the event log before anyone sees it."""
        self.seq += 1
        message = json.dumps(
            {"seq": self.seq, "type": "update", "value": self.seq * 7 % 100, "at": time.time()}
        )
        self.log.write(message + "\n")
        self.log.flush()
        self.ring.append((self.seq, message))
        return message

    async def broadcast_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            message = self.next_message()
            # Taken together with the append above (no await in between): a connection that
            # joins later found this message in the ring while catching up.
            for ws in list(self.clients):
                try:
                    await ws.send_text(message)
                except Exception:  # noqa: BLE001 - a dead client must not stop the others
                    self.clients.discard(ws)


def _feed() -> Feed:
    log_path = os.environ.get("FEED_LOG")
    if not log_path:
        sys.exit("fastapi_feed: set FEED_LOG to the path of the event log")
    return Feed(log_path, int(os.environ.get("FEED_RING", "2000")))


@asynccontextmanager
async def lifespan(app: FastAPI):
    feed = _feed()
    app.state.feed = feed
    interval = int(os.environ.get("FEED_INTERVAL_MS", "50")) / 1000
    print(f"feed starts after seq {feed.seq}", flush=True)
    task = asyncio.create_task(feed.broadcast_forever(interval))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    feed.log.close()


app = FastAPI(lifespan=lifespan)


@app.get("/stats")
async def stats() -> dict:
    feed: Feed = app.state.feed
    return {
        "connections": feed.accepted,
        "live": feed.live,
        "max_live": feed.max_live,
        "seq": feed.seq,
        "cursors": feed.cursors,
        "closes": feed.closes,
    }


@app.websocket("/feed")
async def feed_socket(websocket: WebSocket, cursor: int | None = None) -> None:
    feed: Feed = app.state.feed
    await websocket.accept()
    feed.accepted += 1
    number = feed.accepted
    feed.live += 1
    feed.max_live = max(feed.max_live, feed.live)
    feed.cursors.append(cursor)
    print(f"connection {number} opened cursor={cursor}", flush=True)
    code = 1006
    try:
        await websocket.send_text(
            json.dumps({"type": "snapshot", "head": feed.seq, "connection": number})
        )
        sent = feed.seq if cursor is None else cursor
        oldest = feed.ring[0][0] if feed.ring else feed.seq + 1
        if cursor is not None and cursor + 1 < oldest:
            print(f"connection {number}: cursor {cursor} is older than the ring ({oldest})", flush=True)
        # Catch up from the ring until nothing is left, then join the broadcast in the same
        # step (no await between the last check and the add): nothing lost, nothing twice.
        while True:
            pending = [(seq, message) for seq, message in feed.ring if seq > sent]
            if not pending:
                break
            for seq, message in pending:
                await websocket.send_text(message)
                sent = seq
        feed.clients.add(websocket)
        while True:
            await websocket.receive_text()  # what clients say is ignored, as dashboards do
    except WebSocketDisconnect as disconnect:
        code = disconnect.code
    except Exception as error:  # noqa: BLE001 - e.g. a send to a client that just went away
        print(f"connection {number} failed: {error!r}", flush=True)
    finally:
        feed.clients.discard(websocket)
        feed.live -= 1
        feed.closes.append(code)
        print(f"connection {number} closed code={code}", flush=True)
