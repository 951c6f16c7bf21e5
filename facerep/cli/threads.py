"""How PyTorch's CPU threads wait: a short spin (``GOMP_SPINCOUNT=1000``) for the ``facerep`` command.

PyTorch's CPU kernels run on an OpenMP thread pool. Between two parallel regions, the OpenMP runtime's
threads spin (busy-wait) for a while before they sleep: GNU libgomp, the runtime of the Linux torch
wheels, spins 300,000 times when nothing is set. On an idle machine that saves a wake-up; on a machine
whose cores also run other work (a second training, a data job, another user) a spinning thread takes
the time slice its partner needs to reach the next barrier, and a step with two threads becomes many
times slower than with one. Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) cures that but costs every
one of the thousands of small parallel regions of a training step a wake-up: the demo's step took
0.53-0.55 s with PASSIVE against 0.38-0.40 s by default on 2 idle cores. A spin of 1,000 keeps the idle
speed (0.38-0.44 s) and avoids most of the cliff on 2 busy cores (0.72 s, against 1.42 s by default and
0.66 s with PASSIVE; benchmarks/RESULTS.md, "CPU threads and OpenMP's wait policy").

The runtime reads the variable once, when torch loads it, so `configure_openmp_wait` must run before
the first ``import torch``: importing this module does it, and ``facerep.cli.app`` and ``facerep.__main__``
import it before anything else. It changes nothing when the environment already says how threads wait
(``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``, ``KMP_BLOCKTIME`` or ``KMP_LIBRARY`` set, even to an empty
string): ``OMP_WAIT_POLICY=PASSIVE facerep run ...`` sleeps at once, ``OMP_WAIT_POLICY= facerep run ...``
(empty) leaves the runtime's own default. Processes the command starts (DataLoader workers, ``torchrun``'s
children) inherit the setting through the environment. ``import facerep`` alone sets nothing.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

#: The variable and value the ``facerep`` command sets: libgomp's spins before a waiting thread sleeps.
DEFAULT_WAIT = ("GOMP_SPINCOUNT", "1000")

#: Variables through which the user (or a launcher) already chose how OpenMP threads wait: GNU libgomp's
#: and Intel / LLVM OpenMP's. When any is present, `configure_openmp_wait` leaves the environment alone.
WAIT_VARIABLES: tuple[str, ...] = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "KMP_LIBRARY")


def configure_openmp_wait(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set `DEFAULT_WAIT` (``GOMP_SPINCOUNT=1000``) in `environ` (default: this process's environment)
    unless one of `WAIT_VARIABLES` is present.

    Returns:
        The value set, or None when the environment had already chosen (and was left as it was).
    """
    env = os.environ if environ is None else environ
    if any(name in env for name in WAIT_VARIABLES):
        return None
    name, value = DEFAULT_WAIT
    env[name] = value
    return value


configure_openmp_wait()
