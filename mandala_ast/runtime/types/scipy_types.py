"""scipy.sparse matrices and arrays: keyed by their canonical CSR form.

Equal matrices can hold different buffers: COO built vs dense built, duplicates summed or not,
indices sorted or not (and reading ``has_sorted_indices`` caches a flag that pickle writes).
The key is the class, shape, dtype and the CSR form with duplicates summed, indices sorted and
explicit zeros dropped (int64 indices), computed on a copy. Stored uncompressed with
``scipy.sparse.save_npz`` (codec ``sparse``), which keeps the format (CSR, COO, ...).
"""

from __future__ import annotations

import io

import numpy as np
import scipy.sparse as sparse

from . import TypeHandler, add

__all__ = ["matrix_key"]


def matrix_key(matrix) -> tuple:
    csr = sparse.csr_array(matrix, copy=True)
    csr.sum_duplicates()  # also sorts the indices
    csr.eliminate_zeros()
    index = (np.asarray(csr.indptr, dtype=np.int64), np.asarray(csr.indices, dtype=np.int64))
    return (tuple(matrix.shape), matrix.dtype.str, *index, csr.data)


def _encode(matrix) -> bytes:
    buffer = io.BytesIO()
    sparse.save_npz(buffer, matrix, compressed=False)
    return buffer.getvalue()


def _decode(data: bytes):
    return sparse.load_npz(io.BytesIO(data))


for _kind in (sparse.spmatrix, sparse.sparray):
    add(TypeHandler(_kind, matrix_key, _encode, _decode, "sparse"))
