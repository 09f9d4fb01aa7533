"""The stream a primary holds for a replica during its full sync is bounded.

While the forked child writes the snapshot, the writes made meanwhile wait for that
replica; they count against the replica class's ``client-output-buffer-limit`` (as in
Redis, where they sit in the replica's output buffer). Proves: past the hard limit the
replica is dropped with Redis's log line instead of the primary's memory growing, and it
syncs again once the primary can keep up.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import ServerProcess, wait_until
from tests.e2e.repl_support import client, link_up, wait_caught_up


def test_stream_held_during_a_full_sync_is_bounded(
    start_ackdb: Callable[..., ServerProcess],
) -> None:
    primary = start_ackdb(
        "--client-output-buffer-limit", "replica 256kb 0 0", "--rdb-key-save-delay", "2000"
    )
    pc = client(primary.port)
    pc.execute_command("DEBUG", "POPULATE", "1000")  # the child needs about 2 s
    replica = start_ackdb("--replicaof", "127.0.0.1", str(primary.port))
    wait_until(lambda: "Starting a full sync" in primary.log(), 10)
    value = b"x" * 1000
    pipe = pc.pipeline(transaction=False)
    for i in range(1000):  # about 1 MB of stream while the snapshot is written
        pipe.set(f"w{i}", value)
    pipe.execute()
    wait_until(lambda: "overcoming of output buffer limits" in primary.log(), 10)
    assert primary.proc.poll() is None
    # Without the delay the next full sync finishes, and nothing is missing.
    pc.config_set("rdb-key-save-delay", 0)
    rc = client(replica.port)
    wait_until(lambda: link_up(rc), 30)
    wait_caught_up(pc, rc)
    assert rc.dbsize() == pc.dbsize() == 2000
