"""Authenticated peer links with real processes: a process without the cluster secret
(or with another cluster's) that reaches a cluster port and sends a valid-looking Raft
message is refused and logged while the cluster keeps its leader; a node with another
cluster's secret cannot join; the cluster's secret joins; a multi-voter bootstrap
without a secret is refused at start."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ackdb.cluster.status import StatusView
from ackdb.consensus import Message, MsgType
from ackdb.node.localcluster import LocalCluster, wait_for
from ackdb.node.peerauth import Dialer, Send, peer_key
from ackdb.node.peerframes import encode_raft
from ackdb.node.secrets import new_secret, read_secret, write_secret
from ackdb.resp.request import encode_command

pytestmark = pytest.mark.e2e


def status(c: LocalCluster, node_id: str) -> StatusView:
    """The member's CLUSTER.STATUS, waiting out a slow answer (a loaded machine)."""
    view: StatusView = wait_for(lambda: c.status(node_id), 20, f"{node_id}'s status")
    return view


def voters(c: LocalCluster) -> list[str]:
    v = c.status(c.wait_leader())
    return [] if v is None else v.fields["voters"].split(",")


def info(c: LocalCluster, node_id: str) -> dict[str, str]:
    with c.client(node_id) as cl:
        text = cl.call("INFO").decode()
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def _closed_without_proof(s: socket.socket) -> bytes:
    """What the member sent before closing (it must close)."""
    got = b""
    s.settimeout(5)
    while True:
        data = s.recv(4096)
        if not data:
            return got
        got += data


def no_secret_attack(port: int, vote: Message) -> bytes:
    """An old-style peer: HELLO without a nonce, then a Raft vote with a huge term."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        hello = encode_command((b"HELLO", vote.frm.encode(), b"127.0.0.1:9"))
        s.sendall(hello + encode_raft(vote))
        return _closed_without_proof(s)


def wrong_secret_attack(port: int, vote: Message) -> bytes:
    """A peer that speaks the handshake with another cluster's key, then sends a vote."""
    d = Dialer(vote.frm, "127.0.0.1:9", vote.to, peer_key(new_secret()), new_secret)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(d.start())
        challenge = s.recv(4096)
        proof = b"".join(a.data for a in d.receive_data(challenge) if isinstance(a, Send))
        s.sendall(proof + encode_raft(vote))
        return challenge + _closed_without_proof(s)


def test_strangers_are_refused_and_the_leader_stays(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, 3) as c:
        c.start_all()
        leader = c.wait_leader()
        term = status(c, leader).term
        with c.client(leader) as cl:
            assert cl.call("META.SET", "k", "before") == b"OK"
        follower = next(i for i in c.members if i != leader)
        for target in (leader, follower):
            other = next(i for i in c.members if i != target)
            vote = Message(
                type=MsgType.VOTE, frm=other, to=target, term=term + 100, index=10**6,
                log_term=term + 99,
            )  # fmt: skip
            port = c[target].cluster_port
            got = no_secret_attack(port, vote)
            assert got == b""  # nothing at all for a peer without a nonce
            got = wrong_secret_attack(port, vote)
            assert got.startswith(b"*3\r\n$9\r\nCHALLENGE") and b"PROOF" not in got
            wait_for(
                lambda t=target: c[t].log().count("Refused peer connection") >= 2,  # type: ignore[misc]
                10,
                f"{target} to log the refusals",
            )
            log = c[target].log()
            assert "expected HELLO, got b'HELLO' with 2 arguments" in log
            assert f"(claims to be {other}): wrong cluster secret" in log
            assert int(info(c, target)["peer_handshakes_refused"]) >= 2
        # Nothing reached Raft: no member saw the forged term, the leader stays, writes go on.
        for node_id in c.members:  # the forged votes' term reached no Raft core
            assert status(c, node_id).term < term + 100
        assert c.wait_leader() == leader
        with c.client(follower) as cl:
            assert cl.call("META.SET", "k", "after") == b"OK"
            assert cl.call("META.GET", "k") == b"after"
        for m in c.members.values():
            assert "Installed a snapshot" not in m.log()


def test_another_clusters_secret_cannot_join_the_clusters_can(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, 3) as c:
        c.start_all()
        leader = c.wait_leader()
        stranger = tmp_path / "stranger.secret"
        write_secret(str(stranger), new_secret())
        try:
            c.add("n4", join_via=leader, secret_file=stranger)
        except RuntimeError:
            pass  # it may give up before it answers a PING
        m = c["n4"]
        wait_for(lambda: not m.running(), 20, "n4 to give up")
        assert m.proc is not None and m.proc.returncode == 1
        assert "the cluster refused this node's cluster secret" in m.log()
        assert "n4" not in [x.id for x in status(c, leader).members]
        # Started again with the cluster's secret over its old data: refused clearly.
        c[m.id].secret_file = c.secret_file
        with pytest.raises(RuntimeError, match="holds another secret than"):
            c.start("n4", ["--join", c[leader].addr])
        # A fresh node with the cluster's secret joins.
        c.add("n5", join_via=leader)
        wait_for(lambda: "n5" in voters(c), 30, "n5 to become a voter")
        assert read_secret(str(c["n5"].dir / "cluster.secret")) == read_secret(str(c.secret_file))
        with c.client("n5") as cl:
            assert cl.call("META.SET", "from-n5", "1") == b"OK"


def test_multi_voter_bootstrap_needs_a_secret(tmp_path: Path) -> None:
    argv = [
        sys.executable, "-m", "ackdb.node", "node", "--id", "n1", "--dir", str(tmp_path / "n1"),
        "--port", "1", "--cluster-port", "2", "--bootstrap", "n1=127.0.0.1:2,n2=127.0.0.1:3",
    ]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "several voters needs --cluster-secret-file" in r.stdout + r.stderr
