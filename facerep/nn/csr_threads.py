"""A CPU sparse (CSR) x dense product on all of torch's threads, written into a torch tensor.

scipy's CSR x dense kernel runs on one core. Rows of a product are independent, so
`csr_matmul` splits the matrix into row blocks with equal nonzero counts, one per torch intra-op
thread, and runs scipy's kernel on each block in a thread of its own (the kernel releases the GIL),
writing straight into that block's rows of the output: no per-thread temporaries, no concatenation.
Every output row is computed by the same kernel over the same nonzeros in the same order, so the
result is bitwise equal to ``m @ x``. Small products (below `MIN_WORK` multiply-adds) stay on the
calling thread, where starting threads would cost more than it saves.

Measured on 2 cores (benchmarks/csr_threads.py): a 37k-vertex mesh Laplacian (6 nonzeros per row)
times (37202, 144 ... 768) runs 1.6-1.75x faster; the paper's shape decoder, forward + backward at
batch 48, 1.04x (its products are a quarter of its time). On a 2k-vertex mesh the products take
well under a millisecond and threads do not pay, hence `MIN_WORK`.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

try:  # scipy's in-place kernel, Y += A @ X; stable for many releases, but not public API
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - a scipy without it falls back to the single-threaded product
    _csr_matvecs = None

#: Products with fewer multiply-adds (nonzeros x columns of x) than this run on the calling thread.
MIN_WORK = 16_000_000

_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] = (0, 0)  # (process id, workers): a forked child or a new thread count rebuilds
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_key
    key = (os.getpid(), workers)
    with _pool_lock:
        if _pool is None or _pool_key != key:
            if _pool is not None and _pool_key[0] == key[0]:
                _pool.shutdown(wait=False)  # a new thread count: let the old workers go
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="facerep-csr")
            _pool_key = key
        return _pool


def row_blocks(indptr: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Split rows [0, R) into at most `parts` contiguous blocks of about equal nonzero counts.

    `indptr` is a CSR row-pointer array (R + 1,). Returns (start, stop) row ranges covering all rows.
    """
    rows = len(indptr) - 1
    targets = np.linspace(0, indptr[-1], parts + 1)[1:-1]
    cuts = np.searchsorted(indptr, targets, side="left").clip(0, rows)
    bounds = np.unique(np.concatenate([[0], cuts, [rows]]))
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def csr_matmul(m: sp.csr_matrix, x: Tensor, threads: int | None = None) -> Tensor:
    """(R, C) scipy CSR `m` @ (C, F) contiguous CPU tensor `x` -> new (R, F) tensor, same dtype as `x`.

    `m`'s data must have `x`'s dtype (float32 or float64). `threads` defaults to
    ``torch.get_num_threads()``.
    """
    threads = torch.get_num_threads() if threads is None else threads
    x_np = x.numpy()
    if m.dtype != x_np.dtype:
        raise TypeError(f"csr_matmul: the matrix is {m.dtype}, x is {x_np.dtype}; give both one dtype")
    rows, cols = m.shape
    features = x_np.shape[1]
    if _csr_matvecs is None or threads < 2 or m.nnz * features < MIN_WORK:
        return torch.from_numpy(np.ascontiguousarray(m @ x_np))
    out = torch.empty(rows, features, dtype=x.dtype)
    out_np = out.numpy()
    flat_x = x_np.reshape(-1)

    def block(bounds: tuple[int, int]) -> None:
        start, stop = bounds
        target = out_np[start:stop]
        target.fill(0)
        _csr_matvecs(
            stop - start,
            cols,
            features,
            m.indptr[start : stop + 1],
            m.indices,
            m.data,
            flat_x,
            target.reshape(-1),
        )

    blocks = row_blocks(m.indptr, threads)
    pending = [_executor(threads - 1).submit(block, b) for b in blocks[1:]]
    try:
        block(blocks[0])
    finally:  # every block is done (or failed) before `out` is returned or the error propagates
        for job in pending:
            job.result()
    return out
