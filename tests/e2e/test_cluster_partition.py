"""Partitions through fault-injecting proxies (tests/faultproxy.py) on every link of a
three-member cluster: the isolated minority refuses writes, the majority elects and goes
on, and the healed member catches up -- through a snapshot, because the majority
compacted its log meanwhile."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ackdb.node.localcluster import LocalCluster, Member, wait_for
from ackdb.resp.client import ReplyError
from faultproxy import FaultProxy

pytestmark = pytest.mark.e2e

SNAPSHOT_ENTRIES = 40
REQUEST_TIMEOUT_MS = 2000


class ProxiedCluster:
    """A LocalCluster whose every directed link src -> dst goes through its own proxy."""

    def __init__(self, base: Path, n: int) -> None:
        self.c = LocalCluster(
            base,
            n,
            ["--snapshot-entries", str(SNAPSHOT_ENTRIES),
             "--request-timeout-ms", str(REQUEST_TIMEOUT_MS)],
        )  # fmt: skip
        self.proxies: dict[tuple[str, str], FaultProxy] = {}
        for src in self.c.members.values():
            for dst in self.c.members.values():
                if src is not dst:
                    p = FaultProxy(("127.0.0.1", dst.cluster_port)).start()
                    self.proxies[(src.id, dst.id)] = p
        self.c.peer_addr = self._addr

    def _addr(self, src: Member, dst: Member) -> str:
        return f"127.0.0.1:{self.proxies[(src.id, dst.id)].port}"

    def isolate(self, node_id: str) -> None:
        for (a, b), p in self.proxies.items():
            if node_id in (a, b):
                p.drop_all()

    def heal(self) -> None:
        for p in self.proxies.values():
            p.heal()

    def close(self) -> None:
        self.c.close()
        for p in self.proxies.values():
            p.stop()


@pytest.fixture
def pc(tmp_path: Path) -> Iterator[ProxiedCluster]:
    pc = ProxiedCluster(tmp_path, 3)
    try:
        pc.c.start_all()
        yield pc
    finally:
        pc.close()


def write_keys(c: LocalCluster, node_id: str, prefix: str, n: int) -> dict[str, bytes]:
    with c.client(node_id) as cl:
        replies = cl.pipeline([("META.SET", f"{prefix}{i}", f"v{i}") for i in range(n)])
    assert all(r == b"OK" for r in replies), replies[:5]
    return {f"{prefix}{i}": f"v{i}".encode() for i in range(n)}


def test_isolated_leader_refuses_writes_majority_continues_heal_catches_up(
    pc: ProxiedCluster,
) -> None:
    c = pc.c
    old = c.wait_leader()
    old_term = c.status(old).term  # type: ignore[union-attr]
    acked = write_keys(c, old, "before", 10)
    majority = [i for i in c.members if i != old]

    pc.isolate(old)
    new = c.wait_leader(majority, min_term=old_term + 1, timeout_s=10)

    # The minority refuses: a clear error after a bounded wait, never an OK.
    t0 = time.monotonic()
    with c.client(old, timeout_s=15) as cl:
        with pytest.raises(ReplyError) as err:
            cl.call("META.SET", "minority", "x")
        assert err.value.code in ("NOQUORUM", "TRYAGAIN"), str(err.value)
        with pytest.raises(ReplyError) as err:
            cl.call("META.GET", "before0")
        assert err.value.code in ("NOQUORUM", "TRYAGAIN"), str(err.value)
    assert time.monotonic() - t0 < 2 * (REQUEST_TIMEOUT_MS / 1000) + 2

    # The majority goes on, past several snapshots (the old leader's log falls behind
    # the majority's compacted prefix).
    follower = next(i for i in majority if i != new)
    acked |= write_keys(c, follower, "during", 5 * SNAPSHOT_ENTRIES)
    wait_for(
        lambda: int(c.status(new).fields["snapshot_index"]) > 0,  # type: ignore[union-attr]
        10,
        "a snapshot on the new leader",
    )

    def health_of_old() -> str:
        v = c.status(new)
        m = next((m for m in v.members if m.id == old), None) if v else None
        return m.fields["health"] if m else "?"

    wait_for(lambda: health_of_old() == "down", 10, "the leader to record the cut-off member down")

    pc.heal()
    wait_for(lambda: "Installed a snapshot" in c[old].log(), 15, "the snapshot install")

    def caught_up() -> bool:
        try:
            with c.client(old, timeout_s=5) as cl:
                return bool(
                    cl.call("META.GET", f"during{5 * SNAPSHOT_ENTRIES - 1}")
                    == f"v{5 * SNAPSHOT_ENTRIES - 1}".encode()
                )
        except ReplyError:
            return False

    wait_for(caught_up, 15, "the healed member to catch up")
    with c.client(old) as cl:
        keys = sorted(acked)
        got = cl.pipeline([("META.GET", k) for k in keys])
        assert [k for k, v in zip(keys, got, strict=True) if v != acked[k]] == []
        assert cl.call("META.GET", "minority") is None  # never committed
    v = c.status(old)
    assert v is not None and v.leader_id == new and v.role == "follower"
    wait_for(lambda: health_of_old() == "ok", 10, "the healed member recorded up")
