"""The latency monitor: per-event time series of latency spikes (LATENCY ...).

Owns: Redis's latency.c model — an event's series holds at most ``SERIES_LEN`` samples
(unix second, milliseconds), one per second (a later spike in the same second raises
that second's sample), and the all-time maximum — and the samples' thresholds
(``latency-monitor-threshold`` in ms; 0 is off). The engine adds ``command`` /
``fast-command`` (a command's run time), ``expire-cycle`` and ``fork``; the time comes in
as an argument. Never touches sockets or clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SERIES_LEN = 160  # Redis LATENCY_TS_LEN


@dataclass(slots=True)
class Series:
    samples: list[tuple[int, int]] = field(default_factory=list)  # (unix s, ms), oldest first
    max_ms: int = 0


class LatencyMonitor:
    def __init__(self) -> None:
        self.threshold_ms = 0
        self.events: dict[str, Series] = {}

    def add_if_needed(self, event: str, ms: int, now_s: int) -> None:
        if self.threshold_ms and ms >= self.threshold_ms:
            self.add(event, ms, now_s)

    def add(self, event: str, ms: int, now_s: int) -> None:
        ts = self.events.get(event)
        if ts is None:
            ts = self.events[event] = Series()
        ts.max_ms = max(ts.max_ms, ms)
        if ts.samples and ts.samples[-1][0] == now_s:
            if ms > ts.samples[-1][1]:
                ts.samples[-1] = (now_s, ms)
            return
        ts.samples.append((now_s, ms))
        if len(ts.samples) > SERIES_LEN:
            del ts.samples[0]

    def reset(self, events: list[str] | None) -> int:
        """Forget the named events (all when None); how many there were."""
        if events is None:
            n = len(self.events)
            self.events.clear()
            return n
        return sum(self.events.pop(e, None) is not None for e in dict.fromkeys(events))
