"""Redis's strict integer parser, ``string2ll``: the one implementation in ackdb.

Owns: the accept/reject rules of ``string2ll`` (Redis util.c), used wherever Redis uses it:
RESP header numbers (``*<count>``, ``$<length>``), command arguments (INCR, EXPIRE,
WAIT...), replication arguments (PSYNC offsets, REPLCONF) and config values; and
``digit_run``, the digit loop of the hand-written header parsers on the hot paths. Never
does IO; pure functions only.

The rules (util.c ``string2ll``): 1 to 20 characters (``LONG_STR_SIZE`` is 21); an
optional leading ``-``; ASCII digits only (no ``+``, no spaces); no leading zero except
the string ``0`` itself, so ``-0`` and ``007`` are refused; the value fits in int64.
"""

from __future__ import annotations

from typing import Final

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# util.h LONG_STR_SIZE: string2ll refuses strings of this many characters or more.
LONG_STR_SIZE: Final = 21


def parse_ll(b: bytes) -> int | None:
    """The int64 value of ``b`` under Redis's ``string2ll`` rules, or None.

    Checked with ``bytes.isdigit`` (ASCII only) before ``int()``: this runs on every INCR
    and numeric argument, and the check is cheaper than a regular expression."""
    if not 0 < len(b) < LONG_STR_SIZE:
        return None
    if b.isdigit():
        if b[0] == 0x30 and len(b) > 1:
            return None
    elif not (b[0] == 0x2D and b[1:].isdigit() and b[1] != 0x30):
        return None
    value = int(b)
    return value if INT64_MIN <= value <= INT64_MAX else None


def digit_run(buf: bytes, k: int, n: int, limit: int) -> tuple[int, int]:
    """The value of the ASCII digits of ``buf`` from ``k``, and the position after them:
    the run stops at a non-digit, at ``n``, or once ``limit`` + 1 digits are read (so the
    caller sees that there were too many without reading an unbounded run). The hand
    parsers of RESP headers call it (``resp.reader`` for requests, ``proxy.replies`` for
    a shard's replies), each with its own rules around it."""
    value = 0
    stop = min(n, k + limit + 1)
    while k < stop:
        c = buf[k]
        if c < 0x30 or c > 0x39:
            break
        value = value * 10 + (c - 0x30)
        k += 1
    return value, k


def parse_ll_text(text: str) -> int | None:
    """``parse_ll`` on a str (config values): the same rules; non-ASCII is refused."""
    if not text.isascii():
        return None
    return parse_ll(text.encode("ascii"))
