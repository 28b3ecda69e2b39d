"""The run-form rewrite: op calls in storage blocks and workflows get exact provenance.

Inside a storage-block candidate's body or a ``@workflow`` body (nested functions, lambdas,
comprehensions and blocks included), each call whose callee is a name or dotted name (not a
plain builtin, nor a storing method of a function's own list, dict or set:
``Scope.stores_in_container``) becomes::

    __mandala_callee__(scope, spec, f)(*args)

``callee_at`` returns ``f`` itself unless it is an op, so any other callee is still called directly
from the user's frame (same traceback, same ``super()``/``locals()`` behaviour, no runtime
frame), and an op call goes through the runtime, which learns the provenance keys of its
targets and bare-name arguments from ``spec``. Nothing is copied: ``f`` is evaluated once (a
property read once, as Python does) and the arguments stay where they are written, so line
events, tracebacks and breakpoints on a multi-line call's continuation lines are Python's own.
A call that is a direct argument of another rewritten call is tied to it by the spec's site
numbers, so the outer call learns the inner output's history.

Assignments that do *not* receive op outputs, to names that do elsewhere in the same scope, are
wrapped in ``forget`` (in ``settle`` when the value is a call that may or may not be an op), and
so are the context manager of ``with ... as name`` and the subject of a ``match`` whose cases
capture such names;
``return x`` in a workflow becomes ``return ret('x@wf', x)``; a returned op call binds the target
``<return>`` (a name no variable can have) for ``ret`` to find, and ``return a, b`` becomes
``return ret_all(('a@wf', 'b@wf'), (a, b))``.

All insertions stay on the line where the call starts; see ``_lines.py`` for the invariant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import EllipsisType
from typing import Any

import libcst as cst

from . import _emit as emit
from ._detect import Survey, is_batch_block
from ._grown import Adding
from ._raw import bound_to_a_collection, filling, is_raw, may_hold_outputs, name_is_raw
from ._scopes import ArgKey, Scope, simple_targets, target_names

__all__ = ["RunFormRewriter"]

# Never rewritten, even inside blocks: decorators and annotations are not data flow (and rewriting
# ``@op`` or postponed annotations would change their meaning); defaults run at ``def`` time;
# an f-string's quotes could clash with the keys' quotes before Python 3.12.
_UNTOUCHED = (
    cst.Decorator,
    cst.Parameters,
    cst.Annotation,
    cst.FormattedString,
    cst.TemplatedString,
    cst.TypeParameters,
    cst.TypeAlias,
)
_UNTOUCHED_TYPES = frozenset(_UNTOUCHED)  # exact types: `type(n) in` beats isinstance on ABCs
_STATEMENT_TYPES = frozenset(
    cls
    for cls in vars(cst).values()
    if isinstance(cls, type) and issubclass(cls, (cst.BaseCompoundStatement, cst.SimpleStatementLine))
)
#: Collections an op may be given with where their elements came from (runtime/built.py).
_COLLECTIONS = (cst.List, cst.Tuple, cst.Dict, cst.ListComp, cst.DictComp)
_COMPREHENSIONS = {
    cst.ListComp: "<listcomp>",
    cst.SetComp: "<setcomp>",
    cst.DictComp: "<dictcomp>",
    cst.GeneratorExp: "<genexpr>",
}


@dataclass
class _CallFrame:
    """A call being visited: is it rewritten, and where its direct-call arguments go."""

    rewrite: bool
    #: id of an argument that is a call -> its position among positional arguments, or keyword
    direct: dict[int, int | str]
    #: this call's site number, once a rewritten direct argument needs one
    site: int | None = None
    #: what this call or statement adds to a list or dict filled step by step (``_grown.py``)
    adding: Adding | None = None


class RunFormRewriter(cst.CSTTransformer):
    """Rewrites the bodies the survey found; everything else is skipped without a visit."""

    def __init__(self, module: cst.Module, found: Survey, text: str | None = None) -> None:
        super().__init__()
        self.found = found
        self.changed = False
        self._scopes = [Scope.for_module(module, text)]
        self._region = 0  # > 0 inside a block or workflow body
        self._batch = 0  # > 0 inside a batch block's body: builtins get plain values there too
        self._frozen = 0  # > 0 inside a decorator, annotation, parameters or f-string
        self._calls: list[_CallFrame] = []
        self._sites = 0  # site numbers handed out so far in this module
        self._targets: dict[cst.Call, tuple[str, ...]] = {}  # original call -> names it binds
        self._recorded: set[cst.BaseExpression] = set()  # emitted calls whose spec names targets
        #: an awaited call that binds names (``y = await fetch(x)``) -> (names, keys), once
        #: rewritten: ``settle`` goes around the ``await``, as the coroutine binds them
        self._awaited: dict[cst.BaseExpression, tuple | None] = {}
        self._skip: set[cst.CSTNode] = set()
        self._pruned: cst.CSTNode | None = None
        #: a workflow's returned op calls (``return inc(x)``, ``return a, inc(b)``) -> the
        #: target name that hands their history to ``ret`` (``<return>``, ``<return1>``)
        self._returns: dict[cst.Call, str] = {}
        self._rewritten_returns: set[cst.Call] = set()
        #: a collection assigned to one name (``ys = [inc(x) for x in xs]``) -> that name
        self._collection_targets: dict[cst.BaseExpression, str] = {}

    @property
    def scope(self) -> Scope:
        return self._scopes[-1]

    # -- traversal control ----------------------------------------------------------------------

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self._prune(node):
            self._pruned = node
            return False
        if type(node) in _UNTOUCHED_TYPES:
            self._frozen += 1
        return super().on_visit(node)

    def on_leave(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        if original_node is self._pruned:  # its visit_* never ran; neither may its leave_*
            self._pruned = None
            return updated_node
        if type(original_node) in _UNTOUCHED_TYPES:
            self._frozen -= 1
        return super().on_leave(original_node, updated_node)

    def _prune(self, node: cst.CSTNode) -> bool:
        if node in self._skip:
            return True
        if self._region == 0:
            return type(node) in _STATEMENT_TYPES and node not in self.found.interesting
        return node in self.found.later_blocks

    @property
    def _active(self) -> bool:
        """Inside a block or workflow body, and not in a part that is never rewritten."""
        return self._region > 0 and self._frozen == 0

    # -- scopes and regions ---------------------------------------------------------------------

    def visit_FunctionDef_body(self, node: cst.FunctionDef) -> None:
        scope = self.scope.child("function", node.name.value, node)
        if node in self.found.workflows:
            scope.is_workflow = True
            self._region += 1
        self._scopes.append(scope)

    def leave_FunctionDef_body(self, node: cst.FunctionDef) -> None:
        if self._scopes.pop().is_workflow:
            self._region -= 1

    def visit_ClassDef_body(self, node: cst.ClassDef) -> None:
        self._scopes.append(self.scope.child("class", node.name.value, node))

    def leave_ClassDef_body(self, node: cst.ClassDef) -> None:
        self._scopes.pop()

    def visit_Lambda_body(self, node: cst.Lambda) -> None:
        self._scopes.append(self.scope.child("lambda", "<lambda>", node))

    def leave_Lambda_body(self, node: cst.Lambda) -> None:
        self._scopes.pop()

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        if attribute == "elt" or attribute == "key":  # first field of a comprehension
            name = _COMPREHENSIONS.get(type(node))
            if name is not None:
                self._scopes.append(self.scope.child("comprehension", name, node))
        super().on_visit_attribute(node, attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        super().on_leave_attribute(original_node, attribute)
        if attribute == "for_in" and type(original_node) in _COMPREHENSIONS:
            self._scopes.pop()

    def visit_With(self, node: cst.With) -> None:
        if node in self.found.blocks:  # `storage.run(...)` itself is not rewritten
            self._skip.update(node.items)

    def visit_With_body(self, node: cst.With) -> None:
        if node in self.found.blocks:
            self._region += 1
            self._batch += is_batch_block(node)

    def leave_With_body(self, node: cst.With) -> None:
        if node in self.found.blocks:
            self._region -= 1
            self._batch -= is_batch_block(node)

    # -- calls ----------------------------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        scope = self.scope
        adding = self._adding(node)
        if adding is not None:  # `ys.append(e)` on a list compiled code follows: no op
            self._calls.append(_CallFrame(False, self._put_direct(adding), adding=adding))
            return
        rewrite = self._active and (
            (scope.rewritable_callee(node.func) and not scope.stores_in_container(node.func))
            or (self._batch > 0 and scope.forcing_builtin(node.func))
        )
        self._calls.append(_CallFrame(rewrite, _direct_arguments(node.args, self._is_direct) if rewrite else {}))

    def _is_direct(self, node: cst.BaseExpression) -> bool:
        """An argument or element that hands its history to the call or collection it is
        written in: an op call, or a collection that may hold op outputs."""
        return isinstance(node, cst.Call) or may_hold_outputs(self.scope, node)

    # -- collections built by hand (runtime/built.py) ----------------------------------------

    def visit_List(self, node: cst.List) -> None:
        self._visit_collection(node)

    def visit_Tuple(self, node: cst.Tuple) -> None:
        self._visit_collection(node)

    def visit_Dict(self, node: cst.Dict) -> None:
        self._visit_collection(node)

    def visit_ListComp(self, node: cst.ListComp) -> None:
        self._visit_collection(node)

    def visit_DictComp(self, node: cst.DictComp) -> None:
        self._visit_collection(node)

    def leave_List(self, original_node: cst.List, updated_node: cst.List) -> cst.BaseExpression:
        return self._leave_collection(original_node, updated_node)

    def leave_Tuple(self, original_node: cst.Tuple, updated_node: cst.Tuple) -> cst.BaseExpression:
        return self._leave_collection(original_node, updated_node)

    def leave_Dict(self, original_node: cst.Dict, updated_node: cst.Dict) -> cst.BaseExpression:
        return self._leave_collection(original_node, updated_node)

    def leave_ListComp(self, original_node: cst.ListComp, updated_node: cst.ListComp) -> cst.BaseExpression:
        return self._leave_collection(original_node, updated_node)

    def leave_DictComp(self, original_node: cst.DictComp, updated_node: cst.DictComp) -> cst.BaseExpression:
        return self._leave_collection(original_node, updated_node)

    def _visit_collection(self, node: cst.BaseExpression) -> None:
        """A collection an op is given (an argument, an element of such a collection, or a
        name's value) that may hold op outputs is wrapped: its frame collects its elements'."""
        parent = self._calls[-1] if self._calls else None
        consumed = (parent is not None and id(node) in parent.direct) or node in self._collection_targets
        rewrite = self._active and consumed and may_hold_outputs(self.scope, node)
        self._calls.append(_CallFrame(rewrite, _direct_elements(node, self._is_direct) if rewrite else {}))

    def _leave_collection(self, original: cst.BaseExpression, updated: cst.BaseExpression) -> cst.BaseExpression:
        """``built(spec, form)(collection)``: ``spec`` names the name it is bound to (when only
        code compiled here binds it), each element's key, and the site numbers that tie its
        elements' op calls to it and it to the call or collection it is written in."""
        frame = self._calls.pop()
        if not frame.rewrite:
            return updated
        slot = self._slot_in_parent(original)
        name = self._collection_targets.get(original)
        keys = (self.scope.key(name),) if name is not None and self._vouched([self.scope.key(name)]) else None
        here = self.scope.qualname
        spec: tuple = (here, *_compact(here, (keys, self._element_keys(original), None)))
        if frame.site is not None or slot is not None:
            spec += (frame.site, slot)
        form = "c" if isinstance(original, (cst.ListComp, cst.DictComp)) else "d"
        result = emit.built(spec, form, updated)
        self.changed = True
        if keys:
            self._recorded.add(result)
        return result

    def _element_keys(self, node: cst.BaseExpression) -> tuple | EllipsisType:
        """A key per element of a display (``...`` when a ``*`` or ``**`` unpacking hides their
        positions); for a comprehension, its element's: None when no op produced it."""
        if isinstance(node, (cst.ListComp, cst.DictComp)):
            element = node.elt if isinstance(node, cst.ListComp) else node.value
            return (None if is_raw(None, element) else ...,)
        elements = _elements_of(node)
        if any(isinstance(e, (cst.StarredElement, cst.StarredDictElement)) for e in elements):
            return ...
        return tuple(self._arg_key(e.value) for e in elements)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        frame = self._calls.pop()
        if frame.adding is not None:
            return self._added_by_method(original_node, updated_node, frame)
        if not frame.rewrite:
            return updated_node
        return self._rewrite_call(original_node, updated_node, frame.site, self._slot_in_parent(original_node))

    # -- lists and dicts filled step by step (_grown.py) ---------------------------------------

    def _adding(self, node: cst.CSTNode) -> Adding | None:
        """What ``node`` (``ys.append(e)``, ``ys += e``, ``d[k] = e``) adds to a list or dict
        compiled code follows, in a run block (a batch's deferred values are kept raw)."""
        if not self._active or self._batch or self.scope.kind not in ("module", "function"):
            return None
        return filling(self.scope).adding.get(id(node))

    def _put_direct(self, adding: Adding) -> dict[int, int | str]:
        """The added element's op call (or collection) hands its history to the put hook; a
        generator's element does, each step."""
        value = adding.value
        if isinstance(value, cst.GeneratorExp):
            return {id(value.elt): "*"} if self._is_direct(value.elt) else {}
        return {id(value): 0} if self._is_direct(value) else {}

    def _put_spec(self, frame: _CallFrame) -> tuple:
        """``(scope, list key, element key, site, form)``: the element's key as an argument's
        (for an iterable, its elements': None when none is an op's output). Short, as every
        adding in a loop carries one: an odd length tells the runtime's ``callee`` it apart."""
        adding = cst.ensure_type(frame.adding, Adding)
        scope, added = self.scope, adding.value
        if isinstance(added, cst.GeneratorExp):
            element_key: Any = None if is_raw(None, added.elt, True) else ...
        elif adding.form == "e":
            element_key = None if is_raw(scope, added, True) else ...
        else:
            element_key = self._arg_key(added)
        here = scope.qualname
        return (here, _relative(scope.key(adding.name), here), _relative(element_key, here), frame.site, adding.form)

    def _adding_spec(self, frame: _CallFrame) -> tuple:
        """``(list key, element key[, site])``: short, as every adding in a loop carries one;
        a string first tells the runtime's ``callee_at`` it apart, and the method called says
        what it adds."""
        _, key, element_key, site, _ = self._put_spec(frame)
        return (key, element_key) if site is None else (key, element_key, site)

    def _put(self, frame: _CallFrame, value: cst.BaseExpression) -> cst.BaseExpression:
        """``put(spec, ys)(value)`` for ``ys += value``, ``d[k] = value``."""
        self.changed = True
        return emit.put(self._put_spec(frame), cst.ensure_type(frame.adding, Adding).name, value)

    def _added_by_method(self, original: cst.Call, updated: cst.Call, frame: _CallFrame) -> cst.BaseExpression:
        """``ys.append(e)`` becomes ``callee_at(scope, spec, ys.append)(e)``: the runtime notes
        what it adds, then calls it."""
        self.changed = True
        return emit.dispatch(self.scope.qualname, self._adding_spec(frame), updated)

    def _lends(self, original: cst.Call) -> bool:
        """Whether the call is given a list compiled code follows (its spec then says so: a
        call that is no op may add to it out of sight)."""
        if self._batch or self.scope.kind not in ("module", "function"):
            return False
        lent = filling(self.scope).lent
        return any(id(arg.value) in lent for arg in original.args)

    def _slot_in_parent(self, node: cst.CSTNode) -> tuple[int, Any] | None:
        """``(site, slot)`` where ``node`` is a direct argument or element of the call or
        collection being rewritten around it (its output is handed there), else None."""
        parent = self._calls[-1] if self._calls else None
        if parent is None or id(node) not in parent.direct:
            return None
        return (self._site_of(parent), parent.direct[id(node)])

    def _site_of(self, frame: _CallFrame) -> int:
        if frame.site is None:
            self._sites += 1
            frame.site = self._sites
        return frame.site

    def _rewrite_call(
        self, original: cst.Call, updated: cst.Call, site: int | None, slot: tuple | None
    ) -> cst.BaseExpression:
        """``callee_at(scope, spec, f)(...)``; *site* and *slot* tie direct-call arguments to
        this call."""
        scope, names = self.scope, self._targets.get(original)
        keys = tuple(scope.key(name) for name in names) if names else None
        returned = self._returns.get(original)
        if returned is not None:  # a name no user variable can have, in the workflow's scope
            names, keys = (returned,), (f"{returned}@{scope.qualname}",)
            self._rewritten_returns.add(original)
        spec: tuple = _compact(
            scope.qualname, (keys, self._pos_keys(original.args), self._kw_keys(original.args))
        )
        if site is not None or slot is not None:
            spec += (site, slot)
        if self._lends(original):
            spec += (True,)
        result: cst.BaseExpression = emit.dispatch(scope.qualname, spec, updated)
        if original in self._awaited:
            self._awaited[original] = (names, keys)
        else:
            result = self._settled(result, names, keys)
        self.changed = True
        if keys:
            self._recorded.add(result)
        return result

    def leave_Await(self, original_node: cst.Await, updated_node: cst.Await) -> cst.BaseExpression:
        """``y = await fetch(x)``: the awaited call's names, settled once it is awaited."""
        bound = self._awaited.pop(original_node.expression, None)
        if bound is None:
            return updated_node
        result = self._settled(updated_node, *bound)
        if bound[1]:
            self._recorded.add(result)
        return result

    def _settled(self, call: cst.BaseExpression, names: tuple[str, ...] | None, keys: tuple[str, ...] | None) -> cst.BaseExpression:
        """Targets that other statements of the scope also bind keep their provenance only if
        the callee was an op (``settle``)."""
        if not names or not keys:
            return call
        again = [key for name, key in zip(names, keys) if self.scope.binding_count(name) > 1]
        return emit.settle(again, call) if again else call

    def _pos_keys(self, args: Sequence[cst.Arg]) -> tuple[ArgKey | EllipsisType | None, ...] | EllipsisType:
        """A key per positional argument; ``...`` for all of them when ``*args`` makes their
        positions unknown until run time."""
        keys: list[ArgKey | EllipsisType | None] = []
        for arg in args:
            if arg.star == "*":
                return ...
            if arg.keyword is None and not arg.star:
                keys.append(self._arg_key(arg.value))
        return tuple(keys)

    def _kw_keys(self, args: Sequence[cst.Arg]) -> tuple[tuple[str, ArgKey | EllipsisType | None], ...] | None:
        """``(keyword, key)`` for keyword arguments that have a key; with ``**kwargs``, every
        keyword written (None: raw) and ``("**", ...)``: the others came from the mapping."""
        pairs: list[tuple[str, ArgKey | EllipsisType | None]] = []
        mapping = any(arg.star == "**" for arg in args)
        for arg in args:
            key = self._arg_key(arg.value) if arg.keyword is not None else None
            if key is not None or (mapping and arg.keyword is not None):
                pairs.append((cst.ensure_type(arg.keyword, cst.Name).value, key))
        if mapping:
            pairs.append(("**", ...))
        return tuple(pairs) or None

    def _arg_key(self, node: cst.BaseExpression) -> ArgKey | EllipsisType | None:
        """A name's key, or ``(key, i)`` for ``name[i]``, where the runtime may know the
        value's history; None for a value no op produced (``_raw.py``); ``...`` for one that
        may be an op's output whose history compiled code cannot know (a helper's result):
        unless the runtime gets it from a direct argument call, the call is recorded inexact."""
        scope = self.scope
        key = scope.arg_key(node)
        if isinstance(key, str):
            name = cst.ensure_type(node, cst.Name).value
            if not name_is_raw(scope, name):
                return key
            if name in filling(scope.resolve(name)).filled:  # filled step by step: `?` (runtime)
                return "?" + key
            # raw, unless it holds a collection whose elements' history the runtime knows
            return "~" + key if bound_to_a_collection(scope, name) else None
        if key is not None:
            return key
        if isinstance(node, cst.NamedExpr) and isinstance(node.target, cst.Name) and not is_raw(scope, node.value):
            return scope.key(node.target.value)  # `f((y := inc(1)))`: y's history is the argument's
        return None if is_raw(scope, node) else ...

    # -- assignments: which call binds which names; forget for the others ----------------------

    def visit_Assign(self, node: cst.Assign) -> None:
        self._visit_adding(node)
        if len(node.targets) == 1:
            self._note_targets(node.targets[0].target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._note_targets(node.target, node.value)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._note_targets(node.target, node.value)

    def _note_targets(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        if self._active and isinstance(value, cst.Await) and isinstance(value.expression, cst.Call):
            self._awaited[value.expression] = None  # an async op's call binds them once awaited
            value = value.expression
        if self._active and isinstance(value, cst.Call):
            names = simple_targets(target)
            if names:
                self._targets[value] = names
        elif self._active and isinstance(value, _COLLECTIONS) and isinstance(target, cst.Name):
            self._collection_targets[value] = target.value

    def leave_Assign(self, original_node: cst.Assign, updated_node: cst.Assign) -> cst.Assign:
        updated_node = self._leave_adding(original_node, updated_node)
        names = [name for target in updated_node.targets for name in target_names(target.target)]
        return self._forget_value(updated_node, names)

    def leave_AnnAssign(self, original_node: cst.AnnAssign, updated_node: cst.AnnAssign) -> cst.AnnAssign:
        if updated_node.value is None:
            return updated_node
        return self._forget_value(updated_node, target_names(updated_node.target))

    def leave_NamedExpr(self, original_node: cst.NamedExpr, updated_node: cst.NamedExpr) -> cst.NamedExpr:
        return self._forget_value(updated_node, target_names(updated_node.target))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._visit_adding(node)

    def leave_AugAssign(self, original_node: cst.AugAssign, updated_node: cst.AugAssign) -> cst.AugAssign:
        updated_node = self._leave_adding(original_node, updated_node)
        return self._forget_value(updated_node, target_names(updated_node.target), recorded=False)

    def _visit_adding(self, node: cst.Assign | cst.AugAssign) -> None:
        adding = self._adding(node)
        if adding is not None:  # `d[k] = e`, `ys += e`: e's op calls hand their outputs here
            self._calls.append(_CallFrame(False, self._put_direct(adding), adding=adding))

    def _leave_adding(self, original, updated):  # type: ignore[no-untyped-def]
        if not self._calls or self._calls[-1].adding is None or self._adding(original) is None:
            return updated
        return updated.with_changes(value=self._put(self._calls.pop(), updated.value))

    def _forget_value(self, node, names: list[str], recorded: bool = True):  # type: ignore[no-untyped-def]
        """Names that receive op outputs elsewhere, bound here to something else: ``raw`` when
        no op produced the value (``y = 0``, ``y = y + 1``: an op given y then records it as
        raw, exactly), else ``forget`` (y's history is unknown: such a call is inexact)."""
        if not self._active or (recorded and node.value in self._recorded):
            return node
        keys = self._keys_to_forget(names)
        if not keys:
            return node
        self.changed = True
        hook = "raw" if recorded and self._vouched(keys) and self._binds_raw(node) else "forget"
        return node.with_changes(value=emit.forget(keys, node.value, hook))

    def _vouched(self, keys: list[str]) -> bool:
        """Whether only code compiled here binds these variables: ``raw`` vouches for what a
        name holds until the next binding, which must not be one the runtime never hears of
        (``global y`` in a function outside the blocks: its value may be the very object raw
        saw, a small int)."""
        names = (key.partition("@")[0] for key in keys)  # a name never holds "@"
        return not any(name in self.scope.resolve(name).rebound_elsewhere() for name in names)

    def _binds_raw(self, node: cst.Assign | cst.AnnAssign | cst.NamedExpr) -> bool:
        targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
        unpacked = not all(isinstance(target, cst.Name) for target in targets)
        return node.value is not None and is_raw(self.scope, node.value, deep=unpacked)

    def leave_For(self, original_node: cst.For, updated_node: cst.For) -> cst.For:
        keys = self._keys_to_forget(target_names(updated_node.target)) if self._active else []
        if not keys:
            return updated_node
        self.changed = True
        is_async = updated_node.asynchronous is not None
        # `for y in [8, 9]`: each value is raw (a name that unpacks, `for a, b in ...`, gets an
        # item's part, which `raw` would not recognise: forgotten)
        raw = (
            isinstance(original_node.target, cst.Name)
            and self._vouched(keys)
            and is_raw(self.scope, original_node.iter, deep=True)
        )
        iterable = emit.forget_each(keys, updated_node.iter, is_async=is_async, hook="raw" if raw else "forget")
        return updated_node.with_changes(iter=iterable)

    def _keys_to_forget(self, names: list[str]) -> list[str]:
        """Keys of *names* that receive op outputs elsewhere in their scope."""
        scope, keys = self.scope, []
        for name in dict.fromkeys(names):
            key, owner = scope.key(name), scope.resolve(name)
            if key in scope.op_target_keys() or key in owner.op_target_keys():
                keys.append(key)
        return keys

    def leave_WithItem(self, original_node: cst.WithItem, updated_node: cst.WithItem) -> cst.WithItem:
        """``with cm as y``: y's history goes before ``__enter__`` binds it (its value may be
        the very object an op returned before: a small int, a string)."""
        if updated_node.asname is None or not self._active:
            return updated_node
        keys = self._keys_to_forget(target_names(updated_node.asname.name))
        if not keys:
            return updated_node
        self.changed = True
        return updated_node.with_changes(item=emit.forget(keys, updated_node.item))

    def leave_Match(self, original_node: cst.Match, updated_node: cst.Match) -> cst.Match:
        """Every case's captures forget before matching (a case that does not match binds
        nothing: its names lose exactness, never gain a wrong history)."""
        keys = self._keys_to_forget(_capture_names(updated_node)) if self._active else []
        if not keys:
            return updated_node
        self.changed = True
        return updated_node.with_changes(subject=emit.forget(keys, updated_node.subject))

    # -- workflows ------------------------------------------------------------------------------

    def visit_Return(self, node: cst.Return) -> None:
        if not (self._active and self.scope.is_workflow) or node.value is None:
            return
        if isinstance(node.value, cst.Call):
            self._returns[node.value] = "<return>"
        elif isinstance(node.value, cst.Tuple):
            for i, element in enumerate(node.value.elements):
                if isinstance(element, cst.Element) and isinstance(element.value, cst.Call):
                    self._returns[element.value] = f"<return{i}>"

    def leave_Return(self, original_node: cst.Return, updated_node: cst.Return) -> cst.Return:
        """``return y`` (a name, ``b[0]`` or an op call) hands y's history to the caller; ``return
        a, b`` each element's."""
        if not (self._active and self.scope.is_workflow) or updated_node.value is None:
            return updated_node
        self.changed = True
        original, value = original_node.value, updated_node.value
        if isinstance(original, cst.Tuple) and isinstance(value, cst.Tuple):
            pairs = zip(original.elements, value.elements)
            keys = tuple(self._return_key(o.value, u.value) if isinstance(o, cst.Element) else None for o, u in pairs)
            if any(key is not None for key in keys):
                return updated_node.with_changes(value=emit.ret_all(keys, value))
        return updated_node.with_changes(value=emit.ret(self._return_key(original, value), value))

    def _return_key(self, original: cst.BaseExpression | None, value: cst.BaseExpression) -> ArgKey | None:
        slot = self._returns.get(original) if isinstance(original, cst.Call) else None
        if slot is not None:
            return f"{slot}@{self.scope.qualname}" if original in self._rewritten_returns else None
        return self.scope.arg_key(value)


def _capture_names(node: cst.Match) -> list[str]:
    """The names the cases' patterns bind (``case y``, ``case [a, *rest]``, ``case {**kw}``)."""
    names: list[str] = []

    class Captures(cst.CSTVisitor):
        def visit_MatchAs(self, node: cst.MatchAs) -> None:
            if node.name is not None:
                names.append(node.name.value)

        def visit_MatchStar(self, node: cst.MatchStar) -> None:
            if node.name is not None:
                names.append(node.name.value)

        def visit_MatchMapping(self, node: cst.MatchMapping) -> None:
            if node.rest is not None:
                names.append(node.rest.value)

    for case in node.cases:
        case.pattern.visit(Captures())
    return names


def _direct_arguments(args: Sequence[cst.Arg], is_direct: Callable[[cst.BaseExpression], bool]) -> dict[int, int | str]:
    """Arguments that are calls (or collections that may hold op outputs: ``is_direct``):
    id -> position among the positional arguments, or keyword.

    Positions after a ``*args`` unpacking are unknown until run time: those are left out.
    """
    direct: dict[int, int | str] = {}
    position, known = 0, True
    for arg in args:
        if arg.star == "*":
            known = False
        elif arg.keyword is not None:
            if is_direct(arg.value):
                direct[id(arg.value)] = cst.ensure_type(arg.keyword, cst.Name).value
        elif not arg.star:
            if known and is_direct(arg.value):
                direct[id(arg.value)] = position
            position += 1
    return direct


def _direct_elements(node: cst.BaseExpression, is_direct: Callable[[cst.BaseExpression], bool]) -> dict[int, int | str]:
    """A collection's elements that are calls or collections: id -> position, or ``*`` for a
    comprehension's element (each step's, in order). Positions after an unpacking are left out."""
    if isinstance(node, (cst.ListComp, cst.DictComp)):
        element = node.elt if isinstance(node, cst.ListComp) else node.value
        return {id(element): "*"} if is_direct(element) else {}
    direct: dict[int, int | str] = {}
    for position, element in enumerate(_elements_of(node)):
        if isinstance(element, (cst.StarredElement, cst.StarredDictElement)):
            break
        if is_direct(element.value):
            direct[id(element.value)] = position
    return direct


def _elements_of(node: cst.BaseExpression) -> Sequence[Any]:
    """The elements of a list, tuple or dict display (a dict's: its entries)."""
    return node.elements if isinstance(node, (cst.List, cst.Tuple, cst.Dict)) else ()


def _compact(scope: str, keys: tuple) -> tuple:
    """``(targets, pos_keys, kw_keys)`` with each key of *scope*'s own variables written as the
    bare name: the runtime adds ``@scope`` back, the scope given beside the spec. Whole keys
    were most of what a compiled module's ``.pyc`` held beyond CPython's (a string per variable
    and scope); a bare name is the string the code object holds for the variable anyway, which
    marshal writes once and then refers back to, and a spec free of its scope is one constant
    for the sites of every function with the same targets and keys.

    >>> _compact("f", (("y@f",), ("x@<module>", ("b@f", 1)), (("k", "z@f"),)))
    (('y',), ('x@<module>', ('b', 1)), (('k', 'z'),))
    """
    targets, pos_keys, kw_keys = keys
    return (
        _relative_all(targets, scope),
        _relative_all(pos_keys, scope),
        tuple((word, _relative(key, scope)) for word, key in kw_keys) if kw_keys else None,
    )


def _relative_all(keys: Sequence[ArgKey | EllipsisType | None] | EllipsisType | None, scope: str) -> tuple | EllipsisType | None:
    return keys if keys is None or keys is ... else tuple(_relative(key, scope) for key in keys)


def _relative(key: ArgKey | EllipsisType | None, scope: str) -> ArgKey | EllipsisType | None:
    """``name`` for ``name@scope``; a key of another scope's variable stays whole."""
    if isinstance(key, tuple):
        return (_relative_key(key[0], scope), key[1])
    return key if key is None or key is ... else _relative_key(key, scope)


def _relative_key(key: str, scope: str) -> str:
    name, _, owner = key.partition("@")  # a name never holds "@": the first one separates
    return name if owner == scope else key
