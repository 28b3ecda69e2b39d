"""pytest plugin: fixtures computed once and reused across runs until their code changes.

>>> from mandala_ast.pytest import cached_fixture
>>> @cached_fixture(scope="session")
... def trained_model(dataset):      # computed once; later `pytest` runs load it
...     return sum(dataset)

The key of a cached fixture's value is its version (its code, and the helpers, constants and
ops its body entered), its param, and what it receives: the content of plain fixtures' values,
or the stored call of other cached fixtures. Editing the fixture or a helper it called
recomputes it, and the terminal summary says which helper changed.

This module is loaded by pytest (through the ``pytest11`` entry point) in every run of every
project where mandala_ast is installed, so it imports only pytest and the standard library;
the storage and everything behind it load when a cached fixture is first used.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import sys
import time
import types
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from ._errors import FixtureError

if TYPE_CHECKING:
    from .runtime.fixtures import FixtureCache, FixtureOp, Outcome
    from .runtime.storage import Storage

__all__ = ["cached_fixture", "mandala_storage"]

#: Where the storage lives when neither ``--mandala-storage`` nor ini ``mandala_storage`` says.
DEFAULT_STORAGE = Path(".mandala") / "pytest.db"

#: pytest's fixtures that are a new temporary directory for every test.
PER_TEST_DIRECTORIES = frozenset({"tmp_path", "tmpdir"})

#: pytest's fixture scopes (``scope=`` also takes a callable that returns one).
Scope = Literal["session", "package", "module", "class", "function"]


def cached_fixture(
    fixture_function: Callable[..., Any] | None = None,
    *,
    scope: Scope | Callable[[str, pytest.Config], Scope] = "function",
    params: Iterable[object] | None = None,
    autouse: bool = False,
    ids: Sequence[object] | Callable[[Any], object] | None = None,
    name: str | None = None,
    ignore: Iterable[str] = (),
) -> Any:
    """Like ``@pytest.fixture``, but the value is stored and reused by later runs.

    Takes pytest's fixture arguments; ``ignore`` names received fixtures left out of the
    key (say ``tmp_path_factory``). A generator (``yield``) or async fixture is refused
    with :class:`~mandala_ast.FixtureError` (its teardown could not run when the value is
    loaded instead of computed), and so is a method: define cached fixtures at module level.

    >>> @cached_fixture(params=[10, 100])
    ... def dataset(request):
    ...     return list(range(request.param))
    """
    if fixture_function is None:
        options: dict[str, Any] = dict(scope=scope, params=params, autouse=autouse, ids=ids, name=name, ignore=ignore)
        return functools.partial(cached_fixture, **options)
    fixture_name = name or fixture_function.__name__
    _check_cacheable(fixture_function, fixture_name, tuple(ignore))
    wrapper = _fixture_wrapper(fixture_function, fixture_name, tuple(ignore))
    return pytest.fixture(wrapper, scope=scope, params=params, autouse=autouse, ids=ids, name=fixture_name)


def _check_cacheable(fn: Callable[..., Any], name: str, ignore: tuple[str, ...]) -> None:
    unknown = sorted(set(ignore) - set(inspect.signature(fn).parameters))
    if unknown:
        raise FixtureError(f"cached_fixture {name!r}: ignore= names fixtures it does not receive: {unknown}")
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise FixtureError(
            f"cached_fixture {name!r} is a generator (yield) fixture: a stored value is loaded "
            "without running the code around its yield, so its teardown could never run. Cache "
            f"the value in a plain (return) cached_fixture and yield it from an ordinary "
            f"@pytest.fixture that receives {name!r} and does the setup and teardown."
        )
    if "monkeypatch" in inspect.signature(fn).parameters:
        raise FixtureError(_patches_lost(name, "receives monkeypatch"))
    keyed_directories = sorted(PER_TEST_DIRECTORIES.intersection(inspect.signature(fn).parameters) - set(ignore))
    if keyed_directories:
        raise FixtureError(_never_loaded(name, keyed_directories[0]))
    owner = fn.__qualname__.rpartition("<locals>.")[2].rpartition(".")[0]
    if owner:
        raise FixtureError(
            f"cached_fixture {name!r} is defined in class {owner}: define it at module level "
            "(in conftest.py or the test module); tests in the class can still use it"
        )
    if inspect.iscoroutinefunction(fn):
        raise FixtureError(f"cached_fixture {name!r} is async: only plain (return) fixtures can be cached")


class _Fixture:
    """A cached fixture's function, name and op (made on first use: pytest may never ask)."""

    def __init__(self, fn: Callable[..., Any], name: str, ignore: tuple[str, ...]) -> None:
        self.fn, self.name, self.ignore = fn, name, ignore
        self.takes_request = "request" in inspect.signature(fn).parameters
        _DEFINED.add(self)

    @functools.cached_property
    def op(self) -> FixtureOp:
        from .runtime.fixtures import FixtureOp

        # pytestconfig is the run's Config, as request.config is: never hashed, its reads watched.
        config = ("pytestconfig",) if "pytestconfig" in inspect.signature(self.fn).parameters else ()
        return FixtureOp(self.fn, ignore=(*self.ignore, *config))

    def value(self, request: pytest.FixtureRequest, received: dict[str, Any]) -> Any:
        session = request.config.stash.get(_SESSION, None)
        if session is None or not session.enabled:  # -p no:mandala_ast, --no-mandala-cache
            return self.fn(**received, **({"request": request} if self.takes_request else {}))
        watched = _WatchedRequest(request)
        if self.takes_request:
            received["request"] = watched
        if "pytestconfig" in received:
            received["pytestconfig"] = _WatchedConfig(received["pytestconfig"], watched.unkeyed, "pytestconfig")
        cache = session.cache()
        value = cache.get(self.op, self.name, received)
        if watched.unkeyed:
            cache.discard(value)
            raise FixtureError(_unkeyed_read(self.name, watched.unkeyed[0]))
        temporary = _temporary_path_in(value, request)
        if temporary is not None:
            cache.discard(value)
            raise FixtureError(
                f"cached_fixture {self.name!r} returned a path in pytest's temporary directory "
                f"({temporary}), which pytest removes a few runs later (at once with --basetemp): "
                "a later run would load a path to files that are gone. Cache the data in a "
                "cached_fixture and write it to the temporary directory in an ordinary "
                "@pytest.fixture that receives it"
            )
        request.addfinalizer(functools.partial(cache.forget, value))
        return value


class _WatchedRequest:
    """The ``request`` a cached fixture's body gets: pytest's, noting what it reads that the
    key does not hold: what differs from test to test (``request.node``'s markers,
    ``request.module``'s settings), the run's options (``request.config.getoption``), and
    ``monkeypatch`` and ``addfinalizer``, whose patches and setups a loaded value would not make."""

    #: FixtureRequest attributes that differ from one requesting test (or module, class) to another.
    PER_TEST = frozenset({"node", "function", "cls", "instance", "module", "path", "keywords", "fixturenames"})

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.unkeyed: list[str] = []
        self.request = request

    @property
    def config(self) -> _WatchedConfig:
        return _WatchedConfig(self.request.config, self.unkeyed, "request.config")

    @property
    def session(self) -> _WatchedSession:
        return _WatchedSession(self.request.session, self.unkeyed)

    def getfixturevalue(self, argname: str) -> Any:
        if argname == "monkeypatch":  # its patches are the point, and a loaded value makes none
            self.unkeyed.append(f"getfixturevalue({argname!r})")
        if argname == "pytestconfig":
            return self.config
        value = self.request.getfixturevalue(argname)
        # A fetched fixture counts by its code, as a helper: one the test is parametrized over
        # has another value for each param, which no key holds.
        callspec = getattr(self.request.node, "callspec", None)
        if callspec is not None and argname in callspec.params:
            self.unkeyed.append(f"parametrized {argname!r}")
        return value

    def addfinalizer(self, finalizer: Callable[[], object]) -> None:
        # A teardown undoes a setup the body made (a server started, a file written), which a
        # loaded value does not make: noted, and still registered, since this setup did run.
        self.unkeyed.append("addfinalizer")
        self.request.addfinalizer(finalizer)

    def __getattr__(self, name: str) -> Any:
        if name in self.PER_TEST:
            self.unkeyed.append(name)
        return getattr(self.request, name)


class _WatchedConfig:
    """``request.config`` (or ``request.session.config``, or the ``pytestconfig`` fixture,
    as ``spelled`` says) for a cached fixture's body: notes the options it reads."""

    #: Config attributes that hold the command line (the options, the paths given).
    OPTIONS = frozenset({"option", "invocation_params", "known_args_namespace", "args"})

    def __init__(self, config: pytest.Config, unkeyed: list[str], spelled: str) -> None:
        self.wrapped, self.unkeyed, self.spelled = config, unkeyed, spelled

    def getoption(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.unkeyed.append(f"{self.spelled}.getoption({name!r})")
        return self.wrapped.getoption(name, *args, **kwargs)

    def getini(self, name: str) -> Any:
        self.unkeyed.append(f"{self.spelled}.getini({name!r})")
        return self.wrapped.getini(name)

    def __getattr__(self, name: str) -> Any:
        if name in self.OPTIONS:
            self.unkeyed.append(f"{self.spelled}.{name}")
        return getattr(self.wrapped, name)


class _WatchedSession:
    """``request.session`` for a cached fixture's body: its ``config`` is watched as
    ``request.config`` is (reading an option through it loaded another run's value)."""

    def __init__(self, session: pytest.Session, unkeyed: list[str]) -> None:
        self.wrapped, self.unkeyed = session, unkeyed

    @property
    def config(self) -> _WatchedConfig:
        return _WatchedConfig(self.wrapped.config, self.unkeyed, "request.session.config")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def _never_loaded(name: str, directory: str) -> str:
    """Why a cached fixture keyed on ``tmp_path`` (a new directory for every test) cannot be cached."""
    return (
        f"cached_fixture {name!r} receives {directory}, a new directory for every test, in its "
        "key: that key never comes again, so the value would be computed and stored anew for "
        "every test, never loaded. If the body only uses it as scratch space, leave it out of "
        f"the key: @cached_fixture(ignore=({directory!r},)) (the files it writes there are not "
        "written when the value is loaded: write those in an ordinary @pytest.fixture that "
        f"receives {name!r})"
    )


def _patches_lost(name: str, how: str) -> str:
    """Why a cached fixture that patches with pytest's ``monkeypatch`` cannot be cached."""
    return (
        f"cached_fixture {name!r} {how}: its patches are undone after each test, and a stored "
        "value is loaded without running the body, so the tests given that value would run "
        "unpatched. Patch in an ordinary @pytest.fixture instead, and receive that fixture here "
        "if the value depends on the patch (the attributes and environment variables the body "
        "reads are part of its key); to patch only while the value is computed, use "
        "`with pytest.MonkeyPatch.context() as patch:` in the body"
    )


def _unkeyed_read(name: str, read: str) -> str:
    """Why a cached fixture that read ``request.<read>`` cannot be cached, and what to do."""
    if read == "getfixturevalue('monkeypatch')":
        return _patches_lost(name, "fetched monkeypatch (request.getfixturevalue)")
    if read.startswith("parametrized "):
        fetched = read.partition(" ")[2]
        return (
            f"cached_fixture {name!r} fetched the parametrized fixture {fetched} with "
            "request.getfixturevalue, which counts by its code, not its value: the value computed "
            f"for one of its params would be loaded for the others. Receive {fetched} as an "
            "argument instead: its value (or its stored call) is then part of the key"
        )
    if read == "addfinalizer":
        return (
            f"cached_fixture {name!r} registered a teardown (request.addfinalizer): a stored value is "
            "loaded without running the body, so the setup that teardown undoes would not be made "
            "and the tests would get a value with nothing behind it. Cache the data in a plain "
            f"cached_fixture and do the setup and teardown in an ordinary @pytest.fixture that receives {name!r}"
        )
    if "config." in read:  # request.config, request.session.config, pytestconfig
        return (
            f"cached_fixture {name!r} read {read}, which the command line or ini file sets, "
            "but only request.param is part of its key: a value computed with other options would "
            "be loaded. Receive a plain @pytest.fixture that returns the option instead: its value is keyed"
        )
    return (
        f"cached_fixture {name!r} read request.{read}, which differs from test to test, but only "
        "request.param is part of its key: the value one test computed would be loaded for the "
        "others. To vary the value, give the choices as params= (or parametrize the tests with "
        "indirect=True); else use a plain @pytest.fixture"
    )


def _temporary_path_in(value: Any, request: pytest.FixtureRequest) -> str | None:
    """A path (``Path`` or absolute ``str``) in *value* into a temporary directory pytest
    made, in this run or an earlier one: None if there is none."""
    paths = _paths_in(value)
    if not paths:
        return None
    try:
        basetemp = request.getfixturevalue("tmp_path_factory").getbasetemp()
    except pytest.FixtureLookupError:  # -p no:tmpdir: pytest makes no temporary directories
        return None
    roots = [basetemp]
    if request.config.getoption("basetemp", None) is None:
        # pytest-of-<user> holds every run's directory, which pytest prunes to the last few.
        roots += [p for p in basetemp.parents if p.name.startswith("pytest-of-")]
    for path in paths:
        if any(path == root or root in path.parents for root in roots):
            return str(path)
    return None


def _paths_in(value: Any) -> list[Path]:
    """The absolute paths *value* is or holds in lists, tuples, sets and dicts, looking at
    1,000 items at most (a long list of numbers is no list of paths)."""
    paths, todo, budget = [], [value], 1000
    while todo and budget:
        item, budget = todo.pop(), budget - 1
        if isinstance(item, (str, os.PathLike)):
            text = os.fspath(item)
            if isinstance(text, str) and os.path.isabs(text):
                paths.append(Path(os.path.normpath(text)))
        elif isinstance(item, dict):
            todo += itertools.islice(itertools.chain(item.keys(), item.values()), budget)
        elif isinstance(item, (list, tuple, set, frozenset)):
            todo += itertools.islice(item, budget)
    return paths


#: Every cached fixture defined in this process: a conftest module that defines one is named
#: by its path (see _ConftestNames), and so are the functions it defined.
_DEFINED: weakref.WeakSet[_Fixture] = weakref.WeakSet()


def _fixture_wrapper(fn: Callable[..., Any], name: str, ignore: tuple[str, ...]) -> Callable[..., Any]:
    """The function pytest sees: the fixture's parameters plus ``request`` (for the config
    and the param), its name and location taken from ``fn``."""
    fixture = _Fixture(fn, name, ignore)

    @functools.wraps(fn)
    def wrapper(request: pytest.FixtureRequest, **received: Any) -> Any:
        return fixture.value(request, received)

    signature = inspect.signature(fn)
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    others = [p for p in signature.parameters.values() if p.name != "request"]
    wrapper.__signature__ = signature.replace(parameters=[request, *others])  # type: ignore[attr-defined]
    return wrapper


@pytest.fixture
def mandala_storage(tmp_path: Path) -> Any:
    """A fresh Storage in a temporary directory, closed after the test.

    >>> def test_inc(mandala_storage):        # doctest: +SKIP
    ...     with mandala_storage.run():
    ...         assert inc(1) == 2
    """
    from .runtime.storage import Storage

    storage: Storage = Storage(tmp_path / "mandala.db")
    yield storage
    storage.close()


# -- the plugin ---------------------------------------------------------------------------


class _Session:
    """One pytest process's cached-fixture state: options, and the storage once opened."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.enabled = not config.getoption("mandala_no_cache")
        refresh = config.getoption("mandala_refresh")
        self.refresh = () if refresh is None else tuple(n.strip() for n in refresh.split(",") if n.strip())
        worker = getattr(config, "workerinput", {})
        self.started: float = worker.get("mandala_session_start", time.time())
        self.outcomes: list[dict[str, Any]] = []  # reported by xdist workers (controller only)
        self._cache: FixtureCache | None = None

    def cache(self) -> FixtureCache:
        if self._cache is None:
            from .runtime.fixtures import FixtureCache

            self._cache = FixtureCache(self.storage_path(), refresh=self.refresh, started=self.started)
        return self._cache

    def storage_path(self) -> Path:
        given = self.config.getoption("mandala_storage")
        if given:
            return Path(given).absolute()  # a command-line path is relative to where pytest runs
        ini = self.config.getini("mandala_storage")
        base = self.config.inipath.parent if self.config.inipath else self.config.rootpath
        path = base / ini if ini else self.config.rootpath / DEFAULT_STORAGE
        if not ini:
            _ignore_in_git(path.parent)
        return path

    def own_outcomes(self) -> list[Outcome]:
        """What this process's cached fixtures did (nothing if none was used)."""
        return [] if self._cache is None else self._cache.outcomes

    def all_outcomes(self) -> list[Outcome]:
        """This process's outcomes and those its xdist workers reported."""
        if not self.outcomes:
            return self.own_outcomes()
        from .runtime.fixtures import Outcome

        return self.own_outcomes() + [Outcome(**o) for o in self.outcomes]

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()


_SESSION = pytest.StashKey[_Session]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mandala", "mandala_ast cached fixtures")
    group.addoption(
        "--mandala-refresh",
        nargs="?",
        const="*",
        default=None,
        dest="mandala_refresh",
        metavar="NAME,...",
        help="recompute every cached fixture, or (with =NAME,...) the named ones",
    )
    group.addoption(
        "--no-mandala-cache",
        action="store_true",
        dest="mandala_no_cache",
        help="run cached fixtures as plain fixtures: nothing is loaded or stored",
    )
    group.addoption(
        "--mandala-storage",
        dest="mandala_storage",
        metavar="PATH",
        help="storage file of cached fixtures (default: ini mandala_storage)",
    )
    parser.addini(
        "mandala_storage",
        "storage file of cached fixtures, relative to the ini file (default: .mandala/pytest.db under the rootdir)",
        default="",
    )
    parser.addini(
        "mandala_packages",
        "packages compiled by mandala_ast's import hook, installed before conftests load",
        type="args",
        default=[],
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # Before pytest imports any conftest (its own implementation runs last): a conftest or
    # test module that imports a listed package gets it compiled.
    packages = early_config.getini("mandala_packages")
    if packages:
        from .hook import install

        early_config.add_cleanup(install(*packages).uninstall)


def pytest_configure(config: pytest.Config) -> None:
    session = config.stash[_SESSION] = _Session(config)
    config.add_cleanup(session.close)
    # pytest_plugin_registered is a historic hook: the conftests imported before now are
    # replayed to it at registration.
    config.pluginmanager.register(_ConftestNames(config.rootpath), "mandala_ast-conftest-names")


class _ConftestNames:
    """Gives each conftest.py that defines cached fixtures a module name of its own.

    pytest imports every conftest.py outside a package as the module ``conftest``, and the
    last one imported is ``sys.modules["conftest"]``. A fixture's op and the helpers and
    constants it depends on are named by module (and found again through sys.modules), so
    two such files would share one op (a fixture served the other file's value) and a
    dependency would be looked up in the wrong file (an edited helper went unseen). A
    conftest.py below the rootdir that defines a cached fixture is named by its directory
    (``tests/unit/conftest.py`` is ``tests.unit.conftest``), which is stable whatever pytest
    collects; the rootdir's own keeps ``conftest`` and stays ``sys.modules["conftest"]``
    (pytest removes that entry before it imports another conftest.py, in every import mode).
    """

    def __init__(self, rootpath: Path) -> None:
        self.rootpath = rootpath
        self.root: types.ModuleType | None = None

    def pytest_plugin_registered(self, plugin: object) -> None:
        if isinstance(plugin, types.ModuleType) and plugin.__name__ == "conftest":
            self._name(plugin)
        # pytest took it out of sys.modules before importing another conftest.py (in
        # importlib mode too), or that one took its place.
        if self.root is not None and isinstance(plugin, types.ModuleType):
            sys.modules["conftest"] = self.root

    def _name(self, module: types.ModuleType) -> None:
        functions = [f.fn for f in _DEFINED if f.fn.__globals__ is vars(module)]
        name = conftest_module_name(Path(module.__file__ or ""), self.rootpath)
        if functions and name == "conftest":
            self.root = module
        elif functions:
            _rename_module(module, name, functions)


def conftest_module_name(path: Path, rootpath: Path) -> str:
    """The module name of a cached fixture's conftest.py outside a package: its directory
    relative to the rootdir, dotted.

    >>> conftest_module_name(Path("/repo/tests/unit/conftest.py"), Path("/repo"))
    'tests.unit.conftest'
    >>> conftest_module_name(Path("/repo/conftest.py"), Path("/repo"))
    'conftest'
    """
    directory = path.parent
    parts = directory.relative_to(rootpath).parts if directory.is_relative_to(rootpath) else directory.parts[1:]
    return ".".join([*(part.replace(".", "_") for part in parts), "conftest"])


def _rename_module(module: types.ModuleType, name: str, extra: list[Callable[..., Any]]) -> None:
    """Name *module* and what it defined (functions, classes and their methods) *name*."""
    old = module.__name__
    module.__name__ = name
    sys.modules[name] = module
    for value in [*vars(module).values(), *extra]:
        for owned in _defined_objects(value, old):
            owned.__module__ = name


def _defined_objects(value: Any, module_name: str) -> list[Any]:
    """*value* if the module named *module_name* defined it, with a class's methods."""
    if getattr(value, "__module__", None) != module_name:
        return []
    if isinstance(value, types.FunctionType):
        return [value]
    if not isinstance(value, type):
        return []
    members = []
    for member in vars(value).values():
        member = getattr(member, "__func__", member)  # staticmethod, classmethod
        functions = [getattr(member, a, None) for a in ("fget", "fset", "fdel")] if isinstance(member, property) else [member]
        members += [f for f in functions if isinstance(f, types.FunctionType) and f.__module__ == module_name]
    return [value, *members]


def pytest_report_header(config: pytest.Config) -> str | None:
    packages = config.getini("mandala_packages")
    return f"mandala: import hook on {', '.join(packages)}" if packages else None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    # pytest-xdist controller, per worker: one session start for all, so that a refresh
    # recomputes a value once, not once per worker.
    node.workerinput["mandala_session_start"] = node.config.stash[_SESSION].started


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    outcomes = getattr(node, "workeroutput", {}).get("mandala_outcomes", [])
    node.config.stash[_SESSION].outcomes.extend(outcomes)


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash.get(_SESSION, None)
    if state is not None and hasattr(config, "workeroutput"):
        config.workeroutput["mandala_outcomes"] = [o.as_dict() for o in state.own_outcomes()]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_SESSION, None)
    if state is None or not state.enabled:
        return
    outcomes = state.all_outcomes()
    if config.getoption("verbose") > 0:
        for outcome in outcomes:
            terminalreporter.write_line(f"mandala: {describe_outcome(outcome)}")
    if outcomes:
        terminalreporter.write_line(summarize(outcomes))
    used = {o.name for o in outcomes}
    unknown = [name for name in state.refresh if name != "*" and name not in used]
    if unknown:  # a typo, or `--mandala-refresh tests/` taking the path for names
        terminalreporter.write_line(
            f"mandala: --mandala-refresh named {', '.join(map(repr, unknown))}, but no cached fixture "
            "of that name was used (write --mandala-refresh=NAME: a word after the bare option is "
            "taken as names)",
            yellow=True,
        )


def describe_outcome(outcome: Outcome) -> str:
    """One fixture value's line (``-v``).

    >>> from mandala_ast.runtime.fixtures import Outcome
    >>> describe_outcome(Outcome("model", "recomputed", 2.5, "helper normalize changed"))
    'model recomputed in 2.5 s (helper normalize changed)'
    """
    if outcome.status == "reused":
        return f"{outcome.label} reused (saved {outcome.seconds:.1f} s)"
    return f"{outcome.label} {outcome.status} in {outcome.seconds:.1f} s ({outcome.reason})"


def summarize(outcomes: list[Outcome]) -> str:
    """The summary line: how many values were reused (and the time saved), which computed.

    >>> from mandala_ast.runtime.fixtures import Outcome
    >>> print(summarize([Outcome("data", "reused", 12.4), Outcome("model", "recomputed", 3.0, "helper normalize changed")]))
    mandala: 1 fixture reused (saved 12.4 s), 1 recomputed (model: helper normalize changed)
    """
    parts = []
    reused = [o for o in outcomes if o.status == "reused"]
    if reused:
        saved = sum(o.seconds for o in reused)
        parts.append(f"{_count(len(reused), 'fixture')} reused (saved {saved:.1f} s)")
    for status in ("recomputed", "computed"):
        done = [o for o in outcomes if o.status == status]
        if done:
            why = ", ".join(dict.fromkeys(f"{o.name}: {o.reason}" for o in done))
            noun = "" if parts else f" {'fixture' if len(done) == 1 else 'fixtures'}"
            parts.append(f"{len(done)}{noun} {status} ({why})")
    return "mandala: " + ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _ignore_in_git(directory: Path) -> None:
    """Our default directory ignores itself, as .pytest_cache does: nobody commits it."""
    marker = directory / ".gitignore"
    if not marker.exists():
        directory.mkdir(parents=True, exist_ok=True)
        marker.write_text("# created by mandala_ast's pytest plugin\n*\n")
