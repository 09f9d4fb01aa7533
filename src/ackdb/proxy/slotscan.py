"""CLUSTER COUNTKEYSINSLOT and GETKEYSINSLOT through an endpoint: the keys of one slot,
found by SCANning the shard that holds it and keeping the keys that hash to the slot.

Owns: ``SlotScan``, the core of one such request: the SCAN it sends next, what it keeps
of each SCAN page, and the final reply (an integer, or an array of at most ``limit``
keys). Never does IO: the shell sends ``request()`` to the shard, feeds each reply to
``on_reply`` and sends the client whatever that returns once it is not None.

Why SCAN and not a command of the shard: a shard is a plain ``ackdb server``, which, like
a standalone redis-server, keeps no slot -> keys index, and keeping one would add work to
every write of the per-command path. These two commands are rare (resharding tools use
them; ackdb reshards by itself), so the endpoint pays O(keys of the shard) per call, in
pages, without blocking the shard. SCAN's guarantee carries over: a key present for the
whole iteration is counted once; keys written meanwhile may or may not be.
"""

from __future__ import annotations

from ..cluster.keyslot import key_slot
from ..resp import encoder as enc

SCAN_PAGE_KEYS = 1000  # SCAN's COUNT hint for each page


class ScanReplyError(ValueError):
    """The shard's reply to SCAN is not a SCAN page."""


def _line(buf: bytes, pos: int, kind: int) -> tuple[int, int]:
    """The integer after type byte ``kind`` at ``pos`` and where its line ends."""
    if pos >= len(buf) or buf[pos] != kind:
        raise ScanReplyError(f"expected {chr(kind)!r} at {pos}")
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise ScanReplyError("truncated")
    return int(buf[pos + 1 : end]), end + 2


def _bulk(buf: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _line(buf, pos, ord("$"))
    if n < 0 or pos + n + 2 > len(buf):
        raise ScanReplyError("bad bulk string")
    return buf[pos : pos + n], pos + n + 2


def parse_scan_page(reply: bytes) -> tuple[bytes, list[bytes]]:
    """(next cursor, keys) of a SCAN reply (RESP2 and RESP3 shapes are the same)."""
    n, pos = _line(reply, 0, ord("*"))
    if n != 2:
        raise ScanReplyError("a SCAN page has two elements")
    cursor, pos = _bulk(reply, pos)
    count, pos = _line(reply, pos, ord("*"))
    keys = []
    for _ in range(count):
        key, pos = _bulk(reply, pos)
        keys.append(key)
    return cursor, keys


class SlotScan:
    """States: scanning (``cursor`` is the next page's), or finished (``reply`` set)."""

    def __init__(self, slot: int, limit: int | None) -> None:
        assert limit is None or limit > 0, limit
        self.slot = slot
        self.limit = limit  # None: count the keys; else list at most this many
        self.cursor = b"0"
        self.count = 0
        self.keys: list[bytes] = []
        self.reply: bytes | None = None

    def request(self) -> list[bytes]:
        assert self.reply is None, "finished"
        return [b"SCAN", self.cursor, b"COUNT", b"%d" % SCAN_PAGE_KEYS]

    def on_reply(self, reply: bytes) -> bytes | None:
        """Take one page; the client's reply once the scan is over, else None."""
        assert self.reply is None, "finished"
        if reply[:1] in (b"-", b"!"):
            self.reply = reply  # the shard's error (NOAUTH, LOADING...) as it is
            return reply
        try:
            cursor, keys = parse_scan_page(reply)
        except (ScanReplyError, ValueError):
            self.reply = enc.error("ERR unexpected SCAN reply from the shard")
            return self.reply
        slot = self.slot
        for key in keys:
            if key_slot(key) == slot:
                self.count += 1
                if self.limit is not None:
                    self.keys.append(key)
                    if len(self.keys) >= self.limit:
                        return self._finish()
        self.cursor = cursor
        if cursor == b"0":
            return self._finish()
        return None

    def _finish(self) -> bytes:
        if self.limit is None:
            self.reply = enc.integer(self.count)
        else:
            self.reply = enc.bulk_array(self.keys)
        return self.reply
