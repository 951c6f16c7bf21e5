"""The ``facerep`` command line (`facerep.cli.app`).

Importing this package asks PyTorch's CPU allocator to back large tensors with transparent huge pages
(``THP_MEM_ALLOC_ENABLE=1``, unless the environment already sets the variable; ``0`` turns it off). A
training step frees and re-allocates gigabytes of activations, and with 4 KB pages the kernel faults
them back in on every step: the paper configuration's CPU step (batch 48) took 37.3 s without and 30.3 s
with it (benchmarks/RESULTS.md, "Training step"). PyTorch reads the variable when it first allocates,
so it is set here, before any torch import.
"""

import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
