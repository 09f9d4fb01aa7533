"""INFO replication and ROLE, assembled from the cores' state.

Owns: the field order and formats of INFO's replication section and of ROLE's reply
(notes: "INFO replication, in order", "ROLE"). Never changes any state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .replica import CONNECTED, SYNC, ReplicaLink

if TYPE_CHECKING:
    from .engine import Replication


def link_info(link: ReplicaLink, now_ms: int) -> list[tuple[str, str]]:
    """A replica's lines, master_host .. [master_link_down_since_seconds]."""
    up = link.state == CONNECTED
    idle_s = (now_ms - link.last_io_ms) // 1000
    processed = link.repl.master_repl_offset if link.can_psync or up else 0
    fields = [
        ("master_host", link.host or ""),
        ("master_port", str(link.port)),
        ("master_link_status", "up" if up else "down"),
        ("master_last_io_seconds_ago", str(idle_s) if up else "-1"),
        ("master_sync_in_progress", "1" if link.state == SYNC else "0"),
        ("slave_read_repl_offset", str(link.read_offset if up else processed)),
        ("slave_repl_offset", str(processed)),
    ]
    if link.state == SYNC and link.transfer is not None:
        fields += link.transfer.info_fields(idle_s)
    if not up:
        since = link.link_down_since_ms
        down_s = (now_ms - since) // 1000 if since is not None else -1
        fields.append(("master_link_down_since_seconds", str(down_s)))
    return fields


def replication_info(
    e: Replication,
    now_ms: int,
    *,
    replica_priority: int,
    read_only: bool,
    announced: bool,
    mono_ms: int = 0,
) -> list[tuple[str, str]]:
    fields = [("role", "master" if e.is_primary else "slave")]
    if not e.is_primary:
        fields += link_info(e.link, now_ms)
        fields += [
            ("slave_priority", str(replica_priority)),
            ("slave_read_only", "1" if read_only else "0"),
            ("replica_announced", "1" if announced else "0"),
        ]
    fields += e.table.info_fields(now_ms)
    fields.append(("master_failover_state", e.failover.state))
    return fields + e.state.info_fields() + fencing_info(e, mono_ms)


def fencing_info(e: Replication, mono_ms: int) -> list[tuple[str, str]]:
    """ackdb's lines (docs/fencing.md), last: only once fencing is in use (ackdb-lease
    yes, or an ACKDB.LEASE / FREEZE was taken), so a plain server's INFO is Redis's."""
    f = e.fencing
    if not (f.enabled or f.epoch or f.frozen or f.deadline_ms):
        return []
    valid = e.is_primary and not f.fenced(mono_ms)
    return [
        ("ackdb_lease", "on" if f.enabled else "off"),
        ("ackdb_lease_valid", "1" if valid else "0"),
        ("ackdb_lease_remaining_ms", str(f.remaining_ms(mono_ms) if valid else 0)),
        ("ackdb_epoch", str(f.epoch)),
        ("ackdb_frozen", "1" if f.frozen else "0"),
    ]


def _bulk(b: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(b), b)


def role_reply(e: Replication) -> bytes:
    """notes: ["master", offset, [[ip, "port", "ackoffset"], ...]] (online replicas only)
    or ["slave", host, port(int), state, offset] (offset -1 while the link is down)."""
    if e.is_primary:
        entries = e.table.role_entries()
        out = [b"*3\r\n$6\r\nmaster\r\n:%d\r\n*%d\r\n" % (e.state.master_repl_offset, len(entries))]
        for ip, port, ack in entries:
            out.append(b"*3\r\n" + b"".join(_bulk(x.encode()) for x in (ip, port, ack)))
        return b"".join(out)
    link = e.link
    return (
        b"*5\r\n$5\r\nslave\r\n"
        + _bulk((link.host or "").encode())
        + b":%d\r\n" % link.port
        + _bulk(link.state.encode())
        + b":%d\r\n" % link.role_offset()
    )
