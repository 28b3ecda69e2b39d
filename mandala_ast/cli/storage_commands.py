"""The commands that look into a storage file: ops, calls, versions, why, graph, verify, gc,
delete, export, browse.

They need none of the user's code: ops are named as stored (``fit_ridge`` or
``__main__.fit_ridge``) and values are shown without unpickling (scalars as themselves,
others as type, shape and content id). Only ``why`` runs user code, the module ``--import``
names, since whether a call would hit depends on the op's code as it is now.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime
import importlib
import importlib.util
import os
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .._errors import BlockRefusedError
from .tables import FORMATS, render

__all__ = ["UsageError", "add_commands"]


class UsageError(Exception):
    """A command line that cannot mean anything (exit status 2), like argparse's own errors."""


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register every storage command on the ``mandala-ast`` parser."""
    for add in (_add_ops, _add_calls, _add_versions, _add_why, _add_graph, _add_verify, _add_gc,
                _add_delete, _add_export, _add_browse):
        add(commands)


def _command(commands: argparse._SubParsersAction, name: str, summary: str, text: str, example: str,
             handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name, help=summary, description=textwrap.fill(f"{summary[0].upper()}{summary[1:]}. {text}".strip(), 78),
        epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("db", metavar="DB", help="the storage file (e.g. results.db)")
    parser.set_defaults(handler=handler)
    return parser


# -- ops, calls, versions ------------------------------------------------------------------


def _add_ops(commands: argparse._SubParsersAction) -> None:
    _command(commands, "ops", "list the stored ops with their versions, calls and size on disk",
             "Size: the encoded bytes of the distinct values each op returned.",
             "mandala-ast ops results.db", _cmd_ops)


def _cmd_ops(args: argparse.Namespace) -> int:
    from ..runtime.reclaim import format_bytes

    with _catalog(args.db) as catalog:
        rows = []
        for op in catalog.ops():
            versions = catalog.versions(op)
            size = sum(catalog.size_on_disk(v) for v in {v.stored_id: v for v in versions}.values())
            rows.append([op.name, len(versions), sum(v.calls for v in versions), format_bytes(size)])
    print(render(["op", "versions", "calls", "size"], rows, "table"), end="")
    return 0


def _add_calls(commands: argparse._SubParsersAction) -> None:
    parser = _command(
        commands, "calls", "show an op's calls, oldest first",
        "Scalars (numbers, strings, None) are shown as themselves, other values as "
        "<type shape id>. --where COL=VALUE keeps the calls whose input or output COL equals "
        "VALUE, a Python literal (1, 0.5, 'text'; a bare word is a string, which also matches "
        "a ValuePointer of that name; 1 also matches 1.0). "
        "Every stored computation is a row: a call computed again after a helper or constant "
        "it used changed shows once per computation, under the same version (storage.df(op) "
        "in Python shows the one today's code loads). Calls of two versions with the same "
        "number (the op edited, version= kept) show the start of their version id beside it.",
        "mandala-ast calls results.db fit_ridge --where alpha=0.1 --limit 5", _cmd_calls,
    )
    parser.add_argument("op", metavar="OP", help="the op's name (fit_ridge, or module.fit_ridge)")
    _add_where(parser)
    parser.add_argument("--limit", type=_count, default=20, help="at most this many calls (default 20; 0: all)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")


def _add_where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                        help="keep calls whose column COL equals VALUE (repeatable: all must hold)")


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number (0 to 65535; 0: any free one), not {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a count (0, 1, 2, ...), not {text!r}")
    return int(text)


def _cmd_calls(args: argparse.Namespace) -> int:
    with _catalog(args.db) as catalog:
        op = catalog.find_op(args.op)
        calls = catalog.calls(op, where=_parse_where(args.where, op, catalog), limit=args.limit or None)
    from ..runtime.column_names import clear_of

    columns = list(calls[0].values) if calls else list(op.columns)
    if args.format == "table":  # for people: short cells, no times (80 columns go fast)
        label = _version_labels(calls)
        rows = [[*(_short(call.values[c]) for c in columns), label(call), call.row_id.hex()[:8]] for call in calls]
        print(render([*columns, *clear_of(columns, ["version", "call"])], rows, "table"), end="")
        return 0
    rows = [
        [*(_full(call.values[c]) for c in columns), call.version, call.version_id.hex(), _time(call.created_at, True),
         call.row_id.hex()]
        for call in calls
    ]
    print(render([*columns, *clear_of(columns, ["version", "version_id", "created_at", "call"])], rows, args.format), end="")
    return 0


def _version_labels(calls: list) -> Any:
    """A call's version as the table shows it: its number, and where calls of two versions
    with that number are shown (an op edited without bumping ``version=``), the start of its
    version id as `versions` prints it."""
    ids: dict[int, set[bytes]] = {}
    for call in calls:
        ids.setdefault(call.version, set()).add(call.version_id)
    return lambda call: call.version if len(ids[call.version]) == 1 else f"{call.version} ({call.version_id.hex()[:6]})"


def _full(value: Any) -> Any:
    from ..runtime.described import Opaque

    return f"<{value.kind} {value.cid.hex()}>" if isinstance(value, Opaque) else value


def _short(value: Any) -> Any:
    """``f64[200,20] c370e2`` for an array: type and shape first, as the table may cut."""
    from ..runtime.described import Opaque

    if isinstance(value, float):
        text = f"{value:.6g}"
        # 1.0 is another argument than 1, and -0.0 than 0: %g would print them alike.
        return text if any(c in text for c in ".ein") else text + ".0"
    if not isinstance(value, Opaque):
        return repr(value) if isinstance(value, str) else value
    kind = value.kind
    if kind.startswith("ndarray ") and "(" in kind:
        dtype, _, shape = kind[len("ndarray "):].partition(" ")
        kind = dtype.replace("float", "f").replace("uint", "u").replace("int", "i") + "[" + shape.strip("(,)").replace(", ", ",") + "]"
    return f"{kind} {value.cid.hex()[:6]}"


def _time(stamp: float | None, full: bool) -> str:
    if stamp is None:
        return ""
    moment = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)
    return moment.isoformat() if full else moment.strftime("%Y-%m-%d %H:%M")


def _parse_where(items: list[str], op: Any, catalog: Any) -> dict[str, Any]:
    where: dict[str, Any] = {}
    for item in items:
        column, sep, text = item.partition("=")
        if not sep or not column:
            raise UsageError(f"--where {item!r}: expected COL=VALUE, e.g. --where alpha=0.1")
        # A column `calls` shows beside the parameters (a cached fixture's request.param) is
        # an input the calls have, asked of the file only when the signature lacks it.
        if column not in op.columns and not column.startswith("**") and not catalog.has_input(op, column):
            raise UsageError(f"--where {item!r}: op {op.name} has no column {column!r} "
                             f"(columns: {', '.join(op.columns)}){_star_hint(op, column, item)}")
        value = literal(text)
        if column in where and where[column] != value:
            # All must hold, and a call has one value there: keeping the last would act on calls
            # the first one excludes (delete them, for `delete`).
            raise UsageError(f"--where {item!r}: column {column!r} is already --where {column}={where[column]!r}; "
                             "every --where must hold, and no call has two values there")
        where[column] = value
    return where


def _star_hint(op: Any, column: str, item: str) -> str:
    """What ``--where rest=...`` may have meant: the ``*rest`` parameter's column (its tuple),
    or a keyword argument a ``**opts`` parameter took, the column ``**rest``."""
    if f"*{column}" in op.columns:
        return f"; the *-parameter {column} is the column *{column}: --where '*{item}'"
    if any(c.startswith("**") for c in op.columns):
        return f"; a keyword argument {op.name} took in its **-parameter is --where '**{item}'"
    return ""


def literal(text: str) -> Any:
    """A value typed on the command line: a Python literal, else the text itself.

    >>> literal("0.5"), literal("'7'"), literal("abc")
    (0.5, '7', 'abc')
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        if text[:1] in _OPENING:  # `[0.1,`: a literal cut short, which no stored text would equal
            raise UsageError(f"{text!r} is not a Python literal (quote text that starts with {text[0]}: \"'{text}'\")") from None
        return text


#: First characters of a list, tuple, dict, set or quoted text: such an argument meant a literal.
_OPENING = frozenset("[({'\"")


def _add_versions(commands: argparse._SubParsersAction) -> None:
    parser = _command(commands, "versions", "list an op's stored versions",
                      "Each stored call counts once, on the version it is stored under: a version "
                      "accepted as the same code as an earlier one (accept_change, rename_op) names "
                      "it under same_as, and shares its calls. --diff also prints how each "
                      "version's source differs from the one before.",
                      "mandala-ast versions results.db fit_ridge --diff", _cmd_versions)
    parser.add_argument("op", metavar="OP", help="the op's name")
    parser.add_argument("--diff", action="store_true", help="print source diffs between versions")


def _cmd_versions(args: argparse.Namespace) -> int:
    from ..runtime.catalog import source_diff

    with _catalog(args.db) as catalog:
        op = catalog.find_op(args.op)
        versions = catalog.versions(op)
    rows = [[v.number, v.version_id.hex()[:12], "" if v.stored_id == v.version_id else v.stored_id.hex()[:12],
             v.calls, _time(v.created_at, False)] for v in versions]
    print(render(["version", "version_id", "same_as", "calls", "created_at"], rows, "table"), end="")
    for old, new in zip(versions, versions[1:]) if args.diff else ():
        print(source_diff(old, new), end="")
    return 0


# -- why, graph ----------------------------------------------------------------------------


def _add_why(commands: argparse._SubParsersAction) -> None:
    parser = _command(
        commands, "why", "say whether a call would load or compute, and why",
        "Needs the op's code as it is now: --import names the module that defines it (a "
        "dotted name importable from here, or a .py file, imported by its file name so that "
        "its `if __name__ == '__main__':` part does not run). An op a script stored as "
        "__main__.f is found by its function's name. ARGs are Python "
        "literals; NAME=VALUE passes a keyword argument.",
        "mandala-ast why results.db make_data 200 seed=1 --import examples/quickstart.py", _cmd_why,
    )
    parser.add_argument("op", metavar="OP", help="the op's name")
    parser.add_argument("args", nargs="*", metavar="ARG", help="the call's arguments")
    parser.add_argument("--import", dest="module", required=True, metavar="MODULE",
                        help="module or .py file that defines the op")


def _cmd_why(args: argparse.Namespace) -> int:
    with _catalog(args.db) as catalog:
        stored = catalog.find_op(args.op)
    op = _imported_op(args.module, stored)
    positional, keywords = _call_arguments(args.args)
    try:  # before opening the storage: arguments the op cannot take mean nothing
        op.bind(tuple(positional), keywords)
    except TypeError as error:
        raise UsageError(str(error)) from None
    from ..runtime.storage import Storage

    storage = Storage(args.db)
    try:
        print(storage.why(op, *positional, **keywords))
    finally:
        storage.close()
    return 0


def _call_arguments(items: list[str]) -> tuple[list, dict]:
    positional, keywords = [], {}
    for item in items:
        name, sep, text = item.partition("=")
        if sep and name.isidentifier():
            keywords[name] = literal(text)
        elif keywords:
            raise UsageError(f"positional argument {item!r} after a keyword argument")
        else:
            positional.append(literal(item))
    return positional, keywords


def _imported_op(module_name: str, stored: Any) -> Any:
    from ..runtime.ops import Op

    module = _import(module_name)
    found = getattr(module, stored.short_name, None)
    if not isinstance(found, Op):
        raise UsageError(f"module {module_name!r} defines no op {stored.short_name!r}")
    if found.name == stored.name:
        return found
    # A script's ops are stored as __main__.f; imported, they are module.f: the same code
    # under the stored name is the op the storage knows. Its dependencies were recorded as
    # __main__:helper too, and are looked up in sys.modules["__main__"]: the script, here.
    if stored.name.startswith("__main__."):
        sys.modules["__main__"] = module
    renamed = Op(found.fn, nout=found.nout, ignore=found.ignore, version=found.version)
    renamed.name = stored.name
    return renamed


def _import(name: str) -> Any:
    """The module ``name`` (dotted, or a .py file) with its top level run up to its first
    storage block: its ops are defined above it in the usual script, and the block would run
    the experiment again (runtime/block_refusal.py)."""
    from ..runtime.block_refusal import blocks_refused

    sys.path.insert(0, os.getcwd())
    with blocks_refused(f"mandala-ast why --import {name}"):
        try:
            spec = _module_spec(name)
        except BlockRefusedError as exc:  # its package imports it, and so ran into its block
            return _stopped_module(name, exc)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            with _no_arguments(spec.origin or name):
                spec.loader.exec_module(module)
        except BlockRefusedError as exc:
            _say_stopped(name, exc)
        except SystemExit as exc:  # argparse at its top level, run without its arguments
            raise UsageError(
                f"--import {name!r}: its top level exited (status {exc.code}) as it would run with no "
                "arguments: a script that parses its command line on import cannot be read; parse "
                "it under `if __name__ == '__main__':`") from None
        except Exception as exc:
            raise _import_failed(name, exc) from None
    return module


@contextlib.contextmanager
def _no_arguments(path: str) -> Iterator[None]:
    """``sys.argv`` as the module's top level would see it run alone with no arguments: a
    script parsing its command line there (argparse) parsed ``why``'s own."""
    saved = sys.argv
    sys.argv = [path]
    try:
        yield
    finally:
        sys.argv = saved


def _say_stopped(name: str, exc: BlockRefusedError) -> None:
    print(f"mandala-ast why: read {name} up to its first storage block ({_user_line(exc)}): "
          "ops defined after it are not seen", file=sys.stderr)


def _stopped_module(name: str, exc: BlockRefusedError) -> Any:
    """Module ``name`` as far as its top level ran when its package's import (which imports
    it) met its block: the import dropped it from sys.modules, its frame still holds it."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == name:
            module = types.ModuleType(name)
            module.__dict__.update(frame.f_globals)
            sys.modules[name] = module
            _say_stopped(name, exc)
            return module
        tb = tb.tb_next
    raise _import_failed(name, exc) from None


def _module_spec(name: str) -> Any:
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"--import {name!r}: no such file")
        sys.path.insert(0, str(path.resolve().parent))
        return importlib.util.spec_from_file_location(path.stem, path)
    try:
        spec = importlib.util.find_spec(name)  # imports the packages around it
    except ModuleNotFoundError as exc:
        raise UsageError(f"--import {name!r}: {exc}") from exc
    except BlockRefusedError:
        raise
    except Exception as exc:
        raise _import_failed(name, exc) from None
    if spec is None:
        raise UsageError(f"--import {name!r}: No module named {name!r}")
    return spec


def _user_line(exc: BaseException) -> str:
    """``file, line N`` of the deepest frame of ``exc`` outside mandala_ast: the user's line."""
    ours = str(Path(__file__).resolve().parent.parent)
    where = "its top level"
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.startswith((ours, "<frozen")):
            where = f"{code.co_filename}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _import_failed(name: str, exc: Exception) -> UsageError:
    """The module's own error, with its traceback from its first frame on (not the command
    line's or the import system's), and the usual cause: a script's top level runs on import."""
    import traceback

    ours = str(Path(__file__).resolve().parent.parent)
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith((ours, "<frozen")):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb, file=sys.stderr)
    return UsageError(
        f"--import {name!r}: importing it raised {type(exc).__name__}: {exc}. --import runs the "
        "module's top level, not what is under `if __name__ == '__main__':`, where a script's run "
        "and query blocks belong"
    )


def _add_graph(commands: argparse._SubParsersAction) -> None:
    parser = _command(
        commands, "graph", "draw the ops around an op, or the calls a value came from",
        "TARGET is an op's name or a value's content id (8 or more hex digits, as `calls` "
        "shows it). The format follows FILE's suffix: .svg, .png (graphviz's dot) or .dot.",
        "mandala-ast graph results.db fit_ridge -o fit_ridge.svg", _cmd_graph,
    )
    parser.add_argument("target", metavar="OP_OR_CID", help="an op's name, or a value's id")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the picture")


def _cmd_graph(args: argparse.Namespace) -> int:
    from .._errors import MandalaRenderWarning
    from ..runtime.pictures import Picture, render as render_picture, to_dot
    from ..runtime.stored_graphs import op_graph, value_graph

    suffix = Path(args.output).suffix.lstrip(".").lower()
    if suffix not in ("svg", "png", "dot"):
        raise UsageError(f"-o {args.output!r}: the file name must end in .svg, .png or .dot")
    with _catalog(args.db) as catalog:
        cid = _value_id(catalog, args.target)
        if cid is None:
            name = _op_or_value_id(catalog, args.target)
            graph, title = op_graph(catalog.store, name), f"op {name}"
        else:
            graph, title = value_graph(catalog.store, cid, _never_load), f"value {cid.hex()[:12]}"
    if suffix == "dot":
        Picture(to_dot(graph, title), "svg", None).save(args.output)  # the DOT text, as storage.draw writes it
    else:
        with _warnings_as_errors(MandalaRenderWarning):
            render_picture(graph, suffix, title=title).save(args.output)
    print(f"wrote {args.output}")
    return 0


def _never_load(cid: bytes) -> Any:
    # Labels of pictures show small values; here they are described, never unpickled.
    raise LookupError("values are not loaded by the command line")


def _op_or_value_id(catalog: Any, text: str) -> str:
    """The op named ``text``; hex digits that name no op were meant as a value's id."""
    from .._errors import UnknownOpError

    try:
        return str(catalog.find_op(text).name)
    except UnknownOpError:
        if len(text) >= 8 and all(ch in "0123456789abcdefABCDEF" for ch in text):
            raise UnknownOpError(f"no value whose id starts with {text} in {catalog.store.path}, nor an op of that name") from None
        raise


def _value_id(catalog: Any, text: str) -> bytes | None:
    """The stored value whose content id starts with ``text`` (hex), if ``text`` is one."""
    if len(text) < 8 or any(ch not in "0123456789abcdefABCDEF" for ch in text):
        return None
    low = bytes.fromhex(text[: len(text) // 2 * 2].ljust(64, "0"))
    high = bytes.fromhex(text[: len(text) // 2 * 2].ljust(64, "f"))
    rows = catalog.conn.execute(
        "SELECT cid FROM vals WHERE cid BETWEEN ? AND ? LIMIT 2", (low, high)).fetchall()
    if len(rows) > 1:
        raise UsageError(f"value id {text!r} is ambiguous: give more digits")
    return rows[0][0] if rows else None  # not a value: perhaps an op of that name


@contextlib.contextmanager
def _warnings_as_errors(category: type[Warning]) -> Iterator[None]:
    """A picture that cannot be rendered (no graphviz) is a failure here, not a warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", category)
        try:
            yield
        except category as warning:
            from .._errors import RenderError

            raise RenderError(f"{warning}; write a .dot file instead") from None


# -- verify, gc, delete --------------------------------------------------------------------


def _add_verify(commands: argparse._SubParsersAction) -> None:
    _command(commands, "verify", "check the whole storage for damage",
             "SQLite's integrity check, every value file against its recorded digest, and rows "
             "naming calls or values the file lacks. Exit status 1 when a problem is found. "
             "Value files no row names yet (a block still running writes them first) and "
             "orphans are listed, but are no problem.",
             "mandala-ast verify results.db", _cmd_verify)


def _cmd_verify(args: argparse.Namespace) -> int:
    with _storage(args.db) as storage:
        report = storage.verify()
    print(report)
    return 0 if report.ok else 1


def _add_gc(commands: argparse._SubParsersAction) -> None:
    _command(commands, "gc", "remove values nothing refers to, and shrink the file",
             "Values no stored call uses, stray value files, then VACUUM.",
             "mandala-ast gc results.db", _cmd_gc)


def _cmd_gc(args: argparse.Namespace) -> int:
    with _storage(args.db) as storage:
        print(storage.gc())
    return 0


def _add_delete(commands: argparse._SubParsersAction) -> None:
    parser = _command(
        commands, "delete", "delete an op's calls, and every call computed from them",
        "The calls are chosen with --where as for `calls` (or --all); asks before deleting "
        "unless --yes, then prints what was deleted. Run `gc` afterwards to shrink the file.",
        "mandala-ast delete results.db fit_ridge --where alpha=100.0 --yes", _cmd_delete,
    )
    parser.add_argument("op", metavar="OP", help="the op's name")
    _add_where(parser)
    parser.add_argument("--all", action="store_true", help="every call of the op")
    parser.add_argument("--keep-dependents", action="store_true", help="keep the calls computed from them")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask")


def _cmd_delete(args: argparse.Namespace) -> int:
    if not args.where and not args.all:
        raise UsageError("say which calls: --where COL=VALUE, or --all")
    with _catalog(args.db) as catalog:
        op = catalog.find_op(args.op)
        row_ids = [call.row_id for call in catalog.calls(op, where=_parse_where(args.where, op, catalog))]
    if not row_ids:
        print(f"no call of {op.name} matches; nothing deleted")
        return 0
    if not args.yes and not _confirm(f"delete {len(row_ids)} call(s) of {op.name}"
                                     f"{'' if args.keep_dependents else ' and the calls computed from them'}? [y/N] "):
        print("nothing deleted", file=sys.stderr)
        return 1
    with _storage(args.db) as storage:
        print(storage.delete_calls(row_ids, dependents=not args.keep_dependents))
    return 0


def _confirm(question: str) -> bool:
    print(question, end="", flush=True, file=sys.stderr)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


# -- export, browse ------------------------------------------------------------------------


def _add_export(commands: argparse._SubParsersAction) -> None:
    parser = _command(
        commands, "export", "write a flat SQLite copy to browse: one table per op version",
        "Columns per input and output (scalars as values, other values as ids into the "
        "`values` table, with type and shape), a `calls` view from producers to consumers, "
        "and an `ops` table with each version's source and diff. Safe on a storage you do not "
        "trust: nothing is unpickled. Needs sqlite-utils (pip install 'mandala_ast[browse]').",
        "mandala-ast export results.db flat.db", _cmd_export,
    )
    parser.add_argument("out", metavar="OUT", help="the flat file to write (e.g. flat.db)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists (an earlier export, never a storage)")


def _cmd_export(args: argparse.Namespace) -> int:
    from ..export import export_storage

    if Path(args.out).exists() and not args.force:
        raise UsageError(f"{args.out} exists: pass --force to replace it")
    with _catalog(args.db) as catalog:
        report = export_storage(catalog, args.out)
    print(report)
    return 0


def _add_browse(commands: argparse._SubParsersAction) -> None:
    parser = _command(
        commands, "browse", "export to a temporary file and open it in Datasette",
        "Serves on 127.0.0.1 only, until interrupted (Ctrl-C). Needs the browse extra: "
        "pip install 'mandala_ast[browse]'.",
        "mandala-ast browse results.db --port 8001", _cmd_browse,
    )
    parser.add_argument("--port", type=_port, default=8001, help="port to serve on (default 8001; 0: any free one)")


def _cmd_browse(args: argparse.Namespace) -> int:
    from ..export import browse

    with _catalog(args.db) as catalog:
        return browse(catalog, port=args.port)


# -- opening -------------------------------------------------------------------------------


@contextlib.contextmanager
def _catalog(path: str) -> Iterator[Any]:
    from ..runtime.catalog import Catalog

    catalog = Catalog.open(path)
    try:
        yield catalog
    finally:
        catalog.close()


@contextlib.contextmanager
def _storage(path: str) -> Iterator[Any]:
    from ..runtime.catalog import existing_storage_file
    from ..runtime.storage import Storage

    storage = Storage(existing_storage_file(path))  # Storage() would create it
    try:
        yield storage
    finally:
        storage.close()
