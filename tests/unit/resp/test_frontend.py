"""resp.frontend: ordered replies (a ready reply waits behind a pending one), NOT_YET,
QUIT, protocol errors and the pending count; input fed whole and byte by byte."""

from __future__ import annotations

import pytest

from ackdb.resp.aio import FrontEndProtocol
from ackdb.resp.frontend import NOT_YET, FrontEnd, NotYet, Pending
from ackdb.resp.request import encode_command


class Handler:
    """GET-like commands complete later (the test completes them); PING is ready at once;
    BARRIER may not start while anything is pending."""

    def __init__(self) -> None:
        self.pending: list[tuple[list[bytes], Pending]] = []
        self.fe = FrontEnd(self, 1 << 20, 1 << 20)

    def __call__(self, argv: list[bytes]) -> bytes | Pending | NotYet:
        verb = argv[0].upper()
        if verb == b"PING":
            return b"+PONG\r\n"
        if verb == b"QUIT":
            self.fe.close_after_reply()
            return b"+OK\r\n"
        if verb == b"BARRIER":
            if any(p.reply is None for _, p in self.pending):
                return NOT_YET
            return b"+BARRIER\r\n"
        p = Pending()
        self.pending.append((argv, p))
        return p


def feed(h: Handler, data: bytes, bytewise: bool) -> None:
    if bytewise:
        for i in range(len(data)):
            h.fe.receive_data(data[i : i + 1])
    else:
        h.fe.receive_data(data)


@pytest.mark.parametrize("bytewise", [False, True])
def test_ready_reply_waits_behind_pending(bytewise: bool) -> None:
    h = Handler()
    feed(h, encode_command([b"GET", b"a"]) + encode_command([b"PING"]) + b"PING\r\n", bytewise)
    assert h.fe.data_to_send() == b""
    assert h.fe.pending_count() == 3
    [(argv, p)] = h.pending
    assert argv == [b"GET", b"a"]
    assert h.fe.complete(p, b"$1\r\n1\r\n") is True  # the oldest: replies may leave
    assert h.fe.data_to_send() == b"$1\r\n1\r\n+PONG\r\n+PONG\r\n"
    assert h.fe.pending_count() == 0
    assert h.fe.complete(p, b"again") is False  # a second reply is ignored
    assert h.fe.data_to_send() == b""


def test_completion_out_of_order_leaves_in_request_order() -> None:
    h = Handler()
    h.fe.receive_data(b"GET a\r\nGET b\r\nPING\r\n")
    (_, pa), (_, pb) = h.pending
    assert h.fe.complete(pb, b":2\r\n") is False  # not the oldest: nothing may leave yet
    assert h.fe.data_to_send() == b""
    assert h.fe.complete(pa, b":1\r\n") is True
    assert h.fe.data_to_send() == b":1\r\n:2\r\n+PONG\r\n"


def test_not_yet_holds_the_request_and_everything_after_it() -> None:
    h = Handler()
    h.fe.receive_data(b"GET a\r\nBARRIER\r\nPING\r\n")
    assert len(h.pending) == 1 and h.fe.pending_count() == 3  # one slot, two waiting
    h.fe.complete(h.pending[0][1], b":1\r\n")  # BARRIER and PING start now
    assert h.fe.data_to_send() == b":1\r\n+BARRIER\r\n+PONG\r\n"


def test_quit_runs_nothing_after_it_and_closes_after_its_reply() -> None:
    h = Handler()
    h.fe.receive_data(b"GET a\r\nQUIT\r\nGET b\r\n")
    assert len(h.pending) == 1 and not h.fe.should_close
    h.fe.receive_data(b"PING\r\n")  # ignored after QUIT
    h.fe.complete(h.pending[0][1], b":1\r\n")
    assert h.fe.data_to_send() == b":1\r\n+OK\r\n"
    assert h.fe.should_close


@pytest.mark.parametrize("bytewise", [False, True])
def test_protocol_error_after_the_requests_before_it(bytewise: bool) -> None:
    h = Handler()
    feed(h, b"GET a\r\nPING\r\n*x\r\nPING\r\n", bytewise)
    assert not h.fe.should_close  # GET a is still pending
    h.fe.complete(h.pending[0][1], b":1\r\n")
    assert h.fe.data_to_send() == (
        b":1\r\n+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"
    )
    assert h.fe.should_close


def test_protocol_error_behind_a_held_request_waits_for_it() -> None:
    h = Handler()
    h.fe.receive_data(b"GET a\r\nBARRIER\r\n*x\r\n")
    h.fe.complete(h.pending[0][1], b":1\r\n")
    assert h.fe.data_to_send() == (
        b":1\r\n+BARRIER\r\n-ERR Protocol error: invalid multibulk length\r\n"
    )
    assert h.fe.should_close


def test_query_buffer_limit_closes_without_a_reply() -> None:
    h = Handler()
    h.fe = FrontEnd(h, 1 << 20, 1000)
    h.fe.receive_data(b"*1\r\n$5000\r\n" + b"x" * 1500)
    assert h.fe.data_to_send() == b"" and h.fe.should_close


def test_many_pipelined_requests_without_recursion() -> None:
    h = Handler()
    h.fe.receive_data(b"GET a\r\n" + b"BARRIER\r\n" * 20000)
    h.fe.complete(h.pending[0][1], b":1\r\n")
    assert h.fe.data_to_send() == b":1\r\n" + b"+BARRIER\r\n" * 20000


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class Proto(FrontEndProtocol):
    def __init__(self) -> None:
        self.h = Handler()
        super().__init__(self.h.fe)
        self.flushes = 0

    def pending_replies_max(self) -> int:
        return 2

    def schedule_flush(self) -> None:
        self.flushes += 1


def test_aio_one_write_per_read_and_pending_limit() -> None:
    p = Proto()
    t = FakeTransport()
    p.connection_made(t)
    p.data_received(b"PING\r\n" * 3)
    assert t.writes == [b"+PONG\r\n" * 3]  # all replies of one read in one write
    p.data_received(b"GET a\r\nGET b\r\nPING\r\n")
    assert t.writes == [b"+PONG\r\n" * 3] and not t.reading  # 3 pending > 2: paused
    (_, pa), (_, pb) = p.h.pending
    p.complete(pb, b":2\r\n")
    assert p.flushes == 0  # not the oldest: nothing to send
    p.complete(pa, b":1\r\n")
    assert p.flushes == 1
    p.flush()
    assert t.writes[-1] == b":1\r\n:2\r\n+PONG\r\n" and t.reading
    p.data_received(b"QUIT\r\nPING\r\n")
    assert t.writes[-1] == b"+OK\r\n" and t.closed
