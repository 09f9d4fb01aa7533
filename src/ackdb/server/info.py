"""The text of INFO: its sections, their fields in Redis 7.2's order, and their values.

Owns: which sections an INFO call selects (``default``, ``all``, ``everything``, several
names at once as in Redis 7.0+), the field names and order of each section as redis-server
7.2 prints them, and where each value comes from. Reads the core's counters and the
process's own figures (/proc, ``getrusage``); never changes anything except the memory
peak that CONFIG RESETSTAT resets.

Facts followed (redis-server 7.2 INFO output; checked against 7.0.15 where they agree):
lines end in CRLF, sections are separated by one empty line, a section always prints its
``# Title`` line even when empty, sections come in a fixed order whatever the order of the
arguments, unknown section names select nothing (an empty reply), and names are matched
case-insensitively. ``default`` is every section but commandstats and latencystats; ``all``
adds those two; ``everything`` also adds module sections (ackdb has no modules).

Deliberate differences, each for a reason:
- ``ackdb_version`` follows ``redis_version`` in ``# Server`` (``redis_version`` is
  ``ackdb.REDIS_COMPAT_VERSION``, what clients test features against).
- ``# Clients`` also has ``pubsub_clients``, ``watching_clients`` and ``total_watched_keys``
  (Redis 7.4 fields, in 7.4's positions): cheap, true, and asked for by tools.
- Memory: Python's allocator has no cheap count of live bytes (``tracemalloc`` slows every
  allocation), so ``used_memory`` is the resident set size (VmRSS), ``used_memory_peak`` the
  kernel's peak RSS (VmHWM), ``used_memory_startup`` the RSS when this module was imported
  (the interpreter and ackdb's code, before any data), and ``used_memory_dataset`` the
  difference. The jemalloc figures therefore show ratios of 1.00. Python rarely returns
  freed memory to the system, so ``used_memory`` does not shrink after deletes as Redis's
  does. ``mem_allocator`` is ``pymalloc``.
- Every value comes from a typed source (``info_sources``): the core's ``int`` counters,
  gauges computed here, or the replication and persistence shells. Fields ackdb has no
  source for (Lua, tracking, eviction, ACL, defrag, uncounted traffic) print the value
  ``info_sources.NO_SOURCE`` lists for them, with its reason -- never a fallback 0.
- ``mem_replication_backlog`` is the backlog's held bytes and ``mem_aof_buffer`` the AOF
  buffer's pending bytes; Redis reports their allocations (one 16 KiB block at least, the
  ``aof_buf`` sds), so ackdb's figures are smaller and are 0 when nothing is held. A
  replica's output buffer is its own memory here (Redis 7 shares the backlog's blocks), so
  ``mem_total_replication_buffers`` is the backlog plus the replicas' buffers.
- ``# Latencystats`` prints its title only: the core keeps no latency histograms yet.
"""

from __future__ import annotations

import hashlib
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from .. import REDIS_COMPAT_VERSION, __version__
from ..engine.cmdlatency import percentile_label
from . import info_sources as src
from .info_sources import InfoCore, no_source

Fields = list[tuple[str, Any]]

# Section name -> its title; the order of this table is the order of the output.
SECTION_TITLES: dict[str, str] = {
    "server": "Server",
    "clients": "Clients",
    "memory": "Memory",
    "persistence": "Persistence",
    "stats": "Stats",
    "replication": "Replication",
    "cpu": "CPU",
    "modules": "Modules",
    "commandstats": "Commandstats",
    "errorstats": "Errorstats",
    "latencystats": "Latencystats",
    "cluster": "Cluster",
    "keyspace": "Keyspace",
}
DEFAULT_SECTIONS = frozenset(SECTION_TITLES) - {"commandstats", "latencystats"}
ALL_SECTIONS = frozenset(SECTION_TITLES)
# Redis prints the module list under "module_list"; "modules" adds module-made sections.
_ALIASES = {"module_list": "modules"}
# Keys sampled per database to estimate avg_ttl when the keyspace does not track it.
AVG_TTL_SAMPLE_KEYS = 64


def select_sections(args: Iterable[bytes]) -> set[str]:
    """The sections INFO prints for these arguments (none: ``default``)."""
    chosen: set[str] = set()
    empty = True
    for raw in args:
        empty = False
        name = raw.decode("utf-8", "replace").lower()
        if name == "default":
            chosen |= DEFAULT_SECTIONS
        elif name in ("all", "everything"):
            chosen |= ALL_SECTIONS
        elif name in SECTION_TITLES or name in _ALIASES:
            chosen.add(_ALIASES.get(name, name))
    return set(DEFAULT_SECTIONS) if empty else chosen


def info_text(core: Any, args: Iterable[bytes]) -> str:
    """The whole INFO reply text for the arguments after ``INFO``; ``core`` provides every
    source of ``InfoCore`` (a missing one raises AttributeError, see ``info_sources``)."""
    srv: InfoCore = core
    sections = select_sections(args)
    blocks = []
    for name, title in SECTION_TITLES.items():
        if name in sections:
            lines = [f"# {title}"]
            lines += [f"{k}:{v}" for k, v in _SECTIONS[name](srv)]
            blocks.append("".join(line + "\r\n" for line in lines))
    return "\r\n".join(blocks)


# -- helpers --------------------------------------------------------------------------


def bytes_to_human(n: int) -> str:
    """Redis bytesToHuman: 1023B, 1.00K, 895.04M ... (powers of 1024)."""
    if n < 1024:
        return f"{n}B"
    value = float(n)
    for unit in "KMGT":
        value /= 1024
        if value < 1024:
            return f"{value:.2f}{unit}"
    return f"{value / 1024:.2f}P"


def rss_and_peak_bytes() -> tuple[int, int]:
    """(resident set size, its peak) of this process: VmRSS and VmHWM on Linux."""
    found: dict[bytes, int] = {}
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith((b"VmRSS:", b"VmHWM:")):
                    found[line[:5]] = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if len(found) == 2:
        return found[b"VmRSS"], max(found[b"VmRSS"], found[b"VmHWM"])
    # Elsewhere getrusage only knows the peak: the best figure there is for both.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak *= 1 if sys.platform == "darwin" else 1024
    return peak, peak


def reset_memory_peak() -> None:
    """CONFIG RESETSTAT: Linux resets VmHWM when "5" is written to clear_refs."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


STARTUP_RSS_BYTES = rss_and_peak_bytes()[0]


def _total_system_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return 0


# -- sections -------------------------------------------------------------------------


def _server(srv: InfoCore) -> Fields:
    cfg = srv.config
    uname = platform.uname()
    now_us = time.time_ns() // 1000
    uptime_s = max(0, int(now_us / 1e6 - srv.start_time_s))
    compiler = platform.python_compiler()
    gcc = compiler.split()[1] if compiler.startswith("GCC ") else "0.0.0"
    build_id = hashlib.sha1(f"ackdb {__version__}".encode()).hexdigest()[:15]
    fields: Fields = [
        ("redis_version", REDIS_COMPAT_VERSION),
        ("ackdb_version", __version__),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", build_id),
        ("redis_mode", "standalone"),
        ("os", f"{uname.system} {uname.release} {uname.machine}"),
        ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
        ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "kqueue" if sys.platform == "darwin" else "epoll"),
        ("atomicvar_api", "python-gil"),
        ("gcc_version", gcc),
        ("process_id", srv.pid),
        ("process_supervised", "no"),
        ("run_id", srv.run_id),
        ("tcp_port", cfg.get("port")),
        ("server_time_usec", now_us),
        ("uptime_in_seconds", uptime_s),
        ("uptime_in_days", uptime_s // 86400),
        ("hz", cfg.get("hz")),
        ("configured_hz", cfg.get("hz")),
        ("lru_clock", (now_us // 1_000_000) & ((1 << 24) - 1)),
        ("executable", os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""),
        ("config_file", cfg.config_file or ""),
        *no_source("io_threads_active"),
    ]
    if cfg.get("port"):
        binds = ",".join(f"bind={b}" for b in cfg.get("bind"))
        fields.append(("listener0", f"name=tcp,{binds},port={cfg.get('port')}"))
    if cfg.get("unixsocket"):
        fields.append(("listener1", f"name=unix,bind={cfg.get('unixsocket')}"))
    return fields


def _clients(srv: InfoCore) -> Fields:
    clients = list(srv.clients.values())
    normal = [c for c in clients if c.kind != "replica"]
    max_in = max((c.reader.pending_bytes() for c in clients), default=0)
    max_out = max((c.conn.buffer_size() for c in clients), default=0)
    return [
        ("connected_clients", len(normal)),
        *no_source("cluster_connections"),
        ("maxclients", srv.config.get("maxclients")),
        ("client_recent_max_input_buffer", max_in),
        ("client_recent_max_output_buffer", max_out),
        ("blocked_clients", len(srv.blocking)),
        ("tracking_clients", srv.tracking.clients),
        ("pubsub_clients", sum(1 for c in clients if c.subscriptions)),
        ("watching_clients", sum(1 for c in clients if c.watched)),
        ("clients_in_timeout_table", src.clients_in_timeout_table(srv)),
        ("total_watched_keys", src.watched_keys(srv)),
        ("total_blocking_keys", srv.blocking.keys_count()),
        *no_source("total_blocking_keys_on_nokey"),
    ]


def _memory(srv: InfoCore) -> Fields:
    cfg = srv.config
    used, peak = rss_and_peak_bytes()
    startup = min(STARTUP_RSS_BYTES, used)
    normal_bufs, replica_bufs = src.client_buffer_bytes(srv)
    backlog = src.backlog_bytes(srv)
    aof_buffer = src.aof_buffer_bytes(srv)
    overhead = min(used, startup + normal_bufs + replica_bufs + backlog + aof_buffer)
    dataset = used - overhead
    total_mem = _total_system_memory()
    maxmemory = cfg.get("maxmemory")
    return [
        ("used_memory", used),
        ("used_memory_human", bytes_to_human(used)),
        ("used_memory_rss", used),
        ("used_memory_rss_human", bytes_to_human(used)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", bytes_to_human(peak)),
        ("used_memory_peak_perc", f"{used * 100 / peak:.2f}%" if peak else "0.00%"),
        ("used_memory_overhead", overhead),
        ("used_memory_startup", startup),
        ("used_memory_dataset", dataset),
        ("used_memory_dataset_perc", f"{dataset * 100 / max(1, used - startup):.2f}%"),
        ("allocator_allocated", used),
        ("allocator_active", used),
        ("allocator_resident", used),
        ("total_system_memory", total_mem),
        ("total_system_memory_human", bytes_to_human(total_mem)),
        *_scripting_memory(srv),
        ("maxmemory", maxmemory),
        ("maxmemory_human", bytes_to_human(maxmemory)),
        ("maxmemory_policy", cfg.get("maxmemory-policy")),
        *_ratio_and_bytes("allocator_frag allocator_rss rss_overhead mem_fragmentation"),
        # Redis: the AOF buffer and the replicas' buffers beyond the backlog.
        ("mem_not_counted_for_evict", aof_buffer + replica_bufs),
        ("mem_replication_backlog", backlog),
        ("mem_total_replication_buffers", backlog + replica_bufs),
        ("mem_clients_slaves", replica_bufs),
        ("mem_clients_normal", normal_bufs),
        *no_source("mem_cluster_links"),
        ("mem_aof_buffer", aof_buffer),
        ("mem_allocator", "pymalloc"),
        *no_source("active_defrag_running lazyfree_pending_objects lazyfreed_objects"),
    ]


def _ratio_and_bytes(prefixes: str) -> Fields:
    # used_memory is the RSS itself, so every ratio between allocator layers is 1.
    return no_source(" ".join(f"{p}_ratio {p}_bytes" for p in prefixes.split()))


def _scripting_memory(srv: InfoCore) -> Fields:
    return no_source(
        "used_memory_lua used_memory_vm_eval used_memory_lua_human used_memory_scripts_eval "
        "number_of_cached_scripts number_of_functions number_of_libraries "
        "used_memory_vm_functions used_memory_vm_total used_memory_vm_total_human "
        "used_memory_functions used_memory_scripts used_memory_scripts_human"
    )


def _persistence(srv: InfoCore) -> Fields:
    head: Fields = [
        ("loading", int(bool(srv.loading))),
        *no_source("async_loading current_cow_peak current_cow_size current_cow_size_age"),
        *no_source("current_fork_perc"),
    ]
    p: src.PersistenceSource | None = srv.persist
    if p is None:
        return head + _without_persistence(srv)
    fields: Fields = head + p.info_fields()
    loader: src.LoaderSource | None = srv.loader
    if srv.loading and loader is not None:
        fields += loader.info_fields()
    return fields


def _without_persistence(srv: InfoCore) -> Fields:
    """A core with no persistence shell (unit tests): true figures of a server that never
    saved, never loaded and has AOF off."""

    def never(names: str, value: int = 0) -> Fields:
        return [(name, value) for name in names.split()]

    return [
        *never("current_save_keys_processed current_save_keys_total"),
        ("rdb_changes_since_last_save", srv.dirty),
        ("rdb_bgsave_in_progress", 0),
        ("rdb_last_save_time", int(srv.start_time_s)),
        ("rdb_last_bgsave_status", "ok"),
        *never("rdb_last_bgsave_time_sec rdb_current_bgsave_time_sec", -1),
        ("rdb_saves", 0),
        *no_source("rdb_last_cow_size"),
        *never("rdb_last_load_keys_expired rdb_last_load_keys_loaded"),
        *never("aof_enabled aof_rewrite_in_progress aof_rewrite_scheduled"),
        *never("aof_last_rewrite_time_sec aof_current_rewrite_time_sec", -1),
        ("aof_last_bgrewrite_status", "ok"),
        *never("aof_rewrites aof_rewrites_consecutive_failures"),
        ("aof_last_write_status", "ok"),
        *no_source("aof_last_cow_size module_fork_in_progress module_fork_last_cow_size"),
    ]


def _stats(srv: InfoCore) -> Fields:
    s = srv
    return [
        ("total_connections_received", s.stat_connections),
        ("total_commands_processed", s.stat_commands),
        ("instantaneous_ops_per_sec", int(s.instantaneous("ops"))),
        ("total_net_input_bytes", s.stat_net_input),
        ("total_net_output_bytes", s.stat_net_output),
        ("total_net_repl_input_bytes", s.stat_net_repl_input),
        ("total_net_repl_output_bytes", s.stat_net_repl_output),
        ("instantaneous_input_kbps", f"{s.instantaneous('in') / 1024:.2f}"),
        ("instantaneous_output_kbps", f"{s.instantaneous('out') / 1024:.2f}"),
        ("instantaneous_input_repl_kbps", f"{s.instantaneous('repl_in') / 1024:.2f}"),
        ("instantaneous_output_repl_kbps", f"{s.instantaneous('repl_out') / 1024:.2f}"),
        ("rejected_connections", s.stat_rejected_conn),
        *_sync_stats(s),
        ("expired_keys", s.stat_expired_keys),
        *no_source("expired_stale_perc"),
        ("expired_time_cap_reached_count", s.stat_expired_time_cap_reached),
        ("expire_cycle_cpu_milliseconds", s.stat_expire_cycle_ms),
        *no_source(
            "evicted_keys evicted_clients total_eviction_exceeded_time "
            "current_eviction_exceeded_time"
        ),
        ("keyspace_hits", s.stat_keyspace_hits),
        ("keyspace_misses", s.stat_keyspace_misses),
        ("pubsub_channels", len(s.pubsub.channels)),
        ("pubsub_patterns", s.pubsub.numpat()),
        ("pubsubshard_channels", len(s.pubsub.shard_channels)),
        *_stats_tail(s),
    ]


def _sync_stats(s: InfoCore) -> Fields:
    r: src.ReplicationSource | None = s.repl
    if r is None:  # a core without replication (unit tests): no replica ever synced
        return [("sync_full", 0), ("sync_partial_ok", 0), ("sync_partial_err", 0)]
    st = r.engine.table.stats
    return [
        ("sync_full", st.sync_full),
        ("sync_partial_ok", st.sync_partial_ok),
        ("sync_partial_err", st.sync_partial_err),
    ]


def _stats_tail(s: InfoCore) -> Fields:
    return [
        ("latest_fork_usec", s.stat_latest_fork_usec),
        ("total_forks", s.stat_total_forks),
        *no_source(
            "migrate_cached_sockets slave_expires_tracked_keys "
            "active_defrag_hits active_defrag_misses active_defrag_key_hits "
            "active_defrag_key_misses total_active_defrag_time current_active_defrag_time"
        ),
        ("tracking_total_keys", len(s.tracking.table)),
        ("tracking_total_items", s.tracking.items),
        ("tracking_total_prefixes", len(s.tracking.prefixes)),
        ("unexpected_error_replies", s.stat_unexpected_errors),
        ("total_error_replies", s.stat_total_errors),
        *no_source("dump_payload_sanitizations"),
        ("total_reads_processed", s.stat_reads_processed),
        ("total_writes_processed", s.stat_writes_processed),
        *no_source(
            "io_threaded_reads_processed io_threaded_writes_processed reply_buffer_shrinks "
            "reply_buffer_expands"
        ),
        ("eventloop_cycles", s.stat_eventloop_cycles),
        ("eventloop_duration_sum", s.stat_eventloop_duration_us),
        ("eventloop_duration_cmd_sum", s.stat_command_us),
        # ackdb: the busy polls at the end of passes (docs/performance.md, fifth pass).
        ("eventloop_busy_poll_sum", s.stat_busy_poll_us),
        ("eventloop_busy_poll_hits", s.stat_busy_poll_hits),
        ("instantaneous_eventloop_cycles_per_sec", int(s.instantaneous("cycles"))),
        ("instantaneous_eventloop_duration_usec", s.recent_cycle_us()),
        ("acl_access_denied_auth", s.stat_auth_denied),
        ("acl_access_denied_cmd", s.stat_acl_denied_cmd),
        ("acl_access_denied_key", s.stat_acl_denied_key),
        ("acl_access_denied_channel", s.stat_acl_denied_channel),
    ]


def _replication(srv: InfoCore) -> Fields:
    r: src.ReplicationSource | None = srv.repl
    if r is not None:
        return list(r.info_fields())
    # A core without replication (unit tests): a primary without a backlog.
    replicas = sum(1 for c in srv.clients.values() if c.kind == "replica")
    return [
        ("role", "master"),
        ("connected_slaves", replicas),
        ("master_failover_state", "no-failover"),
        ("master_replid", srv.replid),
        ("master_replid2", srv.replid2),
        ("master_repl_offset", srv.master_repl_offset),
        ("second_repl_offset", srv.second_repl_offset),
        ("repl_backlog_active", 0),
        ("repl_backlog_size", srv.config.get("repl-backlog-size")),
        ("repl_backlog_first_byte_offset", 0),
        ("repl_backlog_histlen", 0),
    ]


def _cpu(srv: InfoCore) -> Fields:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    # INFO runs on the event loop's thread, which is the main thread.
    who = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    main = resource.getrusage(who)
    return [
        ("used_cpu_sys", f"{me.ru_stime:.6f}"),
        ("used_cpu_user", f"{me.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{kids.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{kids.ru_utime:.6f}"),
        ("used_cpu_sys_main_thread", f"{main.ru_stime:.6f}"),
        ("used_cpu_user_main_thread", f"{main.ru_utime:.6f}"),
    ]


def _commandstats(srv: InfoCore) -> Fields:
    # The engine's own counters (each engine counts its calls; see engine.dispatch).
    out: Fields = []
    for cmd in srv.dispatch.every():
        if not (cmd.calls or cmd.rejected_calls or cmd.failed_calls):
            continue
        per_call = cmd.usec / cmd.calls if cmd.calls else 0.0
        out.append(
            (
                f"cmdstat_{cmd.name}",
                f"calls={cmd.calls},usec={cmd.usec},usec_per_call={per_call:.2f},"
                f"rejected_calls={cmd.rejected_calls},failed_calls={cmd.failed_calls}",
            )
        )
    return out


def _latencystats(srv: InfoCore) -> Fields:
    # Redis 7: one line per command with a histogram, at the configured percentiles;
    # nothing while latency-tracking is off.
    if not srv.config.get("latency-tracking"):
        return []
    percentiles = srv.config.get("latency-tracking-info-percentiles")
    tracker = srv.cmd_latency
    out: Fields = []
    for cmd in srv.dispatch.every():
        hist = tracker.shown(cmd)
        if hist is None:
            continue
        values = ",".join(
            f"{percentile_label(p)}={tracker.percentile_us(hist, p):.3f}" for p in percentiles
        )
        out.append((f"latency_percentiles_usec_{cmd.name}", values))
    return out


def _errorstats(srv: InfoCore) -> Fields:
    # Redis keeps error codes in a radix tree: they print in byte order.
    return [(f"errorstat_{code}", f"count={n}") for code, n in sorted(srv.error_stats.items())]


def _keyspace(srv: InfoCore) -> Fields:
    now = srv.now_ms()
    out: Fields = []
    for db in srv.dbs:
        if db.data:
            ttl = db.avg_ttl or _sample_avg_ttl(db.expires.values(), now)
            out.append(
                (f"db{db.index}", f"keys={len(db.data)},expires={len(db.expires)},avg_ttl={ttl}")
            )
    return out


def _sample_avg_ttl(whens: Iterable[int], now_ms: int) -> int:
    """Redis estimates avg_ttl from its expiry cycle's samples; this samples a few keys."""
    left = [w - now_ms for w in islice(whens, AVG_TTL_SAMPLE_KEYS) if w > now_ms]
    return sum(left) // len(left) if left else 0


def _nothing(srv: InfoCore) -> Fields:
    return []


def _cluster(srv: InfoCore) -> Fields:
    return no_source("cluster_enabled")


_SECTIONS: dict[str, Callable[[Any], Fields]] = {
    "server": _server,
    "clients": _clients,
    "memory": _memory,
    "persistence": _persistence,
    "stats": _stats,
    "replication": _replication,
    "cpu": _cpu,
    "modules": _nothing,
    "commandstats": _commandstats,
    "errorstats": _errorstats,
    "latencystats": _latencystats,
    "cluster": _cluster,
    "keyspace": _keyspace,
}
assert _SECTIONS.keys() == SECTION_TITLES.keys()
