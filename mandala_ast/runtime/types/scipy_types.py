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
import threading

import numpy as np
import scipy.sparse as sparse

from . import TypeHandler, add

__all__ = ["matrix_key"]

#: Stored entries from which the two checks of canonical form run on two threads (a thread
#: costs ~50 µs; the checks of a million entries ~2 ms).
_CHECKED_SIDE_BY_SIDE = 1 << 20


def matrix_key(matrix) -> tuple:
    csr = matrix if _canonical_csr(matrix) else _canonical_copy(matrix)
    # Index dtypes depend on how a matrix was built: int32 whenever the values fit.
    small = csr.nnz < 2**31 and max(matrix.shape, default=0) < 2**31
    index_dtype = np.int32 if small else np.int64
    index = (np.asarray(csr.indptr, dtype=index_dtype), np.asarray(csr.indices, dtype=index_dtype))
    return (tuple(matrix.shape), matrix.dtype.str, *index, np.asarray(csr.data))


def _canonical_csr(matrix) -> bool:
    """Already in canonical CSR form (checked in C, no copy): sorted, no duplicates, no zeros.

    Each check is a pass over a buffer, run before the hash: one after the other they held a
    100 MB matrix at ~55% of numpy's hashing rate. Both release the GIL, so a large matrix has
    its indices checked on a second thread while this one looks for zeros."""
    if matrix.format != "csr":
        return False
    if matrix.nnz < _CHECKED_SIDE_BY_SIDE:
        return matrix.has_canonical_format and not _holds_zeros(matrix.data)
    result: list[bool] = []
    sorted_check = threading.Thread(target=lambda: result.append(matrix.has_canonical_format), name="mandala-ast-hash")
    sorted_check.start()
    try:
        zeros = _holds_zeros(matrix.data)
    finally:
        sorted_check.join()
    return result == [True] and not zeros


def _holds_zeros(data: np.ndarray) -> bool:
    # A number's truth is "not 0" (NaN is true, -0.0 false, as for ``== 0``), and ``all`` reads
    # it without the boolean array ``data == 0`` makes; other dtypes compare as scipy does.
    if data.dtype.kind in "biufc":
        return not data.all()
    return bool((data == 0).any())


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
