"""The ``bit``, ``cjson``, ``cmsgpack`` and ``struct`` libraries Redis ships to Lua,
written in Python and registered into the Lua state by ``vm``.

Owns: their behaviour as Redis's documentation and its bundled libraries define it (the
results probed against redis-server: 32-bit signed ``bit`` results, cjson's escaping of
``/`` and ``%.14g`` numbers, cmsgpack's choice of array vs map and of float32 when exact).
Never touches the engine. Lua tables come in as lupa ``LuaTable`` objects; Lua strings as
``bytes`` (the runtime has no encoding).
"""

from __future__ import annotations

import json
import math
import struct as pystruct
from collections.abc import Callable
from typing import Any, Literal

import msgpack

# Deepest nesting cjson and cmsgpack encode or decode (Redis's cjson default is 1000).
NESTING_MAX = 1000

LuaNew = Callable[[Any], Any]  # builds a Lua table from a Python dict or list


def _is_table(v: Any) -> bool:
    return type(v).__name__ == "_LuaTable"


def _u32(x: Any) -> int:
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return 0
        x = int(x)
    return int(x) & 0xFFFFFFFF


def _s32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def bit_functions() -> dict[bytes, Callable[..., Any]]:
    """LuaBitOp's functions: operands are taken modulo 2^32, results are signed 32-bit."""

    def tohex(x: Any, n: Any = 8) -> bytes:
        n = int(n)
        upper = n < 0
        n = min(abs(n), 8) or 8
        s = "%08x" % _u32(x)
        s = s[-n:]
        return (s.upper() if upper else s).encode()

    def rol(x: Any, n: Any) -> int:
        v, k = _u32(x), int(n) & 31
        return _s32((v << k) | (v >> (32 - k)))

    def ror(x: Any, n: Any) -> int:
        v, k = _u32(x), int(n) & 31
        return _s32((v >> k) | (v << (32 - k)))

    def reduce(op: Callable[[int, int], int], start: int) -> Callable[..., int]:
        def f(*xs: Any) -> int:
            acc = start
            for x in xs:
                acc = op(acc, _u32(x))
            return _s32(acc)

        return f

    return {
        b"tobit": lambda x: _s32(_u32(x)),
        b"tohex": tohex,
        b"bnot": lambda x: _s32(~_u32(x)),
        b"band": reduce(lambda a, b: a & b, 0xFFFFFFFF),
        b"bor": reduce(lambda a, b: a | b, 0),
        b"bxor": reduce(lambda a, b: a ^ b, 0),
        b"lshift": lambda x, n: _s32(_u32(x) << (int(n) & 31)),
        b"rshift": lambda x, n: _s32(_u32(x) >> (int(n) & 31)),
        b"arshift": lambda x, n: _s32(_s32(_u32(x)) >> (int(n) & 31)),
        b"rol": rol,
        b"ror": ror,
        b"bswap": lambda x: _s32(int.from_bytes(_u32(x).to_bytes(4, "little"), "big")),
    }


# -- Lua values <-> Python values ----------------------------------------------------------


def _array_len(t: Any) -> int | None:
    """The length of ``t`` as an array (keys exactly 1..n), or None for a map."""
    n = 0
    count = 0
    for k in t.keys():
        if isinstance(k, bool) or not isinstance(k, int | float) or k < 1 or k != int(k):
            return None
        count += 1
        n = max(n, int(k))
    return n if n == count else None


def _sparse_len(t: Any) -> int | None:
    """cjson's array test: every key a positive integer; holes become null unless the
    array is "excessively sparse" (past 10 and over twice its items: an error)."""
    n = 0
    count = 0
    for k in t.keys():
        if isinstance(k, bool) or not isinstance(k, int | float) or k < 1 or k != int(k):
            return None
        count += 1
        n = max(n, int(k))
    if n > 10 and n > 2 * count:
        raise ValueError("Cannot serialise table: excessively sparse array")
    return n


def _num(x: float | int) -> bytes:
    if isinstance(x, int) and not isinstance(x, bool):
        return b"%d" % x
    if math.isnan(x) or math.isinf(x):
        raise ValueError("Cannot serialise inf or nan")
    if x == int(x) and abs(x) < 1e15:
        return b"%d" % int(x) if not (x == 0 and math.copysign(1, x) < 0) else b"-0"
    return b"%.14g" % x


_JSON_ESC = {
    0x22: b'\\"',
    0x5C: b"\\\\",
    0x2F: b"\\/",
    0x08: b"\\b",
    0x0C: b"\\f",
    0x0A: b"\\n",
    0x0D: b"\\r",
    0x09: b"\\t",
}


def _json_str(s: bytes) -> bytes:
    out = bytearray(b'"')
    for ch in s:
        esc = _JSON_ESC.get(ch)
        if esc is not None:
            out += esc
        elif ch < 0x20 or ch == 0x7F:
            out += b"\\u%04x" % ch
        else:
            out.append(ch)
    out += b'"'
    return bytes(out)


class CJson:
    """cjson.encode / cjson.decode; ``null`` is the Lua value cjson.null."""

    def __init__(self, new_table: LuaNew, null: Any) -> None:
        self.new_table = new_table
        self.null = null

    def encode(self, v: Any) -> bytes:
        out: list[bytes] = []
        self._enc(v, out, 0)
        return b"".join(out)

    def _enc(self, v: Any, out: list[bytes], depth: int) -> None:
        if depth > NESTING_MAX:
            raise ValueError("Cannot serialise, excessive nesting (1001)")
        # cjson.null comes back from Lua as a new wrapper of the same userdata: any
        # userdata a script hands over is taken for it.
        if v is None or v is self.null or type(v).__name__ == "_LuaObject":
            out.append(b"null")
        elif v is True:
            out.append(b"true")
        elif v is False:
            out.append(b"false")
        elif isinstance(v, int | float):
            out.append(_num(v))
        elif isinstance(v, bytes):
            out.append(_json_str(v))
        elif _is_table(v):
            n = _sparse_len(v)
            if n is not None and n > 0:
                out.append(b"[")
                for i in range(1, n + 1):
                    if i > 1:
                        out.append(b",")
                    self._enc(v[i], out, depth + 1)
                out.append(b"]")
            elif n == 0:
                out.append(b"{}")
            else:
                out.append(b"{")
                first = True
                for k, x in v.items():
                    if isinstance(k, int | float) and not isinstance(k, bool):
                        k = _num(k)
                    if not isinstance(k, bytes):
                        raise ValueError(
                            "Cannot serialise table: table key must be a number or string"
                        )
                    if not first:
                        out.append(b",")
                    first = False
                    out.append(_json_str(k) + b":")
                    self._enc(x, out, depth + 1)
                out.append(b"}")
        else:
            raise ValueError(f"Cannot serialise {type(v).__name__}: type not supported")

    def decode(self, s: bytes) -> Any:
        try:
            doc = json.loads(s.decode("utf-8", "surrogateescape"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"Expected value but found invalid token ({e})") from None
        return self._lua(doc, 0)

    def _lua(self, x: Any, depth: int) -> Any:
        if depth > NESTING_MAX:
            raise ValueError("Found too many nested data structures (1001)")
        if x is None:
            return self.null
        if isinstance(x, str):
            return x.encode("utf-8", "surrogateescape")
        if isinstance(x, bool):
            return x
        if isinstance(x, int | float):
            return float(x) if isinstance(x, int) and abs(x) >= 1 << 53 else x
        if isinstance(x, list):
            return self.new_table([self._lua(i, depth + 1) for i in x])
        return self.new_table(
            {k.encode("utf-8", "surrogateescape"): self._lua(v, depth + 1) for k, v in x.items()}
        )


def _header(n: int, fix: int, code16: int) -> bytes:
    """A msgpack array (0x90 / 0xdc / 0xdd) or map (0x80 / 0xde / 0xdf) header."""
    if n < 16:
        return bytes([fix | n])
    if n < 1 << 16:
        return bytes([code16]) + n.to_bytes(2, "big")
    return bytes([code16 + 1]) + n.to_bytes(4, "big")


class CMsgpack:
    """cmsgpack.pack(...) / cmsgpack.unpack(s): a table is an array when its keys are
    exactly 1..n, else a map; a number is an integer when whole, else float32 when that
    is exact, else float64 (lua-cmsgpack's choices)."""

    def __init__(self, new_table: LuaNew) -> None:
        self.new_table = new_table

    def pack(self, *vals: Any) -> bytes:
        if not vals:
            raise ValueError("MessagePack pack needs input.")
        return b"".join(self._pack(v, 0) for v in vals)

    def _pack(self, v: Any, depth: int) -> bytes:
        if v is None:
            return b"\xc0"
        if v is True or v is False:
            return msgpack.packb(v)  # type: ignore[no-any-return]
        if isinstance(v, int):
            return msgpack.packb(v)  # type: ignore[no-any-return]
        if isinstance(v, float):
            if v == int(v) if math.isfinite(v) else False:
                if -(1 << 63) <= v < (1 << 64):
                    return msgpack.packb(int(v))  # type: ignore[no-any-return]
            f32 = pystruct.unpack(">f", pystruct.pack(">f", v))[0] if math.isfinite(v) else v
            if f32 == v or math.isnan(v):
                return b"\xca" + pystruct.pack(">f", v)
            return b"\xcb" + pystruct.pack(">d", v)
        if isinstance(v, bytes):
            return msgpack.packb(v, use_bin_type=False)  # type: ignore[no-any-return]
        if _is_table(v) and depth < 16:
            n = _array_len(v)
            if n is not None:
                head = _header(n, 0x90, 0xDC)
                return head + b"".join(self._pack(v[i], depth + 1) for i in range(1, n + 1))
            items = list(v.items())
            return _header(len(items), 0x80, 0xDE) + b"".join(
                self._pack(k, depth + 1) + self._pack(x, depth + 1) for k, x in items
            )
        return b"\xc0"  # functions, userdata, too deep: nil

    def unpack(self, s: bytes) -> tuple[Any, ...]:
        u = msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=0)
        u.feed(s)
        try:
            return tuple(self._lua(x) for x in u)
        except ValueError as e:
            raise ValueError(f"Bad data format in input. ({e})") from None

    def _lua(self, x: Any) -> Any:
        if isinstance(x, list | tuple):
            return self.new_table([self._lua(i) for i in x])
        if isinstance(x, dict):
            return self.new_table({self._lua(k): self._lua(v) for k, v in x.items()})
        return x


# -- struct (Roberto Ierusalimschy's struct library, as Redis bundles it) ------------------

_INT_SIZES = {b"b": 1, b"B": 1, b"h": 2, b"H": 2, b"l": 8, b"L": 8, b"T": 8, b"i": 4, b"I": 4}


def _struct_items(fmt: bytes) -> list[tuple[str, int, bool, str]]:
    """(kind, size, signed, endian) for each item; kind: int, float, double, chars,
    string, zstring, pad."""
    out: list[tuple[str, int, bool, str]] = []
    endian = "<"
    i = 0
    while i < len(fmt):
        ch = fmt[i : i + 1]
        i += 1
        j = i
        while j < len(fmt) and 48 <= fmt[j] <= 57:
            j += 1
        num = int(fmt[i:j]) if j > i else None
        i = j
        if ch in (b"<", b">", b"="):
            endian = {b"<": "<", b">": ">", b"=": "<"}[ch]
        elif ch == b"!" or ch == b" ":
            continue
        elif ch in _INT_SIZES:
            size = num if (num is not None and ch in (b"i", b"I")) else _INT_SIZES[ch]
            if size < 1 or size > 8:
                raise ValueError(f"integral size {size} is larger than limit of 8")
            out.append(("int", size, ch.islower(), endian))
        elif ch == b"f":
            out.append(("float", 4, True, endian))
        elif ch == b"d":
            out.append(("double", 8, True, endian))
        elif ch == b"c":
            out.append(("chars", 1 if num is None else num, False, endian))
        elif ch == b"s":
            out.append(("string", 8 if num is None else num, False, endian))
        elif ch == b"z":
            out.append(("zstring", 0, False, endian))
        elif ch == b"x":
            out.append(("pad", 1, False, endian))
        else:
            raise ValueError(f"invalid format option '{ch.decode('latin-1')}'")
    return out


class Struct:
    """struct.pack / struct.unpack / struct.size."""

    def pack(self, fmt: bytes, *vals: Any) -> bytes:
        out = bytearray()
        args = list(vals)
        for kind, size, _signed, endian in _struct_items(fmt):
            if kind == "pad":
                out += b"\x00"
                continue
            if not args:
                raise ValueError("bad argument to 'pack' (no value)")
            v = args.pop(0)
            if kind == "int":
                n = int(v) & ((1 << (8 * size)) - 1)
                out += n.to_bytes(size, "little" if endian == "<" else "big")
            elif kind in ("float", "double"):
                out += pystruct.pack(endian + ("f" if kind == "float" else "d"), float(v))
            elif kind == "chars":
                s = v if isinstance(v, bytes) else _num(v)
                n = len(s) if size == 0 else size
                if len(s) < n:
                    raise ValueError("string too short")
                out += s[:n]
            elif kind == "string":
                s = v if isinstance(v, bytes) else _num(v)
                out += len(s).to_bytes(size, "little" if endian == "<" else "big") + s
            else:  # zstring
                s = v if isinstance(v, bytes) else _num(v)
                out += s + b"\x00"
        return bytes(out)

    def unpack(self, fmt: bytes, data: bytes, pos: Any = 1) -> tuple[Any, ...]:
        i = int(pos) - 1
        res: list[Any] = []
        for kind, size, signed, endian in _struct_items(fmt):
            order: Literal["little", "big"] = "little" if endian == "<" else "big"
            if kind == "pad":
                i += 1
                continue
            if kind == "zstring":
                end = data.find(b"\x00", i)
                if end < 0:
                    raise ValueError("unfinished string in data")
                res.append(data[i:end])
                i = end + 1
                continue
            if kind == "string":
                if i + size > len(data):
                    raise ValueError("data string too short")
                n = int.from_bytes(data[i : i + size], order)
                i += size
                size, kind = n, "chars"
            if i + size > len(data):
                raise ValueError("data string too short")
            chunk = data[i : i + size]
            i += size
            if kind == "int":
                res.append(int.from_bytes(chunk, order, signed=signed))
            elif kind == "float":
                res.append(pystruct.unpack(endian + "f", chunk)[0])
            elif kind == "double":
                res.append(pystruct.unpack(endian + "d", chunk)[0])
            else:
                res.append(chunk)
        res.append(i + 1)
        return tuple(res)

    def size(self, fmt: bytes) -> int:
        total = 0
        for kind, size, _s, _e in _struct_items(fmt):
            if kind in ("string", "zstring"):
                raise ValueError("options 's' and 'z' have no fixed size")
            total += size
        return total
