"""A Python `websockets` client against a resilient-ws-server hub, for the interop suite.

    python tests/interop/hub_resume_client.py ws://127.0.0.1:PORT/feed [--count K] [--rounds R]

Round 1 connects without a cursor; every later round reconnects with ``?cursor=N&epoch=E``
(the last ``seq`` read and the epoch of the welcome). Each round checks the welcome (keys
``type, epoch, resumed, reason, from, head`` in this order; ``fresh`` first, then
``resumed`` with ``from`` = N + 1 and the same epoch), reads K messages
``{"seq": n, ...}`` and checks they are ``from``, ``from + 1``, ... (no gap, no duplicate),
then closes. The hub is expected to publish meanwhile, so every reconnect replays what was
missed and crosses into live messages.

Prints one line per round and ``hub resume ok: ROUNDS rounds, N messages`` at the end;
exits 1 with the reason on the first violation (every wait is bounded by 10 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from urllib.parse import urlencode

from websockets.asyncio.client import connect

WELCOME_KEYS = ["type", "epoch", "resumed", "reason", "from", "head"]
LIMIT = 10.0


class Violation(Exception):
    pass


async def read_json(ws) -> dict:
    raw = await asyncio.wait_for(ws.recv(), LIMIT)
    if not isinstance(raw, str):
        raise Violation(f"expected a text frame, got {raw!r}")
    return json.loads(raw)


def check_welcome(welcome: dict, cursor: int | None, epoch: str | None) -> None:
    if list(welcome) != WELCOME_KEYS:
        raise Violation(f"welcome keys {list(welcome)} != {WELCOME_KEYS}")
    if welcome["type"] != "welcome":
        raise Violation(f"the first frame is not the welcome: {welcome}")
    if cursor is None:
        if (welcome["resumed"], welcome["reason"]) != (False, "fresh"):
            raise Violation(f"a connection without a cursor is fresh: {welcome}")
        return
    wanted = (True, "resumed", cursor + 1, epoch)
    got = (welcome["resumed"], welcome["reason"], welcome["from"], welcome["epoch"])
    if got != wanted:
        raise Violation(f"resume from {cursor} in {epoch}: got {welcome}")


async def run(url: str, count: int, rounds: int) -> int:
    cursor: int | None = None
    epoch: str | None = None
    total = 0
    for round_number in range(1, rounds + 1):
        query = "" if cursor is None else "?" + urlencode({"cursor": cursor, "epoch": epoch})
        async with connect(url + query, open_timeout=LIMIT, close_timeout=LIMIT) as ws:
            welcome = await read_json(ws)
            check_welcome(welcome, cursor, epoch)
            expected = welcome["from"]
            for _ in range(count):
                message = await read_json(ws)
                if message.get("seq") != expected:
                    raise Violation(f"expected seq {expected}, got {message.get('seq')}")
                expected += 1
            print(
                f"round {round_number}: {welcome['reason']} from {welcome['from']} "
                f"(head {welcome['head']}), read to {expected - 1}",
                flush=True,
            )
            cursor, epoch = expected - 1, welcome["epoch"]
            total += count
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    try:
        total = asyncio.run(run(args.url, args.count, args.rounds))
    except (Violation, TimeoutError) as error:
        print(f"hub resume FAILED: {error!r}", file=sys.stderr, flush=True)
        return 1
    print(f"hub resume ok: {args.rounds} rounds, {total} messages", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
