"""Sans-IO reader of client requests (RESP multibulk and inline commands).

Owns: turning the bytes a client sends into complete commands (lists of bytes), enforcing
Redis's request limits with Redis's error texts. Never touches sockets, clocks or the
keyspace; the shell feeds bytes in and executes what comes out.

Two paths give the same results:
- the fast path hands a chunk that starts on a command boundary to hiredis's C reader;
  it is taken while the chunk holds only complete multibulk commands of the client's own
  (authenticated) limits, which is the common case for pipelined traffic;
- the exact path is a resumable Python parser. It takes over for inline commands, for
  a command that straddles reads (big values, huge pipelines), for unauthenticated
  clients (whose limits are tighter) and whenever hiredis objects to something, so every
  malformed request gets Redis's own error text.

States: at a boundary (``_buf`` empty) or inside a partial command (``_buf`` holds it).
After an error the reader is dead: ``error`` is set and it returns nothing more; the
client sends the error (if any text) and closes, as Redis does.
"""

from __future__ import annotations

import re
from importlib.machinery import EXTENSION_SUFFIXES

import hiredis

from .argsplit import split_args
from .ints import digit_run, parse_ll

__all__ = ["ProtocolError", "RequestReader", "split_args"]

# Redis: PROTO_INLINE_MAX_SIZE, the longest inline request or header line (bytes).
INLINE_MAX_BYTES = 64 * 1024
# Redis: a multibulk count above INT_MAX is refused.
MULTIBULK_MAX_ARGS = 2**31 - 1
# What one parsed argument costs besides its payload (object header and list slot).
ARG_OVERHEAD_BYTES = 48
# Redis 7.0+: limits for clients that still have to authenticate.
UNAUTH_MULTIBULK_MAX_ARGS = 10
UNAUTH_BULK_MAX_BYTES = 16384


# An aggregate header with six or more digits: hiredis allocates its list when the first
# element arrives (2**31 slots is 16 GiB of address space, and seconds to free), so such
# reads go to the Python parser, which builds arguments as they come, within the limits.
# A pattern that opens with a character class is tried at every byte (measured: 160 ns
# a SADD of a 16-deep pipeline, 40% of parsing it); one that opens with a literal is found
# by a fast scan, and the rarer headers are looked for only when their byte occurs at all.
# Those bytes are looked for as ints: ``b"%" in data`` first tries its operand as an int
# and formats the TypeError it gets (CPython 3.11: 730 ns for the four, against 70).
_HUGE_AGGREGATE = re.compile(rb"[*%~>|]-?[0-9]{6}")
_HUGE_ARRAY = re.compile(rb"\*-?[0-9]{6}")


def _huge_aggregate(data: bytes) -> bool:
    if _HUGE_ARRAY.search(data) is not None:
        return True
    if 0x25 in data or 0x7E in data or 0x3E in data or 0x7C in data:  # % ~ > |
        return _HUGE_AGGREGATE.search(data) is not None
    return False


# Reads of up to this many bytes are parsed by hand (``_parse_small``) when this module
# runs compiled: hiredis with its probe and the huge-header check cost about 0.85 us a
# one-SET read in process (1.4 us in the server, caches cold), the hand parser 0.16; a
# 16-SET pipeline 3.5 against 1.7 us (docs/performance.md, "Third pass"). Interpreted,
# the hand parser is the slower one, and hiredis keeps every read. Positions must stay
# under 2**16 (``_digits`` packs them).
_SMALL_BYTES = 16384 if __file__.endswith(tuple(EXTENSION_SUFFIXES)) else 0


def _digits(data: bytes, pos: int, n: int) -> int:
    """The decimal number at ``pos`` up to the CR LF that must follow it, and the position
    after the CR LF packed as ``value << 16 | end``; -1 unless there are 1 to 9 digits
    without a superfluous leading zero, then CR LF."""
    v, k = digit_run(data, pos, n, 9)
    d = k - pos
    if d == 0 or d > 9 or (d > 1 and data[pos] == 0x30):
        return -1
    if k + 1 >= n or data[k] != 0x0D or data[k + 1] != 0x0A:
        return -1
    return (v << 16) | (k + 2)


def _parse_small(data: bytes) -> list[list[bytes]] | None:
    """Every request of ``data`` when it is a run of complete, well-formed arrays of
    bulk strings (1 to 99 of them, each header without a sign or a leading zero), ending on
    a command boundary; None for anything else, which the exact paths then take (their
    answer for such input is this one)."""
    n = len(data)
    out: list[list[bytes]] = []
    pos = 0
    while pos < n:
        if data[pos] != 0x2A:  # '*'
            return None
        r = _digits(data, pos + 1, n)
        if r < 0:
            return None
        count = r >> 16
        pos = r & 0xFFFF
        if count == 0 or count > 99:
            return None
        args: list[bytes] = []
        for _ in range(count):
            if pos >= n or data[pos] != 0x24:  # '$'
                return None
            r = _digits(data, pos + 1, n)
            if r < 0:
                return None
            start = r & 0xFFFF
            end = start + (r >> 16)
            if end + 1 >= n or data[end] != 0x0D or data[end + 1] != 0x0A:
                return None
            args.append(data[start:end])
            pos = end + 2
        out.append(args)
    return out


class ProtocolError(Exception):
    """The client broke the protocol. ``reply`` is the error text to send (may be None
    when Redis closes without a reply, as for the query buffer limit)."""

    def __init__(self, reply: str | None, log: str = "") -> None:
        super().__init__(reply or log)
        self.reply = reply
        self.log = log or (reply or "")


class RequestReader:
    """Incremental reader of a client's requests.

    ``feed(data)`` returns the commands completed by ``data`` (each a non-empty list of
    bytes). If the client broke the protocol, the commands before the fault are returned
    and ``error`` is set; nothing is returned after that.
    """

    __slots__ = (
        "max_bulk_bytes",
        "max_query_bytes",
        "authenticated",
        "error",
        "_hr",
        "_buf",
        "_pos",
        "_args",
        "_left",
        "_bulk",
        "_cmd_bytes",
        "more",
        "stepwise",
    )

    def __init__(
        self,
        max_bulk_bytes: int = 512 * 1024 * 1024,
        max_query_bytes: int = 1024 * 1024 * 1024,
        authenticated: bool = True,
        stepwise: bool = False,
    ) -> None:
        self.max_bulk_bytes = max_bulk_bytes  # proto-max-bulk-len
        self.max_query_bytes = max_query_bytes  # client-query-buffer-limit
        self.authenticated = authenticated
        # A client whose AUTH decides its limits (a server's, an endpoint's): while it is
        # not authenticated, one command per feed (``more``), as Redis runs them.
        self.stepwise = stepwise
        self.error: ProtocolError | None = None
        self._hr = hiredis.Reader()
        self._buf = bytearray()  # the partial command, from its first byte
        self._pos = 0  # parse position in _buf
        self._args: list[bytes] | None = None  # arguments of the partial multibulk
        self._left = 0  # arguments still to read
        self._bulk = -1  # length of the bulk being read, -1 while reading its header
        # Bytes taken by the arguments of the partial command so far (they count against
        # the query buffer limit, as Redis counts argv).
        self._cmd_bytes = 0
        # An unauthenticated client's commands come one per call: True when complete
        # bytes wait behind the one returned (feed b"" once it ran).
        self.more = False

    def pending_bytes(self) -> int:
        """Bytes held for a partial command (the query buffer, for INFO and limits).
        0 does not mean "between commands": parsed arguments of a partial command are
        no longer in the buffer (see ``at_boundary``)."""
        return len(self._buf)

    def at_boundary(self) -> bool:
        """Whether the bytes fed so far end exactly after a complete command."""
        return self._args is None and not self._buf

    def feed(self, data: bytes) -> list[list[bytes]]:
        if self.error is not None:
            return []
        if not self._buf:
            if data[:1] == b"*" and self.authenticated:
                out = self._fast(data)
                if out is not None:
                    return out
            self._buf += data
            self._pos = 0
            return self._slow()
        self._buf += data
        return self._slow()

    def _fast(self, data: bytes) -> list[list[bytes]] | None:
        """All of ``data`` by the hand parser (compiled, small reads) or hiredis, or None
        to fall back to the exact path.

        hiredis cannot say whether it holds a partial request, so a probe follows the
        data: a top-level integer, which no multibulk request can produce or absorb into
        a complete reply. Only when the probe comes back last did the chunk end on a
        command boundary.
        """
        n = len(data)
        if n <= _SMALL_BYTES and n <= self.max_bulk_bytes and n <= self.max_query_bytes:
            small = _parse_small(data)
            if small is not None:
                return small
        if _huge_aggregate(data):
            return None  # hiredis would size a huge list up front: parse exactly instead
        hr = self._hr
        hr.feed(data)
        hr.feed(b":0\r\n")
        out = []
        try:
            cmd = hr.gets()
            while cmd.__class__ is list:
                for a in cmd:
                    if a.__class__ is not bytes:
                        raise ValueError
                if cmd:  # *0 is an empty request: skipped, as Redis does
                    out.append(cmd)
                cmd = hr.gets()
            while cmd is None:  # *-1: also an empty request
                cmd = hr.gets()
                while cmd.__class__ is list:
                    for a in cmd:
                        if a.__class__ is not bytes:
                            raise ValueError
                    if cmd:
                        out.append(cmd)
                    cmd = hr.gets()
        except (hiredis.ProtocolError, ValueError, TypeError):
            self._hr = hiredis.Reader()
            return None
        if cmd != 0 or cmd.__class__ is not int or hr.gets() is not False:
            self._hr = hiredis.Reader()
            return None
        if n > self.max_bulk_bytes:
            for cmd in out:
                for a in cmd:
                    if len(a) > self.max_bulk_bytes:
                        return None
        return out

    def _fail(self, reply: str | None, log: str = "") -> None:
        self.error = ProtocolError(reply, log)
        self._buf = bytearray()
        self._pos = 0

    def _slow(self) -> list[list[bytes]]:
        out: list[list[bytes]] = []
        buf = self._buf
        self.more = False
        # One hand-back to the fast path per call: when it fails, the buffer ends inside a
        # command, and it would fail again after every later command of this call (each
        # try copies and parses the whole rest: quadratic in a big pipelined read).
        fast_tried = False
        while self._pos < len(buf):
            if self._args is None:
                if buf[self._pos] == 0x2A:  # '*'
                    if not self._multibulk_header():
                        break
                else:
                    cmd = self._inline()
                    if cmd is None:
                        break
                    if cmd:
                        out.append(cmd)
                        if self.stepwise and not self.authenticated:
                            self.more = self._pos < len(buf)
                            break
                    continue
            if self.error is not None:
                return out
            if self._args is not None:
                cmd = self._bulks()
                if cmd is None:
                    break
                out.append(cmd)
                if self.stepwise and not self.authenticated:
                    # Redis parses and runs one command at a time: an AUTH pipelined
                    # with what follows must run before the rest is held to the
                    # unauthenticated limits. The caller runs this one, then feeds b"".
                    self.more = self._pos < len(buf)
                    break
                # A command completed: if the rest is plain multibulk traffic, hand it
                # back to the fast path instead of parsing it here.
                if (
                    not fast_tried
                    and self.authenticated
                    and self._pos < len(buf)
                    and buf[self._pos] == 0x2A
                ):
                    fast_tried = True
                    rest = bytes(buf[self._pos :])
                    self._buf = buf = bytearray()
                    self._pos = 0
                    fast = self._fast(rest)
                    if fast is not None:
                        out.extend(fast)
                        return out
                    self._buf = buf = bytearray(rest)
        if self.error is not None:
            return out
        if self._pos >= len(buf):
            self._buf = bytearray()
            self._pos = 0
        elif self._pos > 65536:
            del buf[: self._pos]
            self._pos = 0
        if len(self._buf) > self.max_query_bytes:
            self._fail(None, "Closing client that reached max query buffer length")
        return out

    def _line(self, too_big: str) -> bytes | None:
        """The header line at ``_pos`` without its CRLF, or None if incomplete."""
        buf = self._buf
        end = buf.find(b"\r", self._pos)
        if end < 0 or end + 1 >= len(buf):
            if len(buf) - self._pos > INLINE_MAX_BYTES:
                self._fail("ERR Protocol error: " + too_big)
            return None
        line = bytes(buf[self._pos + 1 : end])
        self._pos = end + 2
        return line

    def _multibulk_header(self) -> bool:
        start = self._pos
        line = self._line("too big mbulk count string")
        if line is None:
            return False
        n = parse_ll(line)
        if n is None or n > MULTIBULK_MAX_ARGS:
            self._fail("ERR Protocol error: invalid multibulk length")
            return False
        if n > UNAUTH_MULTIBULK_MAX_ARGS and not self.authenticated:
            self._fail("ERR Protocol error: unauthenticated multibulk length")
            return False
        if n <= 0:
            return True  # an empty request: nothing to run
        self._args = []
        self._left = n
        self._bulk = -1
        self._cmd_bytes = 0
        del start
        return True

    def _bulks(self) -> list[bytes] | None:
        buf = self._buf
        args = self._args
        assert args is not None
        while self._left:
            if self._bulk < 0:
                if self._pos >= len(buf):
                    return None
                if buf[self._pos] != 0x24:  # '$'
                    if (
                        buf.find(b"\r\n", self._pos) < 0
                        and len(buf) - self._pos <= INLINE_MAX_BYTES
                    ):
                        return None
                    got = chr(buf[self._pos])
                    self._fail(f"ERR Protocol error: expected '$', got '{got}'")
                    return None
                line = self._line("too big bulk count string")
                if line is None:
                    return None
                n = parse_ll(line)
                if n is None or n < 0 or n > self.max_bulk_bytes:
                    self._fail("ERR Protocol error: invalid bulk length")
                    return None
                if n > UNAUTH_BULK_MAX_BYTES and not self.authenticated:
                    self._fail("ERR Protocol error: unauthenticated bulk length")
                    return None
                self._bulk = n
            n = self._bulk
            if len(buf) - self._pos < n + 2:
                if len(buf) > self.max_query_bytes:
                    self._fail(None, "Closing client that reached max query buffer length")
                return None
            args.append(bytes(buf[self._pos : self._pos + n]))
            self._pos += n + 2  # Redis skips the CRLF after the payload unchecked
            self._cmd_bytes += n + ARG_OVERHEAD_BYTES
            if self._cmd_bytes > self.max_query_bytes:
                self._fail(None, "Closing client that reached max query buffer length")
                return None
            self._bulk = -1
            self._left -= 1
        self._args = None
        return args

    def _inline(self) -> list[bytes] | None:
        buf = self._buf
        end = buf.find(b"\n", self._pos)
        # Redis looks for the newline with strchr: a NUL before it hides it, and the
        # request waits as if incomplete until it passes the inline limit.
        if end >= 0 and buf.find(b"\0", self._pos, end) >= 0:
            end = -1
        if end < 0:
            if len(buf) - self._pos > INLINE_MAX_BYTES:
                self._fail("ERR Protocol error: too big inline request")
            return None
        line = bytes(buf[self._pos : end])
        self._pos = end + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        args = split_args(line)
        if args is None:
            self._fail("ERR Protocol error: unbalanced quotes in request")
            return None
        return args
