"""Small pure helpers shared by the replication cores: Redis integer parsing, RESP bytes.

Never touches sockets, clocks or randomness.
"""

from __future__ import annotations

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def parse_ll(b: bytes) -> int | None:
    """Redis string2ll: optional '-', digits, no leading zero (but "0"), no "-0", int64."""
    if not 0 < len(b) <= 20:
        return None
    negative = b[:1] == b"-"
    digits = b[1:] if negative else b
    if not digits.isdigit() or (digits[:1] == b"0" and (negative or len(digits) > 1)):
        return None
    v = int(b)
    return v if INT64_MIN <= v <= INT64_MAX else None


def encode_command(argv: list[bytes] | tuple[bytes, ...]) -> bytes:
    """A RESP multibulk array of bulk strings, as Redis propagates commands."""
    # The commonest effects (SET k v, DEL k, INCR k...) in one formatting operation: half
    # the time of the general case, on every write a primary streams and a replica reads.
    n = len(argv)
    if n == 3:
        a, b, c = argv
        return b"*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            len(a), a, len(b), b, len(c), c
        )  # fmt: skip
    if n == 2:
        a, b = argv
        return b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(a), a, len(b), b)
    parts = [b"*%d\r\n" % n]
    for a in argv:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def error_reply(message: str) -> bytes:
    """``message`` as a RESP error (``ERR ...`` or a code such as ``NOREPLICAS ...``)."""
    return b"-" + message.encode() + b"\r\n"


def integer_reply(n: int) -> bytes:
    return b":%d\r\n" % n
