"""Small pure helpers shared by the replication cores: RESP error and integer replies;
Redis integer parsing and the command encoder come from resp/ (re-exported here).

Never touches sockets, clocks or randomness.
"""

from __future__ import annotations

from ackdb.resp.ints import INT64_MAX as INT64_MAX
from ackdb.resp.ints import INT64_MIN as INT64_MIN
from ackdb.resp.ints import parse_ll as parse_ll
from ackdb.resp.request import encode_command as encode_command


def error_reply(message: str) -> bytes:
    """``message`` as a RESP error (``ERR ...`` or a code such as ``NOREPLICAS ...``)."""
    return b"-" + message.encode() + b"\r\n"


def integer_reply(n: int) -> bytes:
    return b":%d\r\n" % n
