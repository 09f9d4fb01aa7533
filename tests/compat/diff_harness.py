"""What the seeded differential tests share: seeds from the environment, one connection to
each server, the failure report with its replay line, whole SCAN-family iterations, and
the WATCH invalidation script.

Each ``test_differential*.py`` keeps what is its own: the generator, how a reply is
compared (its ``Pair.check``), the accepted differences and the dataset comparison.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from typing import ClassVar, NoReturn

from resp_wire import Reply, RespConnection

SEED_TIMEOUT_S = 60  # a seed takes about a second; pytest-timeout stops a hung one
SCAN_CALLS_MAX = 1000  # bound on the calls of one SCAN-family iteration


class Mismatch(AssertionError):
    pass


def seeds(env: str, default: int) -> list[int]:
    """``$<env>_SEED`` alone (a replay), else ``range($<env>_SEEDS or default)``."""
    one = os.environ.get(f"{env}_SEED")
    if one:
        return [int(one)]
    return list(range(int(os.environ.get(f"{env}_SEEDS", str(default)))))


def commands_per_seed(env: str, default: int) -> int:
    return int(os.environ.get(f"{env}_COMMANDS", str(default)))


def history_shown(env: str, default: int) -> int:
    """Commands printed before the failing one: all of them when replaying one seed."""
    return 10_000 if os.environ.get(f"{env}_SEED") else default


class Pair:
    """One connection to each server; a command goes to both before either reply is read,
    so time-dependent replies are as close as the servers make them.

    Subclasses name their test file (``module``), the environment prefix of its replay
    line (``env``) and how many earlier commands a failure shows (``shown``)."""

    module: ClassVar[str] = ""
    env: ClassVar[str] = "ACKDB_DIFF"
    shown: ClassVar[int] = 12

    def __init__(self, ports: tuple[int, int], seed: int) -> None:
        self.seed = seed
        self.ref = RespConnection(ports[0])
        try:
            self.sut = RespConnection(ports[1])
        except BaseException:
            self.ref.close()
            raise
        self.history: list[tuple[int, str]] = []
        self.protocol = 2

    def close(self) -> None:
        self.ref.close()
        self.sut.close()

    def call(self, argv: list[bytes]) -> tuple[Reply, Reply]:
        self.ref.send(argv)
        self.sut.send(argv)
        return self.ref.read(), self.sut.read()

    def note(self, index: int, text: str) -> None:
        self.history.append((index, text))

    def fail(self, index: int, text: str, ref: object, sut: object) -> NoReturn:
        shown = "\n".join(f"    #{i}: {t}" for i, t in self.history[-self.shown - 1 : -1])
        raise Mismatch(
            f"differential mismatch: seed={self.seed} command #{index} (RESP{self.protocol})\n"
            f"  command: {text}\n"
            f"  redis:   {ref!r}\n"
            f"  ackdb:   {sut!r}\n"
            f"  previous commands:\n{shown}\n"
            f"  replay:  {self.env}_SEED={self.seed} python -m pytest {self.module} -k seed"
        )


def scan_pages(conn: RespConnection, argv: list[bytes], cursor_at: int) -> list[Reply] | Reply:
    """The pages of one whole SCAN / SSCAN / ZSCAN iteration (``argv[cursor_at]`` is the
    cursor), or the first reply that is not a page (an error)."""
    argv = list(argv)
    pages: list[Reply] = []
    for _ in range(SCAN_CALLS_MAX):
        reply = conn.call(*argv)
        if reply[0] != "*":
            return reply
        cursor, page = reply[1]  # type: ignore[misc]
        pages.append(page)
        if cursor[1] == b"0":
            return pages
        argv[cursor_at] = cursor[1]
    raise Mismatch(f"{argv[0]!r} did not end within {SCAN_CALLS_MAX} calls")


View = Callable[[Reply], Reply]


def _same(reply: Reply) -> Reply:
    return reply


def check_watch_case(
    ports: tuple[int, int],
    setup: list[list[bytes]],
    watched: bytes,
    command: list[bytes],
    unchecked: Collection[bytes] = (),
    views: tuple[View, View] = (_same, _same),
) -> None:
    """Does ``command`` on the WATCHed key make EXEC fail, as in Redis? Every step's reply
    is compared too (each side's through its ``views`` entry), but those of commands named
    in ``unchecked`` (random replies)."""
    script = [[b"FLUSHALL"], *setup, [b"WATCH", watched], command]
    script += [[b"MULTI"], [b"PING"], [b"EXEC"]]
    with RespConnection(ports[0]) as ref, RespConnection(ports[1]) as sut:
        for step in script:
            theirs, ours = views[0](ref.call(*step)), views[1](sut.call(*step))
            if step[0] in unchecked:
                continue
            assert theirs == ours, (command, step, theirs, ours)
