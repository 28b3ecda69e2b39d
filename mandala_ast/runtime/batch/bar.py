"""The batch's progress bar: calls done, loaded, failed and running, via tqdm.auto.

Silent when asked (``progress=False``), when tqdm is missing, and when stderr is not a
terminal (logs and CI stay clean) unless in Jupyter, where tqdm.auto draws a widget.
"""

from __future__ import annotations

import time
from typing import Any

from ..progress import REDRAW_SECONDS, drawn_here, new_bar

__all__ = ["Bar", "wanted"]


def wanted(progress: bool | None) -> bool:
    """Whether a bar is drawn: not when off, and not into a pipe or file."""
    return progress is not False and drawn_here()


class Bar:
    """Counts of one batch; drawn only when :func:`wanted`."""

    def __init__(self, progress: bool | None) -> None:
        self.show = wanted(progress)
        self.bar: Any = None
        self.total = self.done = self.loaded = self.failed = self.running = 0
        self.next_draw = 0.0  # monotonic time of the next redraw

    def add(self, count: int) -> None:
        """``count`` more calls to resolve."""
        self.total += count
        if self.show and self.bar is None and self.total:
            self.bar = new_bar(desc="batch", total=self.total, unit="call")
        if self.bar is not None:
            self.bar.total = self.total
            self._draw()

    def update(self, *, done: int = 0, loaded: int = 0, failed: int = 0, running: int = 0) -> None:
        self.done += done
        self.loaded += loaded
        self.failed += failed
        self.running += running
        # Counts change per call, thousands of times a second: formatting the bar's text
        # each time would cost more than a trivial call. It is redrawn at tqdm's pace.
        if self.bar is not None and time.monotonic() >= self.next_draw:
            self._draw()

    def _draw(self) -> None:
        self.next_draw = time.monotonic() + REDRAW_SECONDS
        self.bar.n = self.done + self.loaded + self.failed
        self.bar.set_postfix(done=self.done, loaded=self.loaded, failed=self.failed,
                             running=self.running, refresh=False)
        self.bar.update(0)  # redraws at most every REDRAW_SECONDS

    def close(self) -> None:
        if self.bar is not None:
            self._draw()
            self.bar.refresh()  # the final counts, even when the batch took less than a redraw
            self.bar.close()
            self.bar = None
