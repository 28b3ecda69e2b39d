"""Batch blocks on every executor: `python examples/batch.py [folder]` (Dask's part needs the
`dask` extra). The storages go in `folder` (by default, beside this file): the second run of
the script loads everything, no call is dispatched."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import time
from pathlib import Path

from mandala_ast import Storage, op


@op
def load(n: int) -> list:
    time.sleep(0.05)  # stands for reading a file
    return list(range(n))


@op
def train(data: list, alpha: float) -> float:
    time.sleep(0.05)
    return alpha * sum(data)


@op
async def ask(question: str) -> str:  # stands for an API call
    await asyncio.sleep(0.05)
    return question.upper()


def experiment(storage: Storage, executor) -> list:
    with storage.batch(executor=executor) as batch:
        models = [train(load(n), alpha) for n in (10, 100) for alpha in (0.1, 0.2)]
        best = max(models)          # a plain use: forces the four models, in parallel
        answers = [ask(f"is {m} good?") for m in models]
    label = executor if executor is None or isinstance(executor, str) else type(executor).__name__
    print(f"{label!s:>18}: best={best} answers={answers[:1]}... {batch.stats}")
    return models


def main(folder: Path) -> None:
    storage = Storage(folder / "results.db")
    for executor in (None, "threads", "processes", concurrent.futures.ThreadPoolExecutor(2)):
        experiment(storage, executor)  # the first computes, the others load
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        return
    # (":0": the dashboard on a free port, wherever another cluster holds Dask's usual one)
    with LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster, Client(cluster) as client:
        experiment(Storage(folder / "cluster.db"), client)


if __name__ == "__main__":  # worker processes import this module: run only in the main one
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
