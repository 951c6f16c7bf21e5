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
  heap's free top to the kernel (``M_TRIM_THRESHOLD`` unbounded), so the next step reuses the pages
  already mapped: a caching allocator for the CPU. Paper step at batch 48: 27.5 -> 23.3 s, kernel time
  10 -> 2.7 s per step; the peak resident memory rises 12.6 -> 15.2 GB (freed blocks stay mapped, and the
  heap fragments a little; it stops growing after a few steps). ``FACEREP_MALLOC_CACHE=0`` turns it off;
  it is skipped where the C library is not glibc.

Figures: benchmarks/RESULTS.md, "Training step".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def configure_cpu_allocator() -> bool:
    """Apply the settings above to this process; returns whether glibc's malloc was configured."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    if os.environ.get("FACEREP_MALLOC_CACHE", "1") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    trimmed = mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # the largest an int holds: never trim
    return bool(mallopt(_M_MMAP_MAX, 0) and trimmed)
