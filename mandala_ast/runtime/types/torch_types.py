"""torch tensors: keyed by their bytes, dtype, shape and ``requires_grad``; stored as raw bytes.

Pickling a tensor writes a storage key that changes from object to object, so equal tensors had
different ids. Here a tensor's key is its class, dtype, shape, ``requires_grad`` and its bytes,
hashed in place for a contiguous CPU tensor. A tensor on another device is copied to the CPU to
be hashed and stored, and comes back on the CPU: the device is not part of its identity. Neither
are ``grad``, the autograd graph, strides or the storage it shares with other tensors (a view
is stored as its own values). Sparse tensors are keyed by their dense values and their layout.

Stored under codec ``torch``: a small JSON header, padded to 64 bytes, then the raw bytes. A
large tensor is loaded memory-mapped (copy-on-write) from its file, so it loads lazily.

A ``state_dict`` (a dict or ``OrderedDict`` of tensors) is keyed as the dict it is, and stored
under codec ``torch:state_dict``: each tensor's dtype, shape and flags pickled with the names,
and its bytes laid out raw after them (``pickled_buffers``), so that loading a large one maps
the file and each tensor views its own bytes, read when touched, instead of unpickling it whole.
"""

from __future__ import annotations

import json
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from . import TypeHandler, add, add_codec, pickled_buffers

__all__ = ["decode", "decode_state_dict", "encode", "encode_state_dict", "load", "load_state_dict", "tensor_key"]

_MAGIC = b"MTT1"
_HEADER = 64  # the bytes start at a multiple of this: aligned for every dtype


def tensor_key(tensor: torch.Tensor) -> tuple:
    # The metadata as one string, not a tuple of five: a state_dict holds hundreds of small
    # tensors, and each item of a key costs an encoding step of its own.
    layout = "" if tensor.layout == torch.strided else str(tensor.layout)
    return (f"{tensor.dtype}|{tuple(tensor.shape)}|{tensor.requires_grad}|{layout}", _bytes(tensor))


def _bytes(tensor: torch.Tensor) -> np.ndarray:
    """The tensor's values as a flat uint8 numpy array: no copy for a contiguous CPU tensor."""
    try:  # the common case in numpy's few steps rather than torch's (a µs each, per tensor)
        # numpy() refuses what it cannot view as it is (another device, a sparse layout, a
        # conjugate or negative bit, bfloat16...); reshape copies most strided views in C
        # order, but a 1-d one (``t[::2]``) stays strided and view() refuses it (ValueError).
        return tensor.detach().numpy().reshape(-1).view(np.uint8)
    except (TypeError, RuntimeError, ValueError):
        pass
    flat = tensor.detach()
    if flat.layout != torch.strided:
        flat = flat.to_dense()
    flat = flat.cpu().resolve_conj().resolve_neg().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy()


def encode(tensor: torch.Tensor) -> bytes | None:
    if tensor.layout != torch.strided:
        return None  # sparse and other layouts: pickled
    header = json.dumps(_meta(tensor)).encode()
    prefix = _MAGIC + struct.pack("<I", len(header)) + header
    prefix += b"\0" * (-len(prefix) % _HEADER)
    return prefix + _bytes(tensor).tobytes()


def _meta(tensor: torch.Tensor) -> dict:
    return {"dtype": str(tensor.dtype).removeprefix("torch."), "shape": list(tensor.shape),
            "requires_grad": tensor.requires_grad, "parameter": isinstance(tensor, torch.nn.Parameter)}


def decode(data: bytes) -> torch.Tensor:
    meta, start = _header(bytes(data[:_HEADER * 64]))
    raw = np.frombuffer(data, dtype=np.uint8, offset=start).copy()
    return _rebuild(meta, raw)


def load(path: Path) -> torch.Tensor:
    """A stored tensor memory-mapped copy-on-write: its pages are read when touched."""
    with open(path, "rb") as file:
        meta, start = _header(file.read(_HEADER * 64))
    size = path.stat().st_size - start
    raw = np.memmap(path, dtype=np.uint8, mode="c", offset=start, shape=(size,)) if size else np.empty(0, np.uint8)
    return _rebuild(meta, raw)


def _header(head: bytes) -> tuple[dict, int]:
    if head[:4] != _MAGIC:
        raise ValueError("not a stored tensor")
    (length,) = struct.unpack("<I", head[4:8])
    start = 8 + length
    return json.loads(head[8:start]), start + (-start % _HEADER)


def _rebuild(meta: dict, raw: np.ndarray) -> torch.Tensor:
    dtype = getattr(torch, meta["dtype"])
    if raw.size:
        tensor = torch.from_numpy(raw).view(dtype).reshape(meta["shape"])
    else:  # torch views no bytes of an empty array as another dtype (its stride is 0)
        tensor = torch.empty(meta["shape"], dtype=dtype)
    if meta["parameter"]:
        return torch.nn.Parameter(tensor, requires_grad=meta["requires_grad"])
    return tensor.requires_grad_(meta["requires_grad"])


def encode_state_dict(state: dict) -> bytes | None:
    """A dict of dense tensors with text names as pickled metadata and raw bytes; None (the
    dict is pickled) for any other dict. A tensor under two names (tied weights) is stored once
    and comes back shared; an ``OrderedDict``'s attributes (a state_dict's ``_metadata``) too."""
    if type(state) not in (dict, OrderedDict) or not state:
        return None
    tensors: list[tuple[dict, np.ndarray]] = []
    seen: dict[int, int] = {}
    entries = []
    for name, tensor in state.items():
        if type(name) is not str or type(tensor) not in _TENSOR_TYPES or tensor.layout != torch.strided:
            return None
        if id(tensor) not in seen:
            seen[id(tensor)] = len(tensors)
            tensors.append((_meta(tensor), np.ascontiguousarray(_bytes(tensor))))
        entries.append((name, seen[id(tensor)]))
    attributes = dict(getattr(state, "__dict__", {}))
    return pickled_buffers.dumps((type(state) is OrderedDict, entries, tensors, attributes))


def decode_state_dict(data: bytes) -> dict:
    return _state_dict(pickled_buffers.loads(data))


def load_state_dict(path: Path) -> dict:
    """A stored state_dict whose tensors view its file, mapped copy-on-write: lazy, writable."""
    return _state_dict(pickled_buffers.load_file(path))


def _state_dict(parts: tuple) -> dict:
    ordered, entries, stored, attributes = parts
    tensors = [_rebuild(meta, raw) for meta, raw in stored]
    state = (OrderedDict if ordered else dict)((name, tensors[index]) for name, index in entries)
    for attribute, value in attributes.items():
        setattr(state, attribute, value)
    return state


_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)

add(TypeHandler(torch.Tensor, tensor_key, encode, decode, "torch", load, nbytes=lambda tensor: tensor.nelement() * tensor.element_size()))
# Chosen by content, not type: a dict is keyed as a dict, and only stored this way.
add_codec(TypeHandler(dict, None, encode_state_dict, decode_state_dict, "torch:state_dict", load_state_dict), "torch")
