"""Bytes hashed as segments on all cores: one id however they are cut, on one core or several."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from forked import answer_of_forked_child

from mandala_ast.runtime.segments import SEGMENT, segments_digest

ROOT = Path(__file__).resolve().parent.parent
SIZE = 2 * SEGMENT + 12_345  # three segments, the last partial


def _bytes() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, SIZE, dtype=np.uint8)


def _cut(data: np.ndarray, ends: list[int]) -> list[np.ndarray]:
    return [data[start:end] for start, end in zip([0, *ends], [*ends, len(data)])]


def test_bytes_cut_anywhere_into_buffers_get_one_id():
    data = _bytes()
    whole = segments_digest(SIZE, [data])
    cuts = ([SEGMENT], [1, SEGMENT - 1, SEGMENT + 1], sorted(np.random.default_rng(1).integers(0, SIZE, 40).tolist()))
    for ends in cuts:
        assert segments_digest(SIZE, iter(_cut(data, ends))) == whole, ends


def test_a_changed_byte_in_any_segment_changes_the_id():
    data = _bytes()
    whole = segments_digest(SIZE, [data])
    for where in (0, SEGMENT - 1, SEGMENT, SIZE - 1):
        changed = data.copy()
        changed[where] ^= 1
        assert segments_digest(SIZE, [changed]) != whole, where


def test_a_stream_shorter_or_longer_than_announced_is_refused():
    with pytest.raises(ValueError, match="announced 5 bytes and gave 4"):
        segments_digest(5, [b"ab", b"cd"])
    with pytest.raises(ValueError, match="announced 3 bytes and gave 4"):
        segments_digest(3, [b"abcd"])


_IN_CHILD = """
import sys
import numpy as np
from mandala_ast.runtime.segments import SEGMENT, segments_digest
data = np.random.default_rng(7).integers(0, 256, 2 * SEGMENT + 12_345, dtype=np.uint8)
print(segments_digest(data.size, [data[:5], data[5:]]).hex())
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_one_core_and_all_cores_give_one_id():
    # On one core the segments are hashed one after the other, on several in a pool of threads.
    data = _bytes()
    expected = segments_digest(SIZE, [data])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    one_core = ["taskset", "-c", "0", sys.executable, "-c", _IN_CHILD]
    for command in (one_core, [sys.executable, "-c", _IN_CHILD]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected.hex(), command[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_hashes_after_its_parent_did():
    # The child inherits the parent's pool object but none of its threads.
    data = _bytes()
    expected = segments_digest(SIZE, [data])
    got = answer_of_forked_child(lambda: segments_digest(SIZE, [data]))
    assert got == expected


_INTERRUPTED = """
import gc
import numpy as np
from concurrent.futures import Future
from PIL import Image
from mandala_ast.runtime.hashing import content_id

wait = Future.result

def interrupted(self, timeout=None):  # Ctrl-C, arriving while the hash of a segment is awaited
    if not self.done():
        raise KeyboardInterrupt
    return wait(self, timeout)

Future.result = interrupted
for attempt in range(8):
    image = Image.new("RGB", (4096, 8192), (attempt, 2, 3))  # 128 MiB as PIL holds it
    try:
        content_id(image)
    except KeyboardInterrupt:
        pass
    del image  # its memory goes back to the system
    gc.collect()
    reused = [np.ones(16 << 20, np.uint8) for _ in range(4)]
Future.result = wait
print(content_id(Image.new("RGB", (4096, 8192), (9, 2, 3))).hex())
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_an_image_freed_after_ctrl_c_interrupted_its_hash_is_not_read_by_the_pool():
    # The pool's threads read an RGB image's memory where PIL keeps it: a Ctrl-C leaving the
    # hash early must not leave them reading it once the image is freed (a crash).
    from PIL import Image

    from mandala_ast.runtime.hashing import content_id

    expected = content_id(Image.new("RGB", (4096, 8192), (9, 2, 3))).hex()
    # (every block of 128 kB or more mapped on its own: a freed block is unmapped at once)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_MMAP_THRESHOLD_": "131072"}
    done = subprocess.run([sys.executable, "-c", _INTERRUPTED], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == expected


_AFTER_MAIN = """
import sys
import threading
import time
from PIL import Image
from mandala_ast.runtime.hashing import content_id

if sys.argv[1] == "pool made":
    content_id(Image.new("RGB", (4096, 4096 * 3), (0, 0, 0)))

def late():
    time.sleep(0.5)  # the main thread has returned by now: the interpreter is shutting down
    print(content_id(Image.new("RGB", (4096, 4096 * 3), (1, 2, 3))).hex(), flush=True)

threading.Thread(target=late).start()
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
@pytest.mark.parametrize("before", ["pool made", "no pool yet"])
def test_a_thread_hashing_an_image_after_the_main_thread_returned_gets_its_id(before):
    from PIL import Image

    from mandala_ast.runtime.hashing import content_id

    expected = content_id(Image.new("RGB", (4096, 4096 * 3), (1, 2, 3))).hex()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _AFTER_MAIN, before], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == expected, done.stderr[-2000:]
