"""How PyTorch's CPU threads wait: ``OMP_WAIT_POLICY=PASSIVE`` for the ``facerep`` command, unless set.

PyTorch's CPU kernels run on an OpenMP thread pool. Between two parallel regions, the OpenMP runtime's
threads spin (busy-wait) for a while before they sleep: GNU libgomp, the runtime of the Linux torch
wheels, spins 300,000 times when ``OMP_WAIT_POLICY`` is unset. On an idle machine that saves a wake-up;
on a machine whose cores also run other work (a second training, a data job, another user) a spinning
thread takes the time slice its partner needs to reach the next barrier, and a step with two threads
becomes many times slower than with one (a ResNet-18 step at 64 px, batch 24, on 2 busy cores: 15.7 s
with two threads against 1.9 s with one). With ``PASSIVE`` a waiting thread sleeps at once: the same
step takes 0.74 s with two threads, and a thread with nothing to wait for runs as before
(benchmarks/RESULTS.md, "CPU threads and OpenMP's wait policy"; ``python benchmarks/threads.py``).

The runtime reads the variable once, when torch loads it, so `configure_openmp_wait` must run before
the first ``import torch``: importing this module does it, and ``facerep.cli.app`` and ``facerep.__main__``
import it before anything else. It changes nothing when the environment already says how threads wait
(``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``, ``KMP_BLOCKTIME`` or ``KMP_LIBRARY`` set, even to an empty
string): ``OMP_WAIT_POLICY=ACTIVE facerep run ...`` spins, ``OMP_WAIT_POLICY= facerep run ...`` (empty)
leaves the runtime's own default. Processes the command starts (DataLoader workers, ``torchrun``'s
children) inherit the setting through the environment. ``import facerep`` alone sets nothing.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

#: The wait policy the ``facerep`` command sets.
DEFAULT_WAIT_POLICY = "PASSIVE"

#: Variables through which the user (or a launcher) already chose how OpenMP threads wait: GNU libgomp's
#: and Intel / LLVM OpenMP's. When any is present, `configure_openmp_wait` leaves the environment alone.
WAIT_VARIABLES: tuple[str, ...] = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "KMP_LIBRARY")


def configure_openmp_wait(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in `environ` (default: this process's environment) unless one of
    `WAIT_VARIABLES` is present.

    Returns:
        The value set, or None when the environment had already chosen (and was left as it was).
    """
    env = os.environ if environ is None else environ
    if any(name in env for name in WAIT_VARIABLES):
        return None
    env["OMP_WAIT_POLICY"] = DEFAULT_WAIT_POLICY
    return DEFAULT_WAIT_POLICY


configure_openmp_wait()
