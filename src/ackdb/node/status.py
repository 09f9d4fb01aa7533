"""What a node says about itself: the text of ``CLUSTER.STATUS`` and ``INFO``, and the
parser the command-line tools use to read ``CLUSTER.STATUS`` back.

Owns: both formats. ``CLUSTER.STATUS`` is ``field:value`` lines, then one line per
member: ``member:<id> client=<addr> cluster=<addr> voter=yes|no state=<state>
health=<health> match=<index>|? next=<index>|?`` (match and next only on the leader,
which alone tracks them; elsewhere ``?``). Never does IO.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ackdb import __version__

if TYPE_CHECKING:
    from ackdb.node.agent import Agent


def status_text(agent: Agent) -> str:
    st = agent.raw.status()
    meta = agent.meta
    leader_addr = ""
    if st.leader == agent.node_id:
        leader_addr = agent.opts.client_addr
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
        f"snapshot_index:{agent.snap_index}",
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
    return "\r\n".join(lines) + "\r\n"


def info_text(agent: Agent) -> str:
    st = agent.raw.status()
    o = agent.opts
    t = agent.transport
    links = t.links.values() if t is not None else []
    lines = [
        "# Server",
        f"ackdb_version:{__version__}",
        "mode:cluster-node",
        f"process_id:{os.getpid()}",
        f"tcp_port:{o.port}",
        f"cluster_port:{o.cluster_port}",
        "",
        "# Cluster",
        f"node_id:{o.node_id}",
        f"role:{st.role.value}",
        f"term:{st.term}",
        f"leader_id:{st.leader or ''}",
        f"commit_index:{st.commit}",
        f"applied_index:{agent.meta.applied_index}",
        f"voters:{len(st.voters)}",
        f"members:{len(agent.meta.members)}",
        f"meta_keys:{len(agent.meta.kv)}",
        f"pending_commands:{len(agent.proposer.pending)}",
        f"pending_reads:{len(agent.reads)}",
        f"connected_clients:{len(agent.clients)}",
        f"raft_passes:{agent.stats['passes']}",
        f"raft_fsyncs:{agent.stats['fsyncs']}",
        f"raft_entries_persisted:{agent.stats['entries_persisted']}",
        f"raft_last_fsync_ms:{agent.fsync_ms_last:.3f}",
        f"peer_frames_sent:{sum(link.sent_frames for link in links)}",
        f"peer_frames_dropped:{sum(link.dropped_frames for link in links)}",
        f"peer_garbage_closes:{t.garbage_closes if t is not None else 0}",
    ]
    return "\r\n".join(lines) + "\r\n"


@dataclass
class MemberView:
    id: str
    fields: dict[str, str]


@dataclass
class StatusView:
    fields: dict[str, str] = field(default_factory=dict)
    members: list[MemberView] = field(default_factory=list)

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
        if key == "member":
            node_id, *pairs = value.split(" ")
            view.members.append(MemberView(node_id, dict(p.split("=", 1) for p in pairs)))
        else:
            view.fields[key] = value
    return view
