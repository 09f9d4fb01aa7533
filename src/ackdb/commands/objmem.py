"""OBJECT REFCOUNT / IDLETIME and MEMORY USAGE / STATS / DOCTOR / MALLOC-STATS / PURGE /
HELP: what ackdb can say truthfully about its values and its memory.

Owns: Redis 7.2's reply shapes, option errors and lookups of these commands (OBJECT looks
keys up without a ``keymiss``; MEMORY USAGE finds the key without touching its expiry or
the hit counters, as Redis's dictFind), and ackdb's answers:

- OBJECT REFCOUNT: 2147483647 for a string Redis would hold as one of its shared integers
  (0..9999 in canonical form, unless a maxmemory with an LRU / LFU policy disables them),
  else 1. ackdb decides by the value's contents; Redis by the command that wrote it (an
  APPENDed "12" is not shared there).
- OBJECT IDLETIME: ackdb keeps no per-key access clock (it would cost every read), so an
  existing key gets an error saying so (under an LFU policy, Redis's own error).
- MEMORY USAGE: an estimate, by ``sys.getsizeof`` of the key and the value's Python objects,
  a collection's elements sampled as Redis samples (SAMPLES, default 5, 0 for all) and the
  average multiplied out; not Redis's allocator sizes.
- MEMORY STATS: Redis's fields, filled from the same sources as INFO memory (the RSS as the
  allocated total, the buffers ackdb counts) and the keyspace's own sizes.
- MEMORY DOCTOR: Redis's texts for an empty instance, a past peak above 150% of the
  current size, and no issue; MALLOC-STATS: "Stats not supported for the current
  allocator" (pymalloc has no report); PURGE: OK, a no-op (pymalloc returns arenas itself).

Never touches the network.
"""

from __future__ import annotations

import sys
from collections import deque
from itertools import islice
from typing import Any

from ..engine.client import Client
from ..keyspace.stream import Stream
from ..keyspace.types import encoding
from ..keyspace.zset import ZSet
from ..resp import encoder as enc
from ..resp.encoder import Resp2
from .base import SYNTAX, CommandError, arg_int, read_key
from .table import handler

SHARED_INTEGERS = 10_000  # Redis OBJ_SHARED_INTEGERS
SHARED_REFCOUNT = 2_147_483_647  # Redis OBJ_SHARED_REFCOUNT (INT_MAX)
SAMPLES_DEFAULT = 5  # Redis OBJ_COMPUTE_SIZE_DEF_SAMPLES
KEY_ENTRY_BYTES = 32  # a dict slot and its index entry, per key (CPython 3.11, 64-bit)
ZSET_ENTRY_BYTES = 64  # the index slot, the score twice and the block list pointers
_LFU_IDLE = (
    "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
    "switching between policies at runtime LRU and LFU data will take some time to adjust."
)
_NO_CLOCK = "ERR ackdb keeps no per-key access clock: OBJECT IDLETIME is not tracked"


def _policy(c: Client) -> str:
    return str(c.server.config.get("maxmemory-policy"))


@handler("object|refcount")
def object_refcount(c: Client, argv: list[bytes]) -> bytes:
    v = read_key(c, argv[2], notify=False)
    if v is None:
        return c.p.null
    policy = _policy(c)
    shared_ok = not c.server.config.get("maxmemory") or not ("lru" in policy or "lfu" in policy)
    if (
        shared_ok
        and v.__class__ is bytes
        and encoding(v, {}) == b"int"
        and 0 <= int(v) < SHARED_INTEGERS
    ):
        return enc.integer(SHARED_REFCOUNT)
    return enc.ONE


@handler("object|idletime")
def object_idletime(c: Client, argv: list[bytes]) -> bytes:
    if read_key(c, argv[2], notify=False) is None:
        return c.p.null
    raise CommandError(_LFU_IDLE if "lfu" in _policy(c) else _NO_CLOCK)


# -- MEMORY USAGE -------------------------------------------------------------------------


def _sampled(items: Any, n: int, samples: int, size: Any) -> int:
    """Redis's sampling: the average size of the first ``samples`` items, times ``n``."""
    seen = total = 0
    for item in islice(items, samples):
        total += size(item)
        seen += 1
    return total * n // seen if seen else 0


def value_bytes(v: Any, samples: int) -> int:
    """An estimate of the bytes a value holds (module docstring)."""
    cls, size = v.__class__, sys.getsizeof
    if cls is bytes:
        return size(v)
    if cls is dict:
        items = v.items()
        return size(v) + _sampled(items, len(v), samples, lambda kv: size(kv[0]) + size(kv[1]))
    if cls is deque or cls is set:
        return size(v) + _sampled(iter(v), len(v), samples, size)
    if cls is ZSet:
        per = _sampled(v.member_names(), len(v), samples, lambda m: 2 * size(m))
        return size(v) + per + len(v) * ZSET_ENTRY_BYTES
    if cls is Stream:
        nodes = v.nodes
        per_node = _sampled(
            iter(nodes),
            len(nodes),
            samples,
            lambda n: size(n.ids) + sum(size(x) for f in n.values if f for x in f),
        )
        return size(v) + per_node
    return size(v)


@handler("memory|usage")
def memory_usage(c: Client, argv: list[bytes]) -> bytes:
    samples = SAMPLES_DEFAULT
    j = 3
    while j < len(argv):
        if argv[j].lower() == b"samples" and j + 1 < len(argv):
            samples = arg_int(argv[j + 1])
            if samples < 0:
                raise CommandError(SYNTAX)
            if samples == 0:
                samples = sys.maxsize
            j += 2
        else:
            raise CommandError(SYNTAX)
    key = argv[2]
    v = c.db.data.get(key)  # Redis's dictFind: no expiry check, no hit counted
    if v is None:
        return c.p.null
    return enc.integer(value_bytes(v, samples) + sys.getsizeof(key) + KEY_ENTRY_BYTES)


# -- MEMORY STATS / DOCTOR ----------------------------------------------------------------


def _info_memory(c: Client) -> dict[str, str]:
    info = c.server.info
    if info is None:
        raise CommandError("ERR MEMORY STATS is not available in this process")
    out = {}
    for line in info.text([b"memory"]).splitlines():
        name, sep, value = line.partition(":")
        if sep:
            out[name] = value
    return out


def _num(fields: dict[str, str], name: str) -> int:
    return int(fields.get(name, "0"))


def _double(p: Resp2, x: float) -> bytes:
    return p.double(b"%.17g" % x)


def _stats(c: Client) -> list[tuple[bytes, bytes]]:
    p, f = c.p, _info_memory(c)
    used, peak = _num(f, "used_memory"), _num(f, "used_memory_peak")
    startup, overhead = _num(f, "used_memory_startup"), _num(f, "used_memory_overhead")
    keys = sum(len(db.data) for db in c.server.dbs)
    dbs = [
        (
            b"db.%d" % db.index,
            p.map_encoded(
                [
                    (enc.bulk(b"overhead.hashtable.main"), enc.integer(sys.getsizeof(db.data))),
                    (
                        enc.bulk(b"overhead.hashtable.expires"),
                        enc.integer(sys.getsizeof(db.expires)),
                    ),
                ]
            ),
        )
        for db in c.server.dbs
        if db.data
    ]
    dataset = used - overhead
    ints = [
        ("peak.allocated", peak),
        ("total.allocated", used),
        ("startup.allocated", startup),
        ("replication.backlog", _num(f, "mem_replication_backlog")),
        ("clients.slaves", _num(f, "mem_clients_slaves")),
        ("clients.normal", _num(f, "mem_clients_normal")),
        ("cluster.links", _num(f, "mem_cluster_links")),
        ("aof.buffer", _num(f, "mem_aof_buffer")),
        ("lua.caches", 0),
        ("functions.caches", 0),
    ]
    out = [(k.encode(), enc.integer(v)) for k, v in ints] + dbs
    out += [
        (b"overhead.total", enc.integer(overhead)),
        (b"keys.count", enc.integer(keys)),
        (b"keys.bytes-per-key", enc.integer((used - startup) // keys if keys else 0)),
        (b"dataset.bytes", enc.integer(dataset)),
        (b"dataset.percentage", _double(p, dataset * 100 / max(1, used - startup))),
        (b"peak.percentage", _double(p, used * 100 / peak if peak else 0.0)),
        (b"allocator.allocated", enc.integer(used)),
        (b"allocator.active", enc.integer(used)),
        (b"allocator.resident", enc.integer(used)),
    ]
    # used_memory is the RSS: every ratio between allocator layers is 1 (docs/compat.md).
    for name in ("allocator-fragmentation", "allocator-rss", "rss-overhead"):
        out += [(f"{name}.ratio".encode(), _double(p, 1.0)), (f"{name}.bytes".encode(), enc.ZERO)]
    out += [(b"fragmentation", _double(p, 1.0)), (b"fragmentation.bytes", enc.ZERO)]
    return out


@handler("memory|stats")
def memory_stats(c: Client, argv: list[bytes]) -> bytes:
    return c.p.map_encoded([(enc.bulk(k), v) for k, v in _stats(c)])


_EMPTY = (
    "Hi Sam, this instance is empty or is using very little memory, my issues detector "
    "can't be used in these conditions. Please, leave for your mission on Earth and fill it "
    "with some data. The new Sam and I will be back to our programming as soon as I "
    "finished rebooting.\n"
)
_FINE = (
    "Hi Sam, I can't find any memory issue in your instance. I can only account for what "
    "occurs on this base.\n"
)
_PEAK = (
    "Sam, I detected a few issues in this Redis instance memory implants:\n\n"
    " * Peak memory: In the past this instance used more than 150% the memory that is "
    "currently using. The allocator is normally not able to release memory after a peak, "
    "so you can expect to see a big fragmentation ratio, however this is actually harmless "
    "and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) "
    "is currently bigger than expected, the memory will be used as soon as you fill the "
    "Redis instance with more data. If the memory peak was only occasional and you want to "
    "try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other "
    "option is to shutdown and restart the instance.\n\n"
    "I'm here to keep you safe, Sam. I want to help you.\n"
)


@handler("memory|doctor")
def memory_doctor(c: Client, argv: list[bytes]) -> bytes:
    f = _info_memory(c)
    used, peak = _num(f, "used_memory"), _num(f, "used_memory_peak")
    if not any(db.data for db in c.server.dbs):
        text = _EMPTY
    elif peak > used * 3 // 2:
        text = _PEAK
    else:
        text = _FINE
    return c.p.verbatim(text.encode())


@handler("memory|malloc-stats")
def memory_malloc_stats(c: Client, argv: list[bytes]) -> bytes:
    return enc.bulk(b"Stats not supported for the current allocator")


@handler("memory|purge")
def memory_purge(c: Client, argv: list[bytes]) -> bytes:
    return enc.OK


_MEMORY_HELP = [
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
]


@handler("memory|help")
def memory_help(c: Client, argv: list[bytes]) -> bytes:
    head = "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    lines = [head, *_MEMORY_HELP, "HELP", "    Print this help."]
    return enc.array([enc.simple(s) for s in lines])
