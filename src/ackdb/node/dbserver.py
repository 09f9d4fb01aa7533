"""The database commands of a node's client port (metaserver.py registers them).

Owns: parsing their arguments (Redis-like errors), turning them into ``agent.submit``
(``db.create`` / ``db.delete`` through the log, so they work on any member) and
``agent.read`` (linearizable reads), and ``DB.TOPOLOGY``'s long poll on this node's
applied metadata (topowatch.py keeps the waiting polls). Decides nothing about
placement: the state machine does (cluster/dbops.py). Passwords are hashed here, before
the log, which only ever holds their sha256.

    DB.CREATE name [SHARDS s] [REPLICATION yes|no] [REPLICAS r] [PORT p]
              [PERSISTENCE none|aof-everysec|aof-always|snapshot] [PASSWORD pw]
              [CLUSTER-API yes|no] [FAILOVER-GUARANTEE wait:n]
              [FAILOVER-POLICY strict|available] [FAILOVER-PROFILE high|low]
    DB.CREATE name TYPE leaderless REPLICATION-FACTOR n [PARTITIONS p] [PORT p]
              [READ-CONSISTENCY ONE|QUORUM|ALL] [WRITE-CONSISTENCY ONE|QUORUM|ALL]
              [DELETION-STRATEGY TimeBasedResolution|DeleteOnConflict|NoAutomatedResolution]
              [MAX-CLOCK-SKEW-MS ms] [HINT-BYTES-MAX b] [HINT-COUNT-MAX n]
              [HINT-AGE-MS-MAX ms] [PERSISTENCE ...] [PASSWORD pw] [ACL-USER rules]
                                              $ the DB.INFO text of the new database
    DB.LIST                                   * names, sorted
    DB.INFO name                              $ field:value lines (cluster/dbtext.py)
    DB.DELETE name                            +OK
    DB.TOPOLOGY name [known-version [timeout-ms]]
        $ ``Topology.to_bytes()`` from this node's applied metadata; with known-version,
        answered as soon as the topology's version is above it, or at timeout-ms
        (default 30000, at most 300000) with the current one.
    DB.FAILOVER name [shard]                  +OK once a planned failover of the shard
        (every shard without one) is committed (cluster/shardops.py ``planned_fences``);
        the leader's controller and the agents carry it out (docs/failover.md).
    NODE.MAINTENANCE id on|off                +OK once committed: the controller moves the
        node's primaries off it (on) or back (off).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ackdb.acl import normalize_user_rule
from ackdb.cluster import dbops
from ackdb.cluster.commands import Op, RecordKind, Result
from ackdb.cluster.databases import DB_NAME_MAX_CHARS, STRATEGIES, DbType, Persistence, Topology
from ackdb.cluster.dbops import DbOptions
from ackdb.cluster.dbtext import info_text
from ackdb.cluster.shardops import planned_fences
from ackdb.node.topowatch import TOPOLOGY_WAIT_DEFAULT_MS, TOPOLOGY_WAIT_MAX_MS, Watch
from ackdb.resp import encoder as enc

if TYPE_CHECKING:
    from ackdb.node.metaserver import MetaConnection

Reply = Callable[[bytes], None]
NOT_AN_INTEGER = "ERR value is not an integer or out of range"
BAD_NAME = (
    f"ERR invalid database name: 1-{DB_NAME_MAX_CHARS} letters, digits, '-' or '_', "
    "starting with a letter or digit"
)


def _int(v: bytes) -> int:
    """A non-negative decimal integer (at most 18 digits)."""
    if not v.isdigit() or len(v) > 18:
        raise ValueError(NOT_AN_INTEGER)
    return int(v)


def _yes_no(option: str, v: bytes) -> bool:
    s = v.decode("utf-8", "replace").lower()
    if s not in ("yes", "no"):
        raise ValueError(f"ERR {option} must be yes or no")
    return s == "yes"


def _name(v: bytes) -> str:
    try:
        name = v.decode()
    except UnicodeDecodeError:
        raise ValueError(BAD_NAME) from None
    if not dbops.valid_db_name(name):
        raise ValueError(BAD_NAME)
    return name


def parse_create(argv: list[bytes]) -> tuple[str, DbOptions]:
    """``DB.CREATE``'s arguments as options; ValueError with the client's error."""
    name = _name(argv[1])
    if len(argv) % 2:
        raise ValueError("ERR syntax error")
    o: dict[str, object] = {}
    users: list[str] = []
    for key, v in zip(argv[2::2], argv[3::2], strict=True):
        k = key.decode("utf-8", "replace").upper()
        if k == "SHARDS":
            o["shards"] = _int(v)
        elif k == "REPLICATION":
            o["replication"] = _yes_no(k, v)
        elif k == "REPLICAS":
            o["replicas"] = _int(v)
        elif k == "PORT":
            o["port"] = _int(v)
            if not 1 <= int(v) <= 65535:
                raise ValueError("ERR port must be between 1 and 65535")
        elif k == "PERSISTENCE":
            try:
                o["persistence"] = Persistence(v.decode("utf-8", "replace").lower())
            except ValueError:
                raise ValueError(
                    "ERR persistence must be none|aof-everysec|aof-always|snapshot"
                ) from None
        elif k == "PASSWORD":
            o["password_sha256"] = hashlib.sha256(v).hexdigest() if v else ""
        elif k == "CLUSTER-API":
            o["cluster_api"] = _yes_no(k, v)
        elif k == "FAILOVER-GUARANTEE":
            n = v.lower().removeprefix(b"wait:")
            if n == v.lower():
                raise ValueError("ERR failover guarantee must be wait:<n>")
            o["failover_guarantee"] = _int(n)
        elif k == "FAILOVER-POLICY":
            o["failover_policy"] = v.decode("utf-8", "replace").lower()
        elif k == "FAILOVER-PROFILE":
            o["failover_profile"] = v.decode("utf-8", "replace").lower()
        elif k == "ACL-USER":
            # Stored with hashed passwords only: the clear text never reaches the Raft log.
            users.append(normalize_user_rule(v.decode("utf-8", "surrogateescape")))
        elif k in _LEADERLESS_OPTIONS:
            o[_LEADERLESS_OPTIONS[k]] = _leaderless_value(k, v)
        else:
            raise ValueError("ERR syntax error")
    if users:
        o["acl_users"] = tuple(users)
    if "shards" in o and o.get("type") is DbType.LEADERLESS:  # (even SHARDS 1)
        raise ValueError(
            "ERR SHARDS is for sharded databases: a leaderless database has"
            " REPLICATION-FACTOR and PARTITIONS"
        )
    opts = DbOptions(**o)  # type: ignore[arg-type]
    opts.check()
    return name, opts


# A leaderless database's options (issue 16): DB.CREATE word -> DbOptions field.
_LEADERLESS_OPTIONS = {
    "TYPE": "type",
    "REPLICATION-FACTOR": "replication_factor",
    "PARTITIONS": "partitions",
    "READ-CONSISTENCY": "read_consistency",
    "WRITE-CONSISTENCY": "write_consistency",
    "DELETION-STRATEGY": "deletion_strategy",
    "MAX-CLOCK-SKEW-MS": "max_clock_skew_ms",
    "HINT-BYTES-MAX": "hint_bytes_max",
    "HINT-COUNT-MAX": "hint_count_max",
    "HINT-AGE-MS-MAX": "hint_age_ms_max",
}


def _leaderless_value(k: str, v: bytes) -> object:
    """A leaderless option's value: levels upper-cased, a strategy matched whatever its
    case, numbers as integers (the ranges are DbOptions.check's)."""
    text = v.decode("utf-8", "replace")
    if k == "TYPE":
        try:
            return DbType(text.lower())
        except ValueError:
            raise ValueError("ERR type must be sharded|leaderless") from None
    if k.endswith("-CONSISTENCY"):
        return text.upper()
    if k == "DELETION-STRATEGY":
        return next((s for s in STRATEGIES if s.lower() == text.lower()), text)
    return _int(v)


def _info(c: MetaConnection, name: str) -> bytes:
    return _with_topology(c, name, lambda t: info_text(t).encode())


def _topology(c: MetaConnection, name: str) -> bytes:
    return _with_topology(c, name, Topology.to_bytes)


def _with_topology(c: MetaConnection, name: str, body: Callable[[Topology], bytes]) -> bytes:
    """``body`` of the database's topology as a bulk string, or the error saying why not."""
    try:
        t = dbops.topology(c.agent.meta, name, c.agent.node_id)
    except ValueError:
        return enc.error(f"ERR database '{name}' has a malformed record")
    if t is None:
        return enc.error(f"ERR no such database '{name}'")
    return enc.bulk(body(t))


def db_create(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    try:
        name, opts = parse_create(argv)
    except ValueError as e:
        reply(enc.error(str(e)))
        return

    def done(r: Result) -> None:
        reply(_info(c, name) if r.ok else enc.error(r.error))

    c.agent.submit(Op.DB_CREATE, (name, opts.to_bytes()), done)


def db_delete(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    try:
        name = _name(argv[1])
    except ValueError:
        reply(enc.error(f"ERR no such database '{argv[1].decode('utf-8', 'replace')}'"))
        return

    def done(r: Result) -> None:
        reply(enc.OK if r.ok else enc.error(r.error))

    c.agent.submit(Op.DB_DELETE, (name,), done)


def db_list(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    agent = c.agent

    def run() -> None:
        names = [r.name.encode() for r in agent.meta.record_list(RecordKind.DATABASE)]
        reply(enc.bulk_array(names))

    agent.read(run, lambda err: reply(enc.error(err)))


def db_info(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    name = argv[1].decode("utf-8", "replace")
    c.agent.read(lambda: reply(_info(c, name)), lambda err: reply(enc.error(err)))


def db_topology(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    if len(argv) > 4:
        reply(enc.error("ERR wrong number of arguments for 'db.topology' command"))
        return
    name = argv[1].decode("utf-8", "replace")
    try:
        known = _int(argv[2]) if len(argv) > 2 else None
        timeout_ms = _int(argv[3]) if len(argv) > 3 else TOPOLOGY_WAIT_DEFAULT_MS
    except ValueError as e:
        reply(enc.error(str(e)))
        return
    if timeout_ms > TOPOLOGY_WAIT_MAX_MS:
        reply(enc.error(f"ERR timeout-ms must be between 0 and {TOPOLOGY_WAIT_MAX_MS}"))
        return
    version = dbops.topology_version(c.agent.meta, name)
    if known is None or version is None or version > known or timeout_ms == 0:
        reply(_topology(c, name))
        return

    def respond() -> None:
        c.watches.discard(watch)
        reply(_topology(c, name))

    watch = Watch(name, known, respond)
    if not c.agent.watches.add(watch, timeout_ms):
        reply(enc.error("TRYAGAIN too many DB.TOPOLOGY polls waiting on this node"))
        return
    c.watches.add(watch)


def db_failover(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    if len(argv) > 3:
        reply(enc.error("ERR wrong number of arguments for 'db.failover' command"))
        return
    name = argv[1].decode("utf-8", "replace")
    try:
        shard = _int(argv[2]) if len(argv) > 2 else None
    except ValueError as e:
        reply(enc.error(str(e)))
        return
    agent = c.agent

    def run() -> None:
        try:
            fences = planned_fences(agent.meta, name, shard)
        except ValueError as e:
            reply(enc.error(str(e)))
            return
        left, errors = [len(fences)], []

        def done(r: Result) -> None:
            if not r.ok:
                errors.append(r.error)
            left[0] -= 1
            if not left[0]:
                reply(enc.error(errors[0]) if errors else enc.OK)

        for args in fences:
            agent.submit(Op.SHARD_FENCE, args, done)

    agent.read(run, lambda err: reply(enc.error(err)))


def node_maintenance(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    node, on_off = argv[1].decode("utf-8", "replace"), argv[2].decode("utf-8", "replace")
    if on_off.lower() not in ("on", "off"):
        reply(enc.error("ERR maintenance is 'on' or 'off'"))
        return

    def done(r: Result) -> None:
        reply(enc.OK if r.ok else enc.error(r.error))

    c.agent.submit(Op.NODE_MAINTENANCE, (node, on_off.lower()), done)
