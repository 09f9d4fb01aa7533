"""The stream value type: entries in id order, in nodes shaped like Redis's, and consumer groups.

Owns: ``Stream`` (entries, the last / first / max-deleted ids, the entries-added counter,
the consumer groups), ``Group`` (last delivered id, entries-read counter, pending entries
list, consumers), ``Consumer`` and ``Nack`` (one pending entry), and the id arithmetic.
Never parses arguments or builds replies (``commands.streams*`` do), never touches I/O.

Ids are ``(ms, seq)`` tuples of two unsigned 64-bit integers, compared as tuples.

Entries live in nodes, like the listpacks of Redis's radix tree: a new entry goes into
the last node unless that node already holds ``NODE_MAX_ENTRIES`` entries (live and
deleted ones count) or its estimated listpack size plus the new entry's field and value
bytes reaches ``NODE_MAX_BYTES`` (Redis's stream-node-max-entries / -bytes defaults).
XDEL marks an entry deleted and drops a node whose last live entry goes; trimming drops
whole nodes, and exact trimming then marks entries of the first remaining node deleted
(Redis's streamTrim). So approximate trimming (``~``) removes the same entries as Redis
does for entries whose size estimate matches Redis's listpack (``_lp_entry_bytes``).
Lookups bisect the nodes' first ids, then the node's ids: O(log N); an append is O(1).

Consumer groups live in ``stream_groups``; the plain-data and RESP forms (snapshots, AOF
rewrites) in ``stream_plain``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator

from .stream_groups import Group
from .types import register

StreamID = tuple[int, int]
U64_MAX = (1 << 64) - 1
MIN_ID: StreamID = (0, 0)
MAX_ID: StreamID = (U64_MAX, U64_MAX)
# Redis's stream-node-max-entries and stream-node-max-bytes defaults.
NODE_MAX_ENTRIES = 100
NODE_MAX_BYTES = 4096
# Redis's SCG_INVALID_ENTRIES_READ: a group whose read counter is unknown.
ENTRIES_READ_UNKNOWN = -1


def format_id(sid: StreamID) -> bytes:
    return b"%d-%d" % sid


def incr_id(sid: StreamID) -> StreamID | None:
    """The next id, or None past the last possible id."""
    ms, seq = sid
    if seq < U64_MAX:
        return (ms, seq + 1)
    if ms < U64_MAX:
        return (ms + 1, 0)
    return None


def decr_id(sid: StreamID) -> StreamID | None:
    ms, seq = sid
    if seq > 0:
        return (ms, seq - 1)
    if ms > 0:
        return (ms - 1, U64_MAX)
    return None


def _lp_int_bytes(v: int) -> int:
    """Bytes of one listpack integer element (encoding + backlen)."""
    if 0 <= v <= 127:
        return 2
    if -4096 <= v <= 4095:
        return 3
    if -32768 <= v <= 32767:
        return 4
    if -(1 << 23) <= v < (1 << 23):
        return 5
    if -(1 << 31) <= v < (1 << 31):
        return 6
    return 10


def _lp_elem_bytes(s: bytes) -> int:
    """Bytes of one listpack element holding ``s`` (integers are stored as integers)."""
    if 0 < len(s) <= 20 and (s == b"0" or (s[:1] != b"0" and s[:2] != b"-0")):
        try:
            v = int(s)
        except ValueError:
            v = None
        if v is not None and -(1 << 63) <= v < (1 << 63) and b"%d" % v == s:
            return _lp_int_bytes(v)
    n = len(s)
    head = 1 if n < 64 else 2 if n < 4096 else 5
    size = head + n
    back = 1 if size <= 127 else 2 if size < 16383 else 3 if size < 2097151 else 4
    return size + back


class Node:
    """One listpack-like node: ids and field/value lists (None once deleted)."""

    __slots__ = ("ids", "values", "live", "master_fields", "lp_bytes")

    def __init__(self, fields: list[bytes]) -> None:
        self.ids: list[StreamID] = []
        self.values: list[list[bytes] | None] = []
        self.live = 0
        self.master_fields = fields[0::2]
        # header, count, deleted, num-fields, the fields, the master terminator, end byte
        self.lp_bytes = 6 + 2 + 2 + _lp_int_bytes(len(self.master_fields)) + 2 + 1
        self.lp_bytes += sum(_lp_elem_bytes(f) for f in self.master_fields)

    def append(self, sid: StreamID, fv: list[bytes]) -> None:
        master = self.ids[0] if self.ids else sid
        same = fv[0::2] == self.master_fields
        n = _lp_int_bytes(2 if same else 0)
        n += _lp_int_bytes(sid[0] - master[0]) + _lp_int_bytes(sid[1] - master[1])
        if same:
            n += sum(_lp_elem_bytes(v) for v in fv[1::2])
            n += _lp_int_bytes(len(fv) // 2 + 3)
        else:
            n += _lp_int_bytes(len(fv) // 2) + sum(_lp_elem_bytes(x) for x in fv)
            n += _lp_int_bytes(len(fv) + 4)
        self.lp_bytes += n
        self.ids.append(sid)
        self.values.append(fv)
        self.live += 1


class Stream:
    __slots__ = (
        "nodes",
        "firsts",
        "length",
        "last_id",
        "first_id",
        "max_deleted_id",
        "entries_added",
        "groups",
    )

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.firsts: list[StreamID] = []  # each node's first id, for bisect
        self.length = 0
        self.last_id: StreamID = MIN_ID
        self.first_id: StreamID = MIN_ID
        self.max_deleted_id: StreamID = MIN_ID
        self.entries_added = 0
        self.groups: dict[bytes, Group] = {}

    def __len__(self) -> int:
        return self.length

    # -- entries -------------------------------------------------------------------------

    def append(self, sid: StreamID, fv: list[bytes]) -> None:
        """Add an entry with an id above ``last_id`` (the caller checked)."""
        assert sid > self.last_id or (self.entries_added == 0 and sid == self.last_id == MIN_ID)
        node = self.nodes[-1] if self.nodes else None
        if node is not None:
            if len(node.ids) >= NODE_MAX_ENTRIES:
                node = None
            elif node.lp_bytes + sum(len(x) for x in fv) >= NODE_MAX_BYTES:
                node = None
        if node is None:
            node = Node(fv)
            self.nodes.append(node)
            self.firsts.append(sid)
        node.append(sid, fv)
        if self.length == 0:
            self.first_id = sid
        self.length += 1
        self.last_id = sid
        self.entries_added += 1

    def _locate(self, sid: StreamID) -> tuple[int, int]:
        """(node index, position) of the first slot with an id >= ``sid``."""
        ni = bisect_right(self.firsts, sid) - 1
        if ni < 0:
            return 0, 0
        node = self.nodes[ni]
        pos = bisect_left(node.ids, sid)
        if pos == len(node.ids):
            return ni + 1, 0
        return ni, pos

    def get(self, sid: StreamID) -> list[bytes] | None:
        ni, pos = self._locate(sid)
        if ni < len(self.nodes):
            node = self.nodes[ni]
            if node.ids[pos] == sid:
                return node.values[pos]
        return None

    def range(
        self, start: StreamID, end: StreamID, count: int = 0
    ) -> Iterator[tuple[StreamID, list[bytes]]]:
        """Live entries with start <= id <= end, ascending; at most ``count`` (0: all)."""
        if start > end:
            return
        n = 0
        ni, pos = self._locate(start)
        nodes = self.nodes
        while ni < len(nodes):
            node = nodes[ni]
            ids, values = node.ids, node.values
            while pos < len(ids):
                sid = ids[pos]
                if sid > end:
                    return
                fv = values[pos]
                if fv is not None:
                    yield sid, fv
                    n += 1
                    if n == count:
                        return
                pos += 1
            ni += 1
            pos = 0

    def range_list(
        self, start: StreamID, end: StreamID, count: int = 0
    ) -> list[tuple[StreamID, list[bytes]]]:
        """``range`` as a list: the same entries without a generator's cost (XREAD and
        XREADGROUP read a few entries per call)."""
        out: list[tuple[StreamID, list[bytes]]] = []
        if start > end:
            return out
        ni, pos = self._locate(start)
        nodes = self.nodes
        while ni < len(nodes):
            node = nodes[ni]
            ids, values = node.ids, node.values
            n = len(ids)
            while pos < n:
                sid = ids[pos]
                if sid > end:
                    return out
                fv = values[pos]
                if fv is not None:
                    out.append((sid, fv))
                    if len(out) == count:
                        return out
                pos += 1
            ni += 1
            pos = 0
        return out

    def revrange(
        self, start: StreamID, end: StreamID, count: int = 0
    ) -> Iterator[tuple[StreamID, list[bytes]]]:
        """Live entries with start <= id <= end, descending."""
        if start > end:
            return
        n = 0
        ni = bisect_right(self.firsts, end) - 1
        if ni < 0:
            return
        pos = bisect_right(self.nodes[ni].ids, end) - 1
        while ni >= 0:
            node = self.nodes[ni]
            while pos >= 0:
                sid = node.ids[pos]
                if sid < start:
                    return
                fv = node.values[pos]
                if fv is not None:
                    yield sid, fv
                    n += 1
                    if n == count:
                        return
                pos -= 1
            ni -= 1
            if ni >= 0:
                pos = len(self.nodes[ni].ids) - 1

    def first_entry(self) -> tuple[StreamID, list[bytes]] | None:
        return next(self.range(MIN_ID, MAX_ID, 1), None)

    def last_entry(self) -> tuple[StreamID, list[bytes]] | None:
        nodes = self.nodes
        if nodes:
            node = nodes[-1]
            fv = node.values[-1]
            if fv is not None:  # the last slot is live: it is the last entry (O(1))
                return node.ids[-1], fv
        return next(self.revrange(MIN_ID, MAX_ID, 1), None)

    def delete(self, sid: StreamID) -> bool:
        """XDEL of one id: mark it deleted, drop its node when no live entry is left
        (the caller keeps ``first_id`` and ``max_deleted_id``, as Redis's XDEL does)."""
        ni, pos = self._locate(sid)
        if ni >= len(self.nodes):
            return False
        node = self.nodes[ni]
        if node.ids[pos] != sid or node.values[pos] is None:
            return False
        node.values[pos] = None
        node.live -= 1
        if node.live == 0:
            del self.nodes[ni]
            del self.firsts[ni]
        self.length -= 1
        return True

    def reset_first_id(self) -> None:
        """Redis streamGetEdgeID(first, skip tombstones) into ``first_id``."""
        first = self.first_entry()
        self.first_id = first[0] if first is not None else MIN_ID

    def trim(self, maxlen: int | None, minid: StreamID | None, approx: bool, limit: int) -> int:
        """Redis streamTrim: by MAXLEN or MINID; ``approx`` only drops whole nodes;
        ``limit`` (0: none) bounds the entries removed. Returns how many went."""
        deleted = 0
        while self.nodes:
            if maxlen is not None and self.length <= maxlen:
                break
            node = self.nodes[0]
            entries = node.live
            if limit and deleted + entries > limit:
                break
            if maxlen is not None:
                remove = self.length - entries >= maxlen
            else:
                assert minid is not None
                remove = node.ids[-1] < minid
            if remove:
                del self.nodes[0]
                del self.firsts[0]
                self.length -= entries
                deleted += entries
                continue
            if approx:
                break
            for pos, sid in enumerate(node.ids):
                if maxlen is not None:
                    if self.length <= maxlen:
                        break
                else:
                    assert minid is not None
                    if sid >= minid:
                        break
                if node.values[pos] is not None:
                    node.values[pos] = None
                    node.live -= 1
                    self.length -= 1
                    deleted += 1
            break
        if deleted:
            self.reset_first_id()
        return deleted

    def node_count(self) -> int:
        return len(self.nodes)

    # -- consumer groups -----------------------------------------------------------------

    def estimate_read_counter(self, sid: StreamID) -> int:
        """Redis streamEstimateDistanceFromFirstEverEntry: ``sid``'s logical read counter,
        or ENTRIES_READ_UNKNOWN."""
        if not self.entries_added:
            return 0
        if not self.length and sid <= self.last_id:
            return self.entries_added
        if sid == self.last_id:
            return self.entries_added
        if sid > self.last_id:
            return ENTRIES_READ_UNKNOWN
        if self.max_deleted_id == MIN_ID or self.max_deleted_id < self.first_id:
            if sid < self.first_id:
                return self.entries_added - self.length
            if sid == self.first_id:
                return self.entries_added - self.length + 1
        return ENTRIES_READ_UNKNOWN

    def has_tombstones_from(self, start: StreamID) -> bool:
        """Redis streamRangeHasTombstones(start, +)."""
        if not self.length or self.max_deleted_id == MIN_ID:
            return False
        if self.first_id > self.max_deleted_id:
            return False
        return start <= self.max_deleted_id

    def lag(self, g: Group) -> int | None:
        """A group's lag (XINFO GROUPS), None when fragmentation makes it unknown."""
        if not self.entries_added:
            return 0
        if g.entries_read != ENTRIES_READ_UNKNOWN and not self.has_tombstones_from(g.last_id):
            return self.entries_added - g.entries_read
        est = self.estimate_read_counter(g.last_id)
        if est != ENTRIES_READ_UNKNOWN:
            return self.entries_added - est
        return None

    def advance_group(self, g: Group, sid: StreamID) -> None:
        """A group delivered ``sid`` (XREADGROUP >): move its last id and read counter."""
        if sid > g.last_id:
            if g.entries_read != ENTRIES_READ_UNKNOWN and (
                self.max_deleted_id == MIN_ID or not self.has_tombstones_from(sid)
            ):  # (no entry ever deleted: no tombstone, without the call)
                g.entries_read += 1
            elif self.entries_added:
                g.entries_read = self.estimate_read_counter(sid)
            g.last_id = sid


def _stream_encoding(value: Stream, limits: dict[str, int]) -> bytes:
    return b"stream"


register(Stream, b"stream", _stream_encoding)
