"""torch tensors: keyed by their bytes, dtype, shape and ``requires_grad``; stored as raw bytes.

Pickling a tensor writes a storage key that changes from object to object, so equal tensors had
different ids. Here a tensor's key is its class, dtype, shape, ``requires_grad`` and its bytes,
hashed in place for a contiguous CPU tensor. A tensor on another device is copied to the CPU to
be hashed and stored, and comes back on the CPU: the device is not part of its identity. Neither
are ``grad``, the autograd graph, strides or the storage it shares with other tensors (a view
is stored as its own values). Sparse tensors are keyed by their dense values and their layout.

Stored under codec ``torch``: a small JSON header, padded to 64 bytes, then the raw bytes. A
large tensor is loaded memory-mapped (copy-on-write) from its file, so it loads lazily.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch

from . import TypeHandler, add

__all__ = ["decode", "encode", "load", "tensor_key"]

_MAGIC = b"MTT1"
_HEADER = 64  # the bytes start at a multiple of this: aligned for every dtype


def tensor_key(tensor: torch.Tensor) -> tuple:
    # The metadata as one string, not a tuple of five: a state_dict holds hundreds of small
    # tensors, and each item of a key costs an encoding step of its own.
    layout = "" if tensor.layout == torch.strided else str(tensor.layout)
    return (f"{tensor.dtype}|{tuple(tensor.shape)}|{tensor.requires_grad}|{layout}", _bytes(tensor))


def _bytes(tensor: torch.Tensor) -> np.ndarray:
    """The tensor's values as a uint8 numpy array: no copy for a contiguous CPU tensor."""
    if tensor.is_contiguous() and tensor.device.type == "cpu" and not (tensor.is_conj() or tensor.is_neg()):
        try:  # the common case, in numpy's few steps rather than torch's (a µs each, per tensor)
            return tensor.detach().numpy().reshape(-1).view(np.uint8)
        except (TypeError, RuntimeError):  # bfloat16 and other dtypes numpy lacks; sparse layouts
            pass
    flat = tensor.detach()
    if flat.layout != torch.strided:
        flat = flat.to_dense()
    flat = flat.cpu().resolve_conj().resolve_neg().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy()


def encode(tensor: torch.Tensor) -> bytes | None:
    if tensor.layout != torch.strided:
        return None  # sparse and other layouts: pickled
    meta = {"dtype": str(tensor.dtype).removeprefix("torch."), "shape": list(tensor.shape),
            "requires_grad": tensor.requires_grad, "parameter": isinstance(tensor, torch.nn.Parameter)}
    header = json.dumps(meta).encode()
    prefix = _MAGIC + struct.pack("<I", len(header)) + header
    prefix += b"\0" * (-len(prefix) % _HEADER)
    return prefix + _bytes(tensor).tobytes()


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
    tensor = torch.from_numpy(raw).view(dtype).reshape(meta["shape"])
    if meta["parameter"]:
        return torch.nn.Parameter(tensor, requires_grad=meta["requires_grad"])
    return tensor.requires_grad_(meta["requires_grad"])


add(TypeHandler(torch.Tensor, tensor_key, encode, decode, "torch", load))
