"""Pub/Sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, the
sharded SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, and PUBSUB.

Owns: the command surface of ``engine/pubsub.py``. A (un)subscribe command answers with
one frame per channel; in RESP2 a subscribed client may only run the commands the core's
subscribed-mode rule allows. PUBLISH and SPUBLISH are not effects on the dataset: they
never reach the AOF, but go to the replicas' stream so subscribers there get them
(Redis 7.0 standalone propagates both that way).

Shard channels behave as a standalone redis-server 7.0 runs them: SSUBSCRIBE of channels
in different slots is allowed (only cluster mode checks CROSSSLOT, and the proxy endpoint
does that check itself), and SSUBSCRIBE inside MULTI fails at EXEC ("DENY BLOCKING")
where SUBSCRIBE is let through.
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


@handler("ssubscribe")
def ssubscribe(c: Client, argv: list[bytes]) -> bytes:
    if c.server.in_exec:
        raise CommandError("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
    ps = c.server.pubsub
    return b"".join(ps.ssubscribe(c, ch) for ch in argv[1:])


@handler("sunsubscribe")
def sunsubscribe(c: Client, argv: list[bytes]) -> bytes:
    ps = c.server.pubsub
    channels = argv[1:] or list(c.shard_channels)
    if not channels:
        return push(c, b"sunsubscribe", None, 0)
    return b"".join(ps.sunsubscribe(c, ch) for ch in channels)


@handler("spublish")
def spublish(c: Client, argv: list[bytes]) -> bytes:
    srv = c.server
    n = srv.pubsub.spublish(argv[1], argv[2])
    if srv.count_only is None:
        srv.propagate_to_replicas(c.db.index, argv)
    return enc.ONE if n == 1 else enc.integer(n)


# Redis's addReplySubcommandSyntaxError (the subcommand as the client spelled it): PUBSUB
# CHANNELS / SHARDCHANNELS take one pattern at most.
_SUBCOMMAND_SYNTAX = (
    "ERR unknown subcommand or wrong number of arguments for '%s'. Try PUBSUB HELP."
)

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
        raise CommandError(_SUBCOMMAND_SYNTAX % argv[1].decode("utf-8", "replace"))
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
    if len(argv) > 3:
        raise CommandError(_SUBCOMMAND_SYNTAX % argv[1].decode("utf-8", "replace"))
    chans = list(c.server.pubsub.shard_channels)
    if len(argv) == 3:
        match = compile_glob(argv[2])
        chans = [ch for ch in chans if match(ch)]
    return enc.bulk_array(chans)


@handler("pubsub|shardnumsub")
def pubsub_shardnumsub(c: Client, argv: list[bytes]) -> bytes:
    chans = c.server.pubsub.shard_channels
    parts = [enc.bulk(ch) + enc.integer(len(chans.get(ch, ()))) for ch in argv[2:]]
    return b"*%d\r\n" % (2 * len(parts)) + b"".join(parts)  # a flat array, RESP3 too


@handler("pubsub|help")
def pubsub_help(c: Client, argv: list[bytes]) -> bytes:
    return enc.array([enc.simple(line) for line in _PUBSUB_HELP])
