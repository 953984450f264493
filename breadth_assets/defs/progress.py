"""Progress lines for long loops, at most one every few seconds."""

from __future__ import annotations

import time
from collections.abc import Callable


class Progress:
    """Counts done items and calls `log` with "what: done/total unit done, N unit per second" once
    `every` seconds have passed since the last line, and once more at `finish()`.

    `step()` costs one clock read, so it can be called for every item.
    """

    def __init__(
        self,
        total: int,
        log: Callable[[str], object],
        what: str = "progress",
        unit: str = "tickers",
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total, self.log, self.every, self.clock = total, log, every, clock
        self.what, self.unit = what, unit
        self.done = 0
        self.started = self.last = clock()

    def line(self) -> str:
        seconds = self.clock() - self.started
        rate = self.done / seconds if seconds > 0 else 0.0
        return (
            f"{self.what}: {self.done}/{self.total} {self.unit} done, "
            f"{rate:.1f} {self.unit} per second"
        )

    def step(self, count: int = 1) -> None:
        self.done += count
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self.log(self.line())

    def finish(self) -> None:
        self.log(self.line() + f" ({self.clock() - self.started:.1f} s)")
