"""Rate-limited logging for input synd does not control (OSC packets, MIDI messages).

A control surface gone wrong, or someone hostile, can send thousands of bad packets or
messages a second. Each must still be refused, but logging each would flood the log and
cost more than the refusal. Two small helpers keep that to a few lines:

- `RateLimiter` logs a problem at most once per (kind, key) every `every` seconds and at
  most `per_kind` lines per kind in that time; a line logged after a quiet spell says how
  many like it were held back.
- `Tally` counts problems by kind and logs the counts in one summary line per period, so
  the log still tells how much was refused when almost nothing is logged one by one.

Both are thread-safe, and every line they log is one line (newlines in a message from the
network are replaced, long messages cut). The log records carry the kind
(`record.ratelimit_kind`) or the counts (`record.tally`, a dict kind -> count), for tests
and log filters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from synd.errors import one_line

#: Longest line logged; the rest of a message (a long address, say) is cut.
MAX_LINE = 400
#: Keys remembered before the ones outside the window are forgotten (bounds memory).
MAX_KEYS = 4096


class RateLimiter:
    """Logs to `logger` a problem at most once per (kind, key) every `every` seconds, and
    at most `per_kind` lines per kind in that time; counts what it holds back.

    `limiter(kind, key, message)` returns whether the line was logged. `held` is the
    number of lines held back so far.
    """

    def __init__(
        self,
        logger: logging.Logger,
        every: float = 10.0,
        per_kind: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.logger, self.every, self.per_kind, self.clock = logger, every, per_kind, clock
        self.held = 0
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, Any], list] = {}  # (kind, key) -> [last logged, held back]
        self._recent: dict[str, deque[float]] = {}  # kind -> times of its recent lines

    def __call__(self, kind: str, key: Any, message: str, level: int = logging.WARNING) -> bool:
        now = self.clock()
        with self._lock:
            entry = self._seen.get((kind, key))
            if entry is not None and now - entry[0] < self.every:
                entry[1] += 1
                self.held += 1
                return False
            recent = self._recent.setdefault(kind, deque())
            while recent and now - recent[0] >= self.every:
                recent.popleft()
            if len(recent) >= self.per_kind:
                if entry is not None:
                    entry[1] += 1
                self.held += 1
                return False
            recent.append(now)
            held = entry[1] if entry is not None else 0
            self._seen[(kind, key)] = [now, 0]
            if len(self._seen) > MAX_KEYS:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.every}
        if held:
            message = f"{message} ({held} more like this not logged)"
        self.logger.log(level, "%s", one_line(message, MAX_LINE), extra={"ratelimit_kind": kind})
        return True


class Tally:
    """Counts problems by kind; `report()` logs them in one line once `every` seconds
    have passed since the first one counted (or at once with `force`), then starts over.

    The line reads "`what` in the last N s: TOTAL (kind n, kind n, ...)". `totals` keeps
    the counts since the start. The owner calls `report()` from its own loop, waking up
    at `due()`, and with `force=True` when it stops.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        level: int = logging.WARNING,
    ):
        self.logger, self.what, self.every = logger, what, every
        self.clock, self.level = clock, level
        self.totals: dict[str, int] = {}
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._since: float | None = None

    def add(self, kind: str, n: int = 1) -> None:
        """Count `n` problems of `kind`."""
        with self._lock:
            if self._since is None:
                self._since = self.clock()
            self._counts[kind] = self._counts.get(kind, 0) + n
            self.totals[kind] = self.totals.get(kind, 0) + n

    def due(self) -> float | None:
        """When (on the clock) the next report is due; None when nothing is counted."""
        with self._lock:
            return None if self._since is None else self._since + self.every

    def report(self, force: bool = False) -> bool:
        """Log the counts when due (or `force`); returns whether a line was logged."""
        now = self.clock()
        with self._lock:
            if self._since is None or (not force and now - self._since < self.every):
                return False
            counts, span = self._counts, now - self._since
            self._counts, self._since = {}, None
        biggest_first = sorted(counts.items(), key=lambda kv: -kv[1])
        parts = ", ".join(f"{kind} {n}" for kind, n in biggest_first)
        self.logger.log(
            self.level,
            "%s in the last %.0f s: %d (%s)",
            self.what,
            max(span, 1.0),
            sum(counts.values()),
            parts,
            extra={"tally": dict(counts)},
        )
        return True
