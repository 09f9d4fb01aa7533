"""Pub/Sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.

Owns: the command surface of ``engine/pubsub.py``. A (un)subscribe command answers with
one frame per channel; in RESP2 a subscribed client may only run the commands the core's
subscribed-mode rule allows. PUBLISH is not an effect on the dataset: it never
reaches the AOF (replicas will get it from the replication issue's own channel).
"""

from __future__ import annotations

from ..engine.client import Client
from ..engine.pubsub import push
from ..keyspace.glob import compile_glob
from ..resp import encoder as enc
from .base import CommandError
from .table import handler


@handler("subscribe")
def subscribe(c: Client, argv: list[bytes]) -> bytes:
    ps = c.server.pubsub
    return b"".join(ps.subscribe(c, ch) for ch in argv[1:])


@handler("unsubscribe")
def unsubscribe(c: Client, argv: list[bytes]) -> bytes:
    ps = c.server.pubsub
    channels = argv[1:] or list(c.channels)
    if not channels:
        return push(c, b"unsubscribe", None, 0)
    return b"".join(ps.unsubscribe(c, ch) for ch in channels)


@handler("psubscribe")
def psubscribe(c: Client, argv: list[bytes]) -> bytes:
    ps = c.server.pubsub
    return b"".join(ps.psubscribe(c, p) for p in argv[1:])


@handler("punsubscribe")
def punsubscribe(c: Client, argv: list[bytes]) -> bytes:
    ps = c.server.pubsub
    patterns = argv[1:] or list(c.patterns)
    if not patterns:
        return push(c, b"punsubscribe", None, 0)
    return b"".join(ps.punsubscribe(c, p) for p in patterns)


@handler("publish")
def publish(c: Client, argv: list[bytes]) -> bytes:
    srv = c.server
    n = srv.pubsub.publish(argv[1], argv[2])
    if srv.count_only is None:  # replicas or an AOF: the message goes to the replicas
        srv.propagate_to_replicas(c.db.index, argv)
    return enc.ONE if n == 1 else enc.integer(n)


_PUBSUB_HELP = [
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Print this help.",
]


@handler("pubsub|channels")
def pubsub_channels(c: Client, argv: list[bytes]) -> bytes:
    if len(argv) > 3:
        raise CommandError("ERR wrong number of arguments for 'pubsub|channels' command")
    chans = list(c.server.pubsub.channels)
    if len(argv) == 3:
        match = compile_glob(argv[2])
        chans = [ch for ch in chans if match(ch)]
    return enc.bulk_array(chans)


@handler("pubsub|numsub")
def pubsub_numsub(c: Client, argv: list[bytes]) -> bytes:
    chans = c.server.pubsub.channels
    parts = []
    for ch in argv[2:]:
        parts.append(enc.bulk(ch) + enc.integer(len(chans.get(ch, ()))))
    return b"*%d\r\n" % (2 * len(parts)) + b"".join(parts)  # a flat array, RESP3 too


@handler("pubsub|numpat")
def pubsub_numpat(c: Client, argv: list[bytes]) -> bytes:
    return enc.integer(c.server.pubsub.numpat())


@handler("pubsub|shardchannels")
def pubsub_shardchannels(c: Client, argv: list[bytes]) -> bytes:
    return enc.EMPTY_ARRAY  # shard channels exist only in cluster mode


@handler("pubsub|shardnumsub")
def pubsub_shardnumsub(c: Client, argv: list[bytes]) -> bytes:
    parts = [enc.bulk(ch) + enc.ZERO for ch in argv[2:]]
    return b"*%d\r\n" % (2 * len(parts)) + b"".join(parts)


@handler("pubsub|help")
def pubsub_help(c: Client, argv: list[bytes]) -> bytes:
    return enc.array([enc.simple(line) for line in _PUBSUB_HELP])
