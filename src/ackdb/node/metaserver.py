"""The client port of a node: RESP commands on the cluster's metadata store.

Owns: client connections (resp.frontend's ordered pipeline behind resp.aio's asyncio
shell; replies built with resp.encoder, HELLO with resp.hello), the command table, the
reply shapes, and the ordering rule of reads and writes below.
Decisions about the log live in the agent; this module only turns commands into
``agent.submit`` (writes through the log) and ``agent.read`` (ReadIndex reads).

Commands and replies (docs/cluster.md has the full story):

    META.SET key value            +OK
    META.GET key                  $value | $-1 (null) when missing
    META.DEL key                  :1 deleted | :0 was missing
    META.CAS key expected new     :1 swapped | :0 current value differs or key missing
    CLUSTER.STATUS                $text: "field:value" lines, one "member:" line each
    CLUSTER.JOIN id client-addr cluster-addr proof
                                  +OK (the leader then adds it as a voter); the proof
                                  (peerauth.join_proof, hex) shows the joining node
                                  holds the cluster secret: -WRONGSECRET otherwise
    CLUSTER.REMOVE id             +OK (the leader then removes it from the voters)
    DB.CREATE / DB.LIST / DB.INFO / DB.DELETE / DB.TOPOLOGY    databases (dbserver.py)
    DB.FAILOVER / NODE.MAINTENANCE                             failover (dbserver.py)
    DB.DIVERGED name [CLEAR file | CLEAR-ALL]                  this node's files of
                                                               divergent writes
                                                               (divergedserver.py)
    SCHEMA.CREATE / SCHEMA.ADD / SCHEMA.DROP / SCHEMA.GET      a leaderless database's
                                                               schema (schemaserver.py)
    HELLO [2|3 [AUTH user pass] [SETNAME name]]   the protocol switch (RESP2 or RESP3)
    PING [msg], ECHO msg, INFO [section], QUIT, COMMAND, CLIENT ..., SELECT 0

Errors: ``-NOQUORUM ...`` no leader could be found before the deadline (this node is in
a minority or the cluster is electing); ``-TRYAGAIN ...`` the leader did not confirm in
time (a write may still apply); ``-ERR ...`` bad usage.

Order: replies leave in request order. Writes of one connection may be in flight
together (the log keeps them in order); a read waits for every earlier command of its
connection and a write for every earlier read, so a connection always reads its own
writes and never sees a later write's effect early.

Limits: ``CONNECTION_PENDING_MAX_COMMANDS`` unanswered commands per connection (reading
pauses beyond it), ``CLIENT_MAX_CONNECTIONS`` connections, RESP request limits of the
reader, and the metadata store's key and value limits (checked here, before the log).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ackdb import __version__
from ackdb.cluster.commands import KEY_MAX_BYTES, NAME_MAX_BYTES, VALUE_MAX_BYTES, Op, Result
from ackdb.node import dbserver, divergedserver, schemaserver
from ackdb.node.peerauth import WRONG_SECRET_ERROR
from ackdb.node.peerframes import parse_addr, valid_node_id
from ackdb.node.service import ConnectionHost as Agent
from ackdb.node.topowatch import Watch
from ackdb.resp import encoder as enc
from ackdb.resp.aio import FrontEndProtocol
from ackdb.resp.frontend import NOT_YET, FrontEnd, NotYet, Pending
from ackdb.resp.hello import hello_reply, parse_hello_options

CONNECTION_PENDING_MAX_COMMANDS = 10_000
CLIENT_MAX_CONNECTIONS = 10_000
# Request limits of the client port (bytes). Arguments up to 4x the value limit get a
# clean "-ERR value longer ..." reply; larger ones are a protocol error (connection closed).
REQUEST_MAX_BULK_BYTES = 4 * VALUE_MAX_BYTES
REQUEST_MAX_QUERY_BYTES = 64 * 1024 * 1024

LOCAL, READ, WRITE = "local", "read", "write"
Reply = Callable[[bytes], None]


class MetaConnection(FrontEndProtocol):
    """One client connection: resp.aio's shell around resp.frontend's ordered pipeline;
    this class adds the node's admission rules and the ordering rule of reads and writes."""

    def __init__(self, agent: Agent) -> None:
        super().__init__(FrontEnd(self._handle, REQUEST_MAX_BULK_BYTES, REQUEST_MAX_QUERY_BYTES))
        self.agent = agent
        self.reads_running = 0
        self.running = 0
        self.proto: enc.Resp2 = enc.RESP2  # RESP3 after HELLO 3
        self.watches: set[Watch] = set()  # this connection's DB.TOPOLOGY polls

    # -- asyncio.Protocol --

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self.agent.stopping:
            transport.close()
            return
        if len(self.agent.clients) >= CLIENT_MAX_CONNECTIONS:
            transport.write(b"-ERR max number of clients reached\r\n")
            transport.close()
            return
        self.agent.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.agent.clients.discard(self)
        for w in list(self.watches):
            w.cancel()
        self.watches.clear()
        super().connection_lost(exc)

    # -- front-end hooks --

    def pending_replies_max(self) -> int:
        return CONNECTION_PENDING_MAX_COMMANDS

    def schedule_flush(self) -> None:
        self.agent.schedule_flush(self)  # the agent flushes its connections once a pass

    # -- running commands in order --

    def _handle(self, argv: list[bytes]) -> bytes | Pending | NotYet:
        name = argv[0].upper()
        entry = COMMANDS.get(name)
        kind = LOCAL if entry is None else entry[0]
        if (kind == READ and self.running) or (kind == WRITE and self.reads_running):
            return NOT_YET  # ordering rule: see the module docstring
        if entry is None:
            return _unknown(argv)
        _, handler, arity = entry
        if (arity >= 0 and len(argv) != arity) or (arity < 0 and len(argv) < -arity):
            return enc.error(f"ERR wrong number of arguments for '{_name(argv)}' command")
        pending = Pending()
        self.running += 1
        if kind == READ:
            self.reads_running += 1

        def reply(data: bytes) -> None:
            if pending.reply is not None:
                return
            self.running -= 1
            if kind == READ:
                self.reads_running -= 1
            self.complete(pending, data)

        try:
            handler(self, argv, reply)
        except Exception:
            self.agent.log.warning(f"Error running {_name(argv)}", exc=True)
            reply(enc.error("ERR internal error (see the node's log)"))
        return pending if pending.reply is None else pending.reply


# -- command handlers -------------------------------------------------------------------


def _name(argv: list[bytes]) -> str:
    return argv[0].decode("utf-8", "replace").lower()


def _unknown(argv: list[bytes]) -> bytes:
    args = " ".join(f"'{a.decode('utf-8', 'replace')}'" for a in argv[1:4])
    return enc.error(
        f"ERR unknown command '{argv[0].decode('utf-8', 'replace')}', "
        f"with args beginning with: {args}"
    )


def _result(ok: Callable[[Result], bytes], reply: Reply) -> Callable[[Result], None]:
    def done(r: Result) -> None:
        reply(ok(r) if r.ok else enc.error(r.error))

    return done


def _check_kv(argv: list[bytes], reply: Reply) -> bool:
    if len(argv[1]) > KEY_MAX_BYTES:
        reply(enc.error(f"ERR key longer than {KEY_MAX_BYTES} bytes"))
        return False
    if any(len(v) > VALUE_MAX_BYTES for v in argv[2:]):
        reply(enc.error(f"ERR value longer than {VALUE_MAX_BYTES} bytes"))
        return False
    return True


def meta_set(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    if _check_kv(argv, reply):
        c.agent.submit(Op.KV_SET, (argv[1], argv[2]), _result(lambda r: enc.OK, reply))


def meta_del(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    if _check_kv(argv, reply):
        c.agent.submit(
            Op.KV_DEL, (argv[1],), _result(lambda r: enc.integer(int(r.value or 0)), reply)
        )


def meta_cas(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    if _check_kv(argv, reply):
        c.agent.submit(
            Op.KV_CAS,
            (argv[1], argv[2], argv[3]),
            _result(lambda r: enc.integer(int(r.value or 0)), reply),
        )


def meta_get(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    key = argv[1]
    agent = c.agent

    def run() -> None:
        item = agent.meta.get(key)
        reply(c.proto.bulk_or_null(None if item is None else item.value))

    agent.read(run, lambda err: reply(enc.error(err)))


def cluster_join(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    try:
        node_id, client, cluster = (a.decode() for a in argv[1:4])
        parse_addr(client)
        parse_addr(cluster)
    except (UnicodeDecodeError, ValueError) as e:
        reply(enc.error(f"ERR {e}"))
        return
    if not valid_node_id(node_id) or len(client) > NAME_MAX_BYTES or len(cluster) > NAME_MAX_BYTES:
        reply(enc.error("ERR invalid node id or address"))
        return
    if not c.agent.join_proof_ok(node_id, client, cluster, argv[4]):
        reply(enc.error(f"{WRONG_SECRET_ERROR} node {node_id} does not hold this cluster's secret"))
        return
    c.agent.submit(Op.MEMBER_JOIN, (node_id, client, cluster), _result(lambda r: enc.OK, reply))


def cluster_remove(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    node_id = argv[1].decode("utf-8", "replace")
    if not valid_node_id(node_id):
        reply(enc.error("ERR invalid node id"))
        return
    c.agent.submit(Op.MEMBER_REMOVE, (node_id,), _result(lambda r: enc.OK, reply))


def cluster_status(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    reply(enc.bulk(c.agent.status_text().encode()))


def info(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    reply(enc.bulk(c.agent.info_text().encode()))


def ping(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    if len(argv) > 2:
        reply(enc.error("ERR wrong number of arguments for 'ping' command"))
    else:
        reply(enc.PONG if len(argv) == 1 else enc.bulk(argv[1]))


def hello(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    if len(argv) > 1:
        proto = {b"2": enc.RESP2, b"3": enc.RESP3}.get(argv[1])
        if proto is None:
            reply(enc.error("NOPROTO sorry, this protocol version is not supported"))
            return
        opts = parse_hello_options(argv)  # no users here: AUTH is taken as the nopass default
        if isinstance(opts, str):
            reply(enc.error(opts))
            return
        c.proto = proto
    reply(
        hello_reply(
            c.proto,
            server=b"ackdb",
            version=__version__.encode(),
            client_id=id(c) & 0xFFFFFF,
            mode=b"cluster-node",
            role=c.agent.role.value.encode(),
        )
    )


def echo(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    reply(enc.bulk(argv[1]))


def quit_(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    reply(enc.OK)
    c.frontend.close_after_reply()


def ok(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    reply(enc.OK)


def select(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    reply(enc.OK if argv[1] == b"0" else enc.error("ERR DB index is out of range"))


def command(c: MetaConnection, argv: list[bytes], reply: Reply) -> None:
    reply(enc.EMPTY_ARRAY)  # redis-cli asks for command docs at start; it copes with none


Handler = Callable[[MetaConnection, list[bytes], Reply], None]
# name -> (kind, handler, arity: exact count, or -n for "at least n")
COMMANDS: dict[bytes, tuple[str, Handler, int]] = {
    b"META.SET": (WRITE, meta_set, 3),
    b"META.GET": (READ, meta_get, 2),
    b"META.DEL": (WRITE, meta_del, 2),
    b"META.CAS": (WRITE, meta_cas, 4),
    b"CLUSTER.JOIN": (WRITE, cluster_join, 5),
    b"CLUSTER.REMOVE": (WRITE, cluster_remove, 2),
    b"CLUSTER.STATUS": (LOCAL, cluster_status, 1),
    b"DB.CREATE": (WRITE, dbserver.db_create, -2),
    b"DB.DELETE": (WRITE, dbserver.db_delete, 2),
    b"DB.LIST": (READ, dbserver.db_list, 1),
    b"DB.INFO": (READ, dbserver.db_info, 2),
    b"DB.TOPOLOGY": (LOCAL, dbserver.db_topology, -2),
    b"DB.FAILOVER": (WRITE, dbserver.db_failover, -2),
    b"DB.DIVERGED": (LOCAL, divergedserver.db_diverged, -2),
    b"NODE.MAINTENANCE": (WRITE, dbserver.node_maintenance, 3),
    b"SCHEMA.CREATE": (WRITE, schemaserver.schema_change, -4),
    b"SCHEMA.ADD": (WRITE, schemaserver.schema_change, -4),
    b"SCHEMA.DROP": (WRITE, schemaserver.schema_change, 3),
    b"SCHEMA.GET": (READ, schemaserver.schema_get, 2),
    b"INFO": (LOCAL, info, -1),
    b"PING": (LOCAL, ping, -1),
    b"HELLO": (LOCAL, hello, -1),
    b"ECHO": (LOCAL, echo, 2),
    b"QUIT": (LOCAL, quit_, -1),
    b"CLIENT": (LOCAL, ok, -2),
    b"SELECT": (LOCAL, select, 2),
    b"COMMAND": (LOCAL, command, -1),
}
