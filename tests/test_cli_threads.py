"""The ``facerep`` command's OpenMP wait: a 1,000-spin wait by default, set before torch loads, the user's
own setting kept (facerep/cli/threads.py; figures in benchmarks/RESULTS.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from facerep.cli.threads import WAIT_VARIABLES, configure_openmp_wait


def test_a_short_spin_is_set_only_when_the_environment_has_not_chosen() -> None:
    env: dict[str, str] = {"PATH": "/bin"}
    assert configure_openmp_wait(env) == "1000"
    assert env == {"PATH": "/bin", "GOMP_SPINCOUNT": "1000"}
    for name, value in [
        ("OMP_WAIT_POLICY", "ACTIVE"),
        ("OMP_WAIT_POLICY", ""),  # empty: "leave the runtime's own default"
        ("GOMP_SPINCOUNT", "10000"),
        ("KMP_BLOCKTIME", "0"),
    ]:
        env = {name: value}
        assert configure_openmp_wait(env) is None
        assert env == {name: value}


def _spin_count(args: list[str], extra_env: dict[str, str]) -> int:
    """GOMP_SPINCOUNT that libgomp reports at its start in a fresh ``python ARGS`` process."""
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES}
    env.update(extra_env, OMP_DISPLAY_ENV="VERBOSE", OMP_NUM_THREADS="2")
    done = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"GOMP_SPINCOUNT = '(\d+)'", done.stderr)
    if found is None:
        pytest.skip("torch's OpenMP runtime is not GNU libgomp (no OMP_DISPLAY_ENV report to check)")
    return int(found.group(1))


def test_the_command_sets_its_spin_count_before_torch_loads_openmp() -> None:
    # the console entry point (pyproject: facerep.cli.app:main): libgomp starts with a short spin
    assert _spin_count(["-c", "from facerep.cli.app import main; main(['version'])"], {}) == 1000
    # the user's choice wins, here through `python -m facerep`: ACTIVE spins (libgomp: 3e10 spins)
    assert _spin_count(["-m", "facerep", "version"], {"OMP_WAIT_POLICY": "ACTIVE"}) > 10**9
