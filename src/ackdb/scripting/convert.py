"""Conversions between Lua values and RESP, both ways, with Redis's rules.

Owns (Redis docs, "Data type conversion"):
- RESP -> Lua, for what ``redis.call`` returns: integer -> number, bulk -> string, array
  -> table, status -> ``{ok=...}``, error -> ``{err=...}``, RESP2 null -> ``false``; and
  under ``redis.setresp(3)``: map -> ``{map={...}}``, set -> ``{set={m=true}}``, null ->
  ``nil``, boolean -> boolean, double -> ``{double=n}``, big number -> ``{big_number=s}``,
  verbatim -> ``{verbatim_string={format=f, string=s}}``.
- Lua -> RESP, for what a script returns, in the caller's protocol: number -> integer
  (truncated toward zero; out of range or NaN -> the C cast's INT64_MIN), string -> bulk,
  table -> array up to the first nil, ``{ok}`` / ``{err}`` / ``{double}`` / ``{map}`` /
  ``{set}`` / ``{big_number}`` / ``{verbatim_string}`` as their types (flattened for RESP2),
  ``true`` -> 1 (RESP3: true), ``false`` -> null (RESP3: false), ``nil`` -> null.
Never runs anything: pure functions over bytes and lupa tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from ..resp import encoder as enc

INT64_MIN: Final = -(1 << 63)
# Longest array built through a Lua call's arguments (Lua's C stack takes about 8000);
# longer ones go through the general table builder.
ARRAY_ARGS_MAX: Final = 1000
# Deepest reply nesting converted either way (Redis's LUA_CMD_OBJCACHE... limit is the
# Lua stack; 1000 levels keeps Python's recursion well inside its limit).
DEPTH_MAX: Final = 1000


def _int_of(x: Any) -> int:
    if isinstance(x, int):
        return x
    if math.isnan(x) or math.isinf(x) or not (-(2.0**63) <= x < 2.0**63):
        return INT64_MIN
    return int(x)


def arg_bytes(v: Any) -> bytes | None:
    """A ``redis.call`` argument as bytes, None if invalid. Numbers are written with
    ``%.17g`` (as redis-server 7.0 does: 0.1+0.2 -> 0.30000000000000004)."""
    cls = type(v)
    if cls is bytes:
        return v  # type: ignore[no-any-return]
    if cls is int:
        return b"%d" % v
    if cls is float:
        return b"%.17g" % v
    return None


def fmt_number(x: float) -> bytes:
    """Lua 5.1's ``tostring`` of a number (``%.14g``)."""
    if x == int(x) if math.isfinite(x) else False:
        if abs(x) < 1e15:
            return b"%d" % int(x) if not (x == 0 and math.copysign(1, x) < 0) else b"-0"
    if math.isnan(x):
        return b"nan" if math.copysign(1, x) > 0 else b"-nan"
    if math.isinf(x):
        return b"inf" if x > 0 else b"-inf"
    return b"%.14g" % x


def double_text(x: float) -> bytes:
    """A double reply's text: the shortest form that reads back the same (Redis 7.2)."""
    if math.isnan(x):
        return b"nan"
    if math.isinf(x):
        return b"inf" if x > 0 else b"-inf"
    if x == int(x) and abs(x) < 1e17:
        return b"%d" % int(x)
    return repr(x).encode()


def _clean(s: bytes) -> bytes:
    """Status and error texts cannot hold CR or LF: Redis turns them into spaces."""
    if b"\r" in s or b"\n" in s:
        return s.replace(b"\r", b" ").replace(b"\n", b" ")
    return s


def error_text(msg: bytes) -> bytes:
    """``redis.error_reply``'s message: a leading ``-`` dropped; ``ERR `` added to a
    message without an error code (a message of one word)."""
    if msg[:1] == b"-":
        return msg[1:]
    if b" " not in msg:
        return b"ERR " + msg
    return msg


# How many ``{ok="OK"}`` tables one call into Lua makes ahead (each is handed out once).
OK_TABLES_BATCH: Final = 64


class ReplyToLua:
    """Parses one encoded reply (RESP2 or RESP3) into Lua values.

    ``table`` builds any table from a Python dict or list (lupa's ``table_from``, general
    and slow: about 4 us); ``ok``, ``err`` and ``array`` are Lua constructors for the
    common shapes (``{ok=s}``, ``{err=s}``, ``{...}``), several times faster; ``oks(n)``
    makes n fresh ``{ok="OK"}`` tables in one call (a call into Lua costs more than a
    table), handed out one per reply by ``status``."""

    def __init__(
        self,
        table_from: Callable[[Any], Any],
        ok: Callable[[bytes], Any],
        err: Callable[[bytes], Any],
        array: Callable[..., Any],
        oks: Callable[[int], tuple[Any, ...]] | None = None,
    ) -> None:
        self.table = table_from
        self.ok = ok
        self.err = err
        self.array = array
        self._oks = oks
        self._ok_tables: list[Any] = []

    def status(self, text: bytes) -> Any:
        """A status reply's ``{ok=text}``: a fresh table each time (a script may change
        it), ``+OK``'s made ahead in batches."""
        if text == b"OK" and self._oks is not None:
            tables = self._ok_tables
            if not tables:
                tables.extend(self._oks(OK_TABLES_BATCH))
            return tables.pop()
        return self.ok(text)

    def convert(self, data: bytes) -> Any:
        """One whole reply: the common single-line shapes without the general parser."""
        t = data[0]
        if t == 0x24:  # $ bulk (a whole reply ends right after its payload)
            if data[1] == 0x2D:
                return False
            return data[data.index(b"\r\n") + 2 : -2]
        if t == 0x2B:
            return self.status(data[1:-2])
        if t == 0x3A:
            return int(data[1:-2])
        if t == 0x2D:
            return self.err(data[1:-2])
        v, _ = self._parse(data, 0)
        return v

    def _line(self, data: bytes, i: int) -> tuple[bytes, int]:
        end = data.index(b"\r\n", i)
        return data[i + 1 : end], end + 2

    def _parse(self, data: bytes, i: int) -> tuple[Any, int]:
        t = data[i]
        if t == 0x24:  # $ bulk
            line, j = self._line(data, i)
            n = int(line)
            if n < 0:
                return False, j
            return data[j : j + n], j + n + 2
        if t == 0x3A:  # : integer
            line, j = self._line(data, i)
            return int(line), j
        if t == 0x2B:  # + status
            line, j = self._line(data, i)
            return self.status(line), j
        if t == 0x2D:  # - error
            line, j = self._line(data, i)
            return self.err(line), j
        if t == 0x2A:  # * array
            line, j = self._line(data, i)
            n = int(line)
            if n < 0:
                return False, j
            items = []
            for _ in range(n):
                v, j = self._parse(data, j)
                items.append(v)
            return (self.array(*items) if n <= ARRAY_ARGS_MAX else self.table(items)), j
        return self._parse3(data, i, t)

    def _parse3(self, data: bytes, i: int, t: int) -> tuple[Any, int]:
        line, j = self._line(data, i)
        if t == 0x25:  # % map
            d = {}
            for _ in range(int(line)):
                k, j = self._parse(data, j)
                v, j = self._parse(data, j)
                d[k] = v
            return self.table({b"map": self.table(d)}), j
        if t == 0x7E:  # ~ set
            members = {}
            for _ in range(int(line)):
                k, j = self._parse(data, j)
                members[k] = True
            return self.table({b"set": self.table(members)}), j
        if t == 0x5F:  # _ null
            return None, j
        if t == 0x23:  # # boolean
            return line == b"t", j
        if t == 0x2C:  # , double
            return self.table({b"double": float(line)}), j
        if t == 0x28:  # ( big number
            return self.table({b"big_number": line}), j
        if t == 0x3D:  # = verbatim
            n = int(line)
            body = data[j : j + n]
            inner = self.table({b"format": body[:3], b"string": body[4:]})
            return self.table({b"verbatim_string": inner}), j + n + 2
        if t == 0x3E:  # > push: an array to a script
            items = []
            for _ in range(int(line)):
                v, j = self._parse(data, j)
                items.append(v)
            return self.table(items), j
        raise ValueError(f"unexpected reply type {chr(t)!r}")


def to_resp(v: Any, resp3: bool, depth: int = 0, script3: bool = False) -> bytes:
    """Encode a script's result for a client speaking RESP3 (``resp3``) or RESP2.

    Booleans follow the script's own protocol (``script3``: it called redis.setresp(3)),
    as Redis's luaReplyToRedisReply: under RESP2 true is 1 and false a null; under RESP3
    they are booleans in the caller's protocol (RESP2 callers see 1 / 0)."""
    cls = type(v)
    if cls is bytes:
        return b"$%d\r\n%s\r\n" % (len(v), v)
    if cls is int:
        return b":%d\r\n" % v
    if cls is float:
        return b":%d\r\n" % _int_of(v)
    if v is None:
        return b"_\r\n" if resp3 else b"$-1\r\n"
    if v is True:
        return b"#t\r\n" if resp3 and script3 else b":1\r\n"
    if v is False:
        if script3:
            return b"#f\r\n" if resp3 else b":0\r\n"
        return b"_\r\n" if resp3 else b"$-1\r\n"
    if type(v).__name__ == "_LuaTable" and depth < DEPTH_MAX:
        return _table_to_resp(v, resp3, depth, script3)
    return b"_\r\n" if resp3 else b"$-1\r\n"  # functions, userdata, threads: nil


def _table_to_resp(t: Any, resp3: bool, depth: int, script3: bool) -> bytes:
    err = t[b"err"]
    if type(err) is bytes:
        return b"-%s\r\n" % _clean(err)
    ok = t[b"ok"]
    if type(ok) is bytes:
        return b"+%s\r\n" % _clean(ok)
    double = t[b"double"]
    if type(double) in (int, float):
        text = double_text(float(double))
        return enc.RESP3.double(text) if resp3 else enc.RESP2.double(text)
    m = t[b"map"]
    if type(m).__name__ == "_LuaTable":
        parts = []
        for k, x in m.items():
            parts.append(to_resp(k, resp3, depth + 1, script3))
            parts.append(to_resp(x, resp3, depth + 1, script3))
        head = b"%%%d\r\n" % (len(parts) // 2) if resp3 else b"*%d\r\n" % len(parts)
        return head + b"".join(parts)
    s = t[b"set"]
    if type(s).__name__ == "_LuaTable":
        members = [to_resp(k, resp3, depth + 1, script3) for k in s.keys()]
        head = b"~%d\r\n" % len(members) if resp3 else b"*%d\r\n" % len(members)
        return head + b"".join(members)
    big = t[b"big_number"]
    if type(big) is bytes:
        if resp3:
            return b"(%s\r\n" % _clean(big)
        return b"$%d\r\n%s\r\n" % (len(big), big)
    verb = t[b"verbatim_string"]
    if type(verb).__name__ == "_LuaTable":
        fmt, body = verb[b"format"], verb[b"string"]
        if type(fmt) is bytes and type(body) is bytes:
            if resp3:
                return b"=%d\r\n%s:%s\r\n" % (len(body) + 4, fmt[:3], body)
            return b"$%d\r\n%s\r\n" % (len(body), body)
    items = []
    i = 1
    while True:
        x = t[i]
        if x is None:
            break
        items.append(to_resp(x, resp3, depth + 1, script3))
        i += 1
    return b"*%d\r\n" % len(items) + b"".join(items)
