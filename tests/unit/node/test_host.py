"""The node host (ackdb.node.agent.Host) with fake services: start in order, drain then
stop in reverse order, a failed start stops what had started, a service's ``Exit``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ackdb.node.agent import Host
from ackdb.node.service import Exit
from ackdb.server.log import Log


class Fake:
    def __init__(self, name: str, journal: list[str], fail: bool = False) -> None:
        self.name = name
        self.journal = journal
        self.fail = fail
        self.exit: Exit | None = None

    async def start(self) -> None:
        if self.fail:
            raise OSError(98, "Address already in use")
        self.journal.append(f"start {self.name}")

    def drain(self) -> None:
        self.journal.append(f"drain {self.name}")

    async def stop(self) -> None:
        self.journal.append(f"stop {self.name}")


def test_services_start_in_order_and_stop_in_reverse(tmp_path: Path) -> None:
    journal: list[str] = []
    log = Log("verbose", str(tmp_path / "log"))
    a, b = Fake("a", journal), Fake("b", journal)
    host = Host(log, [a, b])

    async def main() -> int:
        task = asyncio.get_running_loop().create_task(host.run())
        while len(journal) < 2:
            await asyncio.sleep(0)
        assert not host.stopping
        host.stop(3, "a service asked")  # what a service's Exit does
        return await task

    assert asyncio.run(main()) == 3
    assert journal == ["start a", "start b", "drain b", "drain a", "stop b", "stop a"]
    log.set_file("")
    assert "Stopping (a service asked)" in (tmp_path / "log").read_text()


def test_a_failed_start_stops_the_services_already_started(tmp_path: Path) -> None:
    journal: list[str] = []
    log = Log("verbose", str(tmp_path / "log"))
    host = Host(log, [Fake("a", journal), Fake("b", journal, fail=True), Fake("c", journal)])
    with pytest.raises(OSError):
        asyncio.run(host.run())
    assert journal == ["start a", "drain a", "stop a"]
    log.set_file("")
