"""The ``facerep`` command line (`facerep.cli.app`).

Importing this package configures the process's CPU memory for training
(`facerep.cli.allocator.configure_cpu_allocator`: huge pages for PyTorch's large tensors, glibc's
malloc keeping freed blocks for reuse). PyTorch reads its setting when it first allocates, so this runs
here, before any torch import.
"""

from facerep.cli.allocator import configure_cpu_allocator

configure_cpu_allocator()
