"""Per-command latency histograms, as LATENCY HISTOGRAM and INFO latencystats show them.

Owns: what those two commands report from the engine's per-command counters
(``Entry.hist``, engine/dispatch.py) and the effect of ``latency-tracking``. Never touches
the network; the hot path is not here.

The hot path's only work is one bucket increment per call: bucket ``b`` of an entry's
``hist`` counts the calls whose duration in nanoseconds has ``b`` bits (``ns.bit_length()``,
so bucket b holds [2^(b-1), 2^b)). Redis records into an HDR histogram (2 significant
digits) and *prints* it in power-of-two steps starting at 1024 ns; the keys it prints are
the highest value of each step in whole microseconds (1, 2, 4, 8, 16, 33, 66, 132, ...),
and so are ours. Percentiles (INFO latencystats) are the top of the bucket that holds
them, so they are exact to a power of two where Redis's are exact to two digits -- an
accepted difference (docs/compat.md).

``latency-tracking no`` as Redis has it: new calls stop reaching the histograms, what was
recorded stays visible, and INFO latencystats is empty. The calls still count (INFO
commandstats reads ``Entry.calls``, the histogram's total), so the calls made while
tracking is off are remembered per entry and left out of what these commands show.
"""

from __future__ import annotations

from .dispatch import BUCKETS, Dispatch, Entry

# Redis prints its histogram from 1024 ns up in powers of two, each step's highest
# equivalent value at two significant digits: 1024 * 2^k + 2^(k+3) - 1 ns.
_FIRST_BITS = 10  # buckets 0..10 (below 1024 ns) print as Redis's first step


def step_key_us(k: int) -> int:
    """The key Redis prints for its k-th power-of-two step, in microseconds."""
    return ((1 << (_FIRST_BITS + k)) + (1 << (k + 3)) - 1) // 1000


class CommandLatency:
    def __init__(self, dispatch: Dispatch) -> None:
        self.dispatch = dispatch
        self.enabled = True
        # Entry -> calls made while tracking was off (per bucket): subtracted when shown.
        self._hidden: dict[Entry, list[int]] = {}
        # Entry -> its histogram when tracking was turned off (None while it is on).
        self._at_off: dict[Entry, list[int]] | None = None

    def set_enabled(self, on: bool) -> None:
        if on == self.enabled:
            return
        self.enabled = on
        if not on:
            self._at_off = {e: list(e.hist) for e in self.dispatch.every() if any(e.hist)}
            return
        at_off = self._at_off or {}
        self._at_off = None
        for e in self.dispatch.every():
            before = at_off.get(e)
            grown = [n - (before[i] if before else 0) for i, n in enumerate(e.hist)]
            if any(grown):
                hidden = self._hidden.setdefault(e, [0] * BUCKETS)
                for i, n in enumerate(grown):
                    hidden[i] += n

    def reset(self) -> None:
        """CONFIG RESETSTAT (the entries' histograms are zeroed by Dispatch.reset)."""
        self._hidden = {}
        if self._at_off is not None:
            self._at_off = {}

    def shown(self, e: Entry) -> list[int] | None:
        """The buckets of ``e`` these commands show; None when it has none (never called
        while tracking was on since the last reset)."""
        hist = e.hist
        if self._at_off is not None:
            hist = self._at_off.get(e, [0] * BUCKETS)
        hidden = self._hidden.get(e)
        if hidden is not None:
            hist = [n - h for n, h in zip(hist, hidden, strict=True)]
        return hist if any(hist) else None

    # -- what the commands print ---------------------------------------------------------

    @staticmethod
    def cdf(hist: list[int]) -> list[tuple[int, int]]:
        """(key in us, cumulative calls) at every step where the count grew (Redis)."""
        out: list[tuple[int, int]] = []
        total = sum(hist[: _FIRST_BITS + 1])
        if total:
            out.append((step_key_us(0), total))
        for b in range(_FIRST_BITS + 1, BUCKETS):
            if hist[b]:
                total += hist[b]
                out.append((step_key_us(b - _FIRST_BITS), total))
        return out

    @staticmethod
    def percentile_us(hist: list[int], p: float) -> float:
        """The value (us) under which ``p`` percent of the calls fall, to the top of its
        bucket; counted as HDR histograms count (at least one call)."""
        total = sum(hist)
        want = max(1, int(min(p, 100.0) / 100.0 * total + 0.5))
        seen = 0
        for b, n in enumerate(hist):
            seen += n
            if n and seen >= want:
                return ((1 << b) - 1) / 1000.0
        return 0.0

    def entries_named(self, names: list[bytes]) -> list[Entry]:
        """LATENCY HISTOGRAM's arguments: each known command and, for a container, its
        subcommands, in the order given (an unknown name is skipped, as Redis does)."""
        out: list[Entry] = []
        for raw in names:
            parent, sep, sub = raw.partition(b"|")
            e = self.dispatch.get(parent)
            if e is None:
                continue
            if sep:
                s = e.subcommands.get(sub.lower())
                if s is not None:
                    out.append(s)
                continue
            out.append(e)
            out.extend(e.subcommands.values())
        return out


def percentile_label(p: float) -> str:
    """``p50``, ``p99.9``: Redis prints the percentile without trailing zeros."""
    return "p" + f"{p:f}".rstrip("0").rstrip(".")
