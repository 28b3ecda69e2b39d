"""Progress bars for long work (deleting, collecting garbage, big queries), via ``tqdm.auto``:
a widget in Jupyter, text on a terminal's stderr.

tqdm is optional: without it (``pip install tqdm``, or the ``notebook`` extra) the work runs
the same, silently. A bar appears only once its work has taken :data:`DELAY_SECONDS`, and
tqdm is imported only then: quick work (nearly all of it, a point query included) neither
prints nor pays for the import, and a memoizing process never imports it.
``TQDM_DISABLE=1`` in the environment turns bars off, and a stderr that is no terminal (a
job's log, a pipe, CI) gets none: tqdm's redrawn lines would fill it. Jupyter, whose stderr
is no terminal either, gets its widget.

>>> total = 0
>>> for x in progress(range(3), desc="adding"):
...     total += x
>>> total
3
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["DELAY_SECONDS", "REDRAW_SECONDS", "Stages", "drawn_here", "new_bar", "progress", "stages"]

#: Seconds of work before a bar is shown: below this, a bar is noise.
DELAY_SECONDS = 1.0
#: Seconds between two redraws of a bar (tqdm's own default).
REDRAW_SECONDS = 0.1

T = TypeVar("T")


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """The items of *iterable*, with a bar once they have taken :data:`DELAY_SECONDS`."""
    if total is None:
        total = len(iterable) if hasattr(iterable, "__len__") else None  # type: ignore[arg-type]
    started, bar, count = time.monotonic(), None, 0
    try:
        for item in iterable:
            yield item
            count += 1
            if bar is not None:
                bar.update(1)
            elif time.monotonic() - started >= DELAY_SECONDS:
                bar = _bar(desc=desc, total=total, unit=unit, initial=count)
    finally:
        if bar is not None:
            bar.close()


class Stages:
    """A bar over the named steps of one piece of work (SQL statements have no inner loop to
    count). ``step("name")`` starts the next step; the bar shows which one is running."""

    def __init__(self, desc: str, count: int) -> None:
        self.desc, self.count = desc, count
        self.started = time.monotonic()
        self.done = 0
        self.name: str | None = None
        self.bar: Any = None

    def step(self, name: str) -> None:
        if self.name is not None:
            self.done = min(self.done + 1, self.count - 1)  # a retried transaction repeats steps
        self.note(name)

    def note(self, name: str) -> None:
        """Say how the running step goes (``"... 40,000 so far"``), without starting another."""
        self.name = name
        if self.bar is None and time.monotonic() - self.started >= DELAY_SECONDS:
            self.bar = _bar(desc=self.desc, total=self.count, unit="step")
        if self.bar is not None:
            self.bar.n = self.done
            self.bar.set_postfix_str(name)  # redraws: steps and notes are few

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.n = self.count
            self.bar.refresh()
            self.bar.close()


@contextlib.contextmanager
def stages(desc: str, count: int) -> Iterator[Stages]:
    """``with stages("deleting", 4) as s: s.step("matching"); ...`` — a bar of *count* steps,
    shown from the first step that starts after :data:`DELAY_SECONDS`.

    >>> with stages("tidying", 2) as s:
    ...     s.step("sweeping"); s.step("dusting")
    """
    steps = Stages(desc, count)
    try:
        yield steps
    finally:
        steps.finish()


def new_bar(**options: Any) -> Any:
    """A tqdm.auto bar drawn now (tqdm's options), or None without tqdm (batch blocks)."""
    return _bar(**options)


def drawn_here() -> bool:
    """Whether a bar would be seen: in Jupyter (a widget), or on a terminal's stderr."""
    return _in_notebook() or bool(getattr(sys.stderr, "isatty", lambda: False)())


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    return get is not None and type(get()).__name__ == "ZMQInteractiveShell"


def _bar(**options: Any) -> Any:
    tqdm = _tqdm() if drawn_here() else None
    if tqdm is None:
        return None
    options.update(mininterval=REDRAW_SECONDS, leave=False, dynamic_ncols=True)
    try:
        return tqdm(**options)
    except ImportError:  # Jupyter without ipywidgets: tqdm.notebook cannot draw a widget
        from tqdm.std import tqdm as text_tqdm

        return text_tqdm(**options)


@functools.lru_cache(maxsize=1)
def _tqdm() -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional
        return None
    return tqdm
