"""The schema commands of a node's client port (metaserver.py registers them): a
leaderless database's collections, changed only through the Raft log (issue 16).

Owns: parsing their arguments (a refusal here never reaches the log) and turning them
into ``agent.submit`` (``schema.create`` / ``schema.add`` / ``schema.drop``; the state
machine checks the change against the committed schema, cluster/schemaops.py) and
``agent.read`` (a linearizable read of the schema). Decides nothing about validity
beyond the shape of the words: cluster/schema.py's rules are the state machine's.

    SCHEMA.CREATE db collection prefix [name:type ...]   :<new schema version>
    SCHEMA.ADD db collection name:type [name:type ...]   :<new schema version>
    SCHEMA.DROP db collection                            :<new schema version>
    SCHEMA.GET db       *2: :<schema version>, then an array with one
                        [name, prefix, [property, type, property, type, ...]] per collection

Types: string, int, float, bool. Errors: ``-ERR SCHEMA ...`` (the schema refuses the
change), ``-ERR ... only leaderless databases have schemas``, and those of the log
(``-NOQUORUM``, ``-TRYAGAIN``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ackdb.cluster import dbops, schemaops
from ackdb.cluster.commands import Op, Result
from ackdb.cluster.schema import NAME_RE, SchemaError, parse_properties
from ackdb.resp import encoder as enc

if TYPE_CHECKING:
    from ackdb.node.metaserver import MetaConnection

Reply = Callable[[bytes], None]


def _db(v: bytes) -> str:
    name = v.decode("utf-8", "replace")
    if not dbops.valid_db_name(name):
        raise SchemaError(f"ERR no such database '{name:.64}'")
    return name


def _collection(v: bytes) -> str:
    name = v.decode("utf-8", "replace")
    if not NAME_RE.match(name):
        raise SchemaError(f"ERR SCHEMA invalid collection name '{name:.64}'")
    return name


def _properties(words: list[bytes]) -> bytes:
    specs = [w.decode("utf-8", "replace") for w in words]
    return schemaops.encode_properties(parse_properties(specs))


def parse(argv: list[bytes]) -> tuple[Op, tuple[bytes | str | int, ...]]:
    """A SCHEMA.CREATE / ADD / DROP as its op and arguments; SchemaError otherwise."""
    cmd = argv[0].upper()
    db, coll = _db(argv[1]), _collection(argv[2])
    if cmd == b"SCHEMA.CREATE":
        if len(argv) < 4:
            raise SchemaError("ERR wrong number of arguments for 'schema.create' command")
        return Op.SCHEMA_CREATE, (db, coll, argv[3], _properties(argv[4:]))
    if cmd == b"SCHEMA.ADD":
        if len(argv) < 4:
            raise SchemaError("ERR wrong number of arguments for 'schema.add' command")
        return Op.SCHEMA_ADD, (db, coll, _properties(argv[3:]))
    if len(argv) != 3:
        raise SchemaError("ERR wrong number of arguments for 'schema.drop' command")
    return Op.SCHEMA_DROP, (db, coll)


def schema_change(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    try:
        op, args = parse(argv)
    except SchemaError as e:
        reply(enc.error(str(e)))
        return

    def done(r: Result) -> None:
        if r.ok and isinstance(r.value, int):
            reply(enc.integer(r.value))
        else:
            reply(enc.error(r.error or "ERR the schema change gave no version"))

    c.agent.submit(op, args, done)


def schema_get(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    agent = c.agent
    name = argv[1].decode("utf-8", "replace")

    def run() -> None:
        try:
            db = schemaops.load_leaderless(agent.meta, name)
        except SchemaError as e:
            reply(enc.error(str(e)))
            return
        colls = [
            enc.array(
                [
                    enc.bulk(col.name.encode()),
                    enc.bulk(col.prefix),
                    enc.bulk_array([w.encode() for p in col.properties for w in (p.name, p.type)]),
                ]
            )
            for col in db.collections
        ]
        reply(enc.array([enc.integer(db.schema_version), enc.array(colls)]))

    agent.read(run, lambda err: reply(enc.error(err)))
