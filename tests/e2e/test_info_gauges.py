"""End to end: every INFO field of a live primary (with a replica, AOF and a backlog holding
data) and of its replica, and the gauges that used to print a fallback 0, compared with
redis-server (7.0.15 on the test machine) in the same situation.

The situation: 100 writes replicated; a pipelined ``SET`` (5000-byte value) followed by
``INFO memory`` in one packet, so INFO runs while the AOF buffer holds the SET; one client
in ``WAIT 5 <t>`` and one in ``BLPOP key 0``. Redis reports allocations (a 16 KiB block for
the backlog, the ``aof_buf`` sds) where ackdb reports the bytes held, so the comparison is
of which gauges are non-zero, plus exact ackdb figures where they are defined.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ackdb.server.info_sources import NO_SOURCE
from conftest import REDIS_SERVER, ServerProcess, ackdb_argv, free_port, redis_argv, wait_until

pytestmark = pytest.mark.e2e

VALUE_BYTES = 5000
WAIT_TIMEOUT_MS = 1500
SYNC_TIMEOUT_S = 30.0


def _fields(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line and line[0] != "#")


def _raw(port: int, payload: bytes, until: bytes, timeout_s: float = 10.0) -> bytes:
    """Send ``payload`` in one write; read until ``until`` appears in the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(payload)
        data = b""
        deadline = time.monotonic() + timeout_s
        while until not in data and time.monotonic() < deadline:
            data += s.recv(1 << 16)
        return data


def _info(port: int, section: str) -> dict[str, str]:
    """INFO ``section`` over a fresh connection, read whole (a RESP2 bulk string)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"INFO {section}\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            data += s.recv(1 << 16)
        head, _, body = data.partition(b"\r\n")
        size = int(head[1:])
        while len(body) < size + 2:
            body += s.recv(1 << 16)
    return _fields(body[:size].decode())


def _synced(primary: int, replica: int) -> bool:
    r = _info(replica, "replication")
    p = _info(primary, "replication")
    return r.get("master_link_status") == "up" and (
        r.get("master_repl_offset") == p.get("master_repl_offset")
    )


def observe(primary: int, replica: int) -> dict[str, dict[str, str]]:
    """Drive the situation on a primary/replica pair; INFO as each step saw it."""
    wait_until(lambda: _info(replica, "replication").get("master_link_status") == "up", 30)
    cmds = b"".join(b"SET key%d value%d\r\n" % (i, i) for i in range(100))
    _raw(primary, cmds, b"+OK\r\n" * 100)
    wait_until(lambda: _synced(primary, replica), SYNC_TIMEOUT_S)
    seen = {"primary": _info(primary, "everything"), "replica": _info(replica, "everything")}
    pipelined = b"SET big " + b"v" * VALUE_BYTES + b"\r\nINFO memory\r\n"
    reply = _raw(primary, pipelined, b"mem_allocator")
    seen["pipelined"] = _fields(reply.decode(errors="replace"))
    with (
        socket.create_connection(("127.0.0.1", primary), timeout=10) as waiter,
        socket.create_connection(("127.0.0.1", primary), timeout=10) as popper,
    ):
        waiter.sendall(b"SET w 1\r\nWAIT 5 %d\r\n" % WAIT_TIMEOUT_MS)
        popper.sendall(b"BLPOP nolist 0\r\n")
        wait_until(lambda: _info(primary, "clients")["blocked_clients"] == "2", 10)
        seen["blocked"] = _info(primary, "clients")
    return seen


@contextmanager
def redis_pair(workdir: Path) -> Iterator[tuple[int, int]]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    p_port, r_port = free_port(), free_port()
    (workdir / "p").mkdir()
    (workdir / "r").mkdir()
    p = ServerProcess(
        redis_argv(p_port, "--appendonly", "yes"), p_port, workdir / "p", "redis-primary"
    )
    try:
        argv = redis_argv(r_port, "--replicaof", "127.0.0.1", str(p_port))
        r = ServerProcess(argv, r_port, workdir / "r", "redis-replica")
        try:
            yield p_port, r_port
        finally:
            r.stop()
    finally:
        p.stop()


@pytest.fixture(scope="module")
def ackdb_seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    work = tmp_path_factory.mktemp("info_sources")
    p_port, r_port = free_port(), free_port()
    (work / "p").mkdir()
    (work / "r").mkdir()
    p = ServerProcess(
        ackdb_argv(p_port, "--appendonly", "yes"), p_port, work / "p", "ackdb-primary"
    )
    try:
        argv = ackdb_argv(r_port, "--replicaof", "127.0.0.1", str(p_port))
        r = ServerProcess(argv, r_port, work / "r", "ackdb-replica")
        try:
            return observe(p_port, r_port)
        finally:
            r.stop()
    finally:
        p.stop()


@pytest.fixture(scope="module")
def redis_seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    with redis_pair(tmp_path_factory.mktemp("info_sources_redis")) as (p_port, r_port):
        return observe(p_port, r_port)


@pytest.mark.parametrize("node", ["primary", "replica"])
def test_every_field_has_a_source(ackdb_seen: dict[str, dict[str, str]], node: str) -> None:
    fields = ackdb_seen[node]
    assert len(fields) > 200
    # The fields without a source print exactly their declared value ...
    for name, (value, _why) in NO_SOURCE.items():
        assert fields[name] == str(value), (node, name)
    # ... and the typed sources are live: counters moved, gauges see the data.
    assert int(fields["total_commands_processed"]) > 0
    assert int(fields["total_connections_received"]) > 0
    assert int(fields["total_net_input_bytes"]) > 0
    assert int(fields["repl_backlog_histlen"]) > 0
    assert int(fields["mem_replication_backlog"]) >= int(fields["repl_backlog_histlen"])
    assert fields["db0"].startswith("keys=100,")


def test_primary_gauges(ackdb_seen: dict[str, dict[str, str]]) -> None:
    f = ackdb_seen["primary"]
    assert f["aof_enabled"] == "1" and f["connected_slaves"] == "1"
    backlog = int(f["mem_replication_backlog"])
    assert backlog == int(f["repl_backlog_histlen"])  # nothing trimmed yet
    replicas = int(f["mem_clients_slaves"])
    assert int(f["mem_total_replication_buffers"]) == backlog + replicas
    assert int(f["used_memory_overhead"]) >= backlog


def test_aof_buffer_while_it_holds_a_write(ackdb_seen: dict[str, dict[str, str]]) -> None:
    f = ackdb_seen["pipelined"]
    encoded = len(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % VALUE_BYTES) + VALUE_BYTES + 2
    assert int(f["mem_aof_buffer"]) == encoded
    assert int(f["mem_not_counted_for_evict"]) >= encoded


def test_clients_in_the_timeout_table(ackdb_seen: dict[str, dict[str, str]]) -> None:
    f = ackdb_seen["blocked"]
    assert f["blocked_clients"] == "2"
    assert f["clients_in_timeout_table"] == "1"  # WAIT has a timeout, BLPOP 0 has none


# The gauges compared with redis-server: (step, field) -> must it be non-zero.
NON_ZERO = {
    ("primary", "mem_replication_backlog"): True,
    ("primary", "mem_total_replication_buffers"): True,
    ("pipelined", "mem_aof_buffer"): True,
    ("pipelined", "mem_not_counted_for_evict"): True,
    ("replica", "mem_aof_buffer"): False,  # AOF off on the replica
    ("blocked", "clients_in_timeout_table"): True,
    ("blocked", "blocked_clients"): True,
    # Redis 7 counts replication traffic apart from the clients': the primary writes the
    # stream, the replica reads it; a replica's ACKs are ordinary input on the primary.
    ("primary", "total_net_repl_output_bytes"): True,
    ("primary", "total_net_repl_input_bytes"): False,
    ("replica", "total_net_repl_input_bytes"): True,
    ("replica", "total_net_repl_output_bytes"): False,
    ("primary", "total_reads_processed"): True,
    ("primary", "total_writes_processed"): True,
}


@pytest.mark.parametrize(("step", "field"), sorted(NON_ZERO))
def test_gauges_agree_with_redis(
    ackdb_seen: dict[str, dict[str, str]],
    redis_seen: dict[str, dict[str, str]],
    step: str,
    field: str,
) -> None:
    want = NON_ZERO[(step, field)]
    assert (int(redis_seen[step][field]) > 0) is want, redis_seen[step][field]
    assert (int(ackdb_seen[step][field]) > 0) is want, ackdb_seen[step][field]
    if step == "blocked":
        assert ackdb_seen[step][field] == redis_seen[step][field]


def test_event_loop_counters(ackdb_seen: dict[str, dict[str, str]]) -> None:
    """Redis 7.2's eventloop_* fields (7.0.15 has none to compare with): passes that served
    clients, their time, and the commands' share of it."""
    f = ackdb_seen["primary"]
    cycles, total = int(f["eventloop_cycles"]), int(f["eventloop_duration_sum"])
    assert cycles > 0 and total > 0
    assert 0 < int(f["eventloop_duration_cmd_sum"])
    assert int(f["total_reads_processed"]) >= cycles // 2  # most passes follow a read
