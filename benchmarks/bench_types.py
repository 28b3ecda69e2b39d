#!/usr/bin/env python
"""Hashing and storage of the ML ecosystem's types, numpy in the same run.

For each type, a value of about ``--mb`` megabytes (100 by default):

- hash GB/s: in-memory bytes / time of ``content_id`` (median of repeats, a fresh equal copy
  each time, so nothing is cached by identity);
- hit GB/s: in-memory bytes / time of a full hit of ``echo(value)`` from a new Storage object
  (hash the argument, find the call, load the stored output, lazily where the format allows);
- stored/mem: bytes stored for the value / its in-memory bytes;
- numpy GB/s, vs numpy: a numpy float array of the same size hashed in turns with the value;
  "vs numpy" is the median of each turn's ratio of the two rates (the load drifts in a run).

Libraries that are not installed are left out. Usage::

    python benchmarks/bench_types.py             # ~100 MB values
    python benchmarks/bench_types.py --mb 10     # quick
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import typing
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mandala_ast import Storage, op  # noqa: E402
from mandala_ast.runtime.hashing import content_id  # noqa: E402


@op
def echo(value):
    return value


@dataclasses.dataclass
class Batch:
    features: np.ndarray
    labels: np.ndarray
    meta: dict


class Pair(typing.NamedTuple):
    left: np.ndarray
    right: np.ndarray


def numpy_float(n):
    return np.random.default_rng(0).random(n // 8), None


def numpy_datetime(n):
    return np.arange(n // 8).astype("datetime64[ns]"), None


def pandas_numeric(n):
    import pandas as pd

    rows = n // 8 // 10
    frame = pd.DataFrame(np.random.default_rng(0).random((rows, 10)), columns=[f"c{i}" for i in range(10)])
    return frame, frame.memory_usage(deep=True).sum()


def pandas_text(n):
    import pandas as pd

    words = np.array([f"word-{i:08d}" for i in range(1000)], dtype=object)
    series = pd.Series(words[np.arange(n // 80) % 1000], dtype=object)
    return series, series.memory_usage(deep=True)


def pandas_arrow_text(n):
    import pandas as pd

    words = [f"word-{i:08d}" for i in range(1000)]
    series = pd.Series(pd.array(np.array(words, dtype=object)[np.arange(n // 16) % 1000], dtype="string[pyarrow]"))
    return series, series.memory_usage(deep=True)


def pandas_categorical(n):
    import pandas as pd

    series = pd.Series(pd.Categorical.from_codes(np.arange(n // 2) % 1000, [f"c{i}" for i in range(1000)]))
    return series, series.memory_usage(deep=True)


def pandas_tz_datetimes(n):
    import pandas as pd

    series = pd.Series(pd.date_range("2000-01-01", periods=n // 8, freq="s", tz="Europe/Paris"))
    return series, series.memory_usage(deep=True)


def polars_frame(n):
    import polars as pl

    frame = pl.DataFrame({f"c{i}": np.random.default_rng(i).random(n // 80) for i in range(10)})
    return frame, frame.estimated_size()


def arrow_table(n):
    import pyarrow as pa

    table = pa.table({f"c{i}": np.random.default_rng(i).random(n // 80) for i in range(10)})
    return table, table.nbytes


def scipy_sparse(n):
    import scipy.sparse as sparse

    nnz = n // 12  # float64 data + int32 indices
    rows = nnz // 100
    matrix = sparse.random(rows, 10_000, density=0.01, format="csr", random_state=0, dtype=np.float64)
    return matrix, matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes


def torch_tensor(n):
    import torch

    tensor = torch.rand(n // 4, generator=torch.Generator().manual_seed(0))
    return tensor, tensor.numel() * tensor.element_size()


def torch_state_dict(n):
    import torch

    generator = torch.Generator().manual_seed(0)
    state = {f"layer{i}.weight": torch.rand(n // 4 // 10, generator=generator) for i in range(10)}
    return state, sum(t.numel() * 4 for t in state.values())


def torch_state_dict_many(n):
    # A ResNet-50's shape: 53 conv weights holding the bytes, each with a batch norm's four
    # small vectors and an int64 counter: 318 tensors, most of them tiny (per-tensor overhead).
    import torch

    generator = torch.Generator().manual_seed(0)
    state = {}
    for i in range(53):
        state[f"layer{i}.conv.weight"] = torch.rand(n // 4 // 53, generator=generator)
        for part in ("weight", "bias", "running_mean", "running_var"):
            state[f"layer{i}.bn.{part}"] = torch.rand(256, generator=generator)
        state[f"layer{i}.bn.num_batches_tracked"] = torch.tensor(0)
    return state, sum(t.numel() * t.element_size() for t in state.values())


def xarray_data_array(n):
    import xarray as xr

    values = np.random.default_rng(0).random((n // 8 // 1000, 1000))
    array = xr.DataArray(values, dims=("t", "x"), coords={"x": np.arange(1000)}, name="v", attrs={"units": "K"})
    return array, array.nbytes


def pil_image(n):
    from PIL import Image

    side = int((n // 3) ** 0.5)
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return Image.fromarray(pixels), pixels.nbytes


def pil_images_rgba_4mb(n):
    # Images up to PIL's 16 MB block in a mode it stores packed: read in place, not copied.
    from PIL import Image

    rng = np.random.default_rng(0)
    count = max(1, n // 4_000_000)
    images = [Image.fromarray(rng.integers(0, 256, (1000, 1000, 4), dtype=np.uint8)) for _ in range(count)]
    return images, 4_000_000 * count


def dataclass_of_arrays(n):
    rng = np.random.default_rng(0)
    return Batch(rng.random(n // 16), rng.random(n // 16), {"split": "train"}), None


def namedtuple_of_arrays(n):
    rng = np.random.default_rng(0)
    return Pair(rng.random(n // 16), rng.random(n // 16)), None


CASES = [
    numpy_float, numpy_datetime, pandas_numeric, pandas_text, pandas_arrow_text, pandas_categorical,
    pandas_tz_datetimes, polars_frame, arrow_table, scipy_sparse, torch_tensor, torch_state_dict, torch_state_dict_many,
    xarray_data_array, pil_image, pil_images_rgba_4mb, dataclass_of_arrays, namedtuple_of_arrays,
]


def nbytes(value, reported) -> int:
    if reported is not None:
        return int(reported)
    if isinstance(value, np.ndarray):
        return value.nbytes
    return sum(getattr(value, f).nbytes for f in ("features", "labels") if hasattr(value, f)) or sum(a.nbytes for a in value)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(make, size: int, repeats: int, directory: Path) -> dict:
    value, reported = make(size)
    copy, _ = make(size)  # equal content, another object
    memory = nbytes(value, reported)
    reference, _ = numpy_float(size)
    hash_s, numpy_s, ratio = timed_against(lambda: content_id(copy), lambda: content_id(reference), repeats)
    path = directory / f"{make.__name__}.db"
    with Storage(path):
        echo(value)
    stored = sum(row[0] for row in sqlite3.connect(path).execute("SELECT size FROM vals"))
    hit_s = timed(lambda: _hit(path, copy), repeats)
    return {
        "type": make.__name__, "mb": memory / 1e6, "hash": memory / hash_s / 1e9, "hit": memory / hit_s / 1e9,
        "stored": stored / memory, "numpy": reference.nbytes / numpy_s / 1e9,
        "ratio": ratio * memory / reference.nbytes,
    }


def timed_against(fn, reference, repeats: int) -> tuple[float, float, float]:
    """Median times of ``fn`` and ``reference`` run in turns, and the median of the per-turn
    ratio reference/fn: the machine's load changes within seconds, so each ratio compares two
    runs made moments apart."""
    pairs = [(timed(reference, 1), timed(fn, 1)) for _ in range(max(repeats, 5))]
    return (statistics.median(p[1] for p in pairs), statistics.median(p[0] for p in pairs),
            statistics.median(p[0] / p[1] for p in pairs))


def _hit(path: Path, value) -> None:
    with Storage(path):
        echo(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated case names (numpy_float always runs)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one case, in a process of its own
    args = parser.parse_args()
    size = int(args.mb * 1e6)
    if args.case:
        with tempfile.TemporaryDirectory() as directory:
            make = next(make for make in CASES if make.__name__ == args.case)
            print(json.dumps(measure(make, size, args.repeats, Path(directory))))
        return
    wanted = set(filter(None, args.only.split(","))) | {"numpy_float"}
    rows = []
    for make in CASES:
        if args.only and make.__name__ not in wanted:
            continue
        # Each case in a fresh process: what an earlier case left behind (its libraries'
        # threads, memory to reclaim) slowed numpy's reference in later rows, flattering them
        # (an RGB image measured 51-64% of numpy after the torch rows, 41% alone). And numpy
        # is hashed in turns with each type: the load drifts during a run, and a ratio to a
        # rate measured minutes earlier would show the drift.
        command = [sys.executable, __file__, "--case", make.__name__, "--mb", str(args.mb), "--repeats", str(args.repeats)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            print(f"{make.__name__}: skipped ({done.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print("| type | MB | hash GB/s | numpy GB/s | vs numpy | hit GB/s | stored/mem |\n|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['type']} | {row['mb']:.0f} | {row['hash']:.2f} | {row['numpy']:.2f} | {row['ratio']:.0%} | {row['hit']:.2f} | {row['stored']:.2f} |")


if __name__ == "__main__":
    main()
