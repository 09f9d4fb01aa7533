"""Where INFO's numbers come from: the typed sources INFO reads, the gauges it computes,
and the fields ackdb has no source for.

Owns: the shape of what INFO reads -- ``InfoCore`` (the core's plain ``int`` counters and
the structures gauges are computed from) and the protocols of the replication and
persistence shells --, the gauges computed only when INFO runs (backlog memory, AOF
buffer, client buffers, clients in the timeout table), and ``NO_SOURCE``: every field INFO
prints without a counter or gauge behind it, the value it prints and why. Never changes
anything, and adds no work to the command path: counters stay plain ``int`` attributes
bumped where the event happens; gauges are read here, when INFO runs.

The rule (STYLE.md): a number users read comes from a counter or gauge that exists. INFO
reads sources by plain attribute access, so a missing source is an error: mypy --strict
checks the real classes against these protocols (``_sources_conform``), ``check_sources``
names what a core lacks at run time, tests/unit/server/test_info_sources.py checks that
every fixed value is declared, and tests/e2e/test_info_gauges.py walks every field of a
live primary (replica, AOF, backlog) and replica. A field ackdb truly has no source for is
in ``NO_SOURCE`` with its reason, and only there; it is never a silent 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..engine.cmdlatency import CommandLatency
from ..engine.dispatch import Dispatch
from ..engine.tracking import TRACKER
from ..persistence.aof import AofWriter
from ..replication.backlog import Backlog
from ..replication.engine import Replication

if TYPE_CHECKING:
    from ..engine.core import Server
    from .loading import Loader
    from .persist import Persistence
    from .replication import ReplicationShell

Fields = list[tuple[str, Any]]


@runtime_checkable
class InfoCore(Protocol):
    """What INFO reads from the server core (read-only here). Counters are plain ints the
    core bumps where the event happens; ``stat_commands`` sums the command table."""

    @property
    def config(self) -> Any: ...

    @property
    def pid(self) -> int: ...

    @property
    def run_id(self) -> str: ...

    @property
    def start_time_s(self) -> float: ...

    @property
    def replid(self) -> str: ...

    @property
    def replid2(self) -> str: ...

    @property
    def second_repl_offset(self) -> int: ...

    @property
    def dirty(self) -> int: ...

    @property
    def error_stats(self) -> Mapping[str, int]: ...

    @property
    def clients(self) -> Mapping[int, Any]: ...

    @property
    def dbs(self) -> Sequence[Any]: ...

    @property
    def blocking(self) -> Any: ...

    @property
    def tracking(self) -> Any: ...

    @property
    def pubsub(self) -> Any: ...

    @property
    def repl(self) -> Any: ...  # ReplicationSource | None

    @property
    def persist(self) -> Any: ...  # PersistenceSource | None

    @property
    def loader(self) -> Any: ...  # LoaderSource | None; set while loading

    @property
    def loading(self) -> bool: ...

    @property
    def master_repl_offset(self) -> int: ...

    # INFO stats counters.

    @property
    def stat_connections(self) -> int: ...

    @property
    def stat_rejected_conn(self) -> int: ...

    @property
    def stat_net_input(self) -> int: ...

    @property
    def stat_net_output(self) -> int: ...

    @property
    def stat_expired_keys(self) -> int: ...

    @property
    def stat_expire_cycle_ms(self) -> int: ...

    @property
    def stat_keyspace_hits(self) -> int: ...

    @property
    def stat_keyspace_misses(self) -> int: ...

    @property
    def stat_total_errors(self) -> int: ...

    @property
    def stat_unexpected_errors(self) -> int: ...

    @property
    def stat_latest_fork_usec(self) -> int: ...

    @property
    def stat_total_forks(self) -> int: ...

    @property
    def stat_commands(self) -> int: ...

    @property
    def dispatch(self) -> Dispatch: ...  # this engine's command entries and call counters

    @property
    def cmd_latency(self) -> CommandLatency: ...  # their latency histograms' view

    @property
    def stat_net_repl_input(self) -> int: ...

    @property
    def stat_net_repl_output(self) -> int: ...

    @property
    def stat_reads_processed(self) -> int: ...

    @property
    def stat_writes_processed(self) -> int: ...

    @property
    def stat_eventloop_cycles(self) -> int: ...

    @property
    def stat_eventloop_duration_us(self) -> int: ...

    @property
    def stat_busy_poll_us(self) -> int: ...

    @property
    def stat_busy_poll_hits(self) -> int: ...

    @property
    def stat_command_us(self) -> int: ...

    @property
    def stat_auth_denied(self) -> int: ...

    @property
    def stat_acl_denied_cmd(self) -> int: ...

    @property
    def stat_acl_denied_key(self) -> int: ...

    @property
    def stat_acl_denied_channel(self) -> int: ...

    @property
    def stat_expired_time_cap_reached(self) -> int: ...

    def instantaneous(self, which: str) -> float: ...

    def recent_cycle_us(self) -> int: ...

    def now_ms(self) -> int: ...


@runtime_checkable
class ReplicationSource(Protocol):
    """The replication shell (``server.replication.ReplicationShell``) as INFO reads it."""

    engine: Replication

    def info_fields(self) -> list[tuple[str, Any]]: ...


@runtime_checkable
class PersistenceSource(Protocol):
    """The persistence shell (``server.persist.Persistence``) as INFO reads it."""

    aof: AofWriter | None

    def info_fields(self) -> list[tuple[str, Any]]: ...


@runtime_checkable
class LoaderSource(Protocol):
    """The loader while a dataset loads (``server.loading.Loader``)."""

    def info_fields(self) -> list[tuple[str, Any]]: ...


def check_sources(srv: Any) -> None:
    """Raise ``TypeError`` naming what is missing when ``srv`` (or a shell it holds) lacks
    a source INFO reads, or a counter is not an int."""
    _check(srv, InfoCore, "core")
    for name in vars(InfoCore):
        if name.startswith("stat_") and type(getattr(srv, name)) is not int:
            raise TypeError(f"INFO source core.{name} is not an int counter")
    if srv.repl is not None:
        _check(srv.repl, ReplicationSource, "replication shell")
    if srv.persist is not None:
        _check(srv.persist, PersistenceSource, "persistence shell")
    if srv.loader is not None:
        _check(srv.loader, LoaderSource, "loader")


def _check(obj: object, proto: type, what: str) -> None:
    members = [n for n in vars(proto).get("__annotations__", {})]
    members += [n for n, v in vars(proto).items() if callable(v) or isinstance(v, property)]
    missing = sorted(n for n in members if not n.startswith("_") and not hasattr(obj, n))
    if missing:
        raise TypeError(f"INFO sources missing on the {what}: {', '.join(missing)}")


if TYPE_CHECKING:

    def _sources_conform(
        core: Server, repl: ReplicationShell, persist: Persistence, loader: Loader
    ) -> tuple[InfoCore, ReplicationSource, PersistenceSource, LoaderSource]:
        """mypy --strict proves the real classes provide every source INFO reads."""
        return core, repl, persist, loader


# -- gauges (computed when INFO runs) --------------------------------------------------------


def backlog_of(srv: InfoCore) -> Backlog | None:
    """The replication backlog, when there is one (a core without replication has none)."""
    repl: ReplicationSource | None = srv.repl
    return None if repl is None else repl.engine.state.backlog


def backlog_bytes(srv: InfoCore) -> int:
    """mem_replication_backlog: the stream bytes the backlog holds in memory (Redis counts
    its blocks); 0 when no backlog exists."""
    b = backlog_of(srv)
    return 0 if b is None else b.held_bytes


def aof_buffer_bytes(srv: InfoCore) -> int:
    """mem_aof_buffer: bytes of effects buffered for the AOF and not yet written (Redis
    reports the allocation of ``aof_buf``); 0 when AOF is off."""
    p: PersistenceSource | None = srv.persist
    aof = None if p is None else p.aof
    return 0 if aof is None else aof.buf_bytes


def client_buffer_bytes(srv: InfoCore) -> tuple[int, int]:
    """(normal clients', replicas') output plus pending input bytes."""
    normal = replicas = 0
    for c in srv.clients.values():
        size = c.conn.buffer_size() + c.reader.pending_bytes()
        if c.kind == "replica":
            replicas += size
        else:
            normal += size
    return normal, replicas


def clients_in_timeout_table(srv: InfoCore) -> int:
    """Blocked clients with a deadline: on keys (BLPOP ... t > 0) or in WAIT / WAITAOF with
    a timeout (Redis's ``clients_timeout_table``)."""
    on_keys = sum(1 for c in srv.blocking.blocked if c.block_deadline_ms)
    repl: ReplicationSource | None = srv.repl
    waiting = 0 if repl is None else repl.engine.waiters.count_with_deadline()
    return on_keys + waiting


def watched_keys(srv: Any) -> int:
    """total_watched_keys: keys some client WATCHes (CLIENT TRACKING's marks, which share
    the WATCH maps, are not counted)."""
    return sum(
        1
        for db in srv.dbs
        for watchers in db.watched.values()
        if len(watchers) > (TRACKER in watchers)
    )


# -- fields without a source ------------------------------------------------------------------

_NO_LUA = "ackdb has no Lua scripting or functions"
_NO_DEFRAG = "ackdb has no active defragmentation"
_NO_IO_THREADS = "ackdb has no I/O threads"
_NO_COW = "the copy-on-write size of a child is not measured"
_NO_MODULES = "ackdb has no modules"
_NO_EVICTION = "ackdb does not evict keys (maxmemory is not enforced)"

# field -> (the value INFO prints, why there is no source). The only fields allowed to
# print a fixed value; tests check each prints exactly this.
NO_SOURCE: dict[str, tuple[Any, str]] = {
    # Server
    "io_threads_active": (0, _NO_IO_THREADS),
    # Clients
    "cluster_connections": (0, "ackdb has no Redis Cluster bus"),
    # Redis 7.2: keys whose waiters want waking when the key is deleted -- XREADGROUP only.
    "total_blocking_keys_on_nokey": (0, "ackdb has no streams (XREADGROUP)"),
    # Memory
    "used_memory_lua": (0, _NO_LUA),
    "used_memory_vm_eval": (0, _NO_LUA),
    "used_memory_lua_human": ("0B", _NO_LUA),
    "used_memory_scripts_eval": (0, _NO_LUA),
    "number_of_cached_scripts": (0, _NO_LUA),
    "number_of_functions": (0, _NO_LUA),
    "number_of_libraries": (0, _NO_LUA),
    "used_memory_vm_functions": (0, _NO_LUA),
    "used_memory_vm_total": (0, _NO_LUA),
    "used_memory_vm_total_human": ("0B", _NO_LUA),
    "used_memory_functions": (0, _NO_LUA),
    "used_memory_scripts": (0, _NO_LUA),
    "used_memory_scripts_human": ("0B", _NO_LUA),
    **{
        f"{p}_{s}": (v, "used_memory is the RSS: every ratio between allocator layers is 1")
        for p in ("allocator_frag", "allocator_rss", "rss_overhead", "mem_fragmentation")
        for s, v in (("ratio", "1.00"), ("bytes", 0))
    },
    "mem_cluster_links": (0, "ackdb has no Redis Cluster bus"),
    "active_defrag_running": (0, _NO_DEFRAG),
    "lazyfree_pending_objects": (0, "ackdb frees values at once (no lazyfree thread)"),
    "lazyfreed_objects": (0, "ackdb frees values at once (no lazyfree thread)"),
    # Persistence
    "async_loading": (0, "ackdb has no asynchronous loading (repl-diskless-load swapdb)"),
    "current_cow_peak": (0, _NO_COW),
    "current_cow_size": (0, _NO_COW),
    "current_cow_size_age": (0, _NO_COW),
    "current_fork_perc": ("0.00", "a child's progress is reported in current_save_keys_*"),
    "rdb_last_cow_size": (0, _NO_COW),
    "aof_last_cow_size": (0, _NO_COW),
    "module_fork_in_progress": (0, _NO_MODULES),
    "module_fork_last_cow_size": (0, _NO_MODULES),
    # Stats
    "expired_stale_perc": (
        "0.00",
        "expiry runs earliest-first, not by sampling: there is no stale share to estimate",
    ),
    "evicted_keys": (0, _NO_EVICTION),
    "evicted_clients": (0, "ackdb has no maxmemory-clients"),
    "total_eviction_exceeded_time": (0, _NO_EVICTION),
    "current_eviction_exceeded_time": (0, _NO_EVICTION),
    "migrate_cached_sockets": (0, "ackdb has no MIGRATE"),
    "slave_expires_tracked_keys": (0, "ackdb does not track TTL keys written on a replica"),
    "active_defrag_hits": (0, _NO_DEFRAG),
    "active_defrag_misses": (0, _NO_DEFRAG),
    "active_defrag_key_hits": (0, _NO_DEFRAG),
    "active_defrag_key_misses": (0, _NO_DEFRAG),
    "total_active_defrag_time": (0, _NO_DEFRAG),
    "current_active_defrag_time": (0, _NO_DEFRAG),
    "dump_payload_sanitizations": (0, "ackdb has no RESTORE (sanitize-dump-payload)"),
    "io_threaded_reads_processed": (0, _NO_IO_THREADS),
    "io_threaded_writes_processed": (0, _NO_IO_THREADS),
    "reply_buffer_shrinks": (0, "replies go to the transport's buffer: nothing is resized"),
    "reply_buffer_expands": (0, "replies go to the transport's buffer: nothing is resized"),
    # Cluster
    "cluster_enabled": (0, "ackdb server is never a Redis Cluster node"),
}


def no_source(names: str) -> Fields:
    """The listed fields, each with its ``NO_SOURCE`` value (KeyError if not listed)."""
    return [(name, NO_SOURCE[name][0]) for name in names.split()]
