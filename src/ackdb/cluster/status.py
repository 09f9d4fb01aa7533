"""What a member says about its Raft state and the cluster: the text of ``CLUSTER.STATUS``,
and the parser the command-line tools use to read it back.

Owns: the format -- ``field:value`` lines, then one line per member: ``member:<id>
client=<addr> cluster=<addr> voter=yes|no state=<state> health=<health>
match=<index>|? next=<index>|?`` (match and next only on the leader, which alone tracks
them; elsewhere ``?``); then one ``database:`` line per database and one ``shard:`` line
per shard, from the metadata (cluster/dbtext.py has their format); on the leader, one
``failover:`` line per shard failing over or with a note (cluster/failover.py); then one line per
process the node's shard supervisor runs (``instance_line``; the node appends them):
``instance:<db>/<shard> node=<id> host=<host> port=<port> role=primary|replica|leaderless
seen=primary|replica|? offset=<bytes> replicas=<count> link=up|down|- last_io=<s>|-
pid=<pid>|- state=starting|running|restarting|stopping restarts=<count>`` (``seen``,
``offset``, ``replicas``, ``link`` and ``last_io`` from the shard's last ``INFO
replication``; ``last_io`` is a replica's seconds since its primary was last heard; its
lag in bytes is its primary's offset minus its own), or ``proxy:<db> node= host= port=
[endpoint=coordinator] pid= state= restarts=`` (``endpoint=coordinator``: a leaderless
database's coordinator); then (the node's too) one ``diverged:<db>/<shard> node=<id>
path=<file> count=<commands>|? first=<offset>|? last=<offset>|? bytes=<size>`` line per
file of divergent writes a returning old primary saved, until an operator removes it
(``count`` -1: the whole dataset was saved). Never does IO: it formats a Raft
``Status``, the metadata and the supervisor's units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ackdb.cluster import dbops
from ackdb.cluster.dbtext import status_lines
from ackdb.cluster.metadata import MetadataStore
from ackdb.cluster.shardspec import ShardSpec
from ackdb.cluster.supervise import Unit
from ackdb.consensus import Status


def status_text(
    st: Status,
    meta: MetadataStore,
    client_addr: str,
    snapshot_index: int,
    failover: list[str] | None = None,
) -> str:
    """``CLUSTER.STATUS`` of the member whose Raft status is ``st`` (``client_addr`` is its
    own client port: a leader reports it before its member record exists); ``failover``:
    the failover controller's ``status_lines`` (the leader's; cluster/failover.py)."""
    leader_addr = ""
    if st.leader == st.id:
        leader_addr = client_addr
    elif st.leader is not None:
        m = meta.members.get(st.leader)
        leader_addr = m.client_addr if m is not None else ""
    lines = [
        f"node_id:{st.id}",
        f"role:{st.role.value}",
        f"term:{st.term}",
        f"leader_id:{st.leader or ''}",
        f"leader_addr:{leader_addr}",
        f"commit_index:{st.commit}",
        f"applied_index:{meta.applied_index}",
        f"last_index:{st.last_index}",
        f"snapshot_index:{snapshot_index}",
        f"voters:{','.join(st.voters)}",
    ]
    ids = sorted(set(st.voters) | set(meta.members))
    for node_id in ids:
        m = meta.members.get(node_id)
        pr = st.progress.get(node_id)
        lines.append(
            f"member:{node_id}"
            f" client={m.client_addr if m and m.client_addr else '?'}"
            f" cluster={m.cluster_addr if m and m.cluster_addr else '?'}"
            f" voter={'yes' if node_id in st.voters else 'no'}"
            f" state={m.state.value if m else 'unregistered'}"
            f" health={m.health.value if m else 'unknown'}"
            f" match={pr.match if pr else '?'}"
            f" next={pr.next if pr else '?'}"
        )
    dbs = [(db, dbops.topology_version(meta, db.name) or 0) for db in dbops.databases(meta)]
    lines += status_lines(dbs)
    lines += failover or []
    # The node appends its shard supervisor's live lines (instance_line) after these.
    return "\r\n".join(lines) + "\r\n"


def instance_line(node: str, u: Unit) -> str:
    """The status line of one of the supervisor's units (it must have a spec)."""
    spec = u.spec
    assert spec is not None
    common = f"node={node} host={spec.host} port={spec.port}"
    tail = f"pid={u.pid if u.pid is not None else '-'} state={u.phase.value} restarts={u.restarts}"
    if not isinstance(spec, ShardSpec):
        kind = " endpoint=coordinator" if spec.coordinator else ""
        return f"proxy:{spec.db} {common}{kind} {tail}"
    o = u.observed
    role = "primary" if spec.primary is None else "replica"
    if spec.leaderless:
        role = "leaderless"
    seen = {"master": "primary", "slave": "replica"}.get(o.role, "?") if o else "?"
    if spec.leaderless and seen == "primary":
        seen = "standalone"  # a leaderless replica follows no one: all n are equal
    link = "-" if o is None or o.role != "slave" else ("up" if o.link_up else "down")
    last_io = "-" if o is None or o.last_io_s < 0 else str(o.last_io_s)
    return (
        f"instance:{spec.db}/{spec.shard} {common} role={role} seen={seen}"
        f" offset={o.offset if o else '-'} replicas={o.replicas if o else '-'}"
        f" link={link} last_io={last_io} {tail}"
    )


@dataclass
class InstanceView:
    """An ``instance:`` (shard process) or ``proxy:`` line: ``kind``, its name
    (``db/shard`` or ``db``) and its fields."""

    kind: str
    name: str
    fields: dict[str, str]


@dataclass
class MemberView:
    id: str
    fields: dict[str, str]


@dataclass
class StatusView:
    fields: dict[str, str] = field(default_factory=dict)
    members: list[MemberView] = field(default_factory=list)
    databases: list[MemberView] = field(default_factory=list)  # id = database name
    shards: list[MemberView] = field(default_factory=list)  # id = "<database>/<index>"
    partitions: list[MemberView] = field(default_factory=list)  # a leaderless database's
    failovers: list[MemberView] = field(default_factory=list)  # id = "<database>/<index>"
    instances: list[InstanceView] = field(default_factory=list)

    @property
    def role(self) -> str:
        return self.fields.get("role", "")

    @property
    def leader_id(self) -> str:
        return self.fields.get("leader_id", "")

    @property
    def term(self) -> int:
        return int(self.fields.get("term", "0") or 0)


def parse_status(text: str) -> StatusView:
    """``CLUSTER.STATUS`` text back into fields (for the CLI, the tests, the benchmark)."""
    view = StatusView()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        items = {
            "member": view.members,
            "database": view.databases,
            "shard": view.shards,
            "partition": view.partitions,
        }
        if key == "failover":
            # cluster/failover.py's status lines: key=value pairs, ``note=`` to the end.
            head, _, note = value.partition(" note=")
            item_id, *pairs = head.split(" ")
            fields = dict(p.split("=", 1) for p in pairs if "=" in p)
            if _:
                fields["note"] = note
            view.failovers.append(MemberView(item_id, fields))
        elif key in items:
            item_id, *pairs = value.split(" ")
            items[key].append(MemberView(item_id, dict(p.split("=", 1) for p in pairs)))
        elif key in ("instance", "proxy", "diverged"):
            name, *pairs = value.split(" ")
            view.instances.append(InstanceView(key, name, dict(p.split("=", 1) for p in pairs)))
        else:
            view.fields[key] = value
    return view
