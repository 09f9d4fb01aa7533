"""What a member says about its Raft state and the cluster: the text of ``CLUSTER.STATUS``,
and the parser the command-line tools use to read it back.

Owns: the format -- ``field:value`` lines, then one line per member: ``member:<id>
client=<addr> cluster=<addr> voter=yes|no state=<state> health=<health>
match=<index>|? next=<index>|?`` (match and next only on the leader, which alone tracks
them; elsewhere ``?``); then one ``database:`` line per database and one ``shard:`` line
per shard, from the metadata (cluster/dbtext.py has their format). Never does IO: it
formats a Raft ``Status`` and the metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ackdb.cluster import dbops
from ackdb.cluster.dbtext import status_lines
from ackdb.cluster.metadata import MetadataStore
from ackdb.consensus import Status


def status_text(st: Status, meta: MetadataStore, client_addr: str, snapshot_index: int) -> str:
    """``CLUSTER.STATUS`` of the member whose Raft status is ``st`` (``client_addr`` is its
    own client port: a leader reports it before its member record exists)."""
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
    # The shard supervisor's live lines (role, offset, lag of each local instance) go here.
    return "\r\n".join(lines) + "\r\n"


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
        items = {"member": view.members, "database": view.databases, "shard": view.shards}
        if key in items:
            item_id, *pairs = value.split(" ")
            items[key].append(MemberView(item_id, dict(p.split("=", 1) for p in pairs)))
        else:
            view.fields[key] = value
    return view
