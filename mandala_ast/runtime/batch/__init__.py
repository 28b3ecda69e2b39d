"""Batch blocks: op calls deferred into a call graph, run in parallel, stored as they arrive.

Modules:
    block             ``BatchBlock``: recording calls, forcing, the block's end
    deferred          ``Deferred``: an output that is not computed yet
    graph             the call graph's nodes
    scheduler         waves of bulk lookups and dispatches; recording results
    executors         in process, threads, processes, a Dask client
    interrupts        a Ctrl-C held back while a process pool takes a task
    worker            what runs in a worker (the op's body only)
    pipeline_adapter  every contact with the storage engine
    failures          naming failed calls; ExceptionGroup
    frames            plain values in the block's names after it
    bar               the progress bar
"""

from __future__ import annotations

from .block import BatchBlock
from .deferred import Deferred
from .scheduler import BatchStats

__all__ = ["BatchBlock", "BatchStats", "Deferred"]
