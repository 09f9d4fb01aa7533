"""The CLUSTER.STATUS parser (ackdb.cluster.status) and the RESP client's packing
(ackdb.resp.client), against a one-shot local server."""

from __future__ import annotations

import socket
import threading

import pytest

from ackdb.cluster.status import parse_status
from ackdb.resp.client import BlockingClient as Client
from ackdb.resp.client import ReplyError, pack

STATUS = (
    "node_id:n2\r\nrole:follower\r\nterm:7\r\nleader_id:n1\r\nleader_addr:127.0.0.1:7001\r\n"
    "voters:n1,n2\r\n"
    "member:n1 client=127.0.0.1:7001 cluster=127.0.0.1:7101 voter=yes state=active "
    "health=ok match=? next=?\r\n"
    "member:n2 client=? cluster=? voter=yes state=unregistered health=unknown match=? next=?\r\n"
)


def test_parse_status() -> None:
    v = parse_status(STATUS)
    assert (v.role, v.leader_id, v.term) == ("follower", "n1", 7)
    assert v.fields["leader_addr"] == "127.0.0.1:7001"
    assert [m.id for m in v.members] == ["n1", "n2"]
    assert v.members[0].fields["cluster"] == "127.0.0.1:7101"
    assert v.members[1].fields["state"] == "unregistered"
    assert parse_status("").term == 0


def test_pack() -> None:
    assert pack("META.SET", b"k\r\n", 5) == b"*3\r\n$8\r\nMETA.SET\r\n$3\r\nk\r\n\r\n$1\r\n5\r\n"


def _serve_once(reply: bytes) -> int:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def run() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            for i in range(0, len(reply), 3):  # replies split across reads
                conn.sendall(reply[i : i + 3])
        srv.close()

    threading.Thread(target=run, daemon=True).start()
    return int(srv.getsockname()[1])


def test_client_replies_and_errors() -> None:
    port = _serve_once(b"+OK\r\n$3\r\nabc\r\n-TRYAGAIN later\r\n:1\r\n$-1\r\n")
    with Client(f"127.0.0.1:{port}", timeout_s=5) as c:
        got = c.pipeline([("A",), ("B",), ("C",), ("D",), ("E",)])
    assert got[:2] == [b"OK", b"abc"] and got[3:] == [1, None]
    assert isinstance(got[2], ReplyError) and got[2].code == "TRYAGAIN"
    port = _serve_once(b"-NOQUORUM no leader\r\n")
    with Client(f"127.0.0.1:{port}", timeout_s=5) as c, pytest.raises(ReplyError, match="NOQUORUM"):
        c.call("META.SET", "k", "v")
