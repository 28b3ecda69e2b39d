"""Fixture values kept in a storage, keyed on the fixture's code: the engine of the pytest plugin.

A cached fixture is an op (:class:`FixtureOp`) whose inputs are the fixtures it receives and
its param, so its key is the op's: the fixture's version (its fingerprint, and the
dependency state of the helpers, constants and ops its body entered), plus the content ids of
the received values -- or, for values another cached fixture produced, that call's own id.
Nothing here imports pytest: a request is anything with an optional ``param`` attribute.

>>> import tempfile, pathlib
>>> def numbers():
...     return list(range(3))
>>> cache = FixtureCache(pathlib.Path(tempfile.mkdtemp()) / "fixtures.db")
>>> cache.get(FixtureOp(numbers), "numbers", {})
[0, 1, 2]
>>> cache.outcomes[-1].status
'computed'
>>> cache.close()
"""

from __future__ import annotations

import inspect
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._errors import MandalaUnstoredWarning, NewCallError, ValueEncodingError
from .hashing import UnhashableError, content_id, digest
from .ops import Op
from .refs import Ref
from .storage import Storage

__all__ = ["FixtureCache", "FixtureOp", "Outcome"]

#: The name a fixture's param is stored under among its inputs (not a valid parameter name,
#: so no received fixture can take it).
PARAM_INPUT = "request.param"


class FixtureOp(Op):
    """An op whose body is a fixture function: ``request`` (pytest's) is passed to the body
    but only its ``param`` is part of the key, under the input name ``request.param``.

    >>> def sized(request):
    ...     return [0] * request.param
    >>> class Request:
    ...     param = 3
    >>> bound = FixtureOp(sized).bind((), {"request": Request()})
    >>> sorted(bound), bound["request.param"]
    (['request', 'request.param'], 3)
    """

    def __init__(self, fn: Callable, *, ignore: Iterable[str] = ()) -> None:
        # `request` stays among the call's arguments, ignored for the key: the body can run
        # user code through it (request.getfixturevalue), so a call is traced for its
        # dependencies when an argument is not plain data, and this one never is.
        ignore = {*ignore, "request"} if "request" in inspect.signature(fn).parameters else ignore
        super().__init__(fn, nout=1, ignore=ignore)  # a fixture is one value, whatever it is

    def bind(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        bound = super().bind(args, kwargs)
        request = bound.get("request")
        if request is not None and hasattr(request, "param"):
            bound[PARAM_INPUT] = request.param
        return bound


@dataclass
class Outcome:
    """What happened to one fixture value: ``status`` is ``reused``, ``computed`` (never
    stored for this key) or ``recomputed`` (stored under older code, or refreshed);
    ``seconds`` is the compute time saved (reused) or spent (computed); ``reason`` says why
    it computed.
    """

    name: str
    status: str
    seconds: float
    reason: str = ""
    param: str = ""  # repr of the fixture's param, if it has one

    @property
    def label(self) -> str:
        """The fixture's name, with its param if it has one: ``sized[3]``."""
        return f"{self.name}[{self.param}]" if self.param else self.name

    def as_dict(self) -> dict[str, Any]:
        """Plain data (xdist workers send outcomes to the controller)."""
        return asdict(self)


class FixtureCache:
    """The fixture values of one pytest session, in the storage at ``path``.

    ``refresh``: fixture names to recompute once in this session (``"*"``: all);
    ``started``: when the session began (seconds since the epoch): under pytest-xdist every
    worker gets the controller's, so a refresh recomputes once, not once per worker.
    """

    def __init__(self, path: str | Path, *, refresh: Iterable[str] = (), started: float | None = None) -> None:
        self.path = Path(path)
        self.storage = Storage(self.path)  # (it makes missing directories, or names what is in the way)
        self.refresh = frozenset(refresh)
        self.started = time.time() if started is None else started
        self.outcomes: list[Outcome] = []
        # id(value) -> Ref of the stored call that produced it: a fixture that receives the
        # value is keyed on that call (its history), not just on the value's content.
        self._produced: dict[int, Ref] = {}
        # id(value) -> label, for values recomputed in this session (stored under older code,
        # or refreshed): why the fixtures that receive them are not stored for them either.
        self._recomputed: dict[int, str] = {}

    def get(self, op: FixtureOp, name: str, kwargs: dict[str, Any]) -> Any:
        """The fixture's value for these received values (``request`` among them if the
        fixture takes it): loaded when stored under today's code, else computed and stored."""
        try:
            return self._get(op, name, kwargs)
        except ValueEncodingError as exc:
            named = _with_ignore_hint(exc, op, name, kwargs)
            if named is exc:
                raise
            raise named from None  # its message has all the first one said, of the fixture

    def _get(self, op: FixtureOp, name: str, kwargs: dict[str, Any]) -> Any:
        param = _param_text(kwargs)
        refs = {arg: ref for arg, value in kwargs.items() if (ref := self._ref_of(value)) is not None}
        if not self._wants_refresh(name):
            ref = self._stored(op, kwargs, refs)
            if ref is not None:
                return self._reused(name, param, ref)
        reason = self._reason(op, name, kwargs, refs)
        with self._single_flight(name, param):
            # Another process (an xdist worker) may have computed it while this one waited.
            ref = self._stored(op, kwargs, refs)
            if ref is not None and not self._stale_for_refresh(name, ref):
                return self._reused(name, param, ref)
            if ref is not None:
                # A refresh keeps the call's identity, so the fixtures that received its old
                # value are keyed as if they had received the new one: they go too.
                self.storage.delete_calls([ref.src[0]], dependents=True)
            return self._compute(op, (name, param), kwargs, refs, reason)

    def forget(self, value: Any) -> None:
        """The fixture instance that returned ``value`` was torn down: no fixture can receive
        it any more, and its Ref no longer keeps it alive."""
        if self._ref_of(value) is not None:
            del self._produced[id(value)]
            self._recomputed.pop(id(value), None)

    def discard(self, value: Any) -> None:
        """Delete the stored call that produced ``value`` (returned by :meth:`get`), and the
        calls of the fixtures that received it: it must never be loaded again."""
        ref = self._ref_of(value)
        if ref is not None:
            self.forget(value)
            self.storage.delete_calls([ref.src[0]])  # (and the calls computed from it)

    def close(self) -> None:
        """Commit and close the storage."""
        self.storage.close()

    def _ref_of(self, value: Any) -> Ref | None:
        ref = self._produced.get(id(value))
        return ref if ref is not None and ref.value is value else None

    def _wants_refresh(self, name: str) -> bool:
        return "*" in self.refresh or name in self.refresh

    def _stale_for_refresh(self, name: str, ref: Ref) -> bool:
        """Asked to refresh, and the stored call predates this session (a call made since, by
        another worker, is the refreshed one)."""
        if not self._wants_refresh(name):
            return False
        times = self.storage.call_times(ref.src[0])
        return times is None or times[0] < self.started

    def _stored(self, op: FixtureOp, kwargs: dict, refs: dict) -> Ref | None:
        block = self.storage.run(allow_new_calls=False)
        try:
            with block:
                (ref,) = block.call_op_with_refs(op, (), kwargs, refs)
        except NewCallError:
            return None
        return ref

    def _reused(self, name: str, param: str, ref: Ref) -> Any:
        times = self.storage.call_times(ref.src[0])
        self.outcomes.append(Outcome(name, "reused", times[1] if times else 0.0, param=param))
        return self._keep(ref)

    def _compute(self, op: FixtureOp, label: tuple[str, str], kwargs: dict, refs: dict, reason: str) -> Any:
        block = self.storage.run(allow_new_calls=True)
        started = time.perf_counter()
        with _unstored_named(op, label[0]), block:
            (ref,) = block.call_op_with_refs(op, (), kwargs, refs)
        status = "computed" if reason == NOT_STORED else "recomputed"
        outcome = Outcome(label[0], status, time.perf_counter() - started, reason, label[1])
        self.outcomes.append(outcome)
        value = self._keep(ref)
        if status == "recomputed":
            self._recomputed[id(value)] = outcome.label
        return value

    def _keep(self, ref: Ref) -> Any:
        self._produced[id(ref.value)] = ref
        return ref.value

    def _reason(self, op: FixtureOp, name: str, kwargs: dict, refs: dict) -> str:
        if self._wants_refresh(name):
            return "refresh requested"
        if "op" in kwargs:  # a fixture named `op` would collide with why's own parameter
            return "stored value not valid for today's code and inputs"
        reason = reason_from_why(self.storage.why(op, **kwargs))
        if reason != NOT_STORED:
            return reason
        # Never stored for these received values: because a cached fixture it receives was
        # computed anew in this session (its code changed), which is the reason to give.
        upstream = [self._recomputed[id(kwargs[arg])] for arg in refs if id(kwargs[arg]) in self._recomputed]
        if not upstream:
            return reason
        return f"upstream fixture{'s' if len(upstream) > 1 else ''} {', '.join(dict.fromkeys(upstream))} changed"

    @contextmanager
    def _single_flight(self, name: str, param: str) -> Iterator[None]:
        """Hold a lock file per fixture and param while computing: xdist workers (or any
        pytest processes) missing the same value at once compute it once; the others wait,
        then load it."""
        key = digest(f"{name}\0{param}".encode()).hex()[:16]
        locks = Path(f"{self.path}.locks")
        locks.mkdir(exist_ok=True)
        with _locked(locks / f"{key}.lock"):
            self.storage.forget_misses()  # what it found missing may have come meanwhile
            yield


def _with_ignore_hint(exc: ValueEncodingError, op: FixtureOp, name: str, kwargs: dict) -> ValueEncodingError:
    """The error, naming the fixture (not "op conftest.name", an op the user never wrote) and
    saying how to leave out of the key a received fixture that cannot be hashed (a
    connection, a lock): a pytest user meets ``ignore=`` here for the first time. Only for an
    error about this fixture's own arguments (not one an op in its body raised), and never
    naming one already ignored."""
    own = f"op {op.name}, argument "
    if not str(exc).startswith(own):
        return exc
    detail = str(exc)[len(own):]
    fixture = f"cached_fixture {name!r} ({_shown_path(op.fn.__code__.co_filename)}), "
    if detail.startswith(repr(PARAM_INPUT)):
        return ValueEncodingError(
            f"{fixture}its param{detail[len(repr(PARAM_INPUT)):]}; a param is part of the fixture's key: "
            "give params= values that can be hashed (plain data, or a name the body builds the object from)")
    for arg, value in kwargs.items():
        if arg == "request" or arg in op.ignore:  # request: only its param is hashed
            continue
        try:
            content_id(value)
        except UnhashableError:
            hint = f"; leave it out of the fixture's key with @cached_fixture(ignore=({arg!r},))"
            return ValueEncodingError(f"{fixture}argument {detail}{hint}")
    return ValueEncodingError(f"{fixture}argument {detail}")


@contextmanager
def _unstored_named(op: FixtureOp, name: str) -> Iterator[None]:
    """The warning for a fixture value that cannot be stored names the fixture and its file,
    where it said "op conftest.gen, output 0": an op the user never wrote. Other warnings (an
    op the body called) go on as they were, after the body (even one that raised); only that
    one is caught whatever the filters say: under the project's ``filterwarnings = error``,
    another raises where it is issued, and the value is not stored."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MandalaUnstoredWarning)
            yield
    finally:
        for warning in caught:
            _warn_again(warning, op, name)


def _warn_again(warning: warnings.WarningMessage, op: FixtureOp, name: str) -> None:
    detail = _own_unstored(str(warning.message), op.name) if warning.category is MandalaUnstoredWarning else None
    if detail is None:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno, source=warning.source)
        return
    code = op.fn.__code__
    warnings.warn_explicit(
        f"cached_fixture {name!r} ({_shown_path(code.co_filename)}): its value cannot be stored "
        f"({detail}); it is returned without being stored, so the fixture is computed again in every run",
        MandalaUnstoredWarning, code.co_filename, code.co_firstlineno,
    )


def _own_unstored(message: str, op_name: str) -> str | None:
    """Why the fixture's own value was not stored, from the warning ``message`` (None if the
    warning is about another op)."""
    own = f"op {op_name}, output 0: "
    for prefix in (own, f"op {op_name}: {own}"):  # (the second: a damaged value computed again)
        if message.startswith(prefix):
            detail = message[len(prefix):].partition("; it is returned without being stored")[0]
            return detail.partition("; its output is returned without being stored")[0]
    return None


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory (where pytest runs) when under it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # Windows: on another drive
        return path
    return path if relative.startswith(os.pardir) else relative


def _param_text(kwargs: dict) -> str:
    request = kwargs.get("request")
    return repr(request.param)[:40] if request is not None and hasattr(request, "param") else ""


#: The reason given for a value never stored under any code.
NOT_STORED = "not stored yet"


def reason_from_why(text: str) -> str:
    """A short reason from ``storage.why``'s explanation of a miss.

    >>> reason_from_why("miss: f() was computed before, but\\ndependency helpers.normalize changed:\\n-a\\n+b")
    'helper normalize changed'
    >>> reason_from_why("miss: f() was computed by another version of the op:\\n-a\\n+b")
    'fixture code changed'
    >>> reason_from_why("miss: f() was computed before, but\\ndependency file /data/x.csv changed:\\n-a\\n+b")
    'file x.csv changed'
    """
    if "computed by another version" in text:
        return "fixture code changed"
    names = [
        line[len("dependency ") : -len(" changed:")]
        for line in text.splitlines()
        if line.startswith("dependency ") and line.endswith(" changed:")
    ]
    if names:
        return " and ".join(part for kind in ("helper", "file") if (part := _changed_kind(names, kind)))
    return NOT_STORED if "never computed" in text else text.partition("\n")[0]


def _changed_kind(names: list[str], kind: str) -> str:
    """``"helper normalize changed"`` (last dotted part) or ``"file data.txt changed"``
    (base name) for the dependency names of that kind ("file /path" names a data file)."""
    if kind == "file":
        shown = [Path(name[len("file ") :]).name for name in names if name.startswith("file ")]
    else:
        shown = [name.rpartition(".")[2] for name in names if not name.startswith("file ")]
    shown = list(dict.fromkeys(shown))
    return f"{kind}{'s' if len(shown) > 1 else ''} {', '.join(shown)} changed" if shown else ""


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no single flight; workers may compute a value twice
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
