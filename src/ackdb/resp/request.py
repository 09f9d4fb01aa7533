"""Encoding requests: a command as a RESP array of bulk strings (the one implementation).

Owns: the bytes of a request as clients send it, as Redis propagates commands to replicas
and the AOF, and as cluster members frame their messages. Never does IO.
"""

from __future__ import annotations

Arg = bytes | str | int


def encode_command(argv: list[bytes] | tuple[bytes, ...]) -> bytes:
    """``argv`` as ``*N`` then ``$len`` bulk strings: what Redis propagates and stores."""
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


def pack(*args: Arg) -> bytes:
    """A command from mixed arguments: str is UTF-8 encoded, int written in decimal."""
    return encode_command([a if isinstance(a, bytes) else str(a).encode() for a in args])


def select_command(db: int) -> bytes:
    """``SELECT db``, as written before effects of another database."""
    d = b"%d" % db
    return b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n" % (len(d), d)
