"""Async ops: memoized ``await f(x)`` in run blocks of async code; concurrent in batches."""

from __future__ import annotations

import asyncio
import textwrap

import pytest
from batch_ops import ACTIVE, RUNS, fetch, inc

from mandala_ast import Storage, transform_source


def setup_function():
    RUNS.clear()
    ACTIVE.update(now=0, most=0)


def test_outside_blocks_an_async_op_is_a_plain_coroutine():
    assert asyncio.run(fetch(2)) == 4 and RUNS == [("fetch", 2)]


def test_await_memoizes_in_async_with_run(tmp_path):
    async def main(storage):
        async with storage.run():
            return await fetch(3)

    storage = Storage(tmp_path / "s.db")
    assert asyncio.run(main(storage)) == 6
    assert asyncio.run(main(Storage(tmp_path / "s.db"))) == 6
    assert RUNS == [("fetch", 3)]


def test_await_memoizes_in_a_plain_with_in_async_code(tmp_path):
    async def main(storage):
        with storage.run():
            return [await fetch(x) for x in (1, 1, 2)]

    storage = Storage(tmp_path / "s.db")
    assert asyncio.run(main(storage)) == [2, 2, 4]
    assert RUNS == [("fetch", 1), ("fetch", 2)]


def test_coroutines_awaiting_the_same_missing_call_at_once_compute_it_once(tmp_path):
    """asyncio.gather over duplicate prompts: one body runs (one paid API call), every
    awaiter gets its result; other calls still run concurrently."""
    async def main(storage):
        async with storage.run():
            return await asyncio.gather(fetch(1, 0.05), fetch(1, 0.05), fetch(2, 0.05), fetch(1, 0.05))

    assert asyncio.run(main(Storage(tmp_path / "s.db"))) == [2, 2, 4, 2]
    assert sorted(RUNS) == [("fetch", 1), ("fetch", 2)] and ACTIVE["most"] == 2


def test_a_coroutine_waiting_for_a_call_that_failed_computes_it_itself(tmp_path):
    from batch_ops import flaky

    async def main(storage):
        async with storage.run():
            return await asyncio.gather(flaky(1), flaky(1), return_exceptions=True)

    first, second = asyncio.run(main(Storage(tmp_path / "s.db")))
    assert isinstance(first, RuntimeError) and second == 1
    assert RUNS == [("flaky", 1), ("flaky", 1)]


def test_a_batch_runs_async_ops_concurrently_up_to_max_concurrency(tmp_path):
    with Storage(tmp_path / "s.db").batch(max_concurrency=50):
        ys = [fetch(x, 0.05) for x in range(200)]
    assert ys == [2 * x for x in range(200)]
    assert ACTIVE["most"] == 50


def test_async_and_plain_ops_mix_in_one_batch(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.batch(executor="threads"):
        ys = [inc(fetch(inc(x))) for x in range(5)]
    assert ys == [2 * (x + 1) + 1 for x in range(5)]
    RUNS.clear()
    with storage.batch() as b:
        again = [inc(fetch(inc(x))) for x in range(5)]
    assert again == ys and RUNS == [] and b.stats.dispatched == 0


def test_awaiting_a_deferred_async_call_in_a_batch_gives_its_value(tmp_path):
    async def main(storage):
        async with storage.batch():
            first = fetch(1)
            value = await first
            rest = [fetch(x) for x in range(3)]
        return value, rest

    assert asyncio.run(main(Storage(tmp_path / "s.db"))) == (2, [0, 2, 4])


def test_compiled_async_batch_names_are_plain(tmp_path):
    namespace = {"__name__": "user_code"}
    code = textwrap.dedent(
        """
        from batch_ops import fetch
        from mandala_ast import Storage

        async def main(path):
            async with Storage(path).batch():
                ys = [fetch(x) for x in range(3)]
                total = sum(ys)
            return ys, total, [type(y).__name__ for y in ys]
        """
    )
    exec(compile(transform_source(code, "user_code.py").source, "user_code.py", "exec"), namespace)
    assert asyncio.run(namespace["main"](tmp_path / "s.db")) == ([0, 2, 4], 6, ["int"] * 3)


def _other_apply(self, x):
    return self.factor * x + 1000


def test_an_async_op_given_a_model_depends_on_its_class(tmp_path, monkeypatch):
    """Async bodies interleave on one event loop and are not traced: a call depended on its
    op's code alone, so after the model's class changed its stored result was served (await
    and batch alike)."""
    import pytest
    from batch_ops import Prompter, Scaler, ask_model

    from mandala_ast import NewCallError

    async def awaited(storage, **options):
        with storage.run(**options):
            return await ask_model(Prompter(3), 2)

    storage = Storage(tmp_path / "s.db")
    assert asyncio.run(awaited(storage)) == 7
    with storage.batch(progress=False):
        y = ask_model(Prompter(3), 5)
    assert y == 16
    assert asyncio.run(awaited(storage, allow_new_calls=False)) == 7  # unchanged: hits
    monkeypatch.setattr(Scaler, "apply", _other_apply)  # a base class's method it runs
    for call in (lambda: asyncio.run(awaited(storage, allow_new_calls=False)),
                 lambda: _batch_without_new_calls(storage, ask_model, Prompter(3), 5)):
        with pytest.raises(NewCallError, match="ask_model"):
            call()


def _batch_without_new_calls(storage, op, *args):
    with storage.batch(progress=False, allow_new_calls=False):
        return op(*args)


def test_an_async_op_given_a_bound_method_depends_on_its_class(tmp_path, monkeypatch):
    """`call_async(model.apply, x)`: a bound method is neither a function keyed by its code
    nor an object whose class counts, so after the method changed its stored result was
    served."""
    import pytest
    from batch_ops import Scaler, call_async

    from mandala_ast import NewCallError

    async def awaited(storage, **options):
        with storage.run(**options):
            return await call_async(Scaler(3).apply, 2)

    storage = Storage(tmp_path / "s.db")
    assert asyncio.run(awaited(storage)) == 7
    assert asyncio.run(awaited(storage, allow_new_calls=False)) == 7  # unchanged: hits
    monkeypatch.setattr(Scaler, "apply", _edited_apply())  # an edit: the same name, other code
    with pytest.raises(NewCallError, match="call_async"):
        asyncio.run(awaited(storage, allow_new_calls=False))


def _edited_apply():
    def apply(self, x):
        return self.factor * x + 1000

    return apply


def _edit_scaler_apply(monkeypatch, scaler: type) -> None:
    """``Scaler.apply`` as an edit in a new process leaves it: the name it had, other code."""
    edited = _edited_apply()
    edited.__module__, edited.__qualname__ = scaler.__module__, "Scaler.apply"
    monkeypatch.setattr(scaler, "apply", edited)


@pytest.mark.parametrize("given", ["a model held in an object", "a partial of a bound method", "a partial of a method"])
def test_an_async_op_given_a_model_out_of_sight_recomputes_after_its_method_changed(tmp_path, monkeypatch, given):
    """Async bodies are not traced: the classes an async call depends on are found in what it
    is given, and a model held inside another object or bound in a `functools.partial` was
    not looked into, so after its method changed the stored result was served."""
    import functools

    from batch_ops import Pipeline, Scaler, call_async, run_held_model

    from mandala_ast import NewCallError

    async def awaited(storage, **options):
        with storage.run(**options):
            if given == "a partial of a bound method":
                return await call_async(functools.partial(Scaler(3).apply), 2)
            if given == "a partial of a method":
                return await call_async(functools.partial(Scaler.apply, Scaler(3)), 2)
            return await run_held_model(Pipeline(Scaler(3)), 2)

    storage = Storage(tmp_path / "s.db")
    assert asyncio.run(awaited(storage)) == 7
    assert asyncio.run(awaited(storage, allow_new_calls=False)) == 7  # unchanged: hits
    _edit_scaler_apply(monkeypatch, Scaler)
    with pytest.raises(NewCallError):
        asyncio.run(awaited(storage, allow_new_calls=False))


def test_an_async_op_reading_a_module_level_model_recomputes_after_its_method_changed(tmp_path, monkeypatch):
    """``MODULE_SCALER.apply(x)`` in an async op: its body is not traced, and the object it
    reads by name counted by its content alone, so after its class's method was edited the
    stored result was served."""
    from batch_ops import Scaler, ask_module_model

    from mandala_ast import NewCallError

    async def awaited(storage, **options):
        with storage.run(**options):
            return await ask_module_model(2)

    storage = Storage(tmp_path / "s.db")
    assert asyncio.run(awaited(storage)) == 7
    assert asyncio.run(awaited(storage, allow_new_calls=False)) == 7  # unchanged: hits
    _edit_scaler_apply(monkeypatch, Scaler)
    with pytest.raises(NewCallError, match="ask_module_model"):
        asyncio.run(awaited(storage, allow_new_calls=False))
