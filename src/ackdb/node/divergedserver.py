"""``DB.DIVERGED``: a node's files of divergent writes, as its client port answers for
them (metaserver.py registers the command; docs/failover.md, "Files of divergent writes").

    DB.DIVERGED name                     * one entry per file of the database on THIS node:
                                           [node, shard, epoch, bytes, path, kept]
    DB.DIVERGED name CLEAR file          * the entries of the files removed: ``file`` is a
                                           path as listed, or a file name (every file of
                                           the database on this node with that name)
    DB.DIVERGED name CLEAR-ALL           * the entries of the files removed: all of them

``epoch`` is the fork's epoch the file was saved for (-1 when its name has none),
``kept`` 1 for a file kept after its shard's directory left this node. Every node
answers for its own disk only (the files are where the old primary saved them);
``ackdb db diverged`` asks every member. The database is looked up in this node's
applied metadata (no Raft read: the files are local, and a node behind still knows a
database it holds files of).

Owns: parsing the arguments and the reply's shape. The files are the shard supervisor's
(node/shards.py ``diverged``, node/divergedfiles.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ackdb.cluster import dbops
from ackdb.node.divergedfiles import DivergedFile
from ackdb.resp import encoder as enc

if TYPE_CHECKING:
    from ackdb.node.metaserver import MetaConnection

Reply = Callable[[bytes], None]
SYNTAX = "ERR syntax error: DB.DIVERGED name [CLEAR file | CLEAR-ALL]"


def entry(node: str, f: DivergedFile) -> bytes:
    return enc.array(
        [
            enc.bulk(node.encode()),
            enc.integer(f.shard),
            enc.integer(-1 if f.epoch is None else f.epoch),
            enc.integer(f.size),
            enc.bulk(f.path.encode()),
            enc.integer(int(f.kept)),
        ]
    )


def parse(argv: list[bytes]) -> tuple[str, str | None, bool] | str:
    """(name, file to clear, clear all) or the error."""
    name = argv[1].decode("utf-8", "replace")
    rest = [a.upper() for a in argv[2:3]]
    if len(argv) == 2:
        return name, None, False
    if rest == [b"CLEAR"] and len(argv) == 4:
        return name, argv[3].decode("utf-8", "surrogateescape"), False
    if rest == [b"CLEAR-ALL"] and len(argv) == 3:
        return name, None, True
    return SYNTAX


def db_diverged(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    parsed = parse(argv)
    if isinstance(parsed, str):
        reply(enc.error(parsed))
        return
    name, clear, clear_all = parsed
    agent = c.agent
    db = next((d for d in dbops.databases(agent.meta) if d.name == name), None)
    if db is None:
        reply(enc.error(f"ERR no such database '{name}'"))
        return
    files = agent.diverged(db.uid, clear, clear_all)
    reply(enc.array([entry(agent.node_id, f) for f in files]))
