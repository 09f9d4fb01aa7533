"""resp.hello: HELLO's option grammar and reply, as Redis's helloCommand has them."""

from __future__ import annotations

import pytest

from ackdb.resp.encoder import RESP2, RESP3
from ackdb.resp.hello import HelloOptions, hello_reply, parse_hello_options


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        ([b"HELLO"], HelloOptions()),
        ([b"HELLO", b"3"], HelloOptions()),
        ([b"HELLO", b"3", b"auth", b"u", b"p"], HelloOptions((b"u", b"p"))),
        ([b"HELLO", b"2", b"SETNAME", b"n", b"AUTH", b"u", b"p"], HelloOptions((b"u", b"p"), b"n")),
        ([b"HELLO", b"3", b"SETNAME", b"a", b"SETNAME", b"b"], HelloOptions(None, b"b")),
        ([b"HELLO", b"3", b"AUTH", b"u"], "ERR Syntax error in HELLO option 'AUTH'"),
        ([b"HELLO", b"3", b"setname"], "ERR Syntax error in HELLO option 'setname'"),
        ([b"HELLO", b"3", b"BOGUS"], "ERR Syntax error in HELLO option 'BOGUS'"),
    ],
)
def test_options(argv: list[bytes], want: HelloOptions | str) -> None:
    assert parse_hello_options(argv) == want


def test_reply_shapes() -> None:
    kw = {"server": b"s", "version": b"1", "client_id": 7, "mode": b"m", "role": b"r"}
    r3 = hello_reply(RESP3, **kw)  # type: ignore[arg-type]
    assert r3.startswith(b"%7\r\n$6\r\nserver\r\n$1\r\ns\r\n$7\r\nversion\r\n$1\r\n1\r\n")
    assert b"$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:7\r\n" in r3 and r3.endswith(
        b"$7\r\nmodules\r\n*0\r\n"
    )
    r2 = hello_reply(RESP2, **kw)  # type: ignore[arg-type]
    assert r2.startswith(b"*14\r\n") and b"$5\r\nproto\r\n:2\r\n" in r2
