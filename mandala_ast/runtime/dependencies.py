"""Which user code an op depends on, found statically from the names its code uses.

A dependency is one of the user's own functions, classes or ops (by fingerprint) or a
module-level constant (by content). Library code — the standard library, site-packages, and
mandala_ast itself — is never tracked: it changes with package versions, not with the user's
edits, and hashing it would make every version check slow.
"""

from __future__ import annotations

import ast
import builtins
import enum
import functools
import importlib
import importlib.util
import itertools
import os
import re
import site
import sys
import sysconfig
import types
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from . import definitions, env_deps, file_deps, parsing, recursion, script_state, untracked
from .bytecode_reads import bytecode_chains
from .differences import short_repr
from .fingerprints import NO_SOURCE, Fingerprint, decorators, fingerprint
from .hashing import UnhashableError, content_id, digest
from .ops import Op
from .types import handler_for

__all__ = [
    "DECORATORS",
    "DEFINITION",
    "TARGETS",
    "CLASS_DATA",
    "LIBRARY_ROOTS",
    "Dependency",
    "argument_classes",
    "argument_code_state",
    "as_rows",
    "binding_state",
    "code_state",
    "forget_argument_states",
    "current_state",
    "direct_reads",
    "from_rows",
    "hands_work_off",
    "is_data",
    "look_at_state",
    "note_moved",
    "state_guard",
    "objects_before",
    "may_run_user_code",
    "op_dependency",
    "resolve",
    "run_dependencies",
    "static_dependencies",
    "untraced_dependencies",
    "with_closure",
]

#: The standard library's immutable values, set once as configuration: ``DATA = Path(...)``,
#: ``CUTOFF = date(2020, 1, 1)``, ``THRESHOLD = Decimal("0.5")``. By module, looked up only
#: once imported (a value of the type exists only then): a memoizing process need not
#: import decimal, fractions or uuid.
_VALUE_TYPES = {
    "pathlib": ("PurePath",), "datetime": ("date", "time", "timedelta"), "decimal": ("Decimal",),
    "fractions": ("Fraction",), "uuid": ("UUID",), "re": ("Pattern",),
    # settings objects: CONFIG = SimpleNamespace(lr=0.1), ARGS = parser.parse_args()
    "types": ("SimpleNamespace",), "argparse": ("Namespace",),
}


def _is_value(value: Any) -> bool:
    for module_name, names in _VALUE_TYPES.items():
        module = sys.modules.get(module_name)
        if module is None:
            continue
        # None while another thread is still importing the module (no value of it exists yet)
        kinds = tuple(kind for name in names if (kind := getattr(module, name, None)) is not None)
        if kinds and isinstance(value, kinds):
            return True
    return False


_CONSTANT_TYPES = (int, float, complex, str, bytes, bytearray, bool, type(None), tuple, frozenset, list, dict, set,
                   range, slice)


class Dependency:
    """One dependency: ``kind`` is "code" or "constant"; ``state`` its fingerprint or content id;
    ``source`` its text for diffs (None when taken from a stored state, whose text is stored)."""

    __slots__ = ("kind", "name", "source", "state")

    def __init__(self, name: str, kind: str, state: bytes, source: str | None) -> None:
        self.name, self.kind, self.state, self.source = name, kind, state, source

    def __repr__(self) -> str:
        return f"Dependency({self.name!r}, {self.kind})"


def static_dependencies(fn: Any) -> dict[str, Dependency]:
    """The transitive user-code dependencies of function ``fn`` (``fn`` itself excluded)."""
    return _with_targets(_with_decorators(_static(fn)))


def _static(fn: Any) -> dict[str, Dependency]:
    found: dict[str, Dependency] = {}
    pending = [fn]
    while pending:
        for name, value in _referenced_values(pending.pop()):
            if name in found:
                continue
            dependency = describe(name, value)
            if dependency is not None:
                found[name] = dependency
                if dependency.kind == "code":
                    pending.extend(_held_code(value))
    found.pop(qualified_name(fn), None)
    return found


def _held_code(value: Any, depth: int = 0) -> Iterator[Any]:
    """The user functions and classes ``value`` is or holds, to follow statically."""
    code = _code_object_of(value)
    if code is not None:
        if is_user_module(getattr(code, "__module__", "")):
            yield code
    elif isinstance(value, functools.partial):
        yield from _held_code(value.func, depth + 1)
    elif isinstance(value, (dict, list, tuple)) and depth < _HOLDER_DEPTH:
        for item in [*value.values()] if isinstance(value, dict) else value:
            yield from _held_code(item, depth + 1)


#: function -> names of the module-level objects of the user's its own code refers to
_objects_named: dict[Any, tuple[str, ...]] = {}


def objects_before(fn: Any) -> dict[str, Dependency]:
    """The module-level objects of the user's that ``fn``'s own code refers to, described as
    they are now, before its body runs. A body may change them through their methods
    (``MODEL.fit(x)``): the call depends on them as it found them, which is also how a new
    process finds them (see run_dependencies).

    >>> objects_before(len)
    {}
    """
    names = _objects_named.get(fn)
    if names is None:
        names = _objects_named[fn] = tuple(
            name for name, value in _referenced_values(fn) if _is_user_object(value)
        ) if _code_object_of(fn) is not None else ()
    found = {}
    for name in names:
        value = resolve(name)
        if _is_user_object(value):
            dependency = describe(name, value)
            if dependency is not None:
                found[name] = dependency
    return found


def _is_user_object(value: Any) -> bool:
    kind = type(value)
    return _code_object_of(value) is None and not isinstance(value, types.ModuleType) and is_user_module(kind.__module__)


def run_dependencies(
    fn: Any, codes: dict[types.CodeType, dict], before: dict[str, Dependency] | None = None,
    receivers: dict[types.CodeType, tuple[type, ...]] | None = None,
) -> dict[str, Dependency]:
    """Dependencies of one execution of ``fn``: the user functions it ran (``codes``, from
    tracing) plus the constants read by ``fn`` and by each of them.

    A method that ran for a subclass which inherits it (``receivers``: ``Base.score`` for a
    ``Child``) is also a dependency by the name it was reached through (``Child.score``):
    if ``Child`` overrides it later, or moves to another base, that name resolves to other
    code and the call is computed again.

    An execution that handed work to other threads or processes (:func:`hands_work_off`)
    ran code the trace did not see: it depends on everything its code and the code it ran
    refer to as well (static dependencies), so that editing a helper it mapped over a pool
    recomputes it instead of serving a stale result.
    """
    found: dict[str, Dependency] = {}
    for code, module_globals in codes.items():
        name = _name_of_code(code, module_globals) or _enclosing_name(code, module_globals)
        if not name:
            continue
        value = resolve(name)
        dependency = describe(name, value) if value is not _GONE else None
        if dependency is not None and dependency.kind == "code":
            found[name] = dependency
    for code, classes in (receivers or {}).items():
        for receiver in classes:
            _add_inherited(found, code, codes.get(code) or {}, receiver)
    owners = [fn, *(resolve(n) for n in list(found))]
    if hands_work_off(codes):
        for owner in owners:
            for name, dependency in static_dependencies(owner).items():
                found.setdefault(name, dependency)
    for owner in owners:
        found.update(_direct_constants(owner))
    for name in [n for n in found if found[n].kind == "code"]:
        found.update(_class_attributes_read(name))
    for name, dependency in (before or {}).items():
        # as the body found it, not as it left it; the data of its arguments' classes too
        if name in found or name.endswith(CLASS_DATA):
            found[name] = dependency
    found.pop(qualified_name(fn), None)
    return _with_targets(_with_decorators(found))


#: What a helper's decorator lines count under: ``helpers:scale@decorators``.
DECORATORS = "@decorators"
#: What state the user's functions write counts under, by the text of its assignments:
#: ``helpers:K@definition`` (see _module_data).
DEFINITION = "@definition"
#: Which functions a name that holds code under another name than theirs points to (a
#: registry, an entry of one, an alias): ``helpers:REGISTRY['a']@targets``.
TARGETS = "@targets"
#: The class-level data of a class of the user's that code refers to, or whose instance an
#: op is given, read where no code of the class runs: ``models:Model@classdata``.
CLASS_DATA = "@classdata"


def _with_decorators(found: dict[str, Dependency]) -> dict[str, Dependency]:
    """``found`` with the decorator lines of each function among its code, and of the class
    of each method: what its fingerprint leaves out, which chooses the code that runs around
    it (``@functools.lru_cache`` made ``@my_timer``) and with what (``@scaled(2)``,
    ``@dataclass(eq=False)``). A dependency of their own, not a part of the function's state,
    which calls stored before they counted hold as it was."""
    for name in [n for n, d in found.items() if d.kind == "code" and not n.endswith(DECORATORS)]:
        for decorated in filter(None, (name, _owner_of(name))):
            dependency = _decorators_dependency(decorated + DECORATORS, resolve(decorated))
            if dependency is not None:
                found.setdefault(dependency.name, dependency)
    return found


def _with_targets(found: dict[str, Dependency]) -> dict[str, Dependency]:
    """``found`` with, for each name among its code that holds functions of the user's under
    another name than theirs (``REGISTRY``, ``REGISTRY['a']``, ``act = relu``), which functions
    those are: code counts by its text, and two functions of one text in two modules read
    each its own module's globals (``{"a": mod1.f}`` edited to ``{"a": mod2.f}``). A
    dependency of its own, as decorators are, which calls stored before it counted hold as
    it was."""
    for name in [n for n, d in found.items() if d.kind == "code" and "@" not in n]:
        value = resolve(name)
        dependency = _targets_dependency(name + TARGETS, value) if value is not _GONE else None
        if dependency is not None:
            found.setdefault(dependency.name, dependency)
    return found


def _targets_dependency(name: str, value: Any) -> Dependency | None:
    """The functions of the user's ``value`` holds, by their own names (``mod1:f``); None
    where it holds none, or is one under its own name."""
    text = _targets_text(value)
    if not text or text == name.removesuffix(TARGETS):
        return None
    single = _code_object_of(value) is not None  # as a helper imported from elsewhere counts
    return Dependency(name, "constant", binding_state(text) if single else digest(b"targets|" + text.encode()), text)


def _targets_text(value: Any, depth: int = 0) -> str:
    """``mod1:f`` for a function of the user's; the same for what a partial, a dict, a list
    or a tuple holds, item by item (``{'a': mod1:f}``); "" for anything else."""
    code = _code_object_of(value)
    if code is not None:
        return qualified_name(value) if is_user_module(getattr(code, "__module__", "") or "") else ""
    if depth >= _HOLDER_DEPTH:
        return ""
    if isinstance(value, functools.partial):
        inner = _targets_text(value.func, depth + 1)
        return f"partial({inner})" if inner else ""
    if isinstance(value, dict):
        # Sorted, as the dict's own state is: a registry filled from a set is filled in
        # another order in each process.
        items = sorted((_key_text(k), _targets_text(v, depth + 1)) for k, v in value.items())
        return ", ".join(f"{k}: {t}" for k, t in items if t).join("{}") if any(t for _, t in items) else ""
    if isinstance(value, (list, tuple)):
        held = [_targets_text(v, depth + 1) for v in value]
        return ", ".join(t or "_" for t in held).join("[]") if any(held) else ""
    return ""


def _key_text(key: Any) -> str:
    """A registry's key as change reports show it, with no address, which differs in every
    process: a function by its name (``helpers:relu``, not ``<function relu at 0x...>``)."""
    if _code_object_of(key) is not None:
        return qualified_name(key)
    return _ADDRESS.sub("", _described(key))


#: `` at 0x7f...`` in a repr.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _owner_of(name: str) -> str:
    """``helpers:Model`` for the method ``helpers:Model.fit``; "" for a module-level name."""
    module, _, qualname = name.partition(":")
    owner = qualname.rpartition(".")[0]
    return f"{module}:{owner}" if owner else ""


def _decorators_dependency(name: str, value: Any) -> Dependency | None:
    """The decorator lines of the user's function or class ``value``, by their text; None
    for an op (its decorator's arguments are its version and shape) or what has none. (What
    names they read counts as the function's other references do: its syntax tree keeps
    them, and a decorator of the user's counts by the wrapper it made, which runs.)"""
    code = _code_object_of(value)
    if not isinstance(code, (types.FunctionType, type)) or isinstance(value, Op) or not is_user_module(code.__module__):
        return None
    lines = decorators(fingerprint(code).tree)
    if lines is None:
        return None
    return Dependency(name, "constant", digest(b"decorators|" + lines[0]), lines[1])


def _add_inherited(found: dict[str, Dependency], code: types.CodeType, module_globals: dict, receiver: type) -> None:
    """``found`` plus the method ``code`` as ``receiver`` reaches it, where that is another
    name than the method's own (an inherited method)."""
    own = _name_of_code(code, module_globals)
    qualname = getattr(receiver, "__qualname__", "<")
    if not own or "<" in qualname or not is_user_module(getattr(receiver, "__module__", "")):
        return
    name = f"{receiver.__module__}:{qualname}.{code.co_name}"
    if name == own or name in found:
        return
    value = resolve(name)
    dependency = describe(name, value) if value is not _GONE else None
    if dependency is not None and dependency.kind == "code":
        found[name] = dependency


def _class_attributes_read(method_name: str) -> dict[str, Dependency]:
    """The class-level data a traced method reads through ``self.X`` or ``cls.X`` (``K = 2``
    in the class body, or a base class's): a constant no name chain of the method reaches.
    What the method itself changes (``cls.SEEN.append(x)``), or the functions of its class's
    module do (``set_k`` setting ``cls.K``), is state, which moves as calls run: it counts by
    the text that defines it (see _any_class_data) and the value the script set it to.

    >>> _class_attributes_read("not.a:method")
    {}
    """
    module, _, qualname = method_name.partition(":")
    owner_name, _, _ = qualname.rpartition(".")
    cls = resolve(f"{module}:{owner_name}") if owner_name else _GONE
    method = resolve(method_name)
    tree = None if method is _GONE else fingerprint(method).tree
    if not isinstance(cls, type) or tree is None:
        return {}
    found = {}
    written = _attributes_written(tree, cls.__name__, True)
    for attr in _attributes_of_self(tree):
        for name, value in _defined_data(cls, attr):
            state = attr in written or attr in _class_state_written(cls) and _defined_in_a_file(name)
            dependency = describe(name + DEFINITION if state else name, value)
            if dependency is not None:
                found[dependency.name] = dependency
    return found


def _defined_in_a_file(name: str) -> bool:
    """Whether a file defines ``module:qualname`` (a notebook's cells do not): state the
    user's functions write counts by that text, else by its value (see _named_value)."""
    module_name, _, qualname = name.partition(":")
    return definitions.definition_text(module_name, qualname, is_user_module) is not None


def _attributes_of_self(tree: ast.AST) -> set[str]:
    """``X`` of each ``self.X``, ``cls.X``, ``self.__class__.X``, ``type(self).X`` or
    ``getattr(self, "X")`` the code reads."""
    found = set()
    for node in ast.walk(tree):
        base, part = _named_read(node) if isinstance(node, ast.Call) else (None, None)
        if isinstance(node, ast.Attribute) and _is_receiver(node.value):
            found.add(node.attr)
        elif base is not None and part is not None and not part.startswith("[") and _is_receiver(base):
            found.add(part)  # (`.get("X")` gives a key, no attribute)
    return found


def _is_receiver(node: ast.AST) -> bool:
    """``self``, ``cls``, ``self.__class__`` or ``type(self)``."""
    if isinstance(node, ast.Attribute) and node.attr == "__class__":
        node = node.value
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type" and len(node.args) == 1:
        node = node.args[0]
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


#: Library code through which a function runs code in other threads or processes, where
#: tracing it does not reach: executors and their futures, process pools, joblib, dask, ray.
_HAND_OFF_PACKAGES = frozenset({"multiprocessing", "joblib", "loky", "dask", "distributed", "ray"})


def hands_work_off(codes: dict[types.CodeType, dict]) -> bool:
    """Whether traced ``codes`` include starting a thread or handing work to a pool.

    >>> import threading
    >>> hands_work_off({threading.Thread.start.__code__: vars(threading)})
    True
    """
    for code, module_globals in codes.items():
        module = module_globals.get("__name__") or ""
        package = module.partition(".")[0]
        if package in _HAND_OFF_PACKAGES or module.startswith("concurrent.futures") or (
            module == "threading" and code.co_name == "start"
        ):
            return True
    return False


def may_run_user_code(fn: Any) -> bool:
    """Whether ``fn``'s own code refers to user code: a user function, class or op, or an
    instance of a user class (whose methods it may call). If not, ``fn`` can reach user code
    only through its arguments, and a run on plain data needs no tracing."""
    if getattr(fn, "__closure__", None) or _unresolved_names(fn) or _names_user_module(fn) or _finds_modules(fn):
        return True  # closure variables, unknown names, a module of the user's: assume the worst
    return any(_may_hold_user_code(value) for _, value in _referenced_values(fn))


def _finds_modules(fn: Any) -> bool:
    """Whether ``fn``'s code calls what finds a module by a name given at run time
    (``__import__("helpers")``, ``importlib.import_module(name)``, ``sys.modules[name]``):
    the code of the user's it then runs is named nowhere in its source."""
    tree = fingerprint(fn).tree
    if tree is None:
        return False
    namespace, imports = _namespace_of(fn), _imports_of(tree)
    finders = {id(finder) for finder in _module_finders()}
    return any(id(_chain_value(chain, namespace, imports)) in finders for chain in _chains_of(tree))


def _module_finders() -> tuple[Any, ...]:
    runpy = sys.modules.get("runpy")  # (if used: a memoizing process need not import it)
    found = (builtins.__import__, importlib.import_module, importlib.reload, importlib.__import__, sys.modules)
    return found + ((runpy.run_module, runpy.run_path) if runpy is not None else ())


def _chain_value(chain: tuple[str, ...], namespace: dict, imports: dict) -> Any:
    """What a chain of names reads, following modules only (``importlib.import_module``,
    ``sys.modules``), its first name a global, a name the code imports itself, or a builtin."""
    first = chain[0]
    if first in namespace:
        value = namespace[first]
    elif first in imports and not imports[first][0]:
        _, module_name, attribute = imports[first]
        value = sys.modules.get(module_name)
        value = value if attribute is None else getattr(value, attribute, None)
    else:
        value = getattr(builtins, first, None)
    for attr in chain[1:]:
        if not isinstance(value, types.ModuleType):
            break
        value = getattr(value, attr, None)
    return value


def _names_user_module(fn: Any) -> bool:
    """Whether ``fn``'s code names one of the user's modules as a whole (``getattr(helpers,
    name)``, ``vars(helpers)``): any of its functions may run."""
    tree = fingerprint(fn).tree
    namespace = _namespace_of(fn)
    for chain in _chains_of(tree) if tree is not None else ():
        if chain[0] == COMPUTED:  # `globals()[name]`: its own module's
            return True
        value: Any = namespace.get(chain[0])
        for position, attr in enumerate(chain[1:], 1):
            if not isinstance(value, types.ModuleType) or _reads_any_global(list(chain[position:])):
                break
            value = getattr(value, attr, None)
        if isinstance(value, types.ModuleType) and is_user_module(value.__name__):
            return True
    return False


def _may_hold_user_code(value: Any, depth: int = 0) -> bool:
    """User code, a user object, or anything through which code could be reached that we
    cannot see statically: a partial, a cached wrapper, a registry of callables."""
    code = _code_object_of(value)
    owner = code if code is not None else type(value)
    if is_user_module(getattr(owner, "__module__", "") or ""):
        return True
    if callable(value) and code is None and not isinstance(value, type):
        return not _is_library_callable(value)
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, (list, tuple, set, frozenset)) and depth < 2:
        return any(_may_hold_user_code(item, depth + 1) for item in value)
    return False


def _is_library_callable(value: Any) -> bool:
    """Builtins and library functions, as opposed to partials, wrappers and bound objects."""
    if isinstance(value, (types.BuiltinFunctionType, types.FunctionType, types.MethodType)):
        module = getattr(value, "__module__", None) or ""
        return not is_user_module(module)
    return False


def _unresolved_names(fn: Any) -> bool:
    tree = fingerprint(fn).tree
    if tree is None:
        return True
    namespace = _namespace_of(fn)
    return any(
        chain[0] not in namespace and not hasattr(builtins, chain[0]) for chain in _chains_of(tree)
    )


def _name_of_code(code: types.CodeType, module_globals: dict) -> str | None:
    qualname = getattr(code, "co_qualname", None) or _qualname_from_namespace(code, module_globals)
    module_name = module_globals.get("__name__") or _module_of_namespace(module_globals)
    if not module_name or "<" in qualname or not is_user_module(module_name):
        return None  # lambdas, comprehensions, nested functions: covered by their enclosing code
    return f"{module_name}:{qualname}"


def _enclosing_name(code: types.CodeType, module_globals: dict) -> str | None:
    """The name of the module-level function (or method) whose source holds a nested
    function that ran: the wrapper a decorator made (``logged.<locals>.wrapper``), a closure
    a factory returned. Its code is that function's, which may not itself run in the op
    (a decorator runs at import). Python 3.10 has no ``co_qualname``: None there."""
    qualname = getattr(code, "co_qualname", "")
    outer, nested, _ = qualname.partition(".<locals>.")
    if not nested or "<" in outer:
        return None
    where = module_globals.get("__name__") or _module_of_namespace(module_globals)
    return f"{where}:{outer}" if where and is_user_module(where) else None


def _module_of_namespace(namespace: dict) -> str | None:
    """The module of globals that lost their ``__name__``: IPython's ``%run`` deletes it from
    the script's namespace once the script ran, but the functions defined there keep it as
    their ``__module__`` (a plain function, an op's, a method of a class). Found once per
    namespace: every traced call of such a script asks."""
    known = _namespace_modules.get(id(namespace))
    if known is not None and known[0] is namespace:
        return known[1]
    found = next((f.__module__ for f in _functions_in(namespace) if f.__globals__ is namespace), None)
    if found is not None:  # (none yet: the functions may come later)
        if len(_namespace_modules) > 64:
            _namespace_modules.clear()
        _namespace_modules[id(namespace)] = (namespace, found)
    return found


#: id(namespace) -> (the namespace, its module's name): held, so that the id stays its own
_namespace_modules: dict[int, tuple[dict, str]] = {}


def _functions_in(namespace: dict) -> Iterator[types.FunctionType]:
    """The functions a namespace holds: its own, ops' (``.fn``), and its classes' methods."""
    for value in list(namespace.values()):
        if isinstance(value, type):
            for member in vars(value).values():
                function = getattr(member, "__func__", member)
                if isinstance(function, types.FunctionType):
                    yield function
            continue
        function = value if isinstance(value, types.FunctionType) else _op_function(value)
        if isinstance(function, types.FunctionType):
            yield function


def _qualname_from_namespace(code: types.CodeType, namespace: dict) -> str:
    """Python 3.10 has no ``co_qualname``: find the module-level function, or the method of a
    module-level class, whose code this is."""
    for value in list(namespace.values()):
        # Through one wrapper (functools.wraps; pytest's fixture definitions since 8.4). Read
        # safely: an AttrDict's missing attributes raise KeyError, a polars expression's
        # make another expression (whose truth value raises).
        wrapped = None if isinstance(value, type) else _attribute(value, "__wrapped__")
        function = value if wrapped is None else wrapped
        if _attribute(function, "__code__") is code:
            return function.__qualname__
        if isinstance(value, type):
            for member in vars(value).values():
                for function in _accessor_functions(member) or (getattr(member, "__func__", member),):
                    if getattr(function, "__code__", None) is code:
                        return function.__qualname__
    return f"<unknown>.{code.co_name}"


def _direct_constants(owner: Any) -> dict[str, Dependency]:
    code = _code_object_of(owner)
    if code is None:
        return {}
    found = {}
    for name, value in _referenced_values(code):
        # Named code is found by tracing; here, only code tracing cannot name as the op
        # reaches it: with no name of its own, under another name (``act = relu``), or a
        # dispatcher whose implementations all share one name (``_``).
        if name not in found and (_code_object_of(value) is None or name != qualified_name(value)
                                  or _accessor_functions(value) is not None):
            dependency = describe(name, value)
            if dependency is not None:
                found[name] = dependency
                if dependency.kind == "constant" and is_data(value):  # `MODELS[0].K`, `PIPE.model.K`
                    found.update(argument_classes((value,)))
        if isinstance(value, type):
            found.update(_generated_constructor(name, value))
            found.update(_class_data_of(value))
    return found


def direct_reads(fn: Any) -> set[str]:
    """The names of the data (and aliases) ``fn``'s own code reads, not those of what it calls."""
    return set(_direct_constants(fn))


def _generated_constructor(name: str, cls: type) -> dict[str, Dependency]:
    """The constructor Python wrote for a dataclass or NamedTuple the code refers to: it has
    no source, so its field defaults (``k: int = 1``, a ``default_factory``) count here, as
    the dataclass's ``__init__`` (code and defaults) or the NamedTuple's ``_field_defaults``."""
    if not is_user_module(cls.__module__) or resolve(name) is not cls:  # (a name that finds it)
        return {}
    init = _attribute(cls, "__init__")  # a subclass's inherited one too
    if isinstance(_attribute(cls, "__dataclass_fields__"), dict) and isinstance(init, types.FunctionType) and _generated(init):
        attribute = "__init__"
    elif issubclass(cls, tuple) and isinstance(_attribute(cls, "_field_defaults"), dict):
        attribute = "_field_defaults"
    else:
        return {}
    dependency = describe(f"{name}.{attribute}", getattr(cls, attribute))
    return {dependency.name: dependency} if dependency is not None else {}


def _class_data_of(cls: type) -> dict[str, Dependency]:
    """``{"models:Model@classdata": ...}`` for a class of the user's: see _class_data_dependency."""
    if not is_user_module(cls.__module__) or "<" in cls.__qualname__:
        return {}
    name = qualified_name(cls) + CLASS_DATA
    dependency = _class_data_dependency(name, cls) if resolve(name) is cls else None
    return {name: dependency} if dependency is not None else {}


def _class_data_dependency(name: str, cls: Any) -> Dependency | None:
    """The class-level data of the user's class ``cls`` and its bases, all of it: code that
    reads it through an instance (``Model().K``, an argument's ``model.K``) or through the
    class as a whole (an Enum's ``Mode(1)``, ``list(Mode)``, ``len(Mode)``; ``vars(Model)``;
    a ``match`` class pattern's ``__match_args__``) runs no code of the class, so no trace
    and no name chain says which it read. Methods, properties and nested classes are code:
    they count as they run. None for a class with no such data."""
    if not isinstance(cls, type):
        return None
    parts = sorted(_class_data_parts(cls))
    if not parts:
        return None
    return Dependency(name, "constant", _class_data_state(parts), "\n".join(text for _, _, text in parts))


def _class_data_state(parts: list[tuple[str, bytes, str]]) -> bytes:
    return digest(b"class data|" + b"|".join(part.encode() + b"=" + state for part, state, _ in parts))


def class_data_state_as(cls: type, new: str, old: str) -> bytes | None:
    """The state of ``cls``'s class data as it was counted where the class was before it
    moved (``old``, ``module:Class``) to ``new``: its data's names are part of it (renames.py
    accepts it as the state the class's data has now, so calls that read it stay valid)."""
    parts = sorted(
        (old + part[len(new):] if part.startswith(new + ".") else part, state, text)
        for part, state, text in _class_data_parts(cls)
    )
    return _class_data_state(parts) if parts else None


def _class_data_parts(cls: type) -> Iterator[tuple[str, bytes, str]]:
    """``(name, state, text)`` of each class-level datum ``cls`` finds (its own, then its
    bases', as attribute lookup finds them): see _class_datum."""
    written = _class_state_written(cls)
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not is_user_module(klass.__module__):
            continue
        for attr, value in list(vars(klass).items()):
            if attr in seen or _python_bookkeeping(klass, attr):
                continue
            seen.add(attr)
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__  # (a staticmethod holding a partial: by what it binds)
            if _code_object_of(value) is not None or _accessor_functions(value) is not None:
                continue
            name = f"{klass.__module__}:{klass.__qualname__}.{attr}"
            dependency = _class_datum(name, klass, attr, value, attr in written)
            if dependency is not None:
                yield name, dependency.state, f"{klass.__qualname__}.{attr}: {dependency.source}"


def _python_bookkeeping(klass: type, attr: str) -> bool:
    """Whether ``attr`` of ``klass`` is Python's or enum's, not the user's data: a dunder
    (but ``__match_args__``, which a ``match`` pattern reads), or an Enum's ``_sunder_``
    (``_value2member_map_``, which a Flag's ``Mode(3)`` fills: its members count)."""
    if attr.startswith("__") and attr.endswith("__") and attr != "__match_args__":
        return True
    return attr.startswith("_") and attr.endswith("_") and issubclass(klass, enum.Enum)


def _class_datum(name: str, klass: type, attr: str, value: Any, written: bool) -> Dependency | None:
    """An immutable datum (a number, a text, a tuple of them, an enum member) by its value;
    anything else by the text that defines it (a partialmethod, a lock; a dict, a list, an
    array): read through an instance, a class's state may be changed in place by any code
    (``model.cache[k] = v``) without this telling, and counted by value it would move as calls
    run, which would recompute the calls in every new process. Where no text defines it (set
    by ``setattr`` in a loop, a class decorator, ``__init_subclass__``; an Enum's bookkeeping),
    by its value, but state the classes' code writes (see _class_state_written): None."""
    if not written and _immutable(value):
        return describe(name, value)
    dependency = _text_dependency(name, klass.__module__, f"{klass.__qualname__}.{attr}")
    if dependency is not None and dependency.source:
        return dependency
    return None if written else describe(name, value)


def _immutable(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` cannot change in place: a scalar, a numpy scalar, an enum member (by
    its class), a standard library value (a date, a path), a tuple or frozenset of them."""
    kind = type(value)
    if kind in (int, float, complex, str, bytes, bool, type(None), range) or isinstance(value, enum.Enum):
        return True
    if kind in (tuple, frozenset):
        return depth < _HOLDER_DEPTH and all(_immutable(item, depth + 1) for item in value)
    if kind.__module__ == "numpy":
        return isinstance(value, sys.modules["numpy"].generic)
    return _is_value(value) and kind.__module__ not in ("types", "argparse")  # (not a settings namespace)


def argument_classes(values: Iterable[Any]) -> dict[str, Dependency]:
    """The class-level data (see _class_data_dependency) of the user's classes of the objects
    an op is given (or module-level data its code reads holds), and of those their lists,
    tuples, dicts and attributes hold (see _user_classes): such an object is keyed by its own
    content, its class by name, so ``model.K`` edited in the class body would else serve the
    result computed with the old."""
    classes: dict[type, None] = {}
    _user_classes(values, classes, 0)
    found: dict[str, Dependency] = {}
    for held in classes:
        if not issubclass(held, enum.Enum):  # (a member is keyed by its value: its class adds nothing)
            known = _CLASS_DATA_SEEN.get(held)
            if known is None:
                known = _CLASS_DATA_SEEN[held] = _class_data_of(held)
            found.update(known)
    return found


def _user_classes(values: Iterable[Any], found: dict[type, None], depth: int) -> None:
    """Note in ``found`` the user's classes of ``values`` (a class given: itself), and of what
    their lists, tuples, sets, dicts and attributes hold, ``_CLASSES_DEPTH`` levels down and
    ``_CLASSES_ITEMS`` items of each: at every computed call, so a list of a million numbers
    costs a look at a few of them."""
    for value in itertools.islice(values, _CLASSES_ITEMS):
        kind = type(value)
        if kind in _SCALARS:
            continue
        inner: Iterable[Any] = ()
        if kind in (list, tuple, set, frozenset):
            inner = value
        elif kind is dict:
            inner = value.values()
        elif isinstance(value, type):
            kind = value
        elif is_user_module(kind.__module__):
            inner = _attribute(value, "__dict__") or {}
            inner = inner.values() if isinstance(inner, dict) else ()
        if is_user_module(kind.__module__):
            found[kind] = None
        if depth < _CLASSES_DEPTH:
            _user_classes(inner, found, depth + 1)


_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes})
_CLASSES_DEPTH = 2
_CLASSES_ITEMS = 16


#: class -> its class data (see argument_classes), until the next block: worked out at every
#: call given one of its objects, it cost such a miss ~4 ms (what the class's module writes is
#: read from its functions' syntax trees). A block sees the class as it was at its entry, as
#: an op's own dependencies are checked once a block (forget_argument_states forgets these).
_CLASS_DATA_SEEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _generated(function: types.FunctionType) -> bool:
    """Code Python generated (``exec``'d text: a dataclass's methods): no file, no source."""
    return function.__code__.co_filename.startswith("<") and fingerprint(function).source.startswith(NO_SOURCE)


def op_dependency(op: Op) -> Dependency | None:
    """The dependency of a caller on an op it called, by the name the op is reached by; None
    for a library op, or one defined inside a function (no name reaches it later)."""
    name = qualified_name(op)
    return None if "<" in name else describe(name, op)


def describe(name: str, value: Any) -> Dependency | None:
    """A Dependency for a resolved value, or None when it is not user code or data."""
    if name.endswith(DECORATORS):
        return _decorators_dependency(name, value)
    if name.endswith(DEFINITION):
        return _definition_dependency(name, value)
    if name.endswith(TARGETS):
        return _targets_dependency(name, value)
    if name.endswith(CLASS_DATA):
        return _class_data_dependency(name, value)
    if isinstance(value, types.ModuleType):
        return _module_binding(name, value)
    if _is_alias(name, value):  # which class or library code the name points to
        target = f"{value.__module__}:{value.__qualname__}"
        return Dependency(name, "constant", binding_state(target), f"{_last(name)} = {target}")
    code = _code_object_of(value)
    if code is not None and not is_user_module(getattr(code, "__module__", "")):
        return None
    if code is not None or isinstance(value, functools.partial) or _holds_code(value):
        # code by fingerprint; a closure, a partial or a registry with what they hold
        try:
            return Dependency(name, "code", _holder_state(value), _holder_source(value))
        except UnhashableError:
            if code is None:
                return None
            print_ = fingerprint(code)  # a closure over something unhashable: its code still counts
            return Dependency(name, "code", _code_state(value, print_.digest), print_.source)
    if is_data(value):
        state = _data_state(value)
        return None if state is None else Dependency(name, "constant", state, _described(value))
    if _library_object(name, value):
        module_name, _, rest = name.partition(":")
        return _text_dependency(name, module_name, _split_keys(rest)[0])  # `CFG['tz']`: CFG's text
    return None


def _library_object(name: str, value: Any) -> bool:
    """Whether ``name`` is a module-level name of the user's bound to an object that is no
    code and has no content key (asked after ``is_data``: a library object):
    ``RNG = random.Random(2)``, ``TZ = timezone(...)``, a template, a getter, a bound builtin
    method (``FMT = "{:.2f}".format``). Such an object counts by the text that defines it:
    its content may be missing (a lock) or move as calls run (a generator's state), and as
    no dependency at all, editing how it is made served the results of the old one."""
    module_name, _, rest = name.partition(":")
    path = _split_keys(rest)[0].split(".")  # `TZ`, `C.TZ` (a class's), `CFG['tz']` (an entry)
    return all(map(str.isidentifier, path)) and is_user_module(module_name) and _no_content_object(value)


def _no_content_object(value: Any) -> bool:
    """Neither a module, a class nor code (a function, a ``classmethod`` or ``staticmethod``
    as a class holds it, a property): an object (one ``is_data`` did not take). Code counts
    by its fingerprint, under the same name: a text of its own there would differ from it."""
    if isinstance(value, (types.ModuleType, type, classmethod, staticmethod)):
        return False
    return _code_object_of(value) is None and _accessor_functions(value) is None


def _text_dependency(name: str, module_name: str, qualname: str) -> Dependency | None:
    """``name``'s dependency on the text defining ``qualname`` in ``module_name``."""
    text = definitions.definition_text(module_name, qualname, is_user_module)
    if text is None:
        return None
    return Dependency(name, "constant", digest(b"definition|" + text.encode()), text)


def _definition_dependency(name: str, value: Any) -> Dependency | None:
    """State the user's functions write (``global K``, a cache they fill), by the text of the
    statements that bind it where it is defined (``K = 2``): its value moves as calls run,
    that text only with an edit. And by the value code outside the op bodies set it to, if
    it did (``set_k(7)`` in the script: see script_state.py). None where the module has no
    file (a notebook's)."""
    base = name.removesuffix(DEFINITION)
    module_name, _, qualname = base.partition(":")
    by_text = _text_dependency(name, module_name, qualname)
    setting = None if by_text is None else _setting(base, module_name, qualname, value)
    if by_text is None or setting is None:
        return by_text
    shown = f"{by_text.source}\n# set outside the ops to: {setting[1]}"
    return Dependency(name, "constant", digest(by_text.state + b"|set|" + setting[0]), shown)


def _setting(name: str, module_name: str, qualname: str, value: Any, in_place: bool = False) -> tuple[bytes, str] | None:
    """What code outside the op bodies set state ``name`` (holding ``value``) to, if it did;
    ``in_place``: looking into the same object too, if small (see _small_state)."""
    if value is _GONE:
        return None

    def defined() -> bytes | None:
        literal = definitions.literal_value(module_name, qualname)
        return None if literal is definitions.NO_LITERAL else _data_state(literal)

    return script_state.setting(name, value, defined, _data_state, _described,
                                recursion.bodies_running() == 0, in_place and _small_state(value))


def state_guard(names: tuple[str, ...]) -> script_state.Guard:
    """A guard of the state ``names`` (``helpers:K@definition``) hold now (script_state.Guard);
    one that never holds where a name's owner is gone."""
    held = []
    for name in names:
        module_name, _, qualname = name.removesuffix(DEFINITION).partition(":")
        *owners, attribute = qualname.split(".")
        owner: Any = sys.modules.get(module_name)
        for part in owners:
            owner = getattr(owner, part, None)
        if owner is None:
            return script_state.NEVER
        held.append((owner, attribute, getattr(owner, attribute, _GONE)))
    return script_state.Guard(tuple(held))


def look_at_state(in_place: bool = False) -> None:
    """Look again, outside any op body, at the state this process has seen (see
    script_state.py): a value code outside the op bodies set since counts from now on.
    ``in_place``: into the objects too (``configure(lr=0.2)`` setting ``CONFIG.lr``), which
    hashes them: at a block's entry, as constants changed in place are seen there, and once
    an outermost body ran, for the state it computed with."""
    for name, value in script_state.looked_at(in_place):
        _setting(name, *name.partition(":")[::2], value, in_place)


def _small_state(value: Any) -> bool:
    """State whose content is hashed to see it changed in place (look_at_state): a container
    of at most _SMALL_ITEMS items, an object of the user's, an array of at most 1 MiB (a
    cache of a million entries filled by the op bodies would cost every block its hashing)."""
    if isinstance(value, (list, dict, set)):
        return len(value) <= _SMALL_ITEMS
    if type(value).__module__ == "numpy":
        return getattr(value, "nbytes", 0) <= 1 << 20
    return is_user_module(type(value).__module__) and hasattr(value, "__dict__")


_SMALL_ITEMS = 10_000


def note_moved(fn: Any, codes: dict[types.CodeType, dict]) -> None:
    """An op body ran: the state the code it ran (``codes``, the op's own ``fn`` too) writes
    holds what the body left in it, which is no setting from outside (script_state.py)."""
    own = getattr(fn, "__code__", None)
    if own is not None:  # (asked at a miss of every op: no call more than needed)
        written = _WRITES.get(own)
        for name in written if written is not None else _state_written_by(own, fn.__globals__):
            script_state.moved(name, resolve(name))
    for code, module_globals in codes.items():
        written = _WRITES.get(code)
        for name in written if written is not None else _state_written_by(code, module_globals):
            script_state.moved(name, resolve(name))


def _state_written_by(code: types.CodeType, module_globals: dict) -> tuple[str, ...]:
    """``module:K`` of each module-level name, and ``module:Model.K`` of each attribute of
    its own class (a method's), that ``code`` of the user's writes: rebinds (``global K``)
    or changes in place (``CACHE[k] = v``, ``cls.SEEN.append(x)``). Worked out once a code."""
    known = _WRITES.get(code)
    if known is None:
        name = _name_of_code(code, module_globals)
        value = resolve(name) if name else _GONE
        tree = fingerprint(value).tree if _code_object_of(value) is not None else None
        known = () if tree is None else _writes_of(name, tree)  # type: ignore[arg-type]
        if len(_WRITES) > 65_536:
            _WRITES.clear()
        _WRITES[code] = known
    return known


def _writes_of(name: str, tree: ast.AST) -> tuple[str, ...]:
    module_name, _, qualname = name.partition(":")
    found = [f"{module_name}:{written}" for written in sorted(_walked(tree)[3])]
    owner = qualname.rpartition(".")[0]
    if owner and "." not in owner:  # a method of a module-level class
        found += [f"{module_name}:{owner}.{attr}" for attr in sorted(_attributes_written(tree, owner, True))]
    return tuple(found)


#: code object -> the state it writes (see _state_written_by)
_WRITES: dict[types.CodeType, tuple[str, ...]] = {}


def binding_state(target: str) -> bytes:
    """The state of a name that points to the code or class named ``target``
    (``module:qualname``): an alias, or a helper imported from another module."""
    return digest(b"class|" + target.encode())


def as_rows(found: Mapping[str, Dependency]) -> tuple[tuple[str, str, bytes, str | None], ...]:
    """``found`` as ``(name, kind, state, source)`` rows (``RanCode.found``): what a body that
    ran out of the coordinator's sight sends back; :func:`from_rows` makes them Dependencies."""
    return tuple((name, d.kind, d.state, d.source) for name, d in found.items())


def from_rows(rows: tuple[tuple[str, str, bytes, str | None], ...]) -> dict[str, Dependency]:
    return {name: Dependency(name, kind, state, source) for name, kind, state, source in rows}


def untraced_dependencies(fn: Any, values: Iterable[Any]) -> dict[str, Dependency]:
    """What a body that could not be traced (an async op: bodies interleave on one event
    loop) may have run: ``fn``'s static dependencies, and the user classes of the objects
    it was given, base classes included, each with its code and what that refers to: a model
    passed in runs methods ``fn``'s code does not name. Objects are looked for in what it was
    given and in the objects its code reads by name (``MODEL.predict(x)``): arguments, the items of a list, tuple, set or dict, the attributes of a user
    object (a pipeline holding a model), the object of a bound method (``model.predict``) and
    what a ``functools.partial`` binds, whose function counts too, down to
    ``_HELD_DEPTH`` levels. (Functions given are keyed by their code:
    :func:`argument_code_state`.)"""
    found = static_dependencies(fn)
    # The objects its code reads by name too (a model at module level, MODEL.predict(x)):
    # their classes' methods run out of sight as an argument's do.
    read = [value for name, dependency in found.items() if dependency.kind == "constant" and (value := resolve(name)) is not _GONE]
    classes, functions = _held_code_of([*values, *read])
    for function in functions:
        dependency = describe(qualified_name(function), function)
        if dependency is not None:
            found.setdefault(dependency.name, dependency)
            for inner, inner_dependency in static_dependencies(function).items():
                found.setdefault(inner, inner_dependency)
    for cls in classes:
        owner = qualified_name(cls)
        for attribute, value in vars(cls).items():
            # each method (and class-level constant) by the name a trace would record it
            # under, so that what the class holds when a later call is looked up counts (a
            # notebook cell, a patch); a method with the helpers and constants it refers to
            code = _code_object_of(value) is not None
            if not code and attribute.startswith("__"):
                continue
            dependency = describe(f"{owner}.{attribute}", value)
            if dependency is None:
                continue
            found.setdefault(dependency.name, dependency)
            if code:
                for inner, inner_dependency in static_dependencies(value).items():
                    found.setdefault(inner, inner_dependency)
    return _with_targets(_with_decorators(found))


#: How deep untraced_dependencies looks into what an async op is given (an argument is level
#: 0: a list of pipelines holding a model is 3), how many items of one container, and how many
#: objects in all: a dataset of user objects is one class, not a walk through every row.
_HELD_DEPTH = 4
_HELD_ITEMS = 64
_HELD_MOST = 1024


def _held_code_of(values: Iterable[Any]) -> tuple[list[type], list[types.FunctionType]]:
    """The user classes of the objects in ``values`` (see untraced_dependencies), and the
    user functions partials among them bind."""
    classes: dict[type, None] = {}
    functions: dict[types.FunctionType, None] = {}
    seen: set[int] = set()
    pending = [(value, 0) for value in values]
    while pending and len(seen) < _HELD_MOST:
        value, depth = pending.pop()
        if id(value) in seen or depth > _HELD_DEPTH:
            continue
        seen.add(id(value))
        pending += [(item, depth + 1) for item in _held(value, classes, functions)]
    return list(classes), list(functions)


def _held(value: Any, classes: dict[type, None], functions: dict[types.FunctionType, None]) -> list[Any]:
    """Note ``value``'s user class (or the user function a partial binds); return the objects
    it holds that an untraced body may reach through it."""
    kind = type(value)
    if kind is dict:
        return list(itertools.islice(value.values(), _HELD_ITEMS))
    if kind in (list, tuple, set, frozenset):
        return list(itertools.islice(value, _HELD_ITEMS))
    if isinstance(value, types.MethodType):  # `model.predict` given: its object's class
        return [value.__self__]
    if isinstance(value, functools.partial):  # `partial(model.predict, k=3)`: its function and what it binds
        if isinstance(value.func, types.FunctionType) and is_user_module(value.func.__module__ or ""):
            functions[value.func] = None
        return [value.func, *value.args, *value.keywords.values()]
    cls = value if isinstance(value, type) else kind
    user = False
    for klass in cls.__mro__:
        if is_user_module(klass.__module__):
            classes[klass] = None
            user = True
    if not user or cls is value or not hasattr(value, "__dict__"):
        return []
    return list(itertools.islice(vars(value).values(), _HELD_ITEMS))


def argument_code_state(function: types.FunctionType) -> bytes | None:
    """The state of a user's function given to an op as an argument: its code with what that
    code refers to (helpers, constants: its static dependencies), as an op's own code counts;
    None for library code and for what pickle cannot find by name (a lambda, a nested function).

    An argument is keyed before its call runs, and a call computed where it cannot be traced
    (a worker process, an async op) records only its op's static dependencies: keyed by name
    alone, a function edited since was the same argument, and its stale result was served.
    """
    if "<" in function.__qualname__ or not is_user_module(function.__module__):
        return None
    known = _ARGUMENT_STATES.get(function)
    if known is not None and known[0] is function.__code__:
        return known[1]
    try:
        own = describe(qualified_name(function), function)
    except UnhashableError:
        return None
    # Without decorator lines (which the state of each call it is given to holds, as the
    # body ran it), so that the keys of calls stored before they counted stay.
    # (Not which module an alias binds: the keys of calls given functions stay as they were.)
    found = {name: d for name, d in _static(function).items() if not isinstance(resolve(name), types.ModuleType)}
    states = sorted(b"%s=%s" % (name.encode(), dependency.state) for name, dependency in found.items())
    state = digest(b"argument code|" + (own.state if own is not None else b"") + b"|" + b"|".join(states))
    _ARGUMENT_STATES[function] = (function.__code__, state)
    return state


#: function given as an argument -> (its code, its state), until the next block: its state
#: hashes the constants its code reads (a table, an array), which at every call cost a warm
#: hit their hashing. A block sees the code and constants as they were at its entry, as an
#: op's own dependencies are checked once a block (versions.refresh forgets these).
_ARGUMENT_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forget_argument_states() -> None:
    """Drop the states of functions given as arguments: at block entry, where code edited
    since (a notebook cell, a reload) and constants changed since must be seen."""
    _ARGUMENT_STATES.clear()
    _WRITTEN_IN.clear()
    _CLASS_DATA_SEEN.clear()


def _data_state(value: Any) -> bytes | None:
    """A module-level value's content id; None for what has none (a lock, a logger inside)."""
    try:
        return content_id(value)
    except UnhashableError:
        # (Not a dict subclass: its content is its items, kept by the branch below, and its
        # attributes empty: an AttrDict 3.10's pickle refuses would have one state whatever it holds.)
        if not isinstance(value, dict) and is_user_module(type(value).__module__) and isinstance(_attribute(value, "__dict__"), dict):
            return _object_with_code_state(value)
        if type(value) is dict or not isinstance(value, dict):
            return None
    # A dict subclass pickle cannot take: Python 3.10's pickle asks an AttrDict (__getattr__ =
    # dict.__getitem__) for __getstate__ and gets a KeyError. By its items.
    try:
        return content_id((qualified_name(type(value)), dict(value)))
    except UnhashableError:
        return None


def _object_with_code_state(value: Any) -> bytes | None:
    """An object of the user's that pickle cannot take because it holds code with no name
    (``Box(lambda x: ...)``, a closure): by its class and attributes, code by fingerprint."""
    try:
        return digest(b"object|" + qualified_name(type(value)).encode() + b"|" + _holder_state(vars(value)))
    except (UnhashableError, TypeError):
        return None


def is_data(value: Any) -> bool:
    """Whether a module-level value an op reads is data it depends on by content: plain
    constants, numpy arrays, values of a registered type (pandas, Arrow, dataclasses...), and
    instances of the user's own classes (``CONFIG = Config(lr=0.1)``, ``MODEL = Model(k=2)``).
    Not library objects without a handler: a logger, a lock, a random generator whose state
    moves on each use (those count by the text that defines them: ``_library_object``).

    >>> is_data({"lr": 0.1}), is_data(object())
    (True, False)
    """
    kind = type(value)
    if isinstance(value, _CONSTANT_TYPES) or kind.__module__ == "numpy" or _is_value(value):
        return True
    if isinstance(value, (types.ModuleType, type)) or callable(value) and not hasattr(value, "__dict__"):
        return False
    return is_user_module(kind.__module__) or handler_for(kind) is not None


_HOLDER_DEPTH = 4


def _holds_code(value: Any, depth: int = 0) -> bool:
    """Whether a dict, list or tuple holds user code (a registry of functions, say), or a
    property its functions."""
    if _accessor_functions(value) is not None:
        return True
    if depth >= _HOLDER_DEPTH or not isinstance(value, (dict, list, tuple)):
        return False
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    return any(
        isinstance(item, functools.partial) or _code_object_of(item) is not None or _holds_code(item, depth + 1)
        for item in items
    )


def _holder_state(value: Any, depth: int = 0) -> bytes:
    """The state of a value that holds code: functions by fingerprint (and what closures
    close over), partials by function and bound arguments, containers item by item, the
    rest by content. UnhashableError for what has no stable state."""
    if depth >= _HOLDER_DEPTH:
        raise UnhashableError("code nested too deep to follow")
    if isinstance(value, functools.partial):
        parts = (value.func, value.args, value.keywords)
        return digest(b"partial|" + b"|".join(_holder_state(part, depth + 1) for part in parts))
    accessors = _accessor_functions(value)
    if accessors is not None:
        return digest(b"accessor|" + b"|".join(_holder_state(f, depth + 1) for f in accessors))
    code = _code_object_of(value)
    if code is not None:
        if not is_user_module(getattr(code, "__module__", "")):  # library code: by name
            return digest(b"library|" + qualified_name(value).encode())
        state = _code_state(value, fingerprint(code).digest)
        if isinstance(code, types.FunctionType) and _generated(code):
            state = _with_defaults(state, code, depth)
        return _with_cells(state, code, depth) if getattr(code, "__closure__", None) else state
    if isinstance(value, dict):
        items = sorted((_holder_state(k, depth + 1), _holder_state(v, depth + 1)) for k, v in value.items())
        return digest(b"dict|" + b"".join(k + v for k, v in items))
    if isinstance(value, (list, tuple)):
        return digest(type(value).__name__.encode() + b"|" + b"".join(_holder_state(v, depth + 1) for v in value))
    return content_id(value)


def _has_own_globals(function: Any) -> bool:
    """Code compiled with globals of its own, not its module's (attrs' ``__init__``, whose
    ``attr_dict`` holds the fields): no name the code reads is found again as ``module:name``,
    in another process, so they are no dependencies. What they hold is the class's: its data
    counts where code refers to the class (see _class_data_of), by the text defining it."""
    if not isinstance(function, types.FunctionType) or not function.__code__.co_filename.startswith("<"):
        return False
    return function.__globals__ is not _attribute(sys.modules.get(function.__module__), "__dict__")


def _with_defaults(state: bytes, function: types.FunctionType, depth: int) -> bytes:
    """Generated code's state with its parameters' defaults, which no source text shows: by
    content (a tuple of tuples too), code by its state."""
    values = [*(function.__defaults__ or ()), *sorted((function.__kwdefaults__ or {}).items())]
    return digest(b"defaults|" + state + b"|" + b"|".join(_default_state(v, depth) for v in values))


def _default_state(value: Any, depth: int) -> bytes:
    try:
        return content_id(value)
    except UnhashableError:
        return _holder_state(value, depth + 1)


def _with_cells(state: bytes, function: Any, depth: int = 0) -> bytes:
    cells = []
    for cell in function.__closure__:
        try:
            contents = cell.cell_contents
        except ValueError:  # not yet filled
            cells.append(b"empty")
            continue
        cells.append(_holder_state(contents, depth + 1))
    return digest(b"closure|" + state + b"|" + b"".join(cells))


def with_closure(own: Fingerprint, function: Any) -> Fingerprint:
    """An op's fingerprint ``own`` with what ``function`` closes over, in its digest and its
    text (for change reports, and so that two such ops' texts differ too). Other ops count by
    name (their versions count where they are called; a recursive op closes over itself), the
    class a method's ``super()`` needs not at all, and an object with no stable content (a
    logger, a lock) by its type, as such objects count at module level."""
    cells = []
    for name, cell in zip(function.__code__.co_freevars, function.__closure__):
        try:
            contents = cell.cell_contents
        except ValueError:  # not yet filled
            cells.append(b"empty")
            continue
        if name == "__class__":
            continue
        if isinstance(contents, Op):
            cells.append(b"op|" + contents.name.encode())
            continue
        try:
            cells.append(_holder_state(contents))
        except UnhashableError:
            cells.append(b"unhashable|" + type(contents).__qualname__.encode())
    if not cells:
        return own
    text = own.source + _cells_text(function)
    return Fingerprint(digest(b"closure|" + own.digest + b"|" + b"|".join(cells)), text, own.tree)


def _cells_text(function: Any, depth: int = 0) -> str:
    """What a closure closes over, for change reports (and so that its text changes with it:
    calls whose code text is unchanged are kept, see VersionTracker._same_code)."""
    lines = []
    for name, cell in zip(function.__code__.co_freevars, function.__closure__):
        try:
            contents = cell.cell_contents
        except ValueError:
            continue
        shown = _holder_source(contents, depth) if _code_object_of(contents) is not None else _described(contents)
        lines.append(f"# closes over {name} = {shown}")
    return "\n" + "\n".join(lines)


def _holder_source(value: Any, depth: int = 0) -> str:
    """Text for a change report: the source of each function held (with what closures close
    over), the rest as repr."""
    if depth >= _HOLDER_DEPTH:
        return "..."
    if isinstance(value, functools.partial):
        bound = ", ".join([*map(repr, value.args), *(f"{k}={v!r}" for k, v in value.keywords.items())])
        return f"functools.partial({qualified_name(value.func)}, {bound})\n{_holder_source(value.func, depth + 1)}"
    accessors = _accessor_functions(value)
    if accessors is not None:
        return "\n".join(_holder_source(f, depth + 1) for f in accessors)
    code = _code_object_of(value)
    if code is not None:
        if not is_user_module(getattr(code, "__module__", "")):
            return qualified_name(value)
        text = fingerprint(code).source
        if isinstance(code, types.FunctionType) and _generated(code):  # its defaults, not an address
            # A stand-in, not source (NO_SOURCE): two codes share it (fields swapped, an
            # exec'd body edited), so an unchanged text must not pass for unchanged code.
            text = f"{NO_SOURCE}{code.__qualname__}, generated: defaults {code.__defaults__!r}, {code.__kwdefaults__!r}>"
        return text + _cells_text(code, depth + 1) if getattr(code, "__closure__", None) else text
    if isinstance(value, dict):
        return "\n".join(f"{k!r}: {_holder_source(v, depth + 1)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "\n".join(_holder_source(item, depth + 1) for item in value)
    return _described(value)


def _accessor_functions(value: Any) -> tuple | None:
    """The functions of a property (getter, setter, deleter), a ``functools.cached_property``
    or a ``functools.singledispatch`` function (``(type name, implementation)`` pairs, in the
    order registered): code reached by one name that is none of these functions' own."""
    if isinstance(value, property):
        return tuple(f for f in (value.fget, value.fset, value.fdel) if f is not None)
    if isinstance(value, functools.cached_property):
        return (value.func,)
    registry = _attribute(value, "registry") if isinstance(value, types.FunctionType) else None
    if isinstance(registry, Mapping) and callable(_attribute(value, "dispatch")):
        # functools.singledispatch: the implementations its own module registers, with the
        # types they are for. (Another module's, registered when it is imported, perhaps by
        # the op itself, would make the state differ between computing and checking.)
        return tuple(
            (f"{_attribute(kind, '__module__')}.{_attribute(kind, '__qualname__')}", function)
            for kind, function in registry.items() if _attribute(function, "__module__") == value.__module__
        )
    return None


def _code_state(value: Any, fingerprint_digest: bytes) -> bytes:
    return code_state(fingerprint_digest, value.version if isinstance(value, Op) else 0)


def code_state(fingerprint_digest: bytes, version: int) -> bytes:
    """The state a caller records for code with this fingerprint and op ``version=``.

    An op's version= is part of what it computes: bumping it by hand must reach the ops that
    call it too. Version 0 keeps the bare fingerprint, the state calls already recorded.
    """
    return digest(b"%s|version %d" % (fingerprint_digest, version)) if version else fingerprint_digest


def resolve(name: str) -> Any:
    """The object a dependency name refers to now (``module.qualname`` or ``module.CONSTANT``;
    an entry of a dict by literal keys: ``module:REGISTRY['a']``)."""
    module_name, _, rest = name.partition(":")
    path, keys = _split_keys(_without_suffix(rest))
    value: Any = sys.modules.get(module_name) or _imported(module_name)
    if value is None:
        return _GONE
    for part in path.split("."):
        value = getattr(value, part, _GONE)
        if value is _GONE:
            return _GONE
    for key in keys:
        if type(value) is not dict or key not in value:  # (a plain dict's: no code of the user's runs)
            return _GONE
        value = value[key]
    return value


def _without_suffix(rest: str) -> str:
    """``REGISTRY['a']`` for ``REGISTRY['a']@targets``: the name a dependency on something
    about it (its decorators, definition or targets) is under."""
    for suffix in (DECORATORS, DEFINITION, TARGETS, CLASS_DATA):
        rest = rest.removesuffix(suffix)
    return rest


def _split_keys(rest: str) -> tuple[str, tuple[Any, ...]]:
    """``("REGISTRY", ("a",))`` for ``REGISTRY['a']``: the keys a name ends with, where an
    attribute name cannot hold ``[``."""
    path, bracket, keys = rest.partition("[")
    if not bracket:
        return rest, ()
    try:
        node = parsing.parse(f"_[{keys}", mode="eval").body
    except SyntaxError:
        return rest, ()
    found = []
    while isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        found.append(node.slice.value)
        node = node.value
    return path, tuple(reversed(found))


def _imported(module_name: str) -> types.ModuleType | None:
    """A module of the user's that a dependency names but this process has not imported
    yet: an op that imports its helpers inside its body (``from helpers import scale``)
    imports them only once it runs, and its stored calls are looked up before that. Only
    user modules are dependencies, so this imports what the op itself would. None if it
    cannot be imported (moved, deleted, raising)."""
    if module_name in _not_importable or module_name.startswith("__"):
        return None
    try:
        return importlib.import_module(module_name)
    except Exception:  # its code is gone or broken: the dependency is gone, its calls stale
        if len(_not_importable) > 4096:
            _not_importable.clear()
        _not_importable.add(module_name)  # (each block's check of what changed asks again)
        return None


_not_importable: set[str] = set()


def current_state(name: str) -> bytes | None:
    """The current fingerprint or content id of a dependency, or None if it is gone."""
    if name.startswith(file_deps.PREFIX):  # a data file an op read: its content
        return file_deps.current_state(name)
    if name.startswith(env_deps.PREFIX):  # an environment variable an op read: its value's hash
        return env_deps.current_state(name)
    if name.startswith(untracked.PREFIX):  # a call computed while its op tracked no files
        return untracked.current_state(name, resolve(untracked.op_name(name)))
    value = resolve(name)
    if value is _GONE:
        return None
    dependency = describe(name, value)
    return dependency.state if dependency is not None else None


def current_source(name: str) -> str | None:
    if name.startswith(file_deps.PREFIX):
        return file_deps.current_source(name)
    if name.startswith(env_deps.PREFIX):
        return env_deps.current_source(name)
    if name.startswith(untracked.PREFIX):
        return untracked.current_source(name, current_state(name) is not None)
    value = resolve(name)
    dependency = describe(name, value) if value is not _GONE else None
    return dependency.source if dependency is not None else None


def qualified_name(obj: Any) -> str:
    """``module:qualname``; the colon keeps dotted module names apart from attributes."""
    obj = _code_object_of(obj) or obj
    return f"{obj.__module__}:{obj.__qualname__}"


_GONE = object()


def _code_object_of(value: Any) -> Any:
    """The function or class behind ``value``: ops and workflows wrap a function, and so do
    ``functools.cache``/``lru_cache``/``wraps``-style decorators (through ``__wrapped__``)."""
    inner = _op_function(value)
    if isinstance(inner, types.FunctionType) and _attribute(value, "__wrapped__") is not None:
        return inner
    if isinstance(value, types.FunctionType):
        return value
    if isinstance(value, types.MethodType) and isinstance(value.__func__, types.FunctionType):
        return value.__func__  # a classmethod reached through its class, a bound method
    wrapped = _attribute(value, "__wrapped__") if callable(value) else None
    if isinstance(wrapped, types.FunctionType):
        return wrapped
    if isinstance(value, type) and value.__module__ != "builtins":
        return value
    return None


def _referenced_values(obj: Any) -> Iterator[tuple[str, Any]]:
    """(dependency name, value) for each global or attribute chain the code refers to, and
    for each chain that starts at a name the code imports itself (``from helpers import K``
    inside the body), by the module it is imported from."""
    tree = fingerprint(obj).tree
    if _has_own_globals(obj):
        return
    if tree is None:  # no source: `python -c` code, exec'd text, a file edited since its import
        yield from _bytecode_reads(obj)
        return
    namespace = _namespace_of(obj)
    module_name = obj.__module__
    chains, imports = _chains_of(tree), _imports_of(tree)
    for chain in chains:
        binding = imports.get(chain[0]) if imports else None
        if binding is None:
            yield from _module_alias(namespace, module_name, chain[0])
            found = _resolve_chain(namespace, module_name, list(chain))
        else:
            found = _resolve_imported(binding, namespace, list(chain))
        if COMPUTED in chain:  # any global, but the state this code writes (`RUNS.append(x)`),
            written = _walked(tree)[3]  # not a global its own local shares a name with
            found = (item for item in found if _last(item[0]) not in written)
        yield from found


def _bytecode_reads(obj: Any) -> Iterator[tuple[str, Any]]:
    """What :func:`_referenced_values` finds, for a function with no source: the chains its
    bytecode reads, resolved in its module. Not for code run in a namespace of its own (a
    NamedTuple's generated ``__new__``): its names are no module's."""
    code = getattr(obj, "__code__", None)
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    if not isinstance(code, types.CodeType) or module is None or _namespace_of(obj) is not vars(module):
        return
    for chain in bytecode_chains(code):
        yield from _resolve_chain(vars(module), module.__name__, list(chain))


#: id(tree) -> (the tree, kept alive; its name chains; the names its import statements bind;
#: the globals it writes): a walk of the tree per function given as an argument cost each such
#: call ~40 us, and the chains are the tree's alone.
_CHAINS: dict[int, tuple[ast.AST, tuple[tuple[str, ...], ...], dict[str, tuple[int, str, str | None]], set[str]]] = {}


def _chains_of(tree: ast.AST) -> tuple[tuple[str, ...], ...]:
    return _walked(tree)[1]


def _imports_of(tree: ast.AST) -> dict[str, tuple[int, str, str | None]]:
    return _walked(tree)[2]


def _walked(tree: ast.AST) -> tuple[ast.AST, tuple[tuple[str, ...], ...], dict[str, tuple[int, str, str | None]], set[str]]:
    known = _CHAINS.get(id(tree))
    if known is None or known[0] is not tree:
        if len(_CHAINS) > 4096:  # trees of code redefined again and again must not pile up
            _CHAINS.clear()
        chains = tuple(map(tuple, _name_chains(tree)))
        known = _CHAINS[id(tree)] = (tree, chains, _import_bindings(tree), _globals_written(tree))
    return known


def _import_bindings(tree: ast.AST) -> dict[str, tuple[int, str, str | None]]:
    """Each name the code's own import statements bind -> ``(level, module, attribute)``:
    ``import a.b`` binds ``a`` to module ``a``, ``import a.b as m`` ``m`` to ``a.b``, and
    ``from .a import K as k`` ``k`` to attribute ``K`` of ``.a`` (level 1)."""
    found: dict[str, tuple[int, str, str | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                module = alias.name if alias.asname else alias.name.partition(".")[0]
                found[alias.asname or module] = (0, module, None)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    found[alias.asname or alias.name] = (node.level, node.module or "", alias.name)
    return found


def _resolve_imported(
    binding: tuple[int, str, str | None], namespace: dict, chain: list[str]
) -> Iterator[tuple[str, Any]]:
    """What ``chain`` reads through a name the code imports itself, named by the module it
    comes from (which its body has imported once it ran; not yet imported: nothing)."""
    level, module_name, attribute = binding
    if level:
        package = namespace.get("__package__") or ""
        try:
            module_name = importlib.util.resolve_name("." * level + module_name, package)
        except (ImportError, ValueError):
            return
    module = sys.modules.get(module_name)
    if module is None:
        return
    if attribute is None:
        yield from _resolve_chain({chain[0]: module}, module_name, chain)
        return
    value = getattr(module, attribute, _GONE)
    if value is _GONE:
        value = sys.modules.get(f"{module_name}.{attribute}", _GONE)
    if value is not _GONE:
        yield from _resolve_chain({attribute: value}, module_name, [attribute, *chain[1:]])


def _module_alias(namespace: dict, module_name: str, name: str) -> Iterator[tuple[str, Any]]:
    """``("experiment:impl", <module fast>)`` where a module-level name binds a module of the
    user's under another name than its own (``import fast as impl``, ``from pkg import
    helpers``): which module that is counts (see _module_binding), as the code reached through
    it (``impl.scale``) counts by its own name, and the module it was before may be unchanged."""
    value = namespace.get(name)
    if isinstance(value, types.ModuleType) and value.__name__ != name and is_user_module(module_name) \
            and is_user_module(value.__name__):
        yield f"{module_name}:{name}", value


def _module_binding(name: str, module: types.ModuleType) -> Dependency | None:
    """Which module of the user's ``name`` binds (see _module_alias); None for a library's."""
    if not is_user_module(module.__name__):
        return None
    return Dependency(name, "constant", digest(b"module|" + module.__name__.encode()),
                      f"import {module.__name__} as {_last(name)}")


def _namespace_of(obj: Any) -> dict[str, Any]:
    # Globals only: closure variables have no name to resolve later, and the enclosing
    # function's own source already covers helpers defined inside it.
    if isinstance(obj, types.FunctionType):
        return obj.__globals__
    module = sys.modules.get(obj.__module__)
    return vars(module) if module is not None else {}


def _resolve_chain(namespace: dict, module_name: str, chain: list[str]) -> Iterator[tuple[str, Any]]:
    if chain[0] == COMPUTED:  # `globals()[name]`
        yield from _module_data(module_name, namespace)
        return
    if chain[0] not in namespace:
        return
    value = namespace[chain[0]]
    if not isinstance(value, types.ModuleType):
        yield from _value_read(module_name, chain[0], value, chain[1:])
        return
    # `helpers.normalize` or `pkg.mod.CONST`: follow modules until the first non-module.
    for position, attr in enumerate(chain[1:], 2):
        if _reads_any_global(chain[position - 1 :]):
            yield from _module_data(value.__name__, vars(value))
            return
        inner = getattr(value, attr, _GONE)
        if inner is _GONE:
            return
        if not isinstance(inner, types.ModuleType):
            yield from _value_read(value.__name__, attr, inner, chain[position:])
            return
        value = inner


def _reads_any_global(rest: list[str]) -> bool:
    """Whether ``rest`` of a chain, after a module, reads it by a name computed at run time:
    ``getattr(helpers, name)``, ``vars(helpers)[name]``, ``helpers.__dict__.get(name)``. Not
    ``helpers.get(name)``: a module has no ``get`` of its own, so that is its function's call."""
    return rest in ([COMPUTED], ["__dict__", COMPUTED], ["__dict__", "get", COMPUTED])


def _module_data(module_name: str, namespace: dict) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` of each module-level datum of a module of the user's: what code that
    reads it by a name computed at run time may read (its code counts as it runs). Not the
    module's own ``__dunder__`` names (its file, its builtins). The state its own functions
    write (a cache they fill, a ``global`` they set) counts by the text that defines it
    (``helpers:K@definition``), not by its value: that moves as calls run, and counted, any two
    calls' states differed and the calls stored were computed again; yet ``K = 2`` edited to
    ``K = 3`` is another input. And the data of each class the module defines (see
    _class_data_dependency): ``getattr(models, name)().K`` runs none of the class's code."""
    if not is_user_module(module_name):
        return
    written = _state_its_functions_write(namespace)
    for name, value in list(namespace.items()):
        if name.startswith("__") and name.endswith("__"):
            continue
        if _code_object_of(value) is None and (is_data(value) or _no_content_object(value)):  # (no content: by its text)
            yield f"{module_name}:{name}{DEFINITION if name in written else ''}", value
        elif isinstance(value, type) and value.__module__ == module_name and value.__qualname__ == name:
            yield f"{module_name}:{name}{CLASS_DATA}", value


def _state_written_in(module_name: str) -> set[str]:
    """The module-level names the functions of module ``module_name`` write (see
    _state_its_functions_write), worked out once a block: a notebook cell may define a
    function writing another name (forget_argument_states forgets them)."""
    known = _WRITTEN_IN.get(module_name)
    if known is None:
        module = sys.modules.get(module_name)
        known = _WRITTEN_IN[module_name] = _state_its_functions_write(vars(module)) if module is not None else set()
    return known


#: module name -> the names its functions write, until the next block
_WRITTEN_IN: dict[str, set[str]] = {}


def _state_its_functions_write(namespace: dict) -> set[str]:
    """The module-level names the functions and methods defined in ``namespace`` write."""
    written: set[str] = set()
    for function in _functions_in(namespace):
        tree = fingerprint(function).tree if function.__globals__ is namespace else None
        if tree is not None:
            written |= _walked(tree)[3]
    return written


def _globals_written(tree: ast.AST) -> set[str]:
    """The globals code writes: those it declares ``global``, and those it mutates in place
    (``CACHE[k] = v``, ``STATE.n += 1``, ``RUNS.append(x)``) that are none of its own locals."""
    mutated = _local_or_mutated_names(tree)
    own = {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    declared: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            own.add(node.id)
        elif isinstance(node, ast.Global):
            declared.update(node.names)
    return declared | (mutated - own)


def _value_read(module_name: str, attr: str, value: Any, rest: list[str]) -> Iterator[tuple[str, Any]]:
    """(dependency name, value) for what code reads of module-level ``attr`` (``value``)
    through the rest of its chain: one entry of a dict it indexes with literal keys, class
    data, an attribute set on a function, else the value by its name."""
    entry = _entry_read(module_name, attr, value, rest)
    if entry is not None:
        yield entry
        return
    if _reads_any_global(rest) and isinstance(value, type):  # `getattr(Model, name)`: and the class's code
        yield from _defined_data(value, COMPUTED)
    yield from _class_data(value, rest) or _named_value(module_name, attr, value)
    yield from _class_data_of_object(value, rest)
    yield from _function_attribute(module_name, attr, value, rest)


def _entry_read(module_name: str, attr: str, value: Any, rest: list[str]) -> tuple[str, Any] | None:
    """``("helpers:REGISTRY['a']", entry)`` for ``REGISTRY["a"]``: indexed with literal keys,
    a dict counts by the entries read, not its others (a registry's other functions). A key
    it does not hold leaves the dict counting whole: adding it changes what the code reads."""
    keys = []
    for part in rest[1:] if rest[:1] == ["get"] else rest:  # `REGISTRY.get("a")`
        if not part.startswith("[") or type(value) is not dict:
            break
        key = parsing.literal(part[1:-1])
        if key not in value:
            break
        value = value[key]
        keys.append(part)
    if not keys or not is_user_module(module_name):
        return None
    return f"{module_name}:{attr}{''.join(keys)}", value


def _function_attribute(module_name: str, attr: str, value: Any, rest: list[str]) -> list[tuple[str, Any]]:
    """``[("helpers:scale.factor", 2)]`` for ``scale.factor`` where ``scale.factor = 2`` was set
    on the user's function: neither its code nor a constant of the module holds it."""
    if not rest or rest[0].startswith(("[", "__")) or isinstance(value, (type, Op)):
        return []
    own = _attribute(value, "__dict__")
    if not isinstance(_code_object_of(value), types.FunctionType) or not isinstance(own, dict) or rest[0] not in own:
        return []
    return [(f"{module_name}:{attr}.{rest[0]}", own[rest[0]])] if is_user_module(module_name) else []


def _class_data(value: Any, rest: list[str]) -> list[tuple[str, Any]]:
    """``[(name, data)]`` for ``Model.K`` or ``helpers.Mode.FAST``: class-level data, read
    without running any code of the class; [] for anything else."""
    if not (isinstance(value, type) and rest and is_user_module(value.__module__)):
        return []
    if rest[0] == "__dict__":  # `vars(Model)`: any of its data (no attribute of the mapping)
        return [(qualified_name(value) + CLASS_DATA, value)]
    inner = getattr(value, rest[0], _GONE)
    if isinstance(inner, type) and inner.__qualname__ == f"{value.__qualname__}.{rest[0]}":
        # a nested class, `Outer.Inner.K`: its data, or the class itself by its own name
        return _class_data(inner, rest[1:]) or [(qualified_name(inner), inner)]
    if inner is _GONE or _code_object_of(inner) is not None or not (is_data(inner) or _no_content_object(inner)):
        return []
    if rest[0] in _class_state_written(value):  # `Node.ALL.append(self)` in its module: by its text
        found = [(name + DEFINITION, data) for name, data in _defined_data(value, rest[0]) if _defined_in_a_file(name)]
        if found:
            return found
    return [(f"{qualified_name(value)}.{rest[0]}", inner)]  # (an object with no content: by its text)


def _class_data_of_object(value: Any, rest: list[str]) -> list[tuple[str, Any]]:
    """``[(name, data)]`` for ``MODEL.K`` where ``K`` is class-level data of the class of
    the user's object ``MODEL`` (which its content, the object's own attributes, leaves out)."""
    if not rest or isinstance(value, type) or _code_object_of(value) is not None:
        return []
    kind = type(value)
    own = _attribute(value, "__dict__")
    if not is_user_module(kind.__module__) or isinstance(own, dict) and rest[0] in own:
        return []
    return _defined_data(kind, rest[0])


def _defined_data(cls: type, attr: str) -> list[tuple[str, Any]]:
    """``[(name, data)]`` for class-level data ``attr`` as ``cls`` finds it (its own or a base
    class's, named by the class that defines it); [] for code, library classes' attributes.
    ``COMPUTED`` (``getattr(Model, name)``) for any of them: see _any_class_data."""
    if attr == COMPUTED:
        return _any_class_data(cls)
    for klass in cls.__mro__:
        if attr in vars(klass):
            value = vars(klass)[attr]
            if is_user_module(klass.__module__) and _code_object_of(value) is None and (is_data(value) or _plain_object(klass, attr, value)):
                return [(f"{klass.__module__}:{klass.__qualname__}.{attr}", value)]
            return []
    return []


def _plain_object(klass: type, attr: str, value: Any) -> bool:
    """An object with no content (counted by its text) that the class gives as it holds it: a
    descriptor's ``__get__`` would make the name resolve to another value later."""
    return _no_content_object(value) and getattr(klass, attr, None) is value


def _any_class_data(cls: type) -> list[tuple[str, Any]]:
    """``[(name, data)]`` of every class-level datum ``cls`` finds (its own and its bases'),
    for a read by a name computed at run time (``getattr(Model, name)``, ``getattr(self,
    name)``): any of them may be the one read. As for a module's (see _module_data), the state
    the functions of the classes' modules write (``cls.SEEN.append(x)``, ``Model.n += 1``)
    counts by the text that defines it (``helpers:Model.SEEN@definition``), not by its value."""
    written = _class_state_written(cls)
    names = dict.fromkeys(a for k in cls.__mro__ for a in vars(k) if not (a.startswith("__") and a.endswith("__")))
    found = []
    for attr in names:
        for name, value in _defined_data(cls, attr):
            found.append((name + DEFINITION if attr in written else name, value))
    return found


def _class_state_written(cls: type) -> set[str]:
    """The class-level attributes of ``cls`` (or its bases) that the functions and methods of
    the user's modules defining them write: through ``cls``, ``self.__class__`` or
    ``type(self)``, or through ``self`` in place (``self.SEEN.append(x)``), in the classes'
    own methods; through the class's name (``Model.SEEN.append(x)``) anywhere in its module."""
    written: set[str] = set()
    for klass in cls.__mro__:
        module = sys.modules.get(klass.__module__) if is_user_module(klass.__module__) else None
        for function in _functions_in(vars(module)) if module is not None else ():
            # (its own functions: not those of a class it imports, `Storage`'s, a library's)
            tree = fingerprint(function).tree if function.__globals__ is vars(module) else None
            if tree is not None:
                own = function.__qualname__.startswith(klass.__qualname__ + ".")
                written |= _attributes_written(tree, klass.__name__, own)
    return written


def _attributes_written(tree: ast.AST, class_name: str, own: bool) -> set[str]:
    """``X`` of each ``Model.X`` (``class_name``) the code writes, rebinds or changes in place,
    and (``own``: a method of the class) of each ``cls.X``, ``type(self).X`` written or
    ``self.X`` changed in place (``self.X = v`` sets the object's own attribute). Worked out
    once a tree: the class data of a class an op refers to asks it of every function of the
    class's module, which walking each tree again cost ~10 ms a class."""
    key = (id(tree), class_name, own)
    known = _WRITTEN_ATTRIBUTES.get(key)
    if known is None or known[0] is not tree:
        if len(_WRITTEN_ATTRIBUTES) > 4096:
            _WRITTEN_ATTRIBUTES.clear()
        known = _WRITTEN_ATTRIBUTES[key] = (tree, frozenset(_walk_attributes_written(tree, class_name, own)))
    return set(known[1])


#: (id(tree), class name, own) -> (the tree, kept alive; the attributes it writes)
_WRITTEN_ATTRIBUTES: dict[tuple[int, str, bool], tuple[ast.AST, frozenset[str]]] = {}


def _walk_attributes_written(tree: ast.AST, class_name: str, own: bool) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
            if _names_class(node.value, class_name, own and not _is_self(node.value)):
                found.add(node.attr)
        changed = _changed_in_place(node)
        if isinstance(changed, ast.Attribute) and _names_class(changed.value, class_name, own):
            found.add(changed.attr)
    return found


def _changed_in_place(node: ast.AST) -> ast.AST | None:
    """What ``x[k] = v``, ``x.a = v``, ``x += v`` (``x`` an attribute) or ``x.append(v)``
    changes in place: ``x``; None for other code."""
    if isinstance(node, (ast.Subscript, ast.Attribute)) and not isinstance(node.ctx, ast.Load):
        return node.value
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Attribute):
        return node.target
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATING_METHODS:
        return node.func.value
    return None


def _names_class(node: ast.AST, class_name: str, receiver: bool) -> bool:
    """Whether ``node`` is the class named ``class_name``, or (``receiver``) ``self``, ``cls``,
    ``self.__class__`` or ``type(self)``."""
    return isinstance(node, ast.Name) and node.id == class_name or receiver and _is_receiver(node)


def _is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _named_value(module_name: str, attr: str, value: Any) -> Iterator[tuple[str, Any]]:
    """(dependency name, value) for ``module.attr``: code by its own name (see _reference_name)
    and, for a class or library code under another name (``MODEL = ResNet``, ``AGG =
    statistics.mean``), that name too, which counts by what it points to (see describe)."""
    referenced_as = f"{module_name}:{attr}"
    alias = is_user_module(module_name) and _is_alias(referenced_as, value)
    if alias:
        yield referenced_as, value
    if _code_object_of(value) is None:
        if is_user_module(module_name) and not alias:
            # State its module's functions write (a counter, a cache, `global K` in set_k)
            # counts by its definition, as for a read by a computed name (see _module_data);
            # by its value where no file defines it (a notebook's: no text to count by).
            written = attr in _state_written_in(module_name) and is_data(value) and _defined_in_a_file(referenced_as)
            yield referenced_as + (DEFINITION if written else ""), value
        return
    own = _reference_name(value, referenced_as)
    if own != referenced_as or not alias:
        yield own, value


def _is_alias(name: str, value: Any) -> bool:
    """Whether ``name`` is another name than its own for a class of the user's (with a name
    of its own: not one a factory made) or for library code (a function, a class, a builtin):
    such a name counts by what it points to, the code itself by tracing (or not at all)."""
    own = _attribute(value, "__qualname__")
    if not isinstance(own, str) or "<" in own:
        return False
    module = _attribute(value, "__module__")
    if _last(name) == _attribute(value, "__name__"):
        # The same name, taken from another module of the user's (`from fast import scale`,
        # once `from slow import scale`): which module it comes from counts, as the code of
        # the one it came from before may be unchanged.
        # (A module-level name: `Child.score` inherited from another module's `Base` is code.
        # The module by its own name: `mandala-ast why --import s.py` makes `s` __main__.)
        where, _, attr = name.partition(":")
        where = _attribute(sys.modules.get(where), "__name__") or where
        return (isinstance(module, str) and module != where and "." not in attr and is_user_module(module)
                and _code_object_of(value) is not None)
    if isinstance(value, type):
        return True
    return callable(value) and isinstance(module, str) and not is_user_module(module)


def _op_function(value: Any) -> Any:
    """The function an op or workflow wraps (its ``fn``), or None: read from the object's
    own attributes, never through a ``__getattr__`` that makes attributes up (``pytest.mark``
    makes a mark of any name: ``fn`` warns of an unknown mark, or fails the test under
    ``--strict-markers``)."""
    own = _attribute(value, "__dict__")
    return own.get("fn") if isinstance(own, Mapping) else None


def _attribute(value: Any, name: str) -> Any:
    """``getattr(value, name, None)``, also for objects whose missing attributes raise
    something else than AttributeError (``__getattr__ = dict.__getitem__``: a KeyError)."""
    try:
        return getattr(value, name, None)
    except Exception:
        return None


def _reference_name(value: Any, referenced_as: str) -> str:
    """A code dependency's name: its own ``module:qualname``, unless that leads nowhere (a
    lambda, a closure a factory made) or is not how the code reaches it (an alias: ``act``
    for ``relu``, which may later point at other code): then the name the code refers to it by."""
    own = qualified_name(value)
    if "<" in own or isinstance(_code_object_of(value), types.FunctionType) and _last(referenced_as) != _last(own):
        return referenced_as
    return own  # a class by its own name under any alias: its methods count as they run


def _last(name: str) -> str:
    return name.rpartition(":")[2].rpartition(".")[2]


_MUTATING_METHODS = frozenset(
    "append extend insert remove pop popitem clear update add discard setdefault sort reverse".split()
)


def _name_chains(tree: ast.AST) -> Iterator[list[str]]:
    """Dotted name chains read by the code: ``a.b.c`` -> ["a", "b", "c"]; ``x`` -> ["x"].

    Names the code writes to are state, not constants: ``RESULTS.append(x)``,
    ``CACHE[k] = v``, ``STATE.count += 1`` or ``global COUNT`` leave that name out.
    """
    skip = _local_or_mutated_names(tree)
    in_chain: set[int] = set()
    for node in ast.walk(tree):
        read = _read_by_name(node, in_chain) if isinstance(node, (ast.Subscript, ast.Call)) else None
        if read is not None:
            if read and read[0] not in skip:
                yield read
        elif isinstance(node, ast.Attribute) and id(node) not in in_chain:
            chain = _attribute_chain(node, in_chain)
            if chain and chain[0] not in skip:
                yield chain
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and id(node) not in in_chain:
            if node.id not in skip:
                yield [node.id]


def _local_or_mutated_names(tree: ast.AST) -> set[str]:
    names = {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.Global):
            names.update(node.names)
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and not isinstance(node.ctx, ast.Load):
            names.update(_root_name(node.value))  # `CACHE[k] = v`, `STATE.count += 1`: state it writes
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _MUTATING_METHODS:
                names.update(_root_name(node.func.value))
    return names


def _root_name(node: ast.AST) -> list[str]:
    return [node.id] if isinstance(node, ast.Name) else []


def _read_by_name(node: ast.AST, seen: set[int]) -> list[str] | None:
    """The chain read where code names a global, an attribute or a dict's entry by a literal:
    ``globals()["K"]`` -> ["K"], ``getattr(helpers, "K")`` -> ["helpers", "K"],
    ``REGISTRY["a"]`` or ``REGISTRY.get("a")`` -> ["REGISTRY", "['a']"] (a key as its repr in
    brackets, which no attribute name holds); [] for a write through ``globals()`` (state).
    None for anything else; the nodes of a chain found are added to ``seen``."""
    if id(node) in seen:
        return None
    base, part = _named_read(node)
    if base is None or part is None:
        return None
    inner: set[int] = {id(node)}
    if isinstance(node, ast.Call):
        inner.add(id(node.func))
    parts = ["get", part[3:]] if part.startswith("get") else [part]
    if _is_globals_call(base):
        inner.update((id(base), id(base.func)))  # type: ignore[attr-defined]
        written = isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Load)
        chain = [] if written else _global_named(parts[-1])
    else:
        found = _read_chain(base, inner)
        if found is None:
            return None
        # After a name computed at run time (`getattr(helpers, name)[0]`), what is read is in
        # any of the data that name may find, which count whole.
        chain = found[: found.index(COMPUTED) + 1] if COMPUTED in found else [*found, *parts]
    seen.update(inner)
    return chain


def _global_named(part: str) -> list[str]:
    """The chain ``globals()[...]`` reads: ``["K"]`` for the key ``'K'``, ``[COMPUTED]`` (any
    global) for a name computed at run time."""
    name = parsing.literal(part[1:-1]) if part.startswith("[") else part
    return [name] if isinstance(name, str) and (name.isidentifier() or name == COMPUTED) else []


def _named_read(node: ast.AST) -> tuple[ast.AST | None, str | None]:
    """``(the expression read from, the part)`` of ``x["a"]`` (a key part), ``x.get("a")``
    (``get`` then the key part: a module's function ``get`` is code) and ``getattr(x, "a")``
    (an attribute), ``COMPUTED`` for a key or name computed at run time; ``(None, None)``
    for other code."""
    if isinstance(node, ast.Subscript):
        return node.value, _key_part(node.slice)
    if not isinstance(node, ast.Call) or node.keywords or not node.args:
        return None, None
    func, args = node.func, node.args
    if isinstance(func, ast.Attribute) and func.attr == "get" and len(args) <= 2:
        return func.value, f"get{_key_part(args[0])}"
    if isinstance(func, ast.Name) and func.id == "getattr" and len(args) in (2, 3):
        name = args[1].value if isinstance(args[1], ast.Constant) else None
        return args[0], name if isinstance(name, str) and name.isidentifier() else COMPUTED
    return None, None


#: A part of a chain read by a name or key computed at run time: any of them may be read.
COMPUTED = "*"


def _key_part(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and type(node.value) in (str, int):
        return f"[{node.value!r}]"
    return COMPUTED


def _is_globals_call(node: ast.AST | None) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "globals"
            and not node.args and not node.keywords)


def _read_chain(node: ast.AST, seen: set[int]) -> list[str] | None:
    """The chain of a name, an attribute chain or a read by name (nested: ``CONFIGS["a"]["lr"]``)."""
    if isinstance(node, ast.Name):
        seen.add(id(node))
        return [node.id]
    if isinstance(node, ast.Attribute):
        return _attribute_chain(node, seen)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "vars" and len(node.args) == 1:
        inner = _read_chain(node.args[0], seen)  # `vars(helpers)["K"]` reads `helpers.__dict__["K"]`
        seen.update((id(node), id(node.func)))
        return None if inner is None else [*inner, "__dict__"]
    return _read_by_name(node, seen)


def _attribute_chain(node: ast.Attribute, seen: set[int]) -> list[str] | None:
    parts = []
    current: ast.AST = node
    while isinstance(current, ast.Attribute):
        seen.add(id(current))
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    seen.add(id(current))
    return [current.id, *reversed(parts)]


def _described(value: Any) -> str:
    # (an address tells nothing in a change report, and differs in every process)
    return short_repr(value, 2000)


def _library_roots() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    return tuple(os.path.realpath(p) + os.sep for p in paths)


#: Where the standard library and installed packages live (code there is never tracked).
LIBRARY_ROOTS = _LIBRARY_ROOTS = _library_roots()
_user_module_cache: dict[str, bool] = {}


def is_user_module(module_name: str) -> bool:
    """Whether a module is the user's own code (not stdlib, site-packages or mandala_ast)."""
    known = _user_module_cache.get(module_name)
    if known is None:
        known = _is_user_module(module_name)
        if module_name in sys.modules:  # not yet imported: decide again later
            _user_module_cache[module_name] = known
    return known


def _is_user_module(module_name: str) -> bool:
    top = module_name.partition(".")[0]
    if top in sys.stdlib_module_names or top == "mandala_ast":
        return False
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if path is None:  # __main__ of a notebook or `python -c`: the user's code
        return module is not None and module_name == "__main__"
    real = os.path.realpath(path)
    return "site-packages" not in real and not real.startswith(_LIBRARY_ROOTS)
