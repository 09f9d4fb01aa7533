"""CLUSTER ..., READONLY, READWRITE and ASKING in the session core: the cluster API's
replies (proxy/clusterapi.py) for an endpoint that has it, a standalone Redis's for one
that has not, and CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT run as SCAN pages on the slot's
shard (proxy/slotscan.py) through the client's own connection to it.

Owns: ``handle`` (the route's handler) and ``ScanSink``. Never does IO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..resp import encoder as enc
from . import clusterapi
from .router import Route
from .slotscan import SlotScan

if TYPE_CHECKING:
    from .session import Pending, Session


class ScanSink:
    """A sink for the SCAN pages of CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT: each page
    asks for the next until the scan is over, then fills the client's reply."""

    __slots__ = ("session", "shard", "scan", "pending")

    def __init__(self, session: Session, shard: int, scan: SlotScan, pending: Pending) -> None:
        self.session = session
        self.shard = shard
        self.scan = scan
        self.pending = pending

    def deliver(self, raw: bytes) -> None:
        out = self.scan.on_reply(raw)
        if out is None:
            self.session._send(self.shard, self.scan.request(), self)
        else:
            self.pending.value = out


def handle(s: Session, r: Route, argv: list[bytes]) -> None:
    api = s.router.cluster
    if api is None:
        s._reply(clusterapi.disabled_reply(argv))
        return
    out = api.command(argv, enc.RESP3 if s.protocol == 3 else enc.RESP2)
    if len(argv) == 1 and out == enc.OK:
        name = argv[0].lower()
        if name in (b"readonly", b"readwrite"):
            s.readonly = name == b"readonly"
    if isinstance(out, bytes):
        s._reply(out)
    else:  # COUNTKEYSINSLOT / GETKEYSINSLOT: SCAN the shard, page after page
        from .session import Pending

        p = Pending()
        s.queue.append(p)
        scan = SlotScan(out.slot, out.limit)
        s._send(out.shard, scan.request(), ScanSink(s, out.shard, scan, p))
