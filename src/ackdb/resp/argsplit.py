"""Splitting a line into arguments as Redis's ``sdssplitargs`` (sds.c) does: the one
implementation, used for inline commands and redis.conf / CONFIG lines.

Owns: the quoting rules. Never does IO; pure functions only.

The rules, from sds.c:
- blanks (C ``isspace``: space, tab, CR, LF, VT, FF) separate arguments;
- outside quotes an argument ends at space, tab, CR or LF only (VT and FF belong to it);
- in "double quotes": ``\\n \\r \\t \\b \\a``, ``\\xHH`` (two hex digits), and a backslash
  before any other character is that character;
- in 'single quotes' only ``\\'`` is an escape;
- a closing quote must be followed by a blank or the end, else the line is refused;
- sdssplitargs reads a C string, so a NUL byte ends the line: what follows is ignored
  (and a quote still open there is unbalanced).
"""

from __future__ import annotations

_BLANK = b" \t\r\n\v\f"  # C isspace()
_TOKEN_END = b" \t\r\n"  # sdssplitargs' switch: ' ', '\n', '\r', '\t' (and '\0')
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = b"0123456789abcdefABCDEF"


def split_args(line: bytes) -> list[bytes] | None:
    """The arguments of ``line``, or None when its quotes are unbalanced."""
    nul = line.find(b"\0")
    if nul >= 0:
        line = line[:nul]
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _BLANK:
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        quote = 0  # 0x22 inside "double", 0x27 inside 'single' quotes
        while True:
            if i >= n:
                if quote:
                    return None
                break
            ch = line[i]
            if quote == 0x22:
                if ch == 0x5C and i + 3 < n and line[i + 1] == 0x78 and _is_hex(line, i + 2):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif ch == 0x5C and i + 1 < n:
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif ch == 0x22:
                    if i + 1 < n and line[i + 1] not in _BLANK:
                        return None
                    i += 1
                    break
                else:
                    cur.append(ch)
            elif quote == 0x27:
                if ch == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    cur.append(0x27)
                elif ch == 0x27:
                    if i + 1 < n and line[i + 1] not in _BLANK:
                        return None
                    i += 1
                    break
                else:
                    cur.append(ch)
            elif ch in _TOKEN_END:
                break
            elif ch == 0x22 or ch == 0x27:
                quote = ch
            else:
                cur.append(ch)
            i += 1
        args.append(bytes(cur))


def split_args_text(line: str) -> list[str] | None:
    """``split_args`` on a str (config lines): bytes that are not UTF-8 (from ``\\xHH`` or
    the file) come back as surrogate escapes, so they survive a round trip."""
    raw = split_args(line.encode("utf-8", "surrogateescape"))
    if raw is None:
        return None
    return [a.decode("utf-8", "surrogateescape") for a in raw]


def _is_hex(line: bytes, i: int) -> bool:
    return line[i] in _HEX and line[i + 1] in _HEX
