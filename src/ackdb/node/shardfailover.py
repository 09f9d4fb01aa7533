"""What the shard supervisor does for a failover (issue 15, docs/failover.md), as the
commands it sends a shard process and the facts it proposes through Raft.

Owns: carrying out the failover actions of ``cluster.supervise`` on one shard process --

- freeze (``ACKDB.FREEZE <epoch>``: a replica stops following its old primary, a primary
  is fenced) and propose ``shard.report`` with the replid and offset it answered;
- check for divergent writes before following a new primary (``ACKDB.DIVERGED`` per fork
  of the shard): a file of them is logged with its count and byte range and remembered
  for the status (``saved``);
- hand over a primary for a planned failover (``FAILOVER TO host port TIMEOUT ms``, then
  the outcome from ``INFO replication``) and propose ``shard.report`` for this node, or
  ``shard.abort`` when the hand-over failed.

Also the ``shard.down`` facts of local primaries that stopped answering
(``propose_down``) and the status lines of the files of divergent writes
(``diverged_line``).

Decides nothing: what to do and when comes from the supervisor's decider, whether a report
counts from the controller. Every step is one command on the supervisor's connection to
the unit (``call``); a failure is logged and left to the decider's retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ackdb.cluster.commands import Op, Result
from ackdb.cluster.databases import Fork
from ackdb.cluster.failover import HANDOVER_TIMEOUT_MS
from ackdb.cluster.leases import down_facts
from ackdb.cluster.metadata import MetadataStore
from ackdb.cluster.shardspec import ShardSpec, parse_replication_info
from ackdb.cluster.supervise import CheckDiverged, Freeze, HandOver, Unit
from ackdb.resp.client import ReplyError
from ackdb.server.log import Log

# How often the hand-over's outcome is read while FAILOVER runs (s), and for how long.
HANDOVER_POLL_S = 0.05
HANDOVER_WAIT_S = HANDOVER_TIMEOUT_MS / 1000 + 5.0
DOWN_RETRY_MS = 500  # a shard.down not committed yet is proposed again after this long

Call = Callable[..., Awaitable[Any]]
Submit = Callable[[Op, tuple[bytes | str | int, ...], Callable[[Result], None]], None]


@dataclass(frozen=True, slots=True)
class Diverged:
    """What ``ACKDB.DIVERGED`` answered for one saved file (count -1: a whole dataset)."""

    count: int
    first: int
    last: int


class ShardFailover:
    def __init__(self, node_id: str, log: Log, call: Call, submit: Submit) -> None:
        self.node_id = node_id
        self.log = log
        self.call = call  # call(unit, *args): one command on the unit's connection
        self.submit = submit
        self.saved: dict[str, Diverged] = {}  # file path -> what its shard said
        self._down_sent: dict[tuple[object, ...], int] = {}  # (db, shard, epoch) -> when

    async def step(self, a: Freeze | CheckDiverged | HandOver, spec: ShardSpec, d: str) -> bool:
        """Carry out one of the supervisor's failover actions on the shard of ``spec``
        (its directory ``d``). True when it did."""
        if isinstance(a, Freeze):
            return await self.freeze(a.unit, spec.db, spec.shard, a.epoch)
        if isinstance(a, CheckDiverged):
            return await self.check_diverged(a.unit, d, a.forks)
        return await self.hand_over(a.unit, spec.db, spec.shard, a.epoch, a.host, a.port)

    def diverged_line(self, db: str, shard: int, path: str, size: int) -> str:
        """The status line of one file of divergent writes: listed until an operator
        removes it (``ackdb db diverged --clear``); the counts are known when this agent
        saved the file, after a restart of the agent only its size is."""
        got = self.saved.get(path)
        count, first, last = (got.count, got.first, got.last) if got else ("?", "?", "?")
        return (
            f"diverged:{db}/{shard} node={self.node_id}"
            f" path={path.replace(' ', '%20')} count={count} first={first} last={last}"
            f" bytes={size}"
        )

    def moved(self, old: str, new: str) -> None:
        """A saved file now lives at ``new`` (kept when its shard's directory went)."""
        got = self.saved.pop(old, None)
        if got is not None:
            self.saved[new] = got

    def propose_down(self, meta: MetadataStore, units: Mapping[str, Unit], now: int) -> None:
        """Propose shard.down for the local primaries that stopped answering
        (``cluster.leases.down_facts``), each at most every DOWN_RETRY_MS until it
        commits (then it is no longer a candidate)."""
        for sub in down_facts(meta, self.node_id, units, now):
            key = tuple(sub.args[:3])
            if now - self._down_sent.get(key, -DOWN_RETRY_MS) < DOWN_RETRY_MS:
                continue
            self._down_sent[key] = now
            self.log.warning(f"{sub.args[0]}/{sub.args[1]}: primary down ({sub.args[4]})")
            self.submit(sub.op, sub.args, self._logged("shard.down"))

    def _report(self, db: str, shard: int, epoch: int, replid: str, offset: int) -> None:
        args = (db, shard, epoch, self.node_id, replid, offset)
        self.submit(Op.SHARD_REPORT, args, self._logged(f"{db}/{shard} report"))

    def _logged(self, what: str) -> Callable[[Result], None]:
        def done(r: Result) -> None:
            if not r.ok:
                self.log.verbose(f"{what}: {r.error}")

        return done

    async def freeze(self, unit: str, db: str, shard: int, epoch: int) -> bool:
        """ACKDB.FREEZE, then shard.report with what it answered. True when frozen."""
        try:
            reply = await self.call(unit, "ACKDB.FREEZE", str(epoch))
            replid, offset = _text(reply[0]), int(reply[1])
        except (OSError, ConnectionError, TimeoutError, ReplyError, LookupError) as e:
            self.log.warning(f"{unit}: ACKDB.FREEZE {epoch} failed ({e}); will retry")
            return False
        except (TypeError, ValueError, IndexError) as e:
            self.log.warning(f"{unit}: ACKDB.FREEZE {epoch} answered {reply!r} ({e})")
            return False
        self.log.notice(f"{unit}: frozen at epoch {epoch} (replid {replid}, offset {offset})")
        self._report(db, shard, epoch, replid, offset)
        return True

    async def check_diverged(self, unit: str, unit_dir: str, forks: tuple[Fork, ...]) -> bool:
        """ACKDB.DIVERGED for each fork, oldest first. True when every check answered
        (whether or not anything diverged)."""
        for f in forks:
            try:
                reply = await self.call(
                    unit, "ACKDB.DIVERGED", f.replid, str(f.offset), str(f.epoch)
                )
                count, first, last = int(reply[0]), int(reply[1]), int(reply[2])
                path = _text(reply[3])
            except (OSError, ConnectionError, TimeoutError, ReplyError, LookupError) as e:
                self.log.warning(f"{unit}: ACKDB.DIVERGED for epoch {f.epoch} failed ({e})")
                return False
            except (TypeError, ValueError, IndexError) as e:
                self.log.warning(f"{unit}: ACKDB.DIVERGED answered {reply!r} ({e})")
                return False
            if count == 0 and not path:
                continue
            if path and not path.startswith("/"):
                path = f"{unit_dir.rstrip('/')}/{path}"
            self.saved[path] = Diverged(count, first, last)
            what = (
                "its whole dataset (the backlog no longer covered them)"
                if count < 0
                else f"{count} commands, offsets {first}-{last}"
            )
            self.log.warning(
                f"{unit}: writes the new primary never received (fork of epoch {f.epoch} at "
                f"offset {f.offset}) saved to {path}: {what}"
            )
        return True

    async def hand_over(
        self, unit: str, db: str, shard: int, epoch: int, host: str, port: int
    ) -> bool:
        """A planned failover from this primary to host:port. True when it handed over
        (shard.report proposed); False when it failed (shard.abort proposed)."""
        try:
            info = _text(await self.call(unit, "INFO", "replication"))
            replid = _info_field(info, "master_replid")
            await self.call(
                unit, "FAILOVER", "TO", host, str(port), "TIMEOUT", str(HANDOVER_TIMEOUT_MS)
            )
            outcome = await self._handover_outcome(unit, host, port)
        except (OSError, ConnectionError, TimeoutError, ReplyError, LookupError) as e:
            outcome, replid = f"FAILOVER failed: {e}", ""
        if isinstance(outcome, int):
            self.log.notice(f"{unit}: handed over to {host}:{port} at offset {outcome}")
            self._report(db, shard, epoch, replid, outcome)
            return True
        self.log.warning(f"{unit}: planned failover to {host}:{port} failed ({outcome})")
        args = (db, shard, epoch, outcome[:200])
        self.submit(Op.SHARD_ABORT, args, self._logged(f"{db}/{shard} abort"))
        return False

    async def _handover_outcome(self, unit: str, host: str, port: int) -> int | str:
        """The offset at which the hand-over completed, or why it did not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HANDOVER_WAIT_S
        while loop.time() < deadline:
            await asyncio.sleep(HANDOVER_POLL_S)
            text = _text(await self.call(unit, "INFO", "replication"))
            if _info_field(text, "master_failover_state") != "no-failover":
                continue
            seen = parse_replication_info(text)
            if seen.role == "slave" and (seen.master_host, seen.master_port) == (host, port):
                # The history forks where the target took over: the old history's last
                # offset (its replid2 runs up to there), else the offset reached.
                second = _info_field(text, "second_repl_offset")
                if second.isdigit() and int(second) > 0:
                    return int(second) - 1
                return seen.offset
            return "the shard stayed primary (FAILOVER aborted)"
        return f"no outcome within {HANDOVER_WAIT_S:g}s"


def _text(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _info_field(text: str, name: str) -> str:
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep and k.strip() == name:
            return v.strip()
    return ""
