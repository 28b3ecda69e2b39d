"""The query form: ``with X.query() as q:`` and ``with X.delete():`` bodies build patterns.

The body still runs as Python, once; the runtime (runtime/query/hooks.py) makes op calls
return query variables. What the compiler adds is what Python cannot overload on a variable:

==============================  =========================================================
user code                       compiled (same line)
==============================  =========================================================
``y = f(x)``                    ``y = RT.q_name('y', RT.q_call(f)(x))``
``a, b = g(x)``                 ``a, b = RT.q_names(('a', 'b'), RT.q_call(g)(x))``
``print(y)``                    ``RT.q_stmt_runs(__mandala_f__ := print) and RT.q_call(__mandala_f__)(y)``
``for n in [1, 2]:``            ``for n in RT.q_for(('n',), [1, 2]):``
``if c:`` / ``elif d:`` /       ``for __mandala_b in (__mandala_c1 := RT.q_if(c)):`` /
``else:``                       ``for __mandala_b in (__mandala_c1.elif_(d) if __mandala_c1.open() else ()):``
                                / ``for __mandala_b in __mandala_c1.else_():``
``xs[:k]``, ``d[key]``          ``RT.q_item(xs)[:k]``, ``RT.q_item(d)[key]`` (keys that are not literals)
``a < b``, ``a in b``           ``RT.q_cmp(a, '<', b)``, ``RT.q_cmp(a, 'in', b)``
``a < b < f(c)``                ``RT.q_cmp(a, '<', b, '<*', lambda: f(c))`` (evaluated only if ``a < b``)
``a and b``, ``not a``          ``RT.q_bool_end(RT.q_bool_start(a, 'and') and b, 'and')``, ``RT.q_not(a)``
==============================  =========================================================

Python evaluates every operand where (and only where) the original would: ``and``/``or``
stay Python's operators, a statement's arguments and an ``elif`` condition sit behind a
short-circuit, and only a chained comparison's later operands are thunks (not when they hold
``await``, ``yield`` or ``:=``, which a lambda would change). Line breaks inside comparisons
and boolean operations are kept, so every statement stays on its line.

The hooks behave exactly like the plain code unless a query block of ours is active, so a
``with session.query():`` of some other library runs as written. Constructs a pattern cannot
mean (``while``, ``try``, in-place updates, ``break``) leave the body untouched and wrap the
block's header in ``RT.query_refused(item, "<file>:<line>: ...")``: our blocks raise that
message on entry, anyone else's run unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from ._detect import LATER_METHODS, opens_storage_block
from ._emit import literal, rt_call

__all__ = ["rewrite_query_blocks"]

_CHAIN = "__mandala_c{}"
_BRANCH = "__mandala_b"
_CALLEE = "__mandala_f__"  # the callee of an expression statement (a dunder: never mangled)
#: Comparison operands evaluated eagerly even after the first comparison: they cannot fail.
_SIMPLE = (cst.Name, cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.Ellipsis)
#: Method names that change their object: calling one on a query variable is an update in place.
_MUTATORS = frozenset({
    "append", "extend", "insert", "pop", "remove", "clear", "update", "add", "discard", "sort",
    "reverse", "setdefault", "popitem", "fill", "resize", "put", "__setitem__", "__delitem__",
})
_COMPARISONS = {
    cst.Equal: "==", cst.NotEqual: "!=", cst.LessThan: "<", cst.LessThanEqual: "<=",
    cst.GreaterThan: ">", cst.GreaterThanEqual: ">=", cst.Is: "is", cst.IsNot: "is not",
    cst.In: "in", cst.NotIn: "not in",
}
_NESTED_SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


def rewrite_query_blocks(module: cst.Module, blocks: set[cst.With], filename: str) -> tuple[cst.Module, bool]:
    """*module* with every query/delete block in *blocks* in the query form."""
    if not blocks:
        return module, False
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    refusals = {}
    for block in blocks:
        message = _refusal(block, positions)
        if message is not None:
            refusals[block] = f"{filename}:{message}"
    rewritten = module.visit(_QueryFormRewriter(blocks, refusals))
    return cst.ensure_type(rewritten, cst.Module), True


# -- what a query cannot mean ----------------------------------------------------------------------


def _refusal(block: cst.With, positions) -> str | None:  # type: ignore[no-untyped-def]
    finder = _RefusalFinder(_bound_names(block.body), positions)
    block.body.visit(finder)
    return finder.found


class _RefusalFinder(cst.CSTVisitor):
    """Finds the first statement a pattern cannot mean; says which line and why."""

    def __init__(self, bound: set[str], positions) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.bound = bound
        self.positions = positions
        self.found: str | None = None

    def _refuse(self, node: cst.CSTNode, what: str) -> bool:
        if self.found is None:
            line = self.positions[node].start.line
            self.found = f"{line}: a query block cannot contain {what}: a query matches stored calls and runs nothing"
        return False

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.found is not None or isinstance(node, _NESTED_SCOPES):
            return False
        return super().on_visit(node)

    def visit_While(self, node: cst.While) -> bool:
        return self._refuse(node, "a `while` loop (its number of steps depends on values)")

    def visit_Try(self, node: cst.Try) -> bool:
        return self._refuse(node, "a `try` statement (nothing runs, so nothing can fail)")

    def visit_TryStar(self, node: cst.TryStar) -> bool:
        return self._refuse(node, "a `try` statement (nothing runs, so nothing can fail)")

    def visit_Match(self, node: cst.Match) -> bool:
        return self._refuse(node, "a `match` statement (use `if`)")

    def visit_Break(self, node: cst.Break) -> bool:
        return self._refuse(node, "`break` (a query's loops match every step at once)")

    def visit_Continue(self, node: cst.Continue) -> bool:
        return self._refuse(node, "`continue` (a query's loops match every step at once)")

    def visit_For(self, node: cst.For) -> bool | None:
        if node.orelse is not None:
            return self._refuse(node, "a `for ... else`")
        if node.asynchronous is not None:
            return self._refuse(node, "an `async for`")
        if _loop_names(node.target) is None:
            return self._refuse(node, "a `for` loop whose target is not a name or a tuple of names")
        carried = _carried(node)
        if carried is not None:
            name, reader = carried
            return self._refuse(reader, (
                f"`{name}` carried from one step of the `for` loop to the next (read here before the "
                "loop's body assigns it, as in `x = f(x)`; the body is matched once, for every step "
                "at once): write the steps out, or match one step with Q() in its place"
            ))
        return None

    def visit_With(self, node: cst.With) -> bool | None:
        if opens_storage_block(node):
            return self._refuse(node, "a storage block (`with storage.run():`, a batch, query or delete "
                                "block); end the query block before it")
        return None

    def visit_AugAssign(self, node: cst.AugAssign) -> bool:
        return self._refuse(node, "an in-place update (`x += ...`); write `y = x + ...` instead")

    def visit_Assign(self, node: cst.Assign) -> bool | None:
        if len(node.targets) != 1:
            return self._refuse(node, "a chained assignment (`a = b = ...`)")
        target = node.targets[0].target
        if _assigned_names(target) is None and _unpacks_into_names(target):
            return self._refuse(node, "an unpacking into a starred or nested target (`a, *rest = ...`, `(a, b), c = ...`); "
                                "unpack into names (`a, b = ...`) instead")
        if _assigned_names(target) is None:
            return self._refuse(node, "an assignment into an object (`x[i] = ...`, `x.a = ...`): it mutates a value in place")
        return None

    def visit_AnnAssign(self, node: cst.AnnAssign) -> bool | None:
        if not isinstance(node.target, cst.Name):
            return self._refuse(node, "an assignment into an object (`x[i] = ...`, `x.a = ...`): it mutates a value in place")
        return None

    def visit_Del(self, node: cst.Del) -> bool | None:
        if not isinstance(node.target, cst.Name):
            return self._refuse(node, "`del` of a part of a value: it mutates the value in place")
        return None

    def visit_Expr(self, node: cst.Expr) -> bool | None:
        call = node.value
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute):
            owner = call.func.value
            if isinstance(owner, cst.Name) and owner.value in self.bound and call.func.attr.value in _MUTATORS:
                return self._refuse(node, f"`{owner.value}.{call.func.attr.value}(...)`, which mutates a query variable in place")
        return None


def _bound_names(body: cst.CSTNode) -> set[str]:
    """Names the block assigns (and loop targets): the query's variables."""
    names: set[str] = set()

    class Collector(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            return not isinstance(node, _NESTED_SCOPES) and super().on_visit(node)

        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            names.update(_names_in(node.target))

        def visit_For(self, node: cst.For) -> None:
            names.update(_names_in(node.target))

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            names.update(_names_in(node.target))

    body.visit(Collector())
    return names


def _names_in(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for element in target.elements for n in _names_in(element.value)]
    return []


def _unpacks_into_names(target: cst.BaseExpression) -> bool:
    """A tuple or list target whose leaves are all names (``a, *rest``, ``(a, b), c``)."""
    if isinstance(target, cst.Name):
        return True
    if isinstance(target, (cst.Tuple, cst.List)):
        return all(_unpacks_into_names(element.value) for element in target.elements)
    return False


def _assigned_names(target: cst.BaseExpression) -> tuple[str, ...] | None:
    """``('y',)`` for ``y = ...``, ``('a', 'b')`` for ``a, b = ...``; None for anything else."""
    if isinstance(target, cst.Name):
        return (target.value,)
    if isinstance(target, (cst.Tuple, cst.List)) and all(
        isinstance(e, cst.Element) and isinstance(e.value, cst.Name) for e in target.elements
    ):
        return tuple(cst.ensure_type(e.value, cst.Name).value for e in target.elements)
    return None


_loop_names = _assigned_names


# -- values carried from one loop step to the next -------------------------------------------------


def _carried(loop: cst.For) -> tuple[str, cst.CSTNode] | None:
    """The first name *loop*'s body reads before assigning it (``x = inc(x)``), with the
    statement reading it. The query form runs a loop's body once, each call one node standing
    for every step, so what a step hands the next would be matched as the loop's first input."""
    reads = _StepReads(_bound_names(loop.body), set(_names_in(loop.target)))
    reads.suite(loop.body)
    return reads.found


class _StepReads:
    """Walks one loop step in the order Python runs it, noting what is assigned so far."""

    def __init__(self, assigned_later: set[str], assigned: set[str]) -> None:
        self.assigned_later = assigned_later
        self.assigned = assigned
        self.found: tuple[str, cst.CSTNode] | None = None

    def suite(self, suite: cst.BaseSuite) -> None:
        for statement in suite.body:
            self.statement(statement)

    def statement(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                self.statement(small)
        elif isinstance(node, (cst.Assign, cst.AnnAssign)):
            self.read(node.value, node)  # the value first: `x = f(x)` reads the old x
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            self.assigned.update(n for target in targets for n in _names_in(target))
        elif isinstance(node, cst.For):
            self.read(node.iter, node)
            self.assigned.update(_names_in(node.target))
            self.suite(node.body)
        elif isinstance(node, cst.If):
            self.read(node.test, node)
            self.suite(node.body)
            if isinstance(node.orelse, cst.If):
                self.statement(node.orelse)
            elif node.orelse is not None:
                self.suite(node.orelse.body)
        elif isinstance(node, cst.With):
            for item in node.items:
                self.read(item.item, node)
                self.assigned.update(_names_in(item.asname.name) if item.asname else ())
            self.suite(node.body)
        elif not isinstance(node, _NESTED_SCOPES):
            self.read(node, node)

    def read(self, node: cst.CSTNode | None, statement: cst.CSTNode) -> None:
        carried = (_read_names(node) & self.assigned_later) - self.assigned if node is not None else ()
        if carried and self.found is None:
            self.found = (sorted(carried)[0], statement)


def _read_names(node: cst.CSTNode) -> set[str]:
    """The variables an expression (or a simple statement) reads: not attribute or keyword
    names, nor what a comprehension or a nested function binds for itself."""
    names: set[str] = set()
    own: set[str] = set()

    class Reader(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            node.value.visit(self)
            return False

        def visit_Arg(self, node: cst.Arg) -> bool:
            node.value.visit(self)
            return False

        def visit_CompFor(self, node: cst.CompFor) -> None:
            own.update(_names_in(node.target))

        def visit_Name(self, node: cst.Name) -> None:
            names.add(node.value)

        def on_visit(self, node: cst.CSTNode) -> bool:
            return not isinstance(node, _NESTED_SCOPES) and super().on_visit(node)

    node.visit(Reader())
    return names - own


# -- the rewrite -----------------------------------------------------------------------------------


class _QueryFormRewriter(cst.CSTTransformer):
    def __init__(self, blocks: set[cst.With], refusals: dict[cst.With, str]) -> None:
        super().__init__()
        self.blocks = blocks
        self.refusals = refusals
        self._active = 0  # > 0 inside the body of a block being rewritten
        self._nested = 0  # > 0 inside a def, class or lambda within such a body
        self._chains = 0
        self._elifs: set[cst.If] = set()

    @property
    def _rewriting(self) -> bool:
        return self._active > 0 and self._nested == 0

    def on_visit(self, node: cst.CSTNode) -> bool:
        if node in self.refusals:
            return False  # left as written; leave_With still wraps its header
        if self._active and isinstance(node, _NESTED_SCOPES):
            self._nested += 1
        if self._rewriting and isinstance(node, (cst.FormattedString, cst.Decorator, cst.Annotation)):
            self._nested += 1
        return super().on_visit(node)

    def on_leave(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        if original_node in self.refusals:
            return self._refused(original_node)
        if self._active and (
            isinstance(original_node, _NESTED_SCOPES)
            or (self._nested and isinstance(original_node, (cst.FormattedString, cst.Decorator, cst.Annotation)))
        ):
            self._nested -= 1
        return super().on_leave(original_node, updated_node)

    def _refused(self, block: cst.With) -> cst.With:
        message = literal(self.refusals[block])
        items = [
            item.with_changes(item=rt_call("query_refused", [cst.Arg(item.item), cst.Arg(message)]))
            if _is_query_item(item.item) else item
            for item in block.items
        ]
        return block.with_changes(items=items)

    # -- blocks ------------------------------------------------------------------------------

    def visit_With_body(self, node: cst.With) -> None:
        if node in self.blocks:
            self._active += 1

    def leave_With_body(self, node: cst.With) -> None:
        if node in self.blocks:
            self._active -= 1

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.With:
        if original_node not in self.blocks:
            return updated_node
        items = [
            item.with_changes(item=rt_call("query_block", [cst.Arg(item.item)]))
            if _is_query_item(item.item) else item
            for item in updated_node.items
        ]
        return updated_node.with_changes(items=items)

    # -- expressions -------------------------------------------------------------------------

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if not self._rewriting:
            return updated_node
        # `f(a)` -> `RT.q_call(f)(a)`: the call stays where it was, its callee is filtered
        return updated_node.with_changes(func=rt_call("q_call", [cst.Arg(updated_node.func)]))

    def leave_Subscript(self, original_node: cst.Subscript, updated_node: cst.Subscript) -> cst.Subscript:
        if not self._rewriting or all(_literal_key(e.slice) for e in updated_node.slice):
            return updated_node
        # `xs[:k]` -> `RT.q_item(xs)[:k]`: a list cannot take a query variable as an index
        return updated_node.with_changes(value=rt_call("q_item", [cst.Arg(updated_node.value)]))

    def leave_Comparison(self, original_node: cst.Comparison, updated_node: cst.Comparison) -> cst.BaseExpression:
        if not self._rewriting:
            return updated_node
        # `a <ws> < <ws> b` -> `q_cmp(a,<ws> '<',<ws> b)`: line breaks stay where they were
        args = []
        left = _argument(updated_node.left)
        for index, target in enumerate(updated_node.comparisons):
            operator = target.operator
            symbol = _COMPARISONS[type(operator)]
            right = target.comparator
            if index and not _may_evaluate_early(right):  # Python evaluates it only if the chain holds so far
                symbol, right = symbol + "*", _thunk(right)
            args.append(cst.Arg(left, comma=_comma(getattr(operator, "whitespace_before", None))))
            left = _argument(right)
            args.append(cst.Arg(cst.SimpleString(repr(symbol)), comma=_comma(getattr(operator, "whitespace_after", None))))
        args.append(cst.Arg(left))
        return rt_call("q_cmp", args).with_changes(lpar=updated_node.lpar, rpar=updated_node.rpar)

    def leave_BooleanOperation(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        if not self._rewriting:
            return updated_node
        word = cst.SimpleString(repr("and" if isinstance(updated_node.operator, cst.And) else "or"))
        # Python's own operator still decides what is evaluated; the hooks only see the
        # left operand and the result
        start = rt_call("q_bool_start", [cst.Arg(_argument(updated_node.left)), cst.Arg(word)])
        inner = updated_node.with_changes(left=start, lpar=[], rpar=[])
        return rt_call("q_bool_end", [cst.Arg(inner), cst.Arg(word)]).with_changes(
            lpar=updated_node.lpar, rpar=updated_node.rpar
        )

    def leave_UnaryOperation(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        if not self._rewriting or not isinstance(updated_node.operator, cst.Not):
            return updated_node
        call = rt_call("q_not", [cst.Arg(_argument(updated_node.expression))])
        if _breaks_line(updated_node.operator.whitespace_after):
            call = call.with_changes(whitespace_before_args=updated_node.operator.whitespace_after)
        return call.with_changes(lpar=updated_node.lpar, rpar=updated_node.rpar)

    # -- simple statements -------------------------------------------------------------------

    def leave_Assign(self, original_node: cst.Assign, updated_node: cst.Assign) -> cst.Assign:
        if not self._rewriting:
            return updated_node
        names = _assigned_names(updated_node.targets[0].target) or ()
        return updated_node.with_changes(value=_named(names, updated_node.value))

    def leave_AnnAssign(self, original_node: cst.AnnAssign, updated_node: cst.AnnAssign) -> cst.AnnAssign:
        if not self._rewriting or updated_node.value is None:
            return updated_node
        names = _assigned_names(updated_node.target) or ()
        return updated_node.with_changes(value=_named(names, updated_node.value))

    def leave_Expr(self, original_node: cst.Expr, updated_node: cst.Expr) -> cst.BaseSmallStatement:
        if not self._rewriting:
            return updated_node
        value = updated_node.value
        if not isinstance(original_node.value, cst.Call):
            return updated_node  # a bare value (a docstring, `x`): evaluating it changes nothing
        call = cst.ensure_type(value, cst.Call)
        callee = cst.ensure_type(call.func, cst.Call).args[0].value  # q_call(f)(...) -> f
        # `f(a)` -> `q_stmt_runs(__mandala_f__ := f) and q_call(__mandala_f__)(a)`: f is
        # evaluated once, the arguments only when the statement runs
        name = cst.Name(_CALLEE)
        test = rt_call("q_stmt_runs", [cst.Arg(cst.NamedExpr(name, callee))])
        run = call.with_changes(func=rt_call("q_call", [cst.Arg(name)]))
        return updated_node.with_changes(value=cst.BooleanOperation(test, cst.And(), run))

    # -- loops and branches ------------------------------------------------------------------

    def leave_For(self, original_node: cst.For, updated_node: cst.For) -> cst.For:
        if not self._rewriting:
            return updated_node
        names = _loop_names(updated_node.target) or ()
        new_iter = rt_call("q_for", [cst.Arg(literal(names)), cst.Arg(_argument(updated_node.iter))])
        return updated_node.with_changes(iter=new_iter)

    def visit_If(self, node: cst.If) -> None:
        if isinstance(node.orelse, cst.If):
            self._elifs.add(node.orelse)

    def leave_If(self, original_node: cst.If, updated_node: cst.If):  # type: ignore[no-untyped-def]
        if not self._rewriting or original_node in self._elifs:
            return updated_node  # an `elif`: its chain's first `if` rewrites it
        self._chains += 1
        chain = cst.Name(_CHAIN.format(self._chains))
        first = rt_call("q_if", [cst.Arg(_argument(updated_node.test))])
        walrus = cst.NamedExpr(chain, first, lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        loops = [_branch_loop(walrus, updated_node.body, updated_node.leading_lines)]
        branch = updated_node.orelse
        while branch is not None:
            if isinstance(branch, cst.If):
                # evaluated only while no earlier branch certainly ran, as Python would
                test: cst.BaseExpression = cst.IfExp(
                    test=cst.Call(cst.Attribute(chain, cst.Name("open")), []),
                    body=cst.Call(cst.Attribute(chain, cst.Name("elif_")), [cst.Arg(_argument(branch.test))]),
                    orelse=cst.Tuple([]),
                    lpar=[cst.LeftParen()],
                    rpar=[cst.RightParen()],
                )
                loops.append(_branch_loop(test, branch.body, branch.leading_lines))
                branch = branch.orelse
            else:
                test = cst.Call(cst.Attribute(chain, cst.Name("else_")), [])
                loops.append(_branch_loop(test, branch.body, branch.leading_lines))
                branch = None
        return cst.FlattenSentinel(loops)


def _branch_loop(iterable: cst.BaseExpression, body: cst.BaseSuite,
                 leading_lines: Sequence[cst.EmptyLine]) -> cst.For:
    """``for __mandala_b in <iterable>:`` on the line of the ``if``/``elif``/``else`` it replaces."""
    return cst.For(target=cst.Name(_BRANCH), iter=iterable, body=body, leading_lines=leading_lines)


def _named(names: tuple[str, ...], value: cst.BaseExpression) -> cst.BaseExpression:
    if len(names) == 1:
        return rt_call("q_name", [cst.Arg(literal(names[0])), cst.Arg(_argument(value))])
    return rt_call("q_names", [cst.Arg(literal(names)), cst.Arg(_argument(value))])


_LITERALS = (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString)


def _literal_key(key: cst.BaseSlice) -> bool:
    """A subscript key any value accepts as written: literals (``b[0]``, ``d['a']``, ``x[1:]``)."""
    if isinstance(key, cst.Slice):
        return all(b is None or _literal(b) for b in (key.lower, key.upper, key.step))
    return _literal(cst.ensure_type(key, cst.Index).value)


def _literal(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        node = node.expression
    return isinstance(node, _LITERALS) or (isinstance(node, cst.Name) and node.value in ("None", "True", "False"))


def _thunk(value: cst.BaseExpression) -> cst.Lambda:
    return cst.Lambda(cst.Parameters(), value)


def _may_evaluate_early(node: cst.BaseExpression) -> bool:
    """A later operand of a comparison chain that is evaluated even if the chain already
    failed: a name or a literal (nothing to fail), or an operand a lambda would change the
    meaning of (``await``, ``yield``, ``:=`` inside)."""
    if isinstance(node, _SIMPLE):
        return True

    class Finder(cst.CSTVisitor):
        found = False

        def on_visit(self, child: cst.CSTNode) -> bool:
            if isinstance(child, (cst.Await, cst.Yield, cst.NamedExpr)):
                self.found = True
            return not self.found and not isinstance(child, cst.Lambda)

    finder = Finder()
    node.visit(finder)
    return finder.found


def _breaks_line(whitespace: object) -> bool:
    """Whether operator whitespace holds a line break (which must stay to keep lines)."""
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return True
    return isinstance(whitespace, cst.SimpleWhitespace) and "\n" in whitespace.value


def _comma(whitespace: object) -> cst.Comma:
    """``, `` carrying an operator's line break (``a <\n b`` -> ``a, '<',\n b``)."""
    if not _breaks_line(whitespace):
        return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    return cst.Comma(whitespace_after=whitespace)  # type: ignore[arg-type]


def _argument(node: cst.BaseExpression) -> cst.BaseExpression:
    """*node* as one argument among several (parenthesise bare tuples and generators)."""
    if isinstance(node, (cst.Tuple, cst.GeneratorExp, cst.Yield, cst.NamedExpr)) and not node.lpar:
        return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return node


def _is_query_item(item: cst.BaseExpression) -> bool:
    """``X.query(...)`` / ``X.delete(...)``: the item the runtime must see as compiled."""
    return isinstance(item, cst.Call) and isinstance(item.func, cst.Attribute) and item.func.attr.value in LATER_METHODS
