"""Transactions through the endpoint: MULTI / EXEC / DISCARD / WATCH / UNWATCH.

Owns: the rules. MULTI is answered here and the commands are queued here (checked as Redis
checks them when it queues: unknown command, arity, commands not allowed in a transaction;
each error flags the transaction, and EXEC then answers EXECABORT). At EXEC the queue is
sent whole -- MULTI, the commands, EXEC -- to the one shard of its keys and the shard's EXEC
reply is the client's (the MULTI and QUEUED replies are swallowed), so it runs atomically
there. Every key of the transaction and of WATCH must be in one slot (Redis Cluster's
rule), else CROSSSLOT. WATCH runs at once on the shard of its keys, on the client's own
connection; if that connection is lost the watch is lost and EXEC fails as if a watched key
had changed (a null reply). Never does IO.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..resp.ints import parse_ll
from . import local
from .router import CROSSSLOT, Kind, Route, keys_of, slot_of

if TYPE_CHECKING:
    from .session import Session

QUEUED = b"+QUEUED\r\n"
EXECABORT = b"-EXECABORT Transaction discarded because of previous errors.\r\n"
# Commands that only make sense on the client's own connection state, or span shards.
_NOT_IN_TXN = "-ERR '%s' is not available inside a transaction through a database endpoint\r\n"
_SPANNING = frozenset({Kind.FANOUT, Kind.SCAN, Kind.INFO})


def _null(s: Session) -> bytes:
    return b"_\r\n" if s.protocol == 3 else b"*-1\r\n"


def queue_command(s: Session, r: Route, argv: list[bytes]) -> bytes:
    """Queue one request of the open transaction; the reply to send now."""
    t = s.txn
    assert t is not None
    err = _check(s, r, argv)
    if err is not None:
        t.error = True
        return err
    if s.router.nshards > 1 or s.redirect is not None:
        slot = s.slot_of_keys(keys_of(r, argv))
        if slot == -2:
            t.error = True
            return CROSSSLOT
        if slot >= 0:
            t.slots.add(slot)
    t.queued.append(argv)
    t.write = t.write or r.write
    return QUEUED


def _check(s: Session, r: Route, argv: list[bytes]) -> bytes | None:
    cmd = r.cmd
    if r.kind is Kind.REFUSED:
        return r.refusal
    if r.kind is Kind.CONTAINER and (cmd is None or cmd.container):
        return local.arity_error(r.name)
    if cmd is not None and not cmd.argc_min <= len(argv) <= cmd.argc_max:
        return local.arity_error(r.name)
    if cmd is not None and cmd.no_multi:
        return b"-ERR Command not allowed inside a transaction\r\n"
    if r.kind is Kind.LOCAL and r.name not in ("ping", "echo"):
        if r.name == "select" and parse_ll(argv[1]) == 0:
            return None  # harmless on the shard: its connections use database 0
        return (_NOT_IN_TXN % r.name).encode()
    if r.kind in _SPANNING and s.router.nshards > 1:
        return (_NOT_IN_TXN % r.name).encode()
    if r.kind is Kind.PUBSUB or r.kind is Kind.CLUSTER:  # the endpoint's own state
        return (_NOT_IN_TXN % r.name).encode()
    return None


Verb = Callable[["Session", Route, list[bytes]], None]


def checked(verb: Verb) -> Verb:
    """The verb behind Redis's arity check: a rejected request flags an open transaction;
    a rejected EXEC discards it and says why (EXECABORT)."""

    def run(s: Session, r: Route, argv: list[bytes]) -> None:
        cmd = r.cmd
        if cmd is not None and not cmd.argc_min <= len(argv) <= cmd.argc_max:
            if r.kind is Kind.EXEC:
                _end(s)
                why = f"wrong number of arguments for '{r.name}' command"
                s._reply(f"-EXECABORT Transaction discarded because of: {why}\r\n".encode())
                return
            if s.txn is not None:
                s.txn.error = True
            s._reply(local.arity_error(r.name))
            return
        verb(s, r, argv)

    return run


def multi(s: Session, r: Route, argv: list[bytes]) -> None:
    if s.txn is not None:
        s._reply(b"-ERR MULTI calls can not be nested\r\n")
        return
    from .session import Txn

    s.txn = Txn()
    s._reply(b"+OK\r\n")


def _end(s: Session) -> None:
    s.txn = None
    if s.watched_shard >= 0 and not s.watch_lost:
        s._send(s.watched_shard, [b"UNWATCH"], None)
    s.watched_shard = s.watched_slot = -1
    s.watch_lost = False


def exec_(s: Session, r: Route, argv: list[bytes]) -> None:
    t = s.txn
    if t is None:
        s._reply(b"-ERR EXEC without MULTI\r\n")
        return
    if t.error:
        _end(s)
        s._reply(EXECABORT)
        return
    slots = set(t.slots)
    if s.watched_slot >= 0:
        slots.add(s.watched_slot)
    if len(slots) > 1:
        _end(s)
        s._reply(CROSSSLOT)
        return
    if s.watch_lost:
        _end(s)
        s._reply(_null(s))
        return
    if s.watched_shard >= 0:
        shard = s.watched_shard
    elif slots:
        shard = s.router.shard_of[next(iter(slots))]
    elif not t.queued:
        s.txn = None
        s._reply(b"*0\r\n")
        return
    else:
        shard = 0
    from .session import Pending

    p = Pending()
    if s.watched_shard < 0:
        # Sent again, whole, if a demoted or fenced primary refuses it (proxy/failover.py);
        # not under WATCH: the watch was on the old primary's connection.
        p.resend = argv
        p.before = [[b"MULTI"], *t.queued]
    s._send(shard, [b"MULTI"], None)
    for q in t.queued:
        s._send(shard, q, None)
    s.txn = None
    s.watched_shard = s.watched_slot = -1
    s.queue.append(p)
    s._send(shard, argv, p)
    if t.write:
        s.written |= 1 << shard


def discard(s: Session, r: Route, argv: list[bytes]) -> None:
    if s.txn is None:
        s._reply(b"-ERR DISCARD without MULTI\r\n")
        return
    _end(s)
    s._reply(b"+OK\r\n")


def watch(s: Session, r: Route, argv: list[bytes]) -> None:
    if s.txn is not None:
        s._reply(b"-ERR WATCH inside MULTI is not allowed\r\n")
        return
    if len(argv) < 2:
        s._reply(local.arity_error("watch"))
        return
    if s.router.nshards == 1 and s.redirect is None:
        shard, slot = 0, 0
    else:
        slot = s.slot_of_keys(argv[1:])
        if slot == -2 or (s.watched_slot >= 0 and slot != s.watched_slot):
            s._reply(CROSSSLOT)
            return
        if s.redirect is not None:
            moved = s.redirect(slot)
            if moved is not None:
                s._reply(moved)
                return
        shard = s.router.shard_of[slot]
    s.watched_slot, s.watched_shard = slot, shard
    s._forward(shard, argv, False)


def unwatch(s: Session, r: Route, argv: list[bytes]) -> None:
    if s.watched_shard >= 0 and not s.watch_lost:
        shard = s.watched_shard
        s.watched_shard = s.watched_slot = -1
        s._forward(shard, argv, False)
        return
    s.watched_shard = s.watched_slot = -1
    s.watch_lost = False
    s._reply(b"+OK\r\n")


# ``slot_of`` is re-exported for the tests of the transaction rules.
__all__ = ["discard", "exec_", "multi", "queue_command", "slot_of", "unwatch", "watch"]
