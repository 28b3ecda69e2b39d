"""The compile pipeline: transform a module's source, cache the code object, hand it to Python.

This is the I/O shell around the pure transform in :mod:`mandala_ast.transforms`. The import
hook (:mod:`mandala_ast.hook`), :func:`compile_module` and ``mandala-ast run`` all go through
:class:`CompilingLoader`, so they share one cache and one set of failure rules:

* **Cache**. Our own pyc files,
  ``__pycache__/<stem>.<cache_tag>-mandala_ast-<key12>.pyc`` (or under ``sys.pycache_prefix``),
  never CPython's. The header is a PEP 552 *checked-hash* header: validated by the source's hash,
  not its mtime, so an edit in the same second with the same size is caught (pytest #13292) and
  CI checkouts that touch every file keep their cache (pytest PR #14905). The key covers the
  library version, the transform's own source (which holds ``TRANSFORM_FORMAT``), the libcst
  version, ``sys.flags.optimize`` and options: every stale-cache bug in pytest (#66, #1671),
  typeguard (#85), beartype and jaxtyping came from leaving one of these out. Writes go to a
  temp file named with pid *and* thread id, then ``os.replace`` (pytest #3008 -> #3390 -> #3650).
  Every ``OSError`` is swallowed (read-only mounts, EROFS/ENOSYS #12300, EIO #14112, a
  ``__pycache__`` that is a file, zip imports). Where an entry cannot be written there
  (``PYTHONDONTWRITEBYTECODE``, ``-B``, a read-only tree) it goes to the cache directory of
  :mod:`mandala_ast.cachedir` instead, so such environments do not run libcst on every import. The payload stores the transform's diagnostics,
  which are replayed as warnings on a hit (pytest #8835 lost them).
* **A cache hit never imports libcst**: it costs a read, a hash and ``marshal.loads``.
* **Fail open.** If the transform raises (libcst's grammar lags CPython's: LibCST #989, #993)
  or its output would move lines, the original source is compiled and one
  :class:`~mandala_ast._errors.MandalaFallbackWarning` says why. A real ``SyntaxError`` is raised
  by compiling the original source, exactly as Python reports it.
* **Tracebacks stay true**: the final compile goes through the inherited
  ``SourceFileLoader.source_to_code`` with the real path, and ``get_code`` (not ``exec_module``)
  is overridden, so importlib trims its frames as usual (typeguard #340).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import marshal
import os
import sys
import threading
import types
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from blake3 import blake3

from . import cachedir
from ._errors import MandalaDiagnosticWarning, MandalaFallbackWarning
from ._guard import TRANSFORMING

if TYPE_CHECKING:  # at run time, re-exported lazily by __getattr__ below
    import ast

    from .transforms import TransformResult, transform_source

__all__ = [
    "TRANSFORMING",
    "CompilingLoader",
    "cache_key",
    "cache_path",
    "clear_cache",
    "compile_module",
    "transform_source",
]

#: Bumped when the layout of our cache payload, or how its code is built, changes.
#: 2: columns dropped from rewritten lines, compact location tables.
CACHE_FORMAT = 2
#: Goes into every cache file name; `mandala-ast cache clear` looks for it.
CACHE_TAG = "mandala_ast"
#: Modules whose raw bytes contain this are never compiled (like pytest's PYTEST_DONT_REWRITE).
OPT_OUT_MARKER = b"MANDALA_AST_DONT_COMPILE"
#: The bytes prefilter used when the hook targets "every module that mentions mandala_ast".
MENTION = b"mandala_ast"

_CHECKED_HASH_FLAGS = b"\x03\x00\x00\x00"  # PEP 552: hash-based, check_source
_HEADER_SIZE = 16


#: Per-process counters of compiled-module cache hits, misses and fallbacks: read by tests and
#: benchmarks (bench_import.py).
STATS: dict[str, int] = {"hits": 0, "misses": 0, "fallbacks": 0}

# (kind, message, lineno): kind is "diagnostic" or "fallback".
Diagnostic = tuple[str, str, int]
TransformFn = Callable[[str, str], "TransformResult"]

_transform_override: TransformFn | None = None
_key_memo: dict[tuple[Any, ...], str] = {}


def __getattr__(name: str) -> Any:
    """Re-export ``transform_source`` lazily, so importing this module never imports libcst."""
    if name in ("transform_source", "TransformResult", "TRANSFORM_FORMAT"):
        from . import transforms

        return getattr(transforms, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------


class CompilingLoader(importlib.machinery.SourceFileLoader):
    """A ``SourceFileLoader`` whose ``get_code`` compiles the module with the transform.

    Everything else (``get_source``, ``get_filename``, ``get_data``, ``is_package``,
    ``get_resource_reader``, ``exec_module``) is inherited: pytest had to add those one bug at
    a time because its hook does not subclass (#2506, #9169, #9608).

    Args:
        fullname: the module's name.
        path: its source file.
        prefilter: if true, compile only sources whose bytes mention ``mandala_ast``.

    >>> loader = CompilingLoader("m", "/tmp/m.py", prefilter=False)
    >>> loader.get_filename("m")
    '/tmp/m.py'
    """

    def __init__(self, fullname: str, path: str, *, prefilter: bool = True) -> None:
        super().__init__(fullname, path)
        self.prefilter = prefilter

    def get_code(self, fullname: str) -> types.CodeType:
        """Return the compiled (or cached) code object for *fullname*."""
        path = self.get_filename(fullname)
        data = self.get_data(path)
        if not wants_compiling(data, prefilter=self.prefilter):
            code = super().get_code(fullname)
            assert code is not None  # None only for a loader without source; this one has it
            return code
        return code_for(self, data, path, fullname)


def wants_compiling(data: bytes, *, prefilter: bool) -> bool:
    """The cheap bytes checks run before any parsing (0.02 ms on argparse.py).

    >>> wants_compiling(b"import mandala_ast", prefilter=True)
    True
    >>> wants_compiling(b"x = 1", prefilter=True), wants_compiling(b"x = 1", prefilter=False)
    (False, True)
    """
    if OPT_OUT_MARKER in data or not data.strip():  # empty __init__.py files: nothing to do
        return False
    return not prefilter or MENTION in data


def code_for(
    loader: importlib.machinery.SourceFileLoader, data: bytes, path: str, fullname: str
) -> types.CodeType:
    """Cache hit (``__pycache__``, then the cache directory), or transform + compile + write.

    An entry goes to the cache directory (:mod:`mandala_ast.cachedir`) when it cannot go to
    ``__pycache__``: bytecode writing is off, or the directory is read-only. Without that, every
    import in such an environment would run libcst again.
    """
    key = cache_key()
    pyc = cache_path(path, key)
    hit = read_cache(pyc, data, key) if pyc else None
    spare = None
    if hit is None:
        spare = cachedir.entry_path(data, path, key)
        hit = _read_spare(spare, data, key, path)
    if hit is not None:
        STATS["hits"] += 1
        code, diagnostics = hit
    else:
        code, diagnostics = compile_fresh(loader, data, path, fullname)
        written = pyc is not None and write_cache(pyc, data, key, code, diagnostics)
        if not written and spare and write_cache(spare, data, key, code, diagnostics, always=True):
            cachedir.prune(keep=spare)
    replay(diagnostics, path, fullname)
    return code


def _read_spare(
    entry: str | None, data: bytes, key: str, path: str
) -> tuple[types.CodeType, tuple[Diagnostic, ...]] | None:
    """A cache-directory hit, its code re-pointed at *path*.

    Entries are keyed by content, so the code may have been compiled from a copy of the file
    elsewhere; tracebacks must name this one (importlib fixes CPython's own pyc files alike).
    """
    hit = read_cache(entry, data, key) if entry else None
    if entry is None or hit is None:
        return None
    cachedir.note_use(entry)  # what pruning keeps: entries in use
    if hit[0].co_filename != path:
        return _with_filename(hit[0], path), hit[1]
    return hit


def _with_filename(code: types.CodeType, path: str) -> types.CodeType:
    """*code* and the code nested in it, compiled from *path*."""
    consts = tuple(
        _with_filename(const, path) if isinstance(const, types.CodeType) else const
        for const in code.co_consts
    )
    return code.replace(co_filename=path, co_consts=consts)


# --------------------------------------------------------------------------------------------
# Transform + compile (the cache-miss path)
# --------------------------------------------------------------------------------------------


def compile_fresh(
    loader: importlib.machinery.SourceFileLoader, data: bytes, path: str, fullname: str
) -> tuple[types.CodeType, tuple[Diagnostic, ...]]:
    """Transform and compile *data*; on any transform problem, compile the original instead."""
    STATS["misses"] += 1
    text = importlib.util.decode_source(data)
    try:
        result = run_transform(text, path)
    except Exception as exc:  # libcst grammar lag, a transform bug, or no transform at all
        reason = describe(exc)
    else:
        reason = ""
    # Compile outside the `except` block: a SyntaxError in the original must not be chained to
    # libcst's error; it has to look exactly like Python's own.
    if reason:
        return fallback(loader, data, path, fullname, reason)
    diagnostics = tuple(_diagnostic(str(d), path) for d in result.diagnostics)
    if not result.changed:
        return loader.source_to_code(data, path), diagnostics
    code, reason = None, line_drift(text, result.source)
    if not reason:
        code, reason = _try_compile(loader, text, result.source, path)
    if code is None:
        return fallback(loader, data, path, fullname, reason, diagnostics)
    return code, diagnostics


def _try_compile(
    loader: importlib.machinery.SourceFileLoader, text: str, source: str, path: str
) -> tuple[types.CodeType | None, str]:
    """Compile the transformed *source* of *text*, or say why it does not compile (our bug, not
    theirs). Tracebacks show the lines as written: the rewritten lines' columns would misplace
    the ^^^ markers, and they were most of the cached file's size (long lines, long-form
    entries), so they are dropped."""
    from .linetable import changed_lines, without_columns  # the miss path only

    def compile_source(data: str | ast.Module) -> types.CodeType:
        return loader.source_to_code(data, path)

    try:
        return without_columns(compile_source, source, path, changed_lines(text, source)), ""
    except SyntaxError as exc:
        where = snippet(source, exc.lineno)
        return None, f"the compiled source does not compile: {exc.msg} in {where}"


def _diagnostic(text: str, path: str) -> Diagnostic:
    """Split the transform's ``"<file>:<line>: <message>"`` so the warning points at the line.

    >>> _diagnostic("/a.py:12: call not compiled", "/a.py")
    ('diagnostic', 'call not compiled', 12)
    """
    prefix = path + ":"
    line, sep, message = text[len(prefix) :].partition(": ")
    if text.startswith(prefix) and sep and line.isdigit():
        return ("diagnostic", message, int(line))
    return ("diagnostic", text, 0)


def run_transform(text: str, path: str) -> TransformResult:
    """Run the transform with the re-entrancy guard set (libcst imports lazily)."""
    token = TRANSFORMING.set(True)
    try:
        transform = _transform_override or _default_transform()
        return transform(text, path)
    finally:
        TRANSFORMING.reset(token)


def _default_transform() -> TransformFn:
    from .transforms import transform_source

    return transform_source


def fallback(
    loader: importlib.machinery.SourceFileLoader,
    data: bytes,
    path: str,
    fullname: str,
    reason: str,
    diagnostics: tuple[Diagnostic, ...] = (),
) -> tuple[types.CodeType, tuple[Diagnostic, ...]]:
    """Compile the original bytes; a SyntaxError here is the user's, raised as Python would."""
    code = loader.source_to_code(data, path)
    STATS["fallbacks"] += 1
    message = f"mandala_ast could not compile module {fullname!r}; it runs uncompiled: {reason}"
    return code, (*diagnostics, ("fallback", message, 1))


def line_drift(old: str, new: str) -> str:
    """Why *new* would move original lines (tracebacks would point at the wrong ones), or ``""``.

    >>> line_drift("a\\nb\\n", "a; c\\nb\\n")
    ''
    >>> line_drift("a\\n", "a\\nc\\n")
    'the transform changed the number of lines (1 -> 2)'
    """
    before, after = old.count("\n"), new.count("\n")
    if before == after:
        return ""
    return f"the transform changed the number of lines ({before} -> {after})"


def describe(exc: BaseException) -> str:
    """A one-paragraph reason for a fallback warning (libcst messages span several lines)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = " | ".join(lines[:4]) if lines else "(no message)"
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {text}"


def snippet(source: str, lineno: int | None) -> str:
    """The generated line *lineno* of *source*, for error messages."""
    lines = source.splitlines()
    if not lineno or not 0 < lineno <= len(lines):
        return "(unknown line)"
    return f"line {lineno}: {lines[lineno - 1].strip()!r}"


def replay(diagnostics: tuple[Diagnostic, ...], path: str, fullname: str) -> None:
    """Emit stored diagnostics as warnings, on a miss and on every hit alike (pytest #8835)."""
    for kind, message, lineno in diagnostics:
        category = MandalaFallbackWarning if kind == "fallback" else MandalaDiagnosticWarning
        warnings.warn_explicit(message, category, path, lineno or 1, module=fullname)


# --------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------


def cache_key(options: tuple[tuple[str, str], ...] = ()) -> str:
    """The hex blake3 of everything that changes the compiled output; memoized per process.

    blake3, not hashlib: the runtime imports it anyway, while ``import hashlib`` loads
    OpenSSL (~2.5 ms), a fifth of a warm import.

    >>> len(cache_key())
    64
    """
    memo_key = (options, sys.flags.optimize, _transform_override)
    key = _key_memo.get(memo_key)
    if key is None:
        key = _key_memo[memo_key] = _compute_key(options)
    return key


def _compute_key(options: tuple[tuple[str, str], ...]) -> str:
    parts = [
        f"cache-format={CACHE_FORMAT}",
        f"mandala_ast={_library_version()}",
        f"transforms={_transforms_digest()}",
        f"libcst={_dist_version('libcst', 'libcst')}",
        f"optimize={sys.flags.optimize}",
        f"options={sorted(options)!r}",
    ]
    if _transform_override is not None:
        override = _transform_override
        parts.append(f"override={override.__module__}.{override.__qualname__}")
    return blake3("\n".join(parts).encode()).hexdigest()


def _library_version() -> str:
    package = sys.modules.get(__package__ or "mandala_ast")
    return getattr(package, "__version__", None) or _dist_version("mandala_ast")


def _transforms_digest() -> str:
    """blake3 of the transform package's sources.

    Why not only the ``TRANSFORM_FORMAT`` integer: reading it means importing
    ``mandala_ast.transforms``, which imports libcst, and a cache hit must not. Hashing the files
    (which contain ``TRANSFORM_FORMAT``) is also stronger: jaxtyping bumped its key by hand ten
    times, and a forgotten bump serves stale code.
    """
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transforms")
    digest = blake3()
    for relpath in sorted(_py_files(root)):
        try:
            with open(os.path.join(root, relpath), "rb") as file:
                content = file.read()
        except OSError:
            content = b"<unreadable>"
        digest.update(relpath.encode() + b"\0" + content + b"\0")
    return digest.hexdigest()


def _py_files(root: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if name.endswith(".py"):
                yield os.path.relpath(os.path.join(dirpath, name), root)


def _dist_version(dist: str, package: str | None = None) -> str:
    """The installed version of *dist*, read from its ``.dist-info`` directory name.

    This is what ``importlib.metadata.version`` finds, but importing ``importlib.metadata``
    costs ~35 ms [measured, CPython 3.11.7], which alone would break the 1.2x warm-import
    budget. We look in the directory that holds the importable *package* first (found without
    importing it: libcst is never imported for this), then along ``sys.path``.

    >>> _dist_version("libcst", "libcst") == _dist_version("libcst")
    True
    """
    for entry in _site_of(package) + sys.path:
        version = _version_in(entry or ".", _normalize(dist))
        if version:
            return version
    return _metadata_version(dist)


def _site_of(package: str | None) -> list[str]:
    if not package:
        return []
    token = TRANSFORMING.set(True)  # our finder must not see this lookup
    try:
        spec = importlib.machinery.PathFinder.find_spec(package)
    except Exception:
        return []
    finally:
        TRANSFORMING.reset(token)
    if spec is None or not spec.submodule_search_locations:
        return []
    return [os.path.dirname(spec.submodule_search_locations[0])]


def _version_in(directory: str, wanted: str) -> str:
    try:
        names = os.listdir(directory)
    except OSError:  # zip files, missing dirs
        return ""
    for name in names:
        if name.endswith(".dist-info"):
            project, _, version = name[: -len(".dist-info")].partition("-")
            if version and _normalize(project) == wanted:
                return version
    return ""


def _normalize(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _metadata_version(dist: str) -> str:
    """Slow path for egg-info installs and the like."""
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except Exception:  # not installed (running from a source tree), or broken metadata
        return "unknown"


def cache_path(source_path: str, key: str) -> str | None:
    """Where the compiled form of *source_path* is cached, or None if Python has no cache tag.

    Honours ``sys.pycache_prefix`` through ``importlib.util.cache_from_source``.

    >>> cache_path("/src/pkg/mod.py", "ab" * 32)  # doctest: +SKIP
    '/src/pkg/__pycache__/mod.cpython-311-mandala_ast-abababababab.pyc'
    """
    try:
        plain = importlib.util.cache_from_source(source_path, optimization="")
    except (NotImplementedError, ValueError):  # sys.implementation.cache_tag is None
        return None
    stem = os.path.splitext(os.path.basename(source_path))[0]
    name = f"{stem}.{sys.implementation.cache_tag}-{CACHE_TAG}-{key[:12]}.pyc"
    return os.path.join(os.path.dirname(plain), name)


def read_cache(
    pyc: str, data: bytes, key: str
) -> tuple[types.CodeType, tuple[Diagnostic, ...]] | None:
    """The cached ``(code, diagnostics)`` for source *data*, or None if missing/stale/corrupt."""
    try:
        with open(pyc, "rb") as file:
            blob = file.read()
    except OSError:  # missing, unreadable, EIO (pytest #14112), __pycache__ is a file
        return None
    if not _header_matches(blob, data):
        return None
    try:
        cache_format, stored_key, code, diagnostics = marshal.loads(memoryview(blob)[_HEADER_SIZE:])
    except Exception:  # truncated or corrupt: EOFError, ValueError, TypeError
        return None
    if cache_format != CACHE_FORMAT or stored_key != key or not isinstance(code, types.CodeType):
        return None
    return code, tuple(diagnostics)


def _header_matches(blob: bytes, data: bytes) -> bool:
    return (
        len(blob) > _HEADER_SIZE
        and blob[:4] == importlib.util.MAGIC_NUMBER
        and blob[4:8] == _CHECKED_HASH_FLAGS
        and blob[8:16] == importlib.util.source_hash(data)
    )


def write_cache(
    pyc: str,
    data: bytes,
    key: str,
    code: types.CodeType,
    diagnostics: tuple[Diagnostic, ...],
    *,
    always: bool = False,
) -> bool:
    """Write the cache entry atomically; True if written. Never raises for I/O problems.

    ``sys.dont_write_bytecode`` (``-B``) forbids writing beside the sources, not into the cache
    directory: *always* is for entries there.
    """
    if sys.dont_write_bytecode and not always:
        return False
    header = importlib.util.MAGIC_NUMBER + _CHECKED_HASH_FLAGS + importlib.util.source_hash(data)
    blob = header + marshal.dumps((CACHE_FORMAT, key, code, tuple(diagnostics)))
    token = TRANSFORMING.set(True)
    try:
        return _write_atomic(pyc, blob)
    finally:
        TRANSFORMING.reset(token)


def _write_atomic(path: str, blob: bytes) -> bool:
    # pid AND thread id: pytest's pid-only temp name can collide between threads. Readers in
    # other processes see the old file or the whole new one, never a part (os.replace).
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as file:
            file.write(blob)
        os.replace(tmp, path)
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False


def clear_cache(root: str | os.PathLike[str] = ".") -> int:
    """Delete this library's cached files under *root* (and its ``sys.pycache_prefix`` mirror).

    Returns how many files were removed. CPython's own ``.pyc`` files are left alone.

    >>> clear_cache("/nonexistent")
    0
    """
    removed = 0
    for path in _cached_files(os.path.abspath(root)):
        try:
            os.unlink(path)
            removed += 1
        except OSError:
            pass
    return removed


def _cached_files(root: str) -> Iterator[str]:
    roots = [root]
    if sys.pycache_prefix:  # CPython mirrors the absolute path under the prefix
        roots.append(os.path.join(sys.pycache_prefix, os.path.splitdrive(root)[1].lstrip(os.sep)))
    marker = f"-{CACHE_TAG}-"
    for top in roots:
        for dirpath, _dirnames, filenames in os.walk(top):
            for name in filenames:
                if marker in name and (name.endswith(".pyc") or name.endswith(".tmp")):
                    yield os.path.join(dirpath, name)


# --------------------------------------------------------------------------------------------
# compile_module
# --------------------------------------------------------------------------------------------


def compile_module(
    path_or_name: str | os.PathLike[str], *, name: str | None = None
) -> types.ModuleType:
    """Compile a module with the transform, execute it, and register it in ``sys.modules``.

    Works without the import hook (pytest #9977 and typeguard #212 asked for this path), and
    goes through the same transform, cache and fallback rules as the hook.

    Args:
        path_or_name: a ``.py`` file (or a package directory), or an importable module name.
        name: the name to register the module under; defaults to the name ``import`` gives
            the file (``pkg.sub.flow`` for ``pkg/sub/flow.py`` when the directory holding
            ``pkg`` is on sys.path, else its stem), or the module name given. An existing
            module of that name is replaced.

    Returns:
        The executed module.

    Raises:
        ModuleNotFoundError: the module name cannot be found.
        ImportError: the module exists but is not Python source (extension, namespace package).
        SyntaxError: the source is not valid Python, reported as Python reports it.

    >>> mod = compile_module("pipeline.py")            # doctest: +SKIP
    >>> mod = compile_module("myproject.pipeline")     # doctest: +SKIP
    """
    path, modname, search = _locate(path_or_name, name)
    parent = modname.rpartition(".")[0]
    if name is None and parent:  # as the import system does: `from .. import x` needs it
        importlib.import_module(parent)
    loader = CompilingLoader(modname, path, prefilter=False)
    spec = importlib.util.spec_from_file_location(
        modname, path, loader=loader, submodule_search_locations=search
    )
    if spec is None:  # only for suffixes no loader knows; not a bare assert (pytest rewrites it)
        raise ImportError(f"cannot compile {path!r}: unknown file type")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    _bind_to_parent(modname, module)
    return module


def _locate(target: str | os.PathLike[str], name: str | None) -> tuple[str, str, list[str] | None]:
    """(source path, module name, submodule search locations) for *target*."""
    if isinstance(target, os.PathLike) or _looks_like_path(target):
        return _locate_path(os.path.abspath(os.fspath(target)), name)
    spec = importlib.util.find_spec(target)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {target!r}", name=target)
    if not spec.has_location or not str(spec.origin).endswith((".py", ".pyw")):
        raise ImportError(f"cannot compile {target!r}: not a Python source file ({spec.origin})")
    search = spec.submodule_search_locations
    return str(spec.origin), name or target, list(search) if search is not None else None


def _looks_like_path(target: str) -> bool:
    return target.endswith((".py", ".pyw")) or os.sep in target or "/" in target


def _locate_path(path: str, name: str | None) -> tuple[str, str, list[str] | None]:
    if os.path.isdir(path):
        init = os.path.join(path, "__init__.py")
        if not os.path.isfile(init):
            raise ImportError(f"cannot compile {path!r}: a directory without __init__.py")
        return init, name or _import_name(path), [path]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    return path, name or _import_name(os.path.splitext(path)[0]), None


def _import_name(stem: str) -> str:
    """The name ``import`` knows a file (its path without suffix) or package directory by:
    dotted after its packages when the directory holding the outermost one is on sys.path
    (its relative imports work, its ops are named as when imported), else its bare name."""
    parts = [os.path.basename(stem)]
    directory = os.path.dirname(stem)
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        parts.insert(0, os.path.basename(directory))
        directory = os.path.dirname(directory)
    importable = all(part.isidentifier() for part in parts) and _on_sys_path(directory)
    return ".".join(parts) if importable else parts[-1]


def _on_sys_path(directory: str) -> bool:
    real = os.path.realpath(directory)
    return any(isinstance(entry, str) and os.path.realpath(entry or os.getcwd()) == real for entry in sys.path)


def _bind_to_parent(modname: str, module: types.ModuleType) -> None:
    """Set ``parent.child`` as the import system does, so ``a.b`` is the new module."""
    parent, _, child = modname.rpartition(".")
    if parent and parent in sys.modules:
        setattr(sys.modules[parent], child, module)
