"""`facerep.nn.csr_threads`: the row-split CSR product equals scipy's, bit for bit, on any thread count."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from facerep.nn import csr_threads
from facerep.nn.csr_threads import csr_matmul, row_blocks


def _random_csr(rows: int, cols: int, density: float, dtype: type, seed: int) -> sp.csr_matrix:
    m = sp.random(rows, cols, density=density, format="csr", dtype=dtype, random_state=seed)
    m.indptr = m.indptr.astype(np.int32)
    m.indices = m.indices.astype(np.int32)
    return m


@pytest.mark.parametrize("threads", [2, 3, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threaded_product_is_bitwise_scipys(threads: int, dtype: type, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(csr_threads, "MIN_WORK", 0)  # the threaded path at a test's size
    m = _random_csr(997, 613, 0.02, dtype, seed=threads)
    m[10:40] = 0  # empty rows inside a block
    m.eliminate_zeros()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((613, 300)).astype(dtype))
    out = csr_matmul(m, x, threads=threads)
    assert out.dtype == x.dtype and out.shape == (997, 300)
    np.testing.assert_array_equal(out.numpy(), m @ x.numpy())


def test_small_products_and_one_thread_take_scipys_own_path() -> None:
    m = _random_csr(50, 40, 0.1, np.float32, seed=1)
    assert m.nnz * 3 < csr_threads.MIN_WORK
    x = torch.rand(40, 3)
    np.testing.assert_array_equal(csr_matmul(m, x, threads=4).numpy(), m @ x.numpy())
    np.testing.assert_array_equal(csr_matmul(m, x, threads=1).numpy(), m @ x.numpy())


def test_row_blocks_cover_every_row_once_with_balanced_nonzeros() -> None:
    indptr = np.concatenate([[0], np.cumsum(np.r_[np.full(100, 1), np.full(100, 9)])])
    blocks = row_blocks(indptr, 4)
    assert blocks[0][0] == 0 and blocks[-1][1] == 200
    assert all(a[1] == b[0] for a, b in zip(blocks[:-1], blocks[1:], strict=True))
    counts = [indptr[b] - indptr[a] for a, b in blocks]
    assert max(counts) - min(counts) <= 9 + 1  # within one heavy row of equal
    # all the nonzeros in one row: fewer blocks than asked, never an empty one
    skewed = np.array([0, 0, 1000, 1000, 1000])
    assert row_blocks(skewed, 4) == [(0, 2), (2, 4)]


def test_mismatched_dtypes_are_a_clear_error() -> None:
    m = _random_csr(50, 40, 0.1, np.float64, seed=3)
    with pytest.raises(TypeError, match="one dtype"):
        csr_matmul(m, torch.rand(40, 3))
