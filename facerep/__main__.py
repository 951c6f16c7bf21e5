"""``python -m facerep`` (also what ``torchrun -m facerep run RECIPE`` starts)."""

# isort: off
# First, before any import loads torch: OpenMP's wait policy (facerep/cli/threads.py).
import facerep.cli.threads  # noqa: F401

# isort: on
from facerep.cli.app import main

if __name__ == "__main__":
    main()
