"""The import hook: compile modules that use mandala_ast as they are imported.

>>> import mandala_ast
>>> with mandala_ast.install("myproject"):      # doctest: +SKIP
...     import myproject.pipeline               # compiled (or loaded from the cache)

Design:

* One process-global :class:`MandalaFinder` at ``sys.meta_path[0]``. It filters by name first
  (no filesystem work for modules we do not want: pytest #3918/#3919), then a hard deny-list
  (the stdlib, mandala_ast itself, libcst, pytest, pluggy: pytest PR #14844, beartype's
  blacklist), then **delegates** to the finders after it and wraps only specs whose loader is
  exactly ``SourceFileLoader``. pytest's assertion rewriter (its own loader), editable-install
  finders that build custom loaders, zipimport and PyInstaller pass through untouched, so test
  modules keep assertion rewriting (typeguard #230/#518, beartype #417) and editable installs
  that return plain ``SourceFileLoader`` specs are still compiled (beartype #556).
* ``sys.path_hooks`` is not used: meta-path finders that build specs themselves never consult
  it (beartype #556, #599).
* While a module is being transformed the finder declines everything in that thread
  (:data:`mandala_ast.compiler.TRANSFORMING`): libcst imports lazily (pytest #3506).
* The hook is process-wide, not per thread, including its ``with`` form (beartype's FIXME);
  install and uninstall are serialised by a lock.
* Modules that were imported before :func:`install` cannot be compiled; we say so once
  (pytest ``_warn_already_imported``, typeguard #260).

``importlib.abc`` is deliberately not imported: it pulls in ``importlib.resources`` (~25 ms
[measured, 3.11.7]), which would eat the warm-import budget. The import system only needs
``find_spec`` and ``invalidate_caches``. For the same reason :func:`install` loads nothing
but this module (``_thread``'s lock, not ``threading``): the compiler, blake3 and the cache
are imported by the first module that is actually compiled.
"""

from __future__ import annotations

import _thread
import importlib
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from ._errors import HookError, MandalaImportWarning
from ._guard import TRANSFORMING

__all__ = ["HookHandle", "MandalaFinder", "install", "install_this_package", "installed"]

#: Top-level names never compiled, whatever the user asks: compiling these would recurse into
#: ourselves or the transform, or could break the test runner.
DENIED_ROOTS: frozenset[str] = frozenset(sys.stdlib_module_names) | {
    "__main__",
    "mandala_ast",
    "libcst",
    "pytest",
    "_pytest",
    "pluggy",
    "py",
}



def denied(fullname: str) -> bool:
    """True for modules never compiled: see :data:`DENIED_ROOTS`.

    setuptools' editable-install finders (``__editable___*``) are generated code that names
    the project; they are plumbing, not user code.

    >>> denied("json.decoder"), denied("libcst"), denied("myproject.ops")
    (True, True, False)
    """
    root = fullname.partition(".")[0]
    return root in DENIED_ROOTS or root.startswith("__editable__")


_SourceFileLoader = importlib.machinery.SourceFileLoader
_lock = _thread.RLock()
_handles: list[HookHandle] = []


class MandalaFinder:
    """The delegating meta-path finder; one per process, shared by every :class:`HookHandle`.

    ``find_spec`` returns None for modules it does not target (the import system then asks the
    next finder), and otherwise the spec the following finders produce, with the loader swapped
    for a :class:`~mandala_ast.compiler.CompilingLoader` when it is a plain ``SourceFileLoader``.
    """

    def __init__(self) -> None:
        self.all_modules = False  # True: any module mentioning mandala_ast
        self.packages: tuple[str, ...] = ()

    def __repr__(self) -> str:
        scope = "all modules mentioning mandala_ast" if self.all_modules else self.packages
        return f"<MandalaFinder {scope}>"

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """Find *fullname* through the finders after this one; wrap plain source loaders."""
        if TRANSFORMING.get():
            return None
        explicit = self.explicit(fullname)
        if not (explicit or self.all_modules) or denied(fullname):
            return None
        spec = self._delegate(fullname, path, target)
        if spec is None or type(spec.loader) is not _SourceFileLoader:
            return spec
        loader_class = _compiling_loader()
        if loader_class is not None:
            spec.loader = loader_class(fullname, spec.loader.path, prefilter=not explicit)
        return spec

    def explicit(self, fullname: str) -> bool:
        """True if *fullname* is one of the installed packages or inside one."""
        return any(fullname == p or fullname.startswith(p + ".") for p in self.packages)

    def _delegate(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None
    ) -> importlib.machinery.ModuleSpec | None:
        # Ask the finders *after* us, in order, as the import system would have. Returning their
        # spec (rather than None) saves it from asking them a second time.
        finders = sys.meta_path
        try:
            start = finders.index(self) + 1
        except ValueError:  # uninstalled while an import was in flight
            return None
        for finder in finders[start:]:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is not None and not isinstance(finder, MandalaFinder):
                spec: importlib.machinery.ModuleSpec | None = find_spec(fullname, path, target)
                if spec is not None:
                    return spec
        return None

    def invalidate_caches(self) -> None:
        """Nothing to invalidate: the finder keeps no caches of its own."""


_finder = MandalaFinder()


def _compiling_loader() -> Any:
    """The compiler's loader class, imported on first use with the finder off.

    None while this very thread is importing the compiler (its own imports, blake3, come
    through the finder): those load as usual. Another thread importing it meanwhile is waited
    for by the import system's module lock, so its modules are compiled as always.
    """
    loader = getattr(sys.modules.get("mandala_ast.compiler"), "CompilingLoader", None)
    if loader is not None:
        return loader
    token = TRANSFORMING.set(True)
    try:
        from .compiler import CompilingLoader
    except ImportError:  # "partially initialized module": the compiler's own imports
        return None
    finally:
        TRANSFORMING.reset(token)
    return CompilingLoader


class HookHandle:
    """What :func:`install` returns: ``uninstall()`` it, or use it as a context manager.

    ``uninstall()`` is idempotent. The ``with`` form scopes the hook in time, not per thread:
    other threads importing meanwhile are compiled too.

    >>> handle = install("myproject")                  # doctest: +SKIP
    >>> handle.uninstall(); handle.uninstall()         # doctest: +SKIP
    >>> with install("myproject"):                     # doctest: +SKIP
    ...     import myproject.pipeline
    """

    def __init__(self, packages: tuple[str, ...]) -> None:
        self.packages = packages

    def __repr__(self) -> str:
        state = "active" if self.active else "uninstalled"
        return f"<HookHandle packages={self.packages!r} {state}>"

    @property
    def active(self) -> bool:
        """True until :meth:`uninstall` is called."""
        return any(h is self for h in _handles)

    def uninstall(self) -> None:
        """Stop compiling this handle's modules; modules already imported stay compiled."""
        with _lock:
            _handles[:] = [h for h in _handles if h is not self]
            _sync_finder()

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()


def install(*packages: str) -> HookHandle:
    """Compile the given packages (and their submodules) when they are imported.

    With no packages, every module whose source mentions ``mandala_ast`` is compiled (a bytes
    check before any parse). Like ``beartype_all``, that form is meant for applications and
    scripts; libraries should call :func:`install_this_package` instead.

    Args:
        *packages: top-level or dotted package/module names, e.g. ``"myproject"``.

    Returns:
        A :class:`HookHandle`; the hook stays active until it is uninstalled.

    Raises:
        ValueError: a name is not a dotted identifier, or is never compiled (stdlib, pytest...).

    >>> handle = install("myproject")            # doctest: +SKIP
    >>> import myproject.pipeline                # doctest: +SKIP
    >>> handle.uninstall()                       # doctest: +SKIP
    """
    return _install(_validate(packages), stacklevel=3)


def install_this_package() -> HookHandle:
    """Compile the calling package's modules; call it at the top of the package's ``__init__``.

    The ``__init__`` module itself is already running and is not compiled: put ops, workflows
    and storage blocks in submodules.

    Raises:
        HookError: called from a script or an interactive session, which has no package.

    >>> # myproject/__init__.py
    >>> from mandala_ast import install_this_package       # doctest: +SKIP
    >>> install_this_package()                              # doctest: +SKIP
    """
    caller = sys._getframe(1).f_globals
    package = caller.get("__package__")
    if not package:
        raise HookError(_NO_PACKAGE.format(name=caller.get("__name__", "?")))
    return _install((package,), stacklevel=3)


_NO_PACKAGE = (
    "install_this_package() was called from {name!r}, which is not inside a package (a script, "
    "a notebook or the REPL). Call it from a package's __init__.py; otherwise use "
    "mandala_ast.install('yourpackage'), or `mandala-ast run script.py` for a script."
)


def installed() -> tuple[str, ...] | None:
    """The packages the hook targets now: ``None`` when it is not installed, ``()`` for all.

    >>> installed() is None or isinstance(installed(), tuple)
    True
    """
    with _lock:
        if not _handles:
            return None
        return () if _finder.all_modules else _finder.packages


def _validate(packages: Iterable[str]) -> tuple[str, ...]:
    names = tuple(packages)
    for name in names:
        if not isinstance(name, str) or not all(p.isidentifier() for p in name.split(".")):
            raise ValueError(f"not a module or package name: {name!r}")
        if denied(name):
            raise ValueError(f"mandala_ast never compiles {name!r} (stdlib, itself or a test tool)")
    return names


def _install(packages: tuple[str, ...], *, stacklevel: int) -> HookHandle:
    handle = HookHandle(packages)
    with _lock:
        _handles.append(handle)
        _sync_finder()
    importlib.invalidate_caches()
    _warn_already_imported(packages, stacklevel=stacklevel + 1)
    return handle


def _sync_finder() -> None:
    """Make ``sys.meta_path`` and the finder's targets match the active handles (lock held)."""
    _finder.all_modules = any(not h.packages for h in _handles)
    _finder.packages = tuple(sorted({p for h in _handles for p in h.packages}))
    present = any(f is _finder for f in sys.meta_path)
    if _handles and not present:
        sys.meta_path.insert(0, _finder)
    elif not _handles and present:
        sys.meta_path[:] = [f for f in sys.meta_path if f is not _finder]


def _warn_already_imported(packages: tuple[str, ...], *, stacklevel: int) -> None:
    modules = list(sys.modules.items())
    if packages:  # str.startswith(tuple) runs in C: ~650 modules in 0.05 ms, not 0.5 ms
        prefixes = tuple(p + "." for p in packages)
        modules = [(n, m) for n, m in modules if n in packages or n.startswith(prefixes)]
        names = sorted(name for name, module in modules if _missed(name, module))
    else:
        ours = _our_objects()
        names = sorted(n for n, m in modules if _missed(n, m) and _mentions(m.__dict__, ours))
    if names:
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        message = f"imported before mandala_ast.install(), so not compiled: {shown}"
        warnings.warn(message, MandalaImportWarning, stacklevel=stacklevel)


def _missed(name: str, module: Any) -> bool:
    """True if *module* could have been compiled but was loaded without us.

    Cheapest checks first, and attributes are read from ``__dict__``: a module-level
    ``__getattr__`` (numpy, pandas) made plain ``getattr`` cost ~10 ms over 650 modules.
    """
    if denied(name):
        return False
    namespace = getattr(module, "__dict__", None)
    if not isinstance(namespace, dict):
        return False
    if type(namespace.get("__loader__")) is not _SourceFileLoader:
        return False  # compiled already, pytest's rewriter, zipimport, extension modules
    return not getattr(namespace.get("__spec__"), "_initializing", False)  # install_this_package()


def _our_objects() -> set[int]:
    """ids of mandala_ast's loaded modules and of the functions and classes they define."""
    ids: set[int] = set()
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] != "mandala_ast":
            continue
        ids.add(id(module))
        for value in vars(module).values():
            if isinstance(value, (type, types.FunctionType)) and str(value.__module__).startswith("mandala_ast"):
                ids.add(id(value))
    return ids


def _mentions(namespace: dict[str, Any], ours: set[int]) -> bool:
    """True if a loaded module's source mentions mandala_ast (and does not opt out).

    Reading every loaded module's file cost 16-50 ms with pandas loaded. A module that uses
    mandala_ast holds one of its modules, functions or classes (``import mandala_ast as ma``,
    ``from mandala_ast import op``); ``isdisjoint`` finds it at C speed (~1 ms over pandas'
    600 modules), and only those few files are read, for the opt-out marker. A module that
    imports mandala_ast only inside its functions is not reported: this is a warning, not a rule.
    """
    if ours.isdisjoint(map(id, namespace.values())):
        return False
    from .compiler import wants_compiling

    try:
        with open(namespace.get("__file__"), "rb") as file:  # type: ignore[arg-type]
            return wants_compiling(file.read(), prefilter=True)
    except (OSError, TypeError):
        return False
