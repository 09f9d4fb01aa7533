"""A full-cluster restart keeps every committed entry: SIGKILL every member at once
(nothing flushed on the way out), start them again, read everything back -- from a
snapshot plus the log after it."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ackdb.node.localcluster import LocalCluster, wait_for
from ackdb.resp.client import BlockingClient
from ackdb.resp.replies import ReplyError

pytestmark = pytest.mark.e2e

SNAPSHOT_ENTRIES = 50


def retried(cl: BlockingClient, cmd: tuple[str, ...]) -> tuple[Any, bool]:
    """The reply of ``cmd``, sent (again) for 20 s at most while the answer is an error,
    and whether an error came first: an election under load answers -NOQUORUM /
    -TRYAGAIN, and a write not acknowledged is the client's to send again."""
    deadline = time.monotonic() + 20
    reply: Any = None
    again = False
    while (reply is None or isinstance(reply, ReplyError)) and time.monotonic() < deadline:
        try:
            reply = cl.call(*cmd)
        except ReplyError as e:
            reply = e
            again = True
            time.sleep(0.05)
    return reply, again


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
                replies = cl.pipeline(cmds)
                # An election under load answers -NOQUORUM / -TRYAGAIN: such a write is not
                # acknowledged, so it is sent again (the client's job), in order.
                for cmd, reply in zip(cmds, replies, strict=True):
                    if isinstance(reply, ReplyError):
                        reply = retried(cl, cmd)[0]
                    assert reply == b"OK", reply
                acked |= {f"k{i}": f"r{round_}-{i}".encode() for i in range(60)}
        with c.client(leader) as cl:
            for k in ("k0", "k1", "k2"):
                reply, again = retried(cl, ("META.DEL", k))
                # 0 only when an attempt that timed out (-TRYAGAIN) had applied after all
                assert reply == 1 or (again and reply == 0), reply
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
                deadline = time.monotonic() + 20
                while any(isinstance(g, ReplyError) for g in got) and time.monotonic() < deadline:
                    time.sleep(0.05)  # an election under load: read again
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
