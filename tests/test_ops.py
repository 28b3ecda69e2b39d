"""@op: signatures, output counts, ignored arguments, defaults, plain calls outside blocks."""

from __future__ import annotations

import functools

import pytest

from mandala_ast import ArgumentError, OutputCountError, Storage, op


@pytest.fixture
def storage(tmp_path):
    return Storage(tmp_path / "s.db")


ASYNC_RUNS: list[int] = []


async def _fit_async(x, verbose=False):  # one function, decorated with and without ignore=
    ASYNC_RUNS.append(x)
    return x * 2


def counted(fn):
    """Wrap fn so that `fn.runs` counts executions of its body."""
    def wrapper(*args, **kwargs):
        wrapper.runs += 1
        return fn(*args, **kwargs)

    wrapper.runs = 0
    wrapper.__name__ = wrapper.__qualname__ = fn.__name__
    wrapper.__signature__ = __import__("inspect").signature(fn)
    wrapper.__annotations__ = fn.__annotations__
    return wrapper


class TestOutsideBlocks:
    def test_op_is_a_plain_call_and_stores_nothing(self, storage):
        @op
        def inc(x):
            return x + 1

        assert inc(1) == 2
        assert len(storage.df(inc)) == 0

    def test_op_keeps_name_and_docstring(self):
        @op
        def documented(x):
            """Doc."""
            return x

        assert documented.__name__ == "documented" and documented.__doc__ == "Doc."


class TestOutputCounts:
    def test_tuple_annotation_gives_one_output_per_item(self, storage):
        @op
        def split(data: list, frac: float = 0.5) -> tuple[list, list]:
            k = int(len(data) * frac)
            return data[:k], data[k:]

        assert split.nout == 2
        with storage:
            assert split([1, 2, 3, 4]) == ([1, 2], [3, 4])
        assert list(storage.df(split).columns[:4]) == ["data", "frac", "output_0", "output_1"]

    def test_typing_tuple_and_variadic_tuple(self):
        @op
        def two() -> tuple[int, int]:
            return 1, 2

        @op
        def one() -> tuple[int, ...]:
            return (1, 2, 3)

        assert (two.nout, one.nout) == (2, 1)

    def test_string_annotations_from_future_import(self):
        namespace: dict = {}
        exec(
            "from __future__ import annotations\n"
            "from mandala_ast import op\n"
            "@op\n"
            "def f(x) -> tuple[int, str, float]:\n"
            "    return 1, 'a', 2.0\n",
            namespace,
        )
        assert namespace["f"].nout == 3

    def test_variadic_tuple_return_is_one_output_without_future_annotations(self, storage):
        """This module's annotations are text; a module without the __future__ import hands
        the op real ``tuple[int, ...]`` objects, read by another path than the text.
        (dont_inherit: exec of a string would inherit this module's __future__ import.)"""
        source = (
            "from typing import Tuple\n"
            "from mandala_ast import op\n"
            "@op\n"
            "def triple(x) -> tuple[int, ...]:\n"
            "    return x, x, x\n"
            "@op\n"
            "def pair(x) -> Tuple[int, int]:\n"
            "    return x, x\n"
        )
        namespace: dict = {}
        exec(compile(source, "ops_without_future.py", "exec", dont_inherit=True), namespace)
        assert not isinstance(namespace["triple"].__annotations__["return"], str)
        triple, pair = namespace["triple"], namespace["pair"]
        with storage:
            assert triple(1) == (1, 1, 1)
            assert pair(2) == (2, 2)
        assert storage.df(triple)["output"].tolist() == [(1, 1, 1)]
        assert list(storage.df(pair).columns[:3]) == ["x", "output_0", "output_1"]

    def test_nout_overrides_annotation(self):
        @op(nout=1)
        def pair() -> tuple[int, int]:
            return 1, 2

        assert pair.nout == 1

    @pytest.mark.parametrize("returned", [(1, 2, 3), 5, [1]])
    def test_wrong_number_of_outputs_is_an_error_and_nothing_is_stored(self, storage, returned):
        @op(nout=2)
        def bad():
            return returned

        with pytest.raises(OutputCountError, match="bad declares 2 outputs"):
            with storage:
                bad()
        assert len(storage.df(bad)) == 0


class TestIdentity:
    def test_any_signature(self, storage):
        body = counted(lambda a, b=2, *rest, c, d=4, **extra: (a, b, rest, c, d, extra))
        f = op(body)
        with storage:
            first = f(1, 2, 3, c=5, z=9)
            again = f(1, 2, 3, c=5, z=9)
            f(1, c=5)
        assert first == again == (1, 2, (3,), 5, 4, {"z": 9})
        assert body.runs == 2

    def test_keyword_and_positional_spellings_are_the_same_call(self, storage):
        body = counted(lambda x, y: x + y)
        f = op(body)
        with storage:
            assert f(1, 2) == f(x=1, y=2) == f(1, y=2) == 3
        assert body.runs == 1

    def test_ignored_arguments_are_not_part_of_the_key(self, storage):
        body = counted(lambda x, verbose=False: x * 2)
        fit = op(ignore=("verbose",))(body)
        with storage:
            fit(3, verbose=False)
            fit(3, verbose=True)
        assert body.runs == 1
        assert "verbose" not in storage.df(fit).columns

    @pytest.mark.parametrize("verbose", [True, False, "default"])
    def test_ignore_added_later_finds_the_calls_stored_before_it(self, tmp_path, verbose):
        # They were keyed with the argument: each was computed once more.
        body = counted(lambda x, verbose=False: x * 2)
        given = {} if verbose == "default" else {"verbose": verbose}
        with Storage(tmp_path / "s.db"):
            assert op(body)(3, **given) == 6
        later = op(ignore=("verbose",))(body)
        for _ in range(2):
            with Storage(tmp_path / "s.db"):
                assert later(3, **given) == 6 and later(3, verbose=not verbose) == 6
        assert body.runs == 1

    @pytest.mark.parametrize("executor", [None, "threads"])
    def test_ignore_added_later_finds_the_calls_stored_before_it_in_a_batch_block(self, tmp_path, executor):
        # A run block found them; a batch block computed each once more.
        body = counted(lambda x, verbose=False: x * 2)
        with Storage(tmp_path / "s.db").run():
            op(body)(3, verbose=True)
        later = op(ignore=("verbose",))(body)
        for _ in range(2):
            with Storage(tmp_path / "s.db").batch(executor=executor, progress=False):
                result = later(3, verbose=True)
            assert result == 6
        assert body.runs == 1

    def test_ignore_added_later_finds_the_calls_an_async_op_stored_before_it(self, tmp_path):
        import asyncio

        async def call(fn):
            with Storage(tmp_path / "s.db").run():
                return await fn(3, verbose=True)

        ASYNC_RUNS.clear()
        assert asyncio.run(call(op(_fit_async))) == 6
        assert asyncio.run(call(op(ignore="verbose")(_fit_async))) == 6
        assert ASYNC_RUNS == [3]

    def test_ignored_arguments_may_be_unhashable(self, storage):
        import threading

        fit = op(ignore=("lock",))(lambda x, lock=None: x)
        with storage:
            assert fit(1, lock=threading.Lock()) == 1

    def test_ignore_of_unknown_parameter_is_an_error(self):
        with pytest.raises(ValueError, match="unknown parameters \\['nope'\\]"):
            op(ignore=("nope",))(lambda x: x)

    def test_ignore_of_unknown_parameter_is_a_mandala_error_naming_the_op(self):
        def fit(x, verbose=False):
            return x

        with pytest.raises(ArgumentError, match=r"op .*fit: ignore= names unknown parameters \['nope'\]"):
            op(ignore=("nope",))(fit)

    @pytest.mark.parametrize("ignore", [3, None])
    def test_ignore_that_is_not_names_is_a_mandala_error_naming_the_op(self, ignore):
        def fit(x, verbose=False):
            return x

        with pytest.raises(ArgumentError, match=r"op .*fit: ignore= takes parameter names"):
            op(ignore=ignore)(fit)

    def test_ignore_given_one_name_as_a_string_ignores_that_parameter_not_its_letters(self, tmp_path):
        def fit(x, verbose=False):
            return x

        fit_op = op(ignore="verbose")(fit)
        assert fit_op.ignore == frozenset({"verbose"})

    def test_new_parameter_with_default_finds_old_calls(self, tmp_path):
        """Adding a defaulted parameter does not invalidate stored calls."""
        path = tmp_path / "s.db"
        old = define("def train(x):\n    RUNS.append(x)\n    return x + 1\n")
        with Storage(path):
            old.train(1)
        new = define("def train(x, alpha=0.1):\n    RUNS.append(x)\n    return x + 1\n")
        with Storage(path):
            assert new.train(1) == 2 and new.train(1, alpha=0.1) == 2
            assert new.RUNS == []
            new.train(1, alpha=0.2)
        assert new.RUNS == [1]

    def test_methods_are_ops_keyed_on_the_instance(self, storage):
        Model.runs = 0
        with storage:
            assert Model(2).predict(3) == 6 and Model(2).predict(3) == 6
            assert Model(3).predict(3) == 9
        assert Model.runs == 2


    def test_op_over_staticmethod_is_called_from_instances_without_self(self, storage):
        """`@op` above `@staticmethod` (the order the decorators happen to be written in):
        called on an instance, the instance is not passed as an argument."""
        with storage:
            assert Model.shift(1) == 101 and Model(2).shift(1) == 101
        assert list(storage.df(Model.shift).x) == [1]

    def test_op_over_classmethod_is_called_with_the_class(self, storage):
        with storage:
            assert Model.offset(1) == 11 and Model(2).offset(1) == 11 and Scaled.offset(1) == 21
        assert len(storage.df(Model.offset)) == 2
        assert str(storage.why(Scaled.offset, 1)).startswith("hit")

    def test_an_op_reached_through_an_instance_gives_its_table_and_explanation(self, storage):
        model = Model(2)
        with storage:
            model.predict(3)
        assert list(storage.df(model.predict).x) == [3]
        assert str(storage.why(model.predict, 3)).startswith("hit")
        assert str(storage.why(model.predict, 4)).startswith("miss")

def define(source: str):
    """Execute `@op` + source as module `experiments` (same op name every time)."""
    import types

    module = types.ModuleType("experiments")
    module.RUNS = []
    exec("from mandala_ast import op\n@op\n" + source, module.__dict__)
    return module


class Model:
    runs = 0

    def __init__(self, scale):
        self.scale = scale

    @op
    def predict(self, x):
        Model.runs += 1
        return self.scale * x

    @op
    @staticmethod
    def shift(x):
        return x + 100

    K = 10

    @op
    @classmethod
    def offset(cls, x):
        return x + cls.K


class Scaled(Model):
    K = 20


def test_an_op_can_be_mapped_over_a_process_pool():
    """Ops pickle by name, as functions do: ``pool.map(op, xs)`` runs the body in the
    workers (plain calls there: no storage block is open in them)."""
    import concurrent.futures
    import pickle

    from batch_ops import inc

    assert pickle.loads(pickle.dumps(inc)) is inc
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        assert list(pool.map(inc, [1, 2, 3])) == [2, 3, 4]


def test_an_op_not_importable_by_name_pickles_by_value_where_the_pickler_can():
    """Defined in a function, an op has no name to be found by: pickle refuses it, naming it,
    and cloudpickle (which batch uses for such ops) ships it whole."""
    import pickle

    import cloudpickle

    @op
    def local(x):
        return x * 3

    with pytest.raises((pickle.PicklingError, AttributeError), match="local"):
        pickle.dumps(local)
    assert cloudpickle.loads(cloudpickle.dumps(local)).fn(2) == 6


def test_a_call_with_arguments_the_op_does_not_take_names_the_op(storage):
    """As Python names a function called with the wrong arguments; inspect's own message
    ("too many positional arguments") names nothing."""

    @op
    def scaled(x, factor=2):
        return x * factor

    with storage:
        with pytest.raises(TypeError, match=r"scaled\(\): too many positional arguments"):
            scaled(1, 2, 3)
        with pytest.raises(TypeError, match=r"scaled\(\): got an unexpected keyword argument 'f'"):
            scaled(1, f=3)
    with pytest.raises(TypeError, match=r"scaled\(\): missing a required argument: 'x'"):
        storage.why(scaled)


def scaler(factor):
    """A factory of ops (notebook style): each op closes over its own factor."""

    @op
    def scale(x):
        return x * factor

    return scale


def test_ops_a_factory_made_over_different_values_do_not_share_results(tmp_path):
    """Same name, same code: what the op closes over is part of it, as it is for a helper a
    factory made."""
    with Storage(tmp_path / "s.db"):
        assert scaler(2)(1) == 2 and scaler(3)(1) == 3
    with Storage(tmp_path / "s.db"):
        assert scaler(3)(1) == 3 and scaler(2)(1) == 2


@pytest.mark.parametrize("target", [functools.partial(max, 0), callable], ids=["partial", "builtin-ok"])
def test_op_of_something_without_a_name_says_what_it_needs(target):
    """A partial or a callable object has no module and qualified name to store calls under."""
    if isinstance(target, functools.partial):
        with pytest.raises(ArgumentError, match=r"@op needs a function.*functools\.partial"):
            op(target)
    else:
        assert op(target).name == "builtins.callable"
