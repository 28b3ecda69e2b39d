"""Progress bars for long work (deleting, collecting garbage, big queries), via ``tqdm.auto``:
a widget in Jupyter, text on a terminal's stderr.

tqdm is optional: without it (``pip install tqdm``, or the ``notebook`` extra) the work runs
the same, silently. A bar appears only once its work has taken :data:`DELAY_SECONDS`, so
quick calls (nearly all of them, and every test) print nothing; ``TQDM_DISABLE=1`` turns bars
off everywhere. tqdm is imported on first use, never by a memoizing process.

>>> total = 0
>>> for x in progress(range(3), desc="adding"):
...     total += x
>>> total
3
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator, TypeVar

__all__ = ["DELAY_SECONDS", "REDRAW_SECONDS", "Stages", "progress", "stages"]

#: Seconds of work before a bar is shown: below this, a bar is noise.
DELAY_SECONDS = 1.0
#: Seconds between two redraws of a bar (tqdm's own default).
REDRAW_SECONDS = 0.1

T = TypeVar("T")


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterable[T]:
    """*iterable*, with a bar when it runs long (and tqdm is installed)."""
    bar = _bar(desc=desc, total=total if total is not None else _length(iterable), unit=unit)
    if bar is None:
        return iterable
    return _advancing(iterable, bar)


def _advancing(iterable: Iterable[T], bar: Any) -> Iterator[T]:
    try:
        for item in iterable:
            yield item
            bar.update(1)
    finally:
        bar.close()


class Stages:
    """A bar over the named steps of one piece of work (SQL statements have no inner loop to
    count): ``step("name")`` finishes the previous step and shows the next one's name."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.started = False

    def step(self, name: str) -> None:
        if self.bar is None:
            return
        # Not refresh(): it would draw the bar before DELAY_SECONDS; update() waits for it.
        self.bar.set_postfix_str(name, refresh=False)
        if self.started and self.bar.n + 1 < self.bar.total:  # a retried transaction repeats steps
            self.bar.update(1)
        self.started = True


@contextlib.contextmanager
def stages(desc: str, count: int) -> Iterator[Stages]:
    """``with stages("deleting", 4) as s: s.step("matching"); ...`` — a bar of *count* steps.

    >>> with stages("tidying", 2) as s:
    ...     s.step("sweeping"); s.step("dusting")
    """
    bar = _bar(desc=desc, total=count, unit="step")
    try:
        yield Stages(bar)
        if bar is not None:
            bar.update(bar.total - bar.n)  # done: full, whatever the last steps were
    finally:
        if bar is not None:
            bar.close()


def _bar(**options: Any) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional
        return None
    options.update(delay=DELAY_SECONDS, mininterval=REDRAW_SECONDS, leave=False, dynamic_ncols=True)
    try:
        return tqdm(**options)
    except ImportError:  # Jupyter without ipywidgets: tqdm.notebook cannot draw a widget
        from tqdm.std import tqdm as text_tqdm

        return text_tqdm(**options)


def _length(iterable: Iterable[Any]) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None
