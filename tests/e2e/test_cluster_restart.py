"""A full-cluster restart keeps every committed entry: SIGKILL every member at once
(nothing flushed on the way out), start them again, read everything back -- from a
snapshot plus the log after it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from ackdb.node.localcluster import LocalCluster, wait_for

pytestmark = pytest.mark.e2e

SNAPSHOT_ENTRIES = 50


def test_full_restart_after_sigkill_keeps_committed_entries(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, 3, ["--snapshot-entries", str(SNAPSHOT_ENTRIES)]) as c:
        c.start_all()
        leader = c.wait_leader()
        acked: dict[str, bytes] = {}
        # Writes through every member, some overwritten and some deleted, crossing
        # several snapshots and ending between two.
        for round_, node_id in enumerate(c.members):
            with c.client(node_id) as cl:
                cmds = [("META.SET", f"k{i}", f"r{round_}-{i}") for i in range(60)]
                assert set(cl.pipeline(cmds)) == {b"OK"}
                acked |= {f"k{i}": f"r{round_}-{i}".encode() for i in range(60)}
        with c.client(leader) as cl:
            for k in ("k0", "k1", "k2"):
                assert cl.call("META.DEL", k) == 1
                acked.pop(k)
        before = c.status(leader)
        assert before is not None and int(before.fields["snapshot_index"]) > 0
        for node_id in c.members:
            c.kill(node_id, signal.SIGKILL)

        c.start_all()
        new = c.wait_leader()
        after = c.status(new)
        assert after is not None and after.term > before.term
        for node_id in c.members:
            with c.client(node_id) as cl:
                keys = sorted(acked) + ["k0", "k1", "k2"]
                got = cl.pipeline([("META.GET", k) for k in keys])
                assert dict(zip(keys, got, strict=True)) == {
                    **acked,
                    "k0": None,
                    "k1": None,
                    "k2": None,
                }

        def members_kept() -> bool:
            v = c.status(new)
            return v is not None and all(m.fields["client"] == c[m.id].addr for m in v.members)

        wait_for(members_kept, 5, "the member records")
