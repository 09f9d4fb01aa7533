"""What a node says about itself in ``INFO`` (``CLUSTER.STATUS`` is cluster/status.py).

Owns: the ``INFO`` text of ``ackdb node``: its sections, field names and order. Never
decides anything; every number comes from a counter the Raft member or the transport
keeps (``RaftCounters``), never a made-up 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ackdb import __version__
from ackdb.cluster.metadata import MetadataStore
from ackdb.consensus import Status
from ackdb.node.options import AgentOptions
from ackdb.node.transport import Transport


@dataclass(frozen=True, slots=True)
class RaftCounters:
    pending_commands: int
    pending_reads: int
    passes: int
    fsyncs: int
    entries_persisted: int
    fsync_ms_last: float


def info_text(
    o: AgentOptions,
    st: Status,
    meta: MetadataStore,
    raft: RaftCounters,
    clients: int,
    transport: Transport | None,
) -> str:
    t = transport
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
        f"applied_index:{meta.applied_index}",
        f"voters:{len(st.voters)}",
        f"members:{len(meta.members)}",
        f"meta_keys:{len(meta.kv)}",
        f"pending_commands:{raft.pending_commands}",
        f"pending_reads:{raft.pending_reads}",
        f"connected_clients:{clients}",
        f"raft_passes:{raft.passes}",
        f"raft_fsyncs:{raft.fsyncs}",
        f"raft_entries_persisted:{raft.entries_persisted}",
        f"raft_last_fsync_ms:{raft.fsync_ms_last:.3f}",
        f"peer_frames_sent:{sum(link.sent_frames for link in links)}",
        f"peer_frames_dropped:{sum(link.dropped_frames for link in links)}",
        f"peer_garbage_closes:{t.garbage_closes if t is not None else 0}",
        f"peer_handshakes_refused:{t.auth_refused if t is not None else 0}",
        f"peer_handshakes_failed:{t.auth_failed if t is not None else 0}",
    ]
    return "\r\n".join(lines) + "\r\n"
