"""scipy.sparse matrices and arrays: keyed by their canonical CSR form.

Equal matrices can hold different buffers: COO built vs dense built, duplicates summed or not,
indices sorted or not (and reading ``has_sorted_indices`` caches a flag that pickle writes).
The key is the class, shape, dtype and the CSR form with duplicates summed, indices sorted and
explicit zeros dropped (int32 indices when they fit), computed on a copy unless the matrix
is in that form already. Stored uncompressed with
``scipy.sparse.save_npz`` (codec ``sparse``), which keeps the format (CSR, COO, ...).
"""

from __future__ import annotations

import io

import numpy as np
import scipy.sparse as sparse

from . import TypeHandler, add

__all__ = ["matrix_key"]


def matrix_key(matrix) -> tuple:
    csr = matrix if _canonical_csr(matrix) else _canonical_copy(matrix)
    # Index dtypes depend on how a matrix was built: int32 whenever the values fit.
    small = csr.nnz < 2**31 and max(matrix.shape, default=0) < 2**31
    index_dtype = np.int32 if small else np.int64
    index = (np.asarray(csr.indptr, dtype=index_dtype), np.asarray(csr.indices, dtype=index_dtype))
    return (tuple(matrix.shape), matrix.dtype.str, *index, np.asarray(csr.data))


def _canonical_csr(matrix) -> bool:
    """Already in canonical CSR form (checked in C, no copy): sorted, no duplicates, no zeros."""
    return matrix.format == "csr" and matrix.has_canonical_format and not (matrix.data == 0).any()


def _canonical_copy(matrix):
    csr = sparse.csr_array(matrix, copy=True)
    csr.sum_duplicates()  # also sorts the indices
    csr.eliminate_zeros()
    return csr


def _encode(matrix) -> bytes:
    buffer = io.BytesIO()
    sparse.save_npz(buffer, matrix, compressed=False)
    return buffer.getvalue()


def _decode(data: bytes):
    return sparse.load_npz(io.BytesIO(data))


for _kind in (sparse.spmatrix, sparse.sparray):
    add(TypeHandler(_kind, matrix_key, _encode, _decode, "sparse"))
