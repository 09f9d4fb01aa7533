"""Sharded Pub/Sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB SHARDCHANNELS /
SHARDNUMSUB) against a standalone redis-server 7.0.15, byte for byte: the (un)subscribe
frames and their counts (shard channels counted apart from channels and patterns), the
``smessage`` frames as RESP2 arrays and RESP3 pushes, what a subscribed RESP2 client may
run, SSUBSCRIBE inside MULTI, and the arity errors.

Each script runs on fresh connections to both servers (named ``a``, ``b``...). A step sends
one command on one connection, then collects what every connection of the script receives
until both servers have been quiet for ``QUIET_S``; the transcripts must be equal. Replies
whose order Redis leaves unspecified (PUBSUB SHARDCHANNELS of several channels) are
sorted before comparing.

A standalone redis-server does not check CROSSSLOT for SSUBSCRIBE (only cluster mode
does); neither does ackdb's server: the proxy endpoint checks it (tests/unit/proxy).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from resp_wire import Incomplete, Reply, parse_reply

from ackdb.resp.request import encode_command
from conftest import REDIS_SERVER, server_pair

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH"),
]

QUIET_S = 0.04  # a step is over when no connection received anything for this long
STEP_MAX_S = 5.0

Step = tuple[str, str]  # (connection name, command line split on spaces)

SCRIPTS: dict[str, list[Step]] = {
    "counts apart from channels and patterns": [
        ("a", "SSUBSCRIBE s1 s2 s1"),
        ("a", "SUBSCRIBE c1"),
        ("a", "PSUBSCRIBE p*"),
        ("a", "SSUBSCRIBE s3"),
        ("a", "SUNSUBSCRIBE s2 nope"),
        ("a", "UNSUBSCRIBE"),
        ("a", "PUNSUBSCRIBE"),
        ("a", "GET k"),  # still subscribed: shard channels left
        ("a", "PING"),
        ("a", "PING hi"),
        ("a", "SUNSUBSCRIBE"),
        ("a", "SUNSUBSCRIBE"),
        ("a", "GET k"),  # back to normal
        ("a", "UNSUBSCRIBE"),
    ],
    "spublish reaches shard subscribers only": [
        ("a", "SSUBSCRIBE news"),
        ("b", "HELLO 3"),
        ("b", "SSUBSCRIBE news other"),
        ("c", "SUBSCRIBE news"),
        ("d", "PSUBSCRIBE *"),
        ("e", "SPUBLISH news hello"),
        ("e", "SPUBLISH other x"),
        ("e", "SPUBLISH nobody x"),
        ("e", "PUBLISH news classic"),
        ("e", "PUBSUB SHARDCHANNELS"),
        ("e", "PUBSUB SHARDCHANNELS n*"),
        ("e", "PUBSUB SHARDNUMSUB news other nobody"),
        ("e", "PUBSUB SHARDNUMSUB"),
        ("e", "PUBSUB CHANNELS"),
        ("e", "PUBSUB NUMSUB news"),
        ("e", "PUBSUB NUMPAT"),
        ("b", "SUNSUBSCRIBE news"),
        ("e", "SPUBLISH news again"),
        ("b", "GET k"),  # RESP3 clients may run anything
        ("b", "SUNSUBSCRIBE"),
        ("b", "SUNSUBSCRIBE"),
        ("e", "PUBSUB SHARDNUMSUB news other"),
    ],
    "errors and transactions": [
        ("a", "SSUBSCRIBE"),
        ("a", "SPUBLISH ch"),
        ("a", "SPUBLISH ch a b"),
        ("a", "PUBSUB shardChannels a b"),
        ("a", "PUBSUB CHANNELS a b"),
        ("a", "COMMAND GETKEYS SSUBSCRIBE a b"),
        ("a", "COMMAND GETKEYS SPUBLISH a b"),
        ("a", "MULTI"),
        ("a", "SSUBSCRIBE ch"),
        ("a", "SPUBLISH ch m"),
        ("a", "EXEC"),
        ("a", "SUNSUBSCRIBE"),
        ("a", "GET k"),
        ("b", "SSUBSCRIBE x"),
        ("b", "HELLO 3"),
        ("b", "RESET"),
        ("b", "GET k"),
    ],
}


class Side:
    """The connections of one script to one server, created on first use."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.socks: dict[str, socket.socket] = {}
        self.bufs: dict[str, bytearray] = {}

    def sock(self, name: str) -> socket.socket:
        if name not in self.socks:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            s.setblocking(False)
            self.socks[name] = s
            self.bufs[name] = bytearray()
        return self.socks[name]

    def poll(self) -> bool:
        """Read whatever arrived; True if anything did."""
        got = False
        for name, s in self.socks.items():
            try:
                while chunk := s.recv(1 << 16):
                    self.bufs[name] += chunk
                    got = True
            except BlockingIOError:
                pass
        return got

    def take(self) -> dict[str, list[Reply]]:
        out: dict[str, list[Reply]] = {}
        for name, buf in self.bufs.items():
            frames, pos = [], 0
            while pos < len(buf):
                try:
                    frame, pos = parse_reply(buf, pos)
                except Incomplete:
                    break
                frames.append(frame)
            del buf[:pos]
            if frames:
                out[name] = frames
        return out

    def close(self) -> None:
        for s in self.socks.values():
            s.close()


def _normalised(step: str, frames: dict[str, list[Reply]]) -> dict[str, list[Reply]]:
    if step.startswith("PUBSUB SHARDCHANNELS") or step.startswith("PUBSUB CHANNELS"):
        return {
            n: [(k, sorted(v)) if isinstance(v, list) else (k, v) for k, v in fs]  # type: ignore[type-var]
            for n, fs in frames.items()
        }
    if step in ("UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"):
        # Unsubscribing from all goes in hash order: compare the channels sorted, the
        # frames and their falling counts in order.
        out = {}
        for n, fs in frames.items():
            names = sorted(f[1][1] for f in fs)  # type: ignore[index]
            out[n] = [(k, [v[0], name, v[2]]) for (k, v), name in zip(fs, names, strict=True)]  # type: ignore[index]
        return out
    return frames


def run(sides: tuple[Side, Side], steps: list[Step]) -> list[tuple[str, object, object]]:
    """Each step on both servers; (step, reference transcript, tested transcript)."""
    out = []
    for conn, line in steps:
        for side in sides:
            side.sock(conn).sendall(encode_command([w.encode() for w in line.split(" ")]))
        deadline = time.monotonic() + STEP_MAX_S
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if any([side.poll() for side in sides]):
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > QUIET_S:
                break
            time.sleep(0.005)
        ref, sut = (_normalised(line, side.take()) for side in sides)
        out.append((f"{conn}: {line}", ref, sut))
    return out


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    workdir: Path = tmp_path_factory.mktemp("shard_pubsub")
    with server_pair(workdir) as pair:
        yield pair


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_shard_pubsub_matches_redis(ports: tuple[int, int], script: str) -> None:
    sides = (Side(ports[0]), Side(ports[1]))
    try:
        transcript = run(sides, SCRIPTS[script])
    finally:
        for side in sides:
            side.close()
    diffs = [
        f"{step}\n    redis: {ref}\n    ackdb: {sut}"
        for step, ref, sut in transcript
        if ref != sut and " HELLO " not in step  # the version and client id differ
    ]
    assert not diffs, "\n".join(diffs)


def test_info_counts_shard_channels(ports: tuple[int, int]) -> None:
    """INFO's pubsubshard_channels and CLIENT LIST's ssub= count them on both servers."""
    for port in ports:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sub:
            sub.sendall(encode_command([b"SSUBSCRIBE", b"x", b"y"]))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                deadline = time.monotonic() + 5
                while True:
                    c.sendall(b"INFO stats\r\nCLIENT LIST\r\n")
                    time.sleep(0.05)
                    text = c.recv(1 << 16).decode()
                    if "pubsubshard_channels:2" in text or time.monotonic() > deadline:
                        break
                assert "pubsubshard_channels:2" in text, port
                assert "ssub=2" in text, port
