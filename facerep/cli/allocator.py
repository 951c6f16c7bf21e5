"""CPU memory settings for training: reuse freed memory instead of asking the kernel for it again.

A training step allocates and frees gigabytes of activations. By default glibc serves every block over
32 MB with a fresh ``mmap`` and unmaps it on ``free``, so each step the kernel faults the memory back in
and zeroes it: on the paper configuration's CPU step (batch 48) a fifth of all CPU time was kernel time
(10 of 50 CPU-seconds per step). `configure_cpu_allocator` changes two things, both before the first
large allocation:

- ``THP_MEM_ALLOC_ENABLE=1`` (unless the environment sets it; ``0`` turns it off): PyTorch backs tensors
  of 2 MB and more with transparent huge pages, 512x fewer page faults for the memory that is still
  faulted in (paper step at batch 48: 37.3 -> 30.3 s).
- glibc's ``malloc`` keeps large blocks in the process heap (``M_MMAP_MAX = 0``) and never returns the
  heap's free top to the kernel (``M_TRIM_THRESHOLD = -1``), so the next step reuses the pages
  already mapped: a caching allocator for the CPU. Paper step at batch 48: 27.5 -> 21.8 s, kernel time
  10 -> 0.1 s per step; the peak resident memory rises 12.6 -> 16.1 GB (freed blocks stay mapped, and the
  heap fragments a little; it stops growing after a few steps). ``FACEREP_MALLOC_CACHE=0`` turns it off;
  it is skipped where the C library is not glibc.

It applies to the whole process that imports `facerep.cli` (the ``facerep`` command, the benchmark
scripts, and the DataLoader workers such a process forks), not to ``import facerep``.

Figures: benchmarks/RESULTS.md, "Training step".
"""

from __future__ import annotations

import ctypes
import os

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError, AttributeError):  # not a glibc system (or no confstr at all)
        return False


def configure_cpu_allocator() -> bool:
    """Apply the settings above to this process; returns whether glibc's malloc was configured."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    if os.environ.get("FACEREP_MALLOC_CACHE", "1") == "0" or not _is_glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library already loaded into this process
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    never_trim = mallopt(_M_TRIM_THRESHOLD, -1)  # -1: trimming off entirely (mallopt(3))
    return bool(mallopt(_M_MMAP_MAX, 0) and never_trim)
