"""Batch blocks on a real Dask LocalCluster (threads in one process, and worker processes)."""

from __future__ import annotations

import time

import pytest
from batch_ops import RUNS, add, fails, inc, pair
from hypothesis import HealthCheck, given, settings
from test_batch import PROGRAMS, batch_equals_run

from mandala_ast import BatchWorkerError, NewCallError, Storage

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module", params=[False, True], ids=["threads", "processes"])
def client(request):
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=request.param, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


def test_chains_on_the_cluster_and_stores_every_call(tmp_path, client):
    storage = Storage(tmp_path / "s.db")
    with storage.batch(executor=client) as b:
        ys = [add(inc(inc(x)), x) for x in range(5)]
        first, second = pair(ys[0])
    assert ys == [2 * x + 2 for x in range(5)] and (first, second) == (2, -2)
    assert b.stats.failed == 0
    RUNS.clear()
    with storage.run(allow_new_calls=False):
        assert [add(inc(inc(x)), x) for x in range(5)] == ys
    assert RUNS == []


def test_stored_calls_are_not_dispatched_to_the_cluster(tmp_path, client):
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        [inc(x) for x in range(10)]
    with storage.batch(executor=client) as b:
        ys = [inc(x) for x in range(11)]
    assert ys == list(range(1, 12)) and b.stats.dispatched == 1 and b.stats.found == 10


def test_a_failure_on_the_cluster_names_the_call_and_keeps_the_rest(tmp_path, client):
    storage = Storage(tmp_path / "s.db")
    with pytest.raises(ValueError, match="bad 4") as caught:
        with storage.batch(executor=client):
            ok = [inc(x) for x in range(3)]
            after = inc(fails(4))
    assert any("fails(x=4)" in n for n in caught.value.__notes__)
    with storage.run(allow_new_calls=False):
        assert [inc(x) for x in range(3)] == [1, 2, 3]
    del ok, after


def _other_apply(self, x):
    return self.factor * x + 1000


def test_a_model_passed_to_an_op_on_the_cluster_makes_its_call_depend_on_the_methods_it_ran(tmp_path, client, monkeypatch):
    # Bodies on the cluster ran untraced: a call depended only on what its op's code names,
    # so a model's edited methods were served stale.
    from batch_ops import Scaler, evaluate_model

    storage = Storage(tmp_path / "s.db")
    with storage.batch(executor=client, progress=False):
        y = evaluate_model(Scaler(3), 2)
    assert y == 7
    with storage.run(allow_new_calls=False):
        assert evaluate_model(Scaler(3), 2) == 7
    monkeypatch.setattr(Scaler, "apply", _other_apply)
    with storage.run(allow_new_calls=False), pytest.raises(NewCallError, match="evaluate_model"):
        evaluate_model(Scaler(3), 2)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=PROGRAMS)
def test_batch_results_equal_run_results_on_dask(tmp_path, client, program):
    batch_equals_run(tmp_path, client, program)


def test_a_downstream_call_is_on_the_cluster_before_its_input_is_computed(tmp_path, client):
    from batch_ops import tasks_on_cluster

    # The upstream call runs until the scheduler holds 2 tasks: its own and the chained
    # downstream one, submitted with the upstream future as its argument.
    with Storage(tmp_path / "s.db").batch(executor=client):
        seen = tasks_on_cluster(0, 2)
        after = inc(seen)
    assert seen is True and after == 2


EDITED_OP = "from mandala_ast import op\n\n\n@op\ndef scaled(x):\n    return {factor} * x\n"


def test_a_dask_worker_running_an_edited_op_does_not_store_its_result(tmp_path, monkeypatch):
    """A Dask worker process imports the op's module from its file, edited since this process
    imported it: it ran the new code, and the result was stored under this process's code
    (a run block then served 100 for scaled(1), whose body here says 10)."""
    import importlib

    from mandala_ast import BatchWorkerError, NewCallError

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "dask_edited.py").write_text(EDITED_OP.format(factor=10))
    edited = importlib.import_module("dask_edited")
    (tmp_path / "dask_edited.py").write_text(EDITED_OP.format(factor=100))  # after the import
    storage = Storage(tmp_path / "s.db")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        with pytest.raises(BatchWorkerError, match="dask_edited.scaled.*other code"):
            with storage.batch(executor=client, progress=False):
                y = edited.scaled(1)
    with storage.run(allow_new_calls=False):
        with pytest.raises(NewCallError):
            edited.scaled(1)
    del y


CONSTANT_OP = "from mandala_ast import op\n\nFACTOR = 10\n\n\n@op\ndef times(x):\n    return FACTOR * x\n"


def test_a_dask_cluster_of_threads_runs_an_op_whose_constant_changed_in_this_process(tmp_path, monkeypatch):
    """Workers that are threads of this process run its code as it is now: the code check
    (which remembers each op's code per process) must not refuse them after a change here."""
    import importlib

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "dask_constant.py").write_text(CONSTANT_OP)
    module = importlib.import_module("dask_constant")
    storage = Storage(tmp_path / "s.db")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        with storage.batch(executor=client, progress=False):
            before = module.times(1)
        module.FACTOR = 3  # a notebook cell setting the constant again
        with storage.batch(executor=client, progress=False):
            after = module.times(1)
    assert (before, after) == (10, 3)


def test_a_call_cancelled_on_the_cluster_fails_with_an_error_naming_its_op(tmp_path):
    """A task cancelled on the cluster (from the dashboard, another client) failed its call
    with ``<mandala_ast.runtime.batch.worker.Chained object a-...> cancelled``: the task's
    name, which the dashboard shows too, named no op."""
    import threading

    from batch_ops import logged_slow

    log, go = tmp_path / "log", tmp_path / "go"
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        def cancel_the_running_call():
            while not log.exists():
                time.sleep(0.01)
            running = [key for key, state in list(client.futures.items()) if state.status == "pending"]
            client.cancel([distributed.Future(key, client) for key in running])
            go.write_text("")

        canceller = threading.Thread(target=cancel_the_running_call)
        canceller.start()
        with pytest.raises(distributed.client.FutureCancelledError, match=r"^'?batch_ops\.logged_slow-") as raised:
            with Storage(tmp_path / "s.db").batch(executor=client, progress=False):
                cancelled = logged_slow(1, str(log), str(go))
        canceller.join()
    assert any("logged_slow(x=1" in note for note in raised.value.__notes__)
    del cancelled


def test_a_call_whose_argument_cannot_be_sent_to_the_cluster_fails_alone_and_its_input_is_stored(tmp_path, client):
    """A call chained to its input is sent with it, ahead of time: its argument's error
    (a lock cannot be pickled) came out of that send, and failed the input's call, which
    was fine, instead of its own."""
    import threading

    storage = Storage(tmp_path / "s.db")
    with pytest.raises(TypeError) as raised:
        with storage.batch(executor=client, progress=False):
            y = inc(1)
            z = add(y, threading.Lock())
    assert any("in the batch call batch_ops.add(" in note for note in raised.value.__notes__), raised.value.__notes__
    with storage.run(allow_new_calls=False):
        assert inc(1) == 2
    del z


def test_an_op_body_raising_generator_exit_on_the_cluster_fails_its_call_naming_it_not_the_block_hanging(
        tmp_path, client):
    """Dask's ``future.result()`` never returns for a task that raised a BaseException that is
    not an Exception (GeneratorExit): the call's result was waited for forever."""
    from batch_ops import ends_with

    storage = Storage(tmp_path / "s.db")
    with pytest.raises(BatchWorkerError, match=r"ends_with\(.*x=2.*GeneratorExit"):
        with storage.batch(executor=client, progress=False):
            ys = [ends_with(x, 2, "generator") for x in range(4)]
    with storage.run(allow_new_calls=False):
        assert [ends_with(x, 2, "generator") for x in (0, 1, 3)] == [0, 10, 30]
    del ys


def test_a_dask_batch_gathers_its_results_together_not_one_round_trip_per_call(tmp_path, client, monkeypatch):
    """Each call's result was fetched on its own, ``future.result()`` from Dask's callback
    thread: a round trip through the client's event loop and the scheduler per call (~1.6x
    a bare ``client.submit`` per trivial call). The results of the tasks that finished since
    the coordinator last looked come back in one ``client.gather``."""
    asked, gathered = [], []
    result, gather = distributed.Future.result, distributed.Client.gather

    def one_result(future, *args, **kwargs):
        asked.append(future.key)
        return result(future, *args, **kwargs)

    def many_results(self, futures, *args, **kwargs):
        gathered.append(len(futures))
        return gather(self, futures, *args, **kwargs)

    monkeypatch.setattr(distributed.Future, "result", one_result)
    monkeypatch.setattr(distributed.Client, "gather", many_results)
    storage = Storage(tmp_path / "s.db")
    with storage.batch(executor=client, progress=False) as b:
        ys = [add(inc(x), x) for x in range(20)]
    assert ys == [2 * x + 1 for x in range(20)] and b.stats.computed == 40
    assert asked == [] and sum(gathered) == 40, (asked, gathered)
    with storage.run(allow_new_calls=False):
        assert [add(inc(x), x) for x in range(20)] == ys


def test_calls_on_a_dask_cluster_whose_bodies_can_run_no_user_code_are_not_traced_there(tmp_path, client, monkeypatch):
    """Every body on the cluster was traced, even one given plain data by an op that refers
    to no user code (whose trace can find nothing, and which a thread of this process runs
    untraced): on Python 3.12+ a trace makes every function the worker's process runs next,
    Dask's own included, report itself again (~0.6 ms a trivial call on a cluster of threads).
    A body that may reach user code (a model passed in) is still traced."""
    from batch_ops import Scaler, evaluate_model

    from mandala_ast.runtime import execution

    if any(isinstance(worker, distributed.Nanny) for worker in client.cluster.workers.values()):
        pytest.skip("counts the traces in this process: a cluster of threads")
    traces, run_traced = [], execution.run_traced

    def counted(fn, args, kwargs):
        traces.append(fn.__name__)
        return run_traced(fn, args, kwargs)

    monkeypatch.setattr(execution, "run_traced", counted)
    storage = Storage(tmp_path / "s.db")
    with storage.batch(executor=client, progress=False):
        ys = [inc(x) for x in range(5)]
        y = evaluate_model(Scaler(3), 2)
    assert (ys, y) == ([1, 2, 3, 4, 5], 7)
    assert traces == ["evaluate_model"], traces
    with storage.run(allow_new_calls=False):
        assert [inc(x) for x in range(5)] == ys and evaluate_model(Scaler(3), 2) == 7


def test_a_dask_batch_leaves_none_of_its_results_in_the_clusters_memory_after_the_block(tmp_path, client, monkeypatch):
    """The batch's graph (whose calls refer to each other) held every task's future until
    the garbage collector found it: after the block, the workers kept each result the batch
    computed in memory, batch after batch (600 tasks after three batches of 200 calls)."""
    import gc

    sent, submit = [], distributed.Client.submit

    def noted(self, *args, **kwargs):
        future = submit(self, *args, **kwargs)
        sent.append(future.key)
        return future

    monkeypatch.setattr(distributed.Client, "submit", noted)
    collecting = gc.isenabled()
    gc.disable()  # (as if it had not run yet: when it runs is not the batch's to choose)
    try:
        with Storage(tmp_path / "s.db").batch(executor=client, progress=False):
            ys = [add(inc(x), 1) for x in range(10)]
        deadline = time.monotonic() + 30  # (the client lets go of a future on its event loop)
        while set(sent) & set(client.futures) and time.monotonic() < deadline:
            time.sleep(0.01)
        held = set(sent) & set(client.futures)
    finally:
        if collecting:
            gc.enable()
    assert ys == [x + 2 for x in range(10)] and len(sent) >= 20
    assert not held, f"{len(held)} of the batch's {len(sent)} tasks still held on the cluster"
