"""A container of several large buffers is encoded two items at a time, to the same bytes."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mandala_ast.runtime import side_by_side
from mandala_ast.runtime.hashing import content_id, encode_canonical
from mandala_ast.runtime.side_by_side import SIZED_ITEM_BYTES, encoded_items

LARGE = SIZED_ITEM_BYTES // 8  # float64s: one large item


def _arrays(count: int, length: int = LARGE) -> list[np.ndarray]:
    rng = np.random.default_rng(count)
    return [rng.random(length) for _ in range(count)]


def _serial_id(value, monkeypatch) -> bytes:
    with monkeypatch.context() as patched:
        patched.setattr(side_by_side, "SIZED_ITEM_BYTES", 1 << 62)  # nothing is large
        return content_id(value)


def test_containers_of_small_or_unsized_items_are_left_to_the_caller():
    assert encoded_items([1, "a", 2.0], encode_canonical) is None
    assert encoded_items(_arrays(5, 100), encode_canonical) is None  # arrays, but small
    assert encoded_items(_arrays(1) + [1, 2], encode_canonical) is None  # one large item


def test_the_items_are_encoded_by_two_threads_at_once():
    both_running = threading.Barrier(2, timeout=10)
    threads = set()

    def encode(item):
        threads.add(threading.get_ident())
        if len(threads) <= 2 and item is not items[-1]:
            both_running.wait()  # raises BrokenBarrierError unless the other thread arrives
        return encode_canonical(item)

    items = _arrays(4) + [7]
    assert encoded_items(items, encode) == [encode_canonical(item) for item in items]
    assert len(threads) == 2


@pytest.mark.parametrize("kind", [list, tuple])
def test_a_sequence_of_large_arrays_keeps_the_id_it_has_item_by_item(kind, monkeypatch):
    value = kind([*_arrays(3), "name", 4, *_arrays(2, 10)])
    assert content_id(value) == _serial_id(value, monkeypatch)
    changed = kind([*_arrays(3), "name", 5, *_arrays(2, 10)])
    assert content_id(changed) != content_id(value)


def test_a_dict_of_large_arrays_keeps_its_id_and_pairs_each_key_with_its_own_value(monkeypatch):
    first, second = _arrays(2)
    state = {"layer1.weight": first, "layer2.weight": second, "step": 3}
    assert content_id(state) == _serial_id(state, monkeypatch)
    swapped = {"layer1.weight": second, "layer2.weight": first, "step": 3}
    assert content_id(swapped) != content_id(state)


def test_a_failure_in_either_thread_is_raised_to_the_caller_once_both_are_done():
    items = _arrays(6)

    def encode(item):
        if item is items[3]:
            raise ValueError("cannot encode item 3")
        return encode_canonical(item)

    with pytest.raises(ValueError, match="item 3"):
        encoded_items(items, encode)
    assert all(thread.name != "mandala-ast-hash" for thread in threading.enumerate())


def test_an_items_own_containers_are_not_split_again_across_more_threads():
    threads = set()
    real = encode_canonical

    def encode(item):
        threads.add(threading.get_ident())
        inner = encoded_items(item, real) if isinstance(item, list) else None
        return real(item) if inner is None else b"".join(inner)

    nested = [_arrays(3), _arrays(3)]
    encoded_items([np.zeros(LARGE), np.ones(LARGE), *nested], encode)
    assert len(threads) <= 2


def test_types_without_nbytes_are_sized_by_their_handler(monkeypatch):
    Image = pytest.importorskip("PIL.Image")
    images = [Image.fromarray(np.full((400, 400, 4), shade, np.uint8)) for shade in (1, 2, 3)]
    assert 400 * 400 * 4 >= SIZED_ITEM_BYTES
    calls = []
    monkeypatch.setattr(side_by_side, "_two_threads", lambda items, encode: calls.append(len(items)) or [encode(i) for i in items])
    content_id(images)
    assert calls == [3]
