"""Errors and warnings raised by mandala_ast.

Hierarchy (a second base class in parentheses)::

    Exception
     └── MandalaError
          ├── StorageFormatError                  not a mandala_ast storage, damaged, or a bad path
          ├── StorageBusyError                    others kept the file locked past every retry
          ├── StorageClosedError (RuntimeError)   a storage used after storage.close()
          ├── CorruptValueError                   a value's file is missing or its bytes changed
          ├── UnloadableValueError                a stored pickle names a class that is gone or changed
          ├── StorageFullError (OSError)          the disk filled up while calls were written
          ├── ReadOnlyStorageError                a new call on a storage that cannot be written
          ├── AmbiguousBlockError (RuntimeError)  no block here, blocks of several storages elsewhere
          ├── OpRecursionError (RecursionError)   more op bodies nested than the recursion limit or the stack allows
          ├── ValueEncodingError (TypeError)      an argument or output cannot be hashed or stored
          ├── OutputCountError (ValueError)       an op returned the wrong number of values
          ├── NewCallError                        a call is missing and new calls are not allowed
          ├── BlockRefusedError (RuntimeError)    a block entered while `why` imports a script to read it
          ├── QueryError (ValueError)             a query or delete block asks what no pattern means
          │    └── UnknownColumnError (KeyError)  q.df("name") names no variable of the block
          ├── VersionChangeError                  code changed under Storage(on_change="error")
          ├── BatchWorkerError (RuntimeError)     a batch call's worker died, or its op cannot run elsewhere
          ├── RenderError (RuntimeError)          graphviz's dot failed to draw a picture
          ├── PictureSaveError (OSError)          a picture cannot be written where it was asked to go
          ├── UnknownOpError (LookupError)        a storage holds no op of that name
          ├── NotAnOpError (TypeError)            a function or value where the storage needs an op
          ├── ArgumentError (ValueError)          an argument of @op or a storage method that means nothing
          ├── RenameError (ValueError)            a rename would collide with stored calls
          ├── ExportError                         a flat export cannot be written
          ├── HookError (RuntimeError)            the import hook cannot be installed as asked
          └── FixtureError (TypeError)            a cached_fixture cannot be cached as written
    UserWarning
     └── MandalaWarning
          ├── MandalaFallbackWarning              a module could not be compiled and runs as written
          ├── MandalaImportWarning                modules imported before install() stay uncompiled
          ├── MandalaDiagnosticWarning            a note from the compiler about a module
          ├── MandalaRandomWarning                an op drew from a global random state: no argument
          ├── MandalaRenderWarning                no graphviz: a picture is DOT text, not an image
          ├── MandalaRepairWarning                a corrupt value was computed again and rewritten
          ├── MandalaUnstoredWarning              an output cannot be stored: returned, not memoized
          └── MandalaTransientWarning             a transient output came back with another content id
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "CorruptValueError",
    "FixtureError",
    "AmbiguousBlockError",
    "BatchWorkerError",
    "BlockRefusedError",
    "StorageClosedError",
    "ExportError",
    "HookError",
    "MandalaDiagnosticWarning",
    "MandalaError",
    "MandalaFallbackWarning",
    "MandalaImportWarning",
    "MandalaRandomWarning",
    "MandalaRenderWarning",
    "MandalaRepairWarning",
    "MandalaTransientWarning",
    "MandalaUnstoredWarning",
    "MandalaWarning",
    "NewCallError",
    "NotAnOpError",
    "OpRecursionError",
    "OutputCountError",
    "PictureSaveError",
    "QueryError",
    "ReadOnlyStorageError",
    "RenameError",
    "RenderError",
    "StorageBusyError",
    "StorageFormatError",
    "StorageFullError",
    "UnknownColumnError",
    "UnknownOpError",
    "UnloadableValueError",
    "ValueEncodingError",
    "VersionChangeError",
]


class MandalaError(Exception):
    """Base class of every error mandala_ast raises on its own account."""


class StorageFormatError(MandalaError):
    """The storage file is corrupt, foreign, or of an unknown format; it was not modified.

    Also: a path that cannot hold a storage (a directory, a device), files SQLite cannot use
    (a directory in place of its ``-wal`` or ``-shm``, an I/O error), and a database page
    SQLite finds damaged, wherever it is met; ``storage.verify()`` checks the whole file.
    """


class StorageBusyError(MandalaError):
    """Other processes kept the storage file locked through every retry of
    ``storage.delete_calls`` or ``storage.gc()``; nothing was lost and the file is consistent,
    so the operation can simply be tried again later.

    Also: ``Storage(path)`` where a storage file was deleted while a process still has it open
    (its ``-wal`` and ``-shm`` are still in use by that process); names the file. And a query
    whose values other processes kept deleting while it read them (run it again).
    """


class StorageClosedError(MandalaError, RuntimeError):
    """A storage was used after ``storage.close()``; the message names the file."""


class CorruptValueError(MandalaError):
    """A stored value's file is missing, or its bytes are not those that were stored (a bit
    flip, a truncated or replaced file). The message names the value (content id prefix), the
    call that produced it where known, and the file. Inside a run block that may compute, the
    call is computed again and the file rewritten instead (a :class:`MandalaRepairWarning`
    says so); ``storage.verify()`` checks every file.

    >>> try:                                    # doctest: +SKIP
    ...     storage.df(train)
    ... except CorruptValueError as error:
    ...     print(error.path)
    run.db.blobs/3f/3f2a...
    """

    def __init__(
        self, message: str, *, cid: bytes, path: object = None, call: str | None = None, problem: str = ""
    ) -> None:
        super().__init__(message)
        #: the value's content id
        self.cid = cid
        #: the value's file
        self.path = path
        #: the call that produced it, as ``op(arg=...)``, where known
        self.call = call
        #: what is wrong with the file (missing, or which bytes)
        self.problem = problem


class UnloadableValueError(MandalaError):
    """A stored value cannot be loaded in this process: its pickle names a class or function
    that is gone or changed since it was stored (a class renamed or moved, a library upgraded).
    The message names the value (content id prefix), the call that produced it where known,
    and what loading raised; nothing in the storage changes. Bring the class back, or delete
    the call with ``storage.delete_calls()`` to compute it again.

    >>> try:                                    # doctest: +SKIP
    ...     storage.df(fit)
    ... except UnloadableValueError as error:
    ...     print(error.call)
    fit(x=3)
    """

    def __init__(self, message: str, *, cid: bytes, call: str | None = None) -> None:
        super().__init__(message)
        #: the value's content id
        self.cid = cid
        #: the call that produced it, as ``op(arg=...)``, where known
        self.call = call


class StorageFullError(MandalaError, OSError):
    """The disk (or quota) filled up while calls were written; the message names the path.

    The calls of the failed write are dropped, everything committed before stays, and the
    same Storage commits again once space is freed. Raised by a block's exit, ``commit``,
    ``close``, ``gc`` and ``delete_calls``; a miss whose own write finds the disk full returns
    its value instead, with a :class:`MandalaUnstoredWarning` saying this.
    """


class ReadOnlyStorageError(MandalaError):
    """A call that is not stored, on a storage opened from a read-only file, directory or
    mount: stored calls load, but nothing new can be written. The message names the call."""


class AmbiguousBlockError(MandalaError, RuntimeError):
    """An op was called in a thread with no block of its own while run blocks of several
    storages are open in other threads: which storage it belongs to cannot be told. Open a
    block in that thread (``with storage.run():``)."""


class OpRecursionError(MandalaError, RecursionError):
    """More op bodies nested in one thread than Python's recursion limit, or than the stack
    has room for (an op that recurses forever): the library's own frames between them are not
    counted against the limit, so this bounds them instead. The message names the op;
    ``sys.setrecursionlimit`` raises the limit."""


class ValueEncodingError(MandalaError, TypeError):
    """A value cannot be content-hashed or serialised; the message names the op and argument."""


class OutputCountError(MandalaError, ValueError):
    """An op returned a different number of values than it declares (``nout`` or annotation)."""


class NewCallError(MandalaError):
    """A call has no stored result and the block does not allow new calls."""


class BlockRefusedError(MandalaError, RuntimeError):
    """A storage block entered while ``mandala-ast why`` imports the module only to read its
    ops' code: the block would run the experiment again (see ``runtime/block_refusal.py``)."""


class QueryError(MandalaError, ValueError):
    """A query or delete block asks for something a pattern cannot mean (a ``while`` loop,
    an in-place update, a branch on a stored value outside ``if``...). The message names the
    line in the user's code."""


class UnknownColumnError(QueryError, KeyError):
    """``q.df(...)`` names a column that is no variable of the query block; the message lists
    the block's variables. (Also a KeyError, as a DataFrame's missing column is.)

    >>> q.df("acc")   # doctest: +SKIP
    UnknownColumnError: no variable 'acc' in the query block; its variables: ['n', 'model']
    """

    def __str__(self) -> str:  # KeyError's would show the message in quotes
        return str(self.args[0]) if self.args else ""


class ExportError(MandalaError):
    """A flat export cannot be written: sqlite-utils or Datasette is not installed (the
    message says how to install them), or the output path cannot be written."""


class UnknownOpError(MandalaError, LookupError):
    """A storage holds no op of the name asked for (the command line, the flat export); the
    message lists the names it does hold."""


class NotAnOpError(MandalaError, TypeError):
    """A storage method that reads an op's calls got something else (a plain function, a value).

    >>> storage.df(train)   # doctest: +SKIP
    NotAnOpError: storage.df needs an op (a function decorated with @op), not function train
    """


class ArgumentError(MandalaError, ValueError):
    """An argument of ``@op`` or of a storage method that cannot mean anything: an unknown
    ``mode``, ``ignore=`` naming a parameter the op does not have, ``transient=`` that is not
    True, False or output indices, an op where call ids are expected. Raised before anything
    is stored or deleted; the message names the op or method and the argument.

    >>> storage.run(mode="nop")   # doctest: +SKIP
    ArgumentError: storage.run: mode= must be 'run' or 'noop', not 'nop'
    """


class VersionChangeError(MandalaError):
    """An op or a dependency changed, and the storage was opened with ``on_change="error"``.

    The message shows the change as a unified diff; ``storage.accept_change(fn)`` declares it
    cosmetic, reverting the code brings the stored calls back.
    """


class BatchWorkerError(MandalaError, RuntimeError):
    """A batch call's worker process died while computing it (killed, crashed, out of memory),
    its op cannot be sent to another process, its output cannot be pickled back from one, or
    its body raised a BaseException that is not an Exception (GeneratorExit: its ``__cause__``);
    the message names the call."""


class MandalaWarning(UserWarning):
    """Base class of mandala_ast's warnings."""


class FixtureError(MandalaError, TypeError):
    """A ``cached_fixture`` cannot be cached as written (a generator, async or method fixture);
    the message names the fixture and says what to write instead."""


class HookError(MandalaError, RuntimeError):
    """The import hook cannot be installed as asked (e.g. ``install_this_package()`` from a script)."""


class MandalaFallbackWarning(MandalaWarning):
    """A module could not be compiled (libcst failed, or the output was unusable); it runs as is.

    Emitted once per module import; the message says why. Run and batch blocks still work in
    uncompiled code; query and delete blocks do not.
    """


class MandalaImportWarning(MandalaWarning):
    """Modules targeted by ``install()`` were imported before it, so they are not compiled."""


class MandalaDiagnosticWarning(MandalaWarning):
    """A diagnostic the transform reported for a module (replayed on every import, cached or not)."""


class MandalaRandomWarning(MandalaWarning):
    """An op's body drew numbers from numpy's or Python's global random state, which is no
    argument: its stored results do not change with the seed a script sets. Once per op and
    process; the message says what to write instead (a seed argument)."""


class RenderError(MandalaError, RuntimeError):
    """graphviz's ``dot`` program failed to draw a picture; the message carries its stderr."""


class PictureSaveError(MandalaError, OSError):
    """A picture cannot be written to the path given (``storage.draw(path=...)``,
    ``q.draw(path=...)``, ``picture.save(...)``): a file where a directory should be, a
    read-only or full disk. The message names the file and what the system said.

    >>> storage.draw(add, path="notes.txt/add.svg")   # doctest: +SKIP
    PictureSaveError: cannot save the picture to notes.txt/add.svg: Not a directory
    """


class MandalaRenderWarning(MandalaWarning):
    """graphviz's ``dot`` program is missing, so a picture holds only its DOT text.

    The message says how to install graphviz; ``str(picture)`` and ``picture.save("x.dot")``
    give the text, which any graphviz viewer draws.
    """


class MandalaRepairWarning(MandalaWarning):
    """A stored value was corrupt (see :class:`CorruptValueError`); the run block computed its
    call again and rewrote the value's file. Emitted once per repaired value."""


class MandalaUnstoredWarning(MandalaWarning):
    """An op's output could not be hashed or stored (the message names the op, the output and
    why): the block still gets the computed output, but the call is not memoized, so it is
    computed again next time. Register the type (``register_type``) or return another value.
    Also: a full disk kept the call from being stored (the message names the file).
    """


class RenameError(MandalaError, ValueError):
    """``storage.rename_op`` or ``storage.rename_arg`` would collide with what is stored: the
    new op name already has calls, or the op already has stored calls with the new argument
    name. Nothing was changed; the message names the op and the argument.

    >>> storage.rename_op("pipeline.train", pipeline.fit)     # doctest: +SKIP
    RenameError: cannot rename op pipeline.train to pipeline.fit: pipeline.fit has 3 stored calls
    """


class MandalaTransientWarning(MandalaWarning):
    """A transient op's output (``@op(transient=True)``, not stored) was computed again for a
    block that needed it, and the new value has another content id than the stored call
    recorded: the op is not deterministic, so calls downstream of the stored one were computed
    from a different value. Emitted once per op."""
