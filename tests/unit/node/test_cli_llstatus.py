"""``ackdb cluster status``'s leaderless table (node/cli_llstatus.py): the endpoints it
asks (every node's host, each leaderless database's port), AUTH as ackdb-internal when it
has the password, the three INFO leaderless fields, "?" for a coordinator that does not
answer, and the bound on each ask."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from ackdb.cluster.status import parse_status
from ackdb.node import cli_llstatus

INFO = (
    "# Leaderless\r\nll_hints_pending:4\r\nll_ae_differing_leaves:2\r\n"
    "ll_ae_last_full_comparison_age_ms:-1\r\nll_skew_flagged_nodes:n3\r\n"
)


class Fake(socketserver.BaseRequestHandler):
    seen: list[bytes] = []

    def handle(self) -> None:
        while data := self.request.recv(65536):
            Fake.seen.append(data)
            if b"AUTH" in data:
                self.request.sendall(b"+OK\r\n")
            else:
                body = INFO.encode()
                self.request.sendall(b"$%d\r\n%s\r\n" % (len(body), body))


@pytest.fixture
def fake() -> Iterator[int]:
    Fake.seen = []
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Fake)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield int(srv.server_address[1])
    srv.shutdown()
    srv.server_close()


def view(port: int, dead_host: str = "127.0.0.2") -> str:
    return (
        "member:n1 client=127.0.0.1:7001 cluster=127.0.0.1:7101 voter=yes\r\n"
        f"member:n2 client={dead_host}:7002 cluster={dead_host}:7102 voter=yes\r\n"
        "member:n3 client=? cluster=? voter=no\r\n"
        f"database:ll uid=5 port={port} shards=1 replicas=2 type=leaderless n=3\r\n"
        "database:sh uid=6 port=12001 shards=1 replicas=1\r\n"
    )


def test_endpoints_are_every_registered_node_of_each_leaderless_database() -> None:
    v = parse_status(view(12000))
    assert cli_llstatus.endpoints(v) == [
        ("ll", "n1", "127.0.0.1:12000"),
        ("ll", "n2", "127.0.0.2:12000"),
    ]


def test_ask_with_and_without_auth(fake: int) -> None:
    got = cli_llstatus.ask(f"127.0.0.1:{fake}", "pw")
    assert got["ll_hints_pending"] == "4" and got["ll_ae_last_full_comparison_age_ms"] == "-1"
    assert b"ackdb-internal" in Fake.seen[0] and b"pw" in Fake.seen[0]
    Fake.seen = []
    assert cli_llstatus.ask(f"127.0.0.1:{fake}", None)["ll_ae_differing_leaves"] == "2"
    assert all(b"AUTH" not in d for d in Fake.seen)


def test_unreachable_is_question_marks_and_bounded(
    fake: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert cli_llstatus.ask(f"127.0.0.1:{closed}", None) == {}
    # n1 answers (the fake), n2's host has nothing on that port.
    t0 = time.monotonic()
    cli_llstatus.print_leaderless(parse_status(view(fake, dead_host="127.0.0.9")), None)
    assert time.monotonic() - t0 < 3 * cli_llstatus.ENDPOINT_TIMEOUT_S
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].split() == ["ll", "n1", "4", "2", "never", "n3"]
    assert lines[-1].split() == ["ll", "n2", "?", "?", "?", "?"]


def test_internal_password_needs_a_readable_secret(tmp_path: object) -> None:
    assert cli_llstatus.internal_password(None) is None
    assert cli_llstatus.internal_password(str(tmp_path)) is None
