"""Progress of the long jobs (`synd render`, `synd eval`, `synd train`), one way for all.

On a terminal a tqdm bar is redrawn in place; anywhere else (a log file, CI, a pipe) the
same numbers come as one plain line every few seconds and a last one at the end, instead
of a stream of carriage-return redraws. Either way a line says what is done, how fast and
how long is left::

    song.flac:  45% 1350/3000 frames, 52.1 frames/s, 0:26 elapsed, 0:32 left

A job with a time budget (`synd train --minutes`) fills the bar with time and counts its
work beside it::

    train mine:  45% 1234 steps, 4.9 steps/s, 4:30 elapsed, 5:30 left
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

#: Seconds between two plain lines when the output is not a terminal.
LINE_EVERY = 5.0
#: Seconds between two redraws on a terminal.
REDRAW_EVERY = 0.2


def clock(seconds: float) -> str:
    """0:42, 12:05 or 1:02:03."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """A progress display with the subset of tqdm's interface the jobs use.

    Args:
        total: units of work in all (frames, steps, files); None when unknown.
        desc: what is being done, shown first.
        unit: the unit's name ("frame"); shown in the plural.
        enabled: False shows nothing (`--quiet`, or a library caller that wants silence);
            `write` still writes.
        initial: units already done (a resumed run); the rate counts only this run's.
        budget: seconds of a time budget: the bar fills with time (`elapsed` seconds are
            already spent) and `total` is ignored.
        leave: keep the bar on the terminal when closed (plain lines always stay).
        stream: where to write (default: standard error).
        terminal: redraw in place (default: whether `stream` is a terminal).
        every: seconds between plain lines.
    """

    def __init__(
        self,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        *,
        enabled: bool = True,
        initial: int = 0,
        budget: float | None = None,
        elapsed: float = 0.0,
        leave: bool = True,
        stream: IO[str] | None = None,
        terminal: bool | None = None,
        every: float = LINE_EVERY,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = None if budget else total
        self.desc, self.unit, self.enabled = desc, unit, enabled
        self.n = self._n0 = initial
        self.budget = budget
        self.every = every
        self.postfix = ""
        now = time.monotonic()
        self._t0 = now
        self._start = now - elapsed  # of the whole job, for a budget
        self._shown = now  # the last plain line or redraw
        self._closed = False
        if terminal is None:
            isatty = getattr(self.stream, "isatty", None)
            terminal = bool(isatty and isatty())
        self._bar: Any = None
        if enabled and terminal:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.budget or self.total,
                desc=desc,
                file=self.stream,
                leave=leave,
                dynamic_ncols=True,
                bar_format=self._bar_format(),
            )
            self._draw()

    # -- numbers --------------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        """Seconds since the job began (a budget's spent seconds included)."""
        return time.monotonic() - self._start

    @property
    def rate(self) -> float | None:
        """Units a second in this run so far; None before the first one."""
        done, seconds = self.n - self._n0, time.monotonic() - self._t0
        return done / seconds if done > 0 and seconds > 0 else None

    @property
    def remaining(self) -> float | None:
        """Seconds left; None when it cannot be told yet."""
        if self.budget:
            return max(0.0, self.budget - self.elapsed)
        rate = self.rate
        if self.total is None or rate is None:
            return None
        return max(0.0, (self.total - self.n) / rate)

    @property
    def fraction(self) -> float | None:
        """How much is done, 0 to 1; None when the total is unknown."""
        if self.budget:
            return min(1.0, self.elapsed / self.budget)
        if self.total:
            return min(1.0, self.n / self.total)
        return None

    def status(self) -> str:
        """'41/90 frames, 35.2 frames/s, 0:01 elapsed, 0:01 left' (and the postfix)."""
        units = f"{self.unit}s"
        rate = self.rate
        done = f"{self.n}/{self.total}" if self.total is not None and not self.budget else f"{self.n}"
        parts = [
            f"{done} {units}",
            f"{rate:.{0 if rate >= 100 else 2}f} {units}/s" if rate is not None else f"? {units}/s",
            f"{clock(self.elapsed if self.budget else time.monotonic() - self._t0)} elapsed",
        ]
        left = self.remaining
        if self.budget or self.total is not None:
            parts.append(f"{clock(left)} left" if left is not None else "? left")
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    def line(self) -> str:
        """The plain line: 'desc:  45% ' and the status."""
        fraction = self.fraction
        share = f"{fraction * 100:3.0f}% " if fraction is not None else ""
        return f"{self.desc}: {share}{self.status()}" if self.desc else f"{share}{self.status()}"

    # -- tqdm's interface -----------------------------------------------------------------

    def update(self, n: int = 1) -> None:
        """Count `n` more units done; redraw, or print a line when it is time."""
        self.n += n
        if not self.enabled:
            return
        now = time.monotonic()
        if self._bar is not None:
            if now - self._shown >= REDRAW_EVERY:
                self._draw()
        elif now - self._shown >= self.every:
            self._print_line()

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """Extra text after the numbers (the loss, the speed against real time)."""
        self.postfix = text
        if refresh and self._bar is not None:
            self._draw()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.set_postfix_str(", ".join(f"{k}={v}" for k, v in items.items()), refresh=refresh)

    def write(self, text: str) -> None:
        """A message on its own line (above the bar on a terminal)."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """The last numbers: redrawn and left on a terminal, a last plain line elsewhere.
        Closed while an error propagates (a `finally`, a `with`), it adds no plain line:
        the error's own one line says what happened."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._draw()
            self._bar.close()
        elif self.enabled and sys.exc_info()[0] is None:
            self._print_line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- output ---------------------------------------------------------------------------

    def _bar_format(self) -> str:
        """tqdm draws the bar; the numbers after it are ours (braces escaped)."""
        text = self.status().replace("{", "{{").replace("}", "}}")
        known = self.budget or self.total
        return f"{{desc}}: {{percentage:3.0f}}%|{{bar}}| {text}" if known else f"{{desc}}: {text}"

    def _draw(self) -> None:
        bar = self._bar
        if self.budget:
            bar.n = min(self.elapsed, self.budget)
        elif self.total:
            bar.n = min(self.n, self.total)
        bar.bar_format = self._bar_format()
        bar.refresh()
        self._shown = time.monotonic()

    def _print_line(self) -> None:
        try:
            print(self.line(), file=self.stream, flush=True)
        except (OSError, ValueError):  # a closed pipe or log: progress is not worth failing for
            self.enabled = False
        self._shown = time.monotonic()
