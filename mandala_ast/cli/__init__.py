"""The ``mandala-ast`` command.

::

    mandala-ast run script.py [args...]     run a script with the compiler active
    mandala-ast show FILE [--diff]          print the compiled source (or a diff)
    mandala-ast cache clear [PATH]          delete mandala_ast's cached bytecode under PATH
    mandala-ast cache show | clear --dir    the cache used when bytecode writing is off
    mandala-ast ops DB                      look into a storage (and calls, versions, why,
                                            graph, verify, gc, delete, export, browse)

Exit status: 0 ok, 1 failure (a clear message on stderr), 2 a command line that means nothing.

Also available as ``python -m mandala_ast.cli``.
"""

from __future__ import annotations

import argparse
import builtins
import difflib
import os
import sqlite3
import sys
import types
from collections.abc import Sequence

from .._errors import MandalaError
from .storage_commands import UsageError, add_commands

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mandala-ast`` console script; returns the exit status.

    >>> main(["cache", "clear", "/nonexistent"])   # doctest: +SKIP
    Removed 0 cached file(s) under /nonexistent
    0
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UsageError as exc:
        print(f"mandala-ast {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (MandalaError, OSError, sqlite3.Error) as exc:
        print(f"mandala-ast {args.command}: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="mandala-ast",
        description="Run, inspect and cache mandala_ast-compiled Python code; look into a storage.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(commands)
    _add_show(commands)
    _add_cache(commands)
    add_commands(commands)
    return parser


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="run a script with its code compiled, like `python script.py`",
        description="Run SCRIPT as __main__ with its source compiled by mandala_ast. The import "
        "hook is active for every module that mentions mandala_ast, so the script's own modules "
        "are compiled too. sys.argv and sys.path[0] are set as `python SCRIPT ARGS` would.",
    )
    run.epilog = "example:\n  mandala-ast run examples/quickstart.py"
    run.formatter_class = argparse.RawDescriptionHelpFormatter
    run.add_argument("script", help="the Python file to run")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    run.set_defaults(handler=_cmd_run)


def _add_show(commands: argparse._SubParsersAction) -> None:
    show = commands.add_parser(
        "show",
        help="print the compiled source of a file",
        description="Print FILE as the compiler rewrites it (nothing is executed or cached).",
    )
    show.epilog = "example:\n  mandala-ast show examples/quickstart.py --diff"
    show.formatter_class = argparse.RawDescriptionHelpFormatter
    show.add_argument("file", help="the Python file to transform")
    show.add_argument("--diff", action="store_true", help="print a unified diff instead")
    show.set_defaults(handler=_cmd_show)


def _add_cache(commands: argparse._SubParsersAction) -> None:
    cache = commands.add_parser(
        "cache",
        help="manage mandala_ast's bytecode cache",
        description="Manage mandala_ast's bytecode cache.",
        epilog="example:\n  mandala-ast cache show\n  mandala-ast cache clear .\n"
        "  mandala-ast cache clear --dir",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    clear = actions.add_parser(
        "clear",
        help="delete cached compiled files",
        epilog="example:\n  mandala-ast cache clear .\n  mandala-ast cache clear --dir",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Delete mandala_ast's cached bytecode (*-mandala_ast-*.pyc) under PATH and "
        "its sys.pycache_prefix mirror, or with --dir the entries of the cache directory "
        "(see `mandala-ast cache show`). CPython's own .pyc files are left alone.",
    )
    clear.add_argument("path", nargs="?", default=".", help="directory to clean (default: .)")
    clear.add_argument(
        "--dir",
        action="store_true",
        help="clear the cache directory instead (where compiled modules go when bytecode "
        "writing is off or __pycache__ is read-only)",
    )
    clear.set_defaults(handler=_cmd_cache_clear)
    show = actions.add_parser(
        "show",
        help="where compiled modules are cached, and how much is there",
        description="Print the cache directory (MANDALA_AST_CACHE_DIR, or the user cache "
        "directory), its number of entries and size, and whether this Python writes bytecode "
        "beside the sources (if not, compiled modules are cached only in that directory).",
        epilog="example:\n  mandala-ast cache show",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.set_defaults(handler=_cmd_cache_show)


# --------------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    path = os.path.abspath(args.script)
    if not os.path.isfile(path):
        print(f"mandala-ast run: can't open file {args.script!r}", file=sys.stderr)
        return 2
    from ..hook import install

    sys.argv = [args.script, *args.args]
    sys.path[0] = os.path.dirname(os.path.realpath(path))  # as `python script.py` does
    install()
    return run_main(path)


def run_main(path: str) -> int:
    """Compile and execute *path* as ``__main__``; print any error as Python would.

    Returns 0, or 1 after an uncaught exception; ``SystemExit`` propagates unchanged.
    """
    from ..compiler import CompilingLoader

    loader = CompilingLoader("__main__", path, prefilter=False)
    module = _main_module(path, loader)
    try:
        code = loader.get_code("__main__")
    except SyntaxError as exc:  # Python shows no traceback for a script that does not compile
        _report(exc, None)
        return 1
    return _execute(code, module)


def _main_module(path: str, loader: object) -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__dict__.update(
        __file__=path, __loader__=loader, __builtins__=builtins, __spec__=None, __cached__=None
    )
    sys.modules["__main__"] = module
    return module


def _execute(code: types.CodeType, module: types.ModuleType) -> int:
    try:
        exec(code, module.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        _report(exc, _user_frames(exc.__traceback__))
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    return 0


def _report(exc: BaseException, tb: types.TracebackType | None) -> None:
    # The default excepthook prints exc.__traceback__ when it is set, ignoring its tb argument.
    sys.excepthook(type(exc), exc.with_traceback(tb), tb)


def _user_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """Drop our own frames from the front, so the traceback starts in the script."""
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return tb


# --------------------------------------------------------------------------------------------
# show, cache clear, cache show
# --------------------------------------------------------------------------------------------


def _cmd_show(args: argparse.Namespace) -> int:
    import importlib.util

    from ..compiler import run_transform

    try:
        with open(args.file, "rb") as file:
            text = importlib.util.decode_source(file.read())
    except OSError as exc:  # said as the storage commands say it, without Python's error names
        print(f"mandala-ast show: {args.file}: {_unreadable(exc)}", file=sys.stderr)
        return 1
    error = _syntax_error(text, args.file)
    if error is not None:  # the user's error, said as Python says it (not as libcst does)
        print(f"mandala-ast show: {args.file}: {error}", file=sys.stderr)
        return 1
    try:
        result = run_transform(text, os.path.abspath(args.file))
    except Exception as exc:  # libcst failure, missing transform
        print(f"mandala-ast show: {args.file}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for diagnostic in result.diagnostics:
        print(f"{args.file}: {diagnostic}", file=sys.stderr)
    sys.stdout.write(_diff(text, result.source, args.file) if args.diff else result.source)
    return 0


def _syntax_error(text: str, filename: str) -> str | None:
    """``"line 3: SyntaxError: '(' was never closed"``, or None if Python parses *text*."""
    import ast

    try:
        compile(text, filename, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        return f"line {exc.lineno}: SyntaxError: {exc.msg}"
    except ValueError as exc:  # a null byte (before Python 3.12)
        return f"SyntaxError: {exc}"
    return None


def _unreadable(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    return (exc.strerror or str(exc)).lower()


def _diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), name, f"{name} (compiled)"
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _cmd_cache_clear(args: argparse.Namespace) -> int:
    from .. import cachedir
    from ..compiler import clear_cache

    if args.dir:
        if args.path != ".":
            raise UsageError("give either PATH or --dir, not both")
        count = cachedir.clear_dir()
        print(f"Removed {count} cached file(s) from the cache directory {cachedir.cache_dir()}")
        return 0
    count = clear_cache(args.path)
    print(f"Removed {count} cached file(s) under {os.path.abspath(args.path)}")
    left = sum(1 for _ in cachedir.dir_files())
    if left:  # with bytecode writing off, that is where the compiled modules are
        print(f"({left} more in the cache directory {cachedir.cache_dir()}: `mandala-ast cache clear --dir`)")
    return 0


def _cmd_cache_show(args: argparse.Namespace) -> int:
    from .. import cachedir

    where = cachedir.cache_dir()
    origin = f"${cachedir.ENV_VAR}" if os.environ.get(cachedir.ENV_VAR) else "the user cache directory"
    files = list(cachedir.dir_files(where))
    size = sum(_size(path) for path in files)
    writes = "off: compiled modules are cached only in the cache directory" if sys.dont_write_bytecode else "on"
    print(f"cache directory: {where} ({origin})")
    print(f"entries: {len(files)}, {size / 1e6:.1f} MB")
    print(f"bytecode writing beside the sources (__pycache__): {writes}")
    return 0


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # removed meanwhile by another process
        return 0


if __name__ == "__main__":
    sys.exit(main())
