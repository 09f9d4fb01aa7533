#!/usr/bin/env python3
"""In-process microbenchmark: would the server's client path lose speed through the shared
ordered-pipeline front end (ackdb.resp.frontend)?

Parses and dispatches one pipelined read (16 SETs, as redis-benchmark -P 16 sends them)
with the real core, no sockets:

  server path   RequestReader.feed -> Server.process_batch (one call per read) -> join
  front end     FrontEnd.receive_data -> handler per request (process_batch of one) ->
                data_to_send

and the same two shapes with a handler that does nothing, which isolates what the front
end's machinery itself costs per request. Prints ns per command (min of the repeats).

    PYTHONPATH=src python3 bench/resp_frontend_micro.py
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import ackdb.commands  # noqa: E402, F401  (registers the command table)
from ackdb.engine.client import NullConn  # noqa: E402
from ackdb.engine.core import Server  # noqa: E402
from ackdb.resp.frontend import FrontEnd  # noqa: E402
from ackdb.resp.reader import RequestReader  # noqa: E402
from ackdb.resp.request import encode_command  # noqa: E402
from ackdb.server.config import load_config  # noqa: E402
from ackdb.server.engine_host import build_engine  # noqa: E402

PIPELINE = 16
NUMBER = 2000
REPEAT = 7
BUF = b"".join(encode_command([b"SET", b"key:%06d" % i, b"xxx"]) for i in range(PIPELINE))
LIMIT = 1 << 30


def server_path(core: Server) -> float:
    c = core.new_client(NullConn(), "127.0.0.1:1", "127.0.0.1:2", -1)

    def run() -> None:
        out: list[bytes] = []
        core.process_batch(c, c.reader.feed(BUF), out)
        b"".join(out)

    return min(timeit.repeat(run, number=NUMBER, repeat=REPEAT))


def frontend_path(core: Server) -> float:
    c = core.new_client(NullConn(), "127.0.0.1:1", "127.0.0.1:2", -1)

    def handler(argv: list[bytes]) -> bytes:
        out: list[bytes] = []
        core.process_batch(c, [argv], out)
        return out[0]

    fe = FrontEnd(handler, LIMIT, LIMIT)

    def run() -> None:
        fe.receive_data(BUF)
        fe.data_to_send()

    return min(timeit.repeat(run, number=NUMBER, repeat=REPEAT))


def bare_reader() -> float:
    reader = RequestReader(LIMIT, LIMIT)

    def run() -> None:
        out = [b"+OK\r\n" for _ in reader.feed(BUF)]
        b"".join(out)

    return min(timeit.repeat(run, number=NUMBER, repeat=REPEAT))


def bare_frontend() -> float:
    fe = FrontEnd(lambda argv: b"+OK\r\n", LIMIT, LIMIT)

    def run() -> None:
        fe.receive_data(BUF)
        fe.data_to_send()

    return min(timeit.repeat(run, number=NUMBER, repeat=REPEAT))


def main() -> None:
    core = build_engine(load_config(None))
    per_cmd = 1e9 / (NUMBER * PIPELINE)
    rows = [
        ("server path (reader + process_batch)", server_path(core)),
        ("front end, handler = process_batch of one", frontend_path(core)),
        ("reader + no-op dispatch", bare_reader()),
        ("front end + no-op handler", bare_frontend()),
    ]
    for name, t in rows:
        print(f"{name:45s} {t * per_cmd:8.0f} ns/command")


if __name__ == "__main__":
    main()
