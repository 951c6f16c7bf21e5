"""The CLI's foundation commands: plugins, recipe show / diff / validate, exit codes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from facerep.cli.app import main


def run_cli(*args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "facerep", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_recipe_show_no_adv_has_no_adversarial_loss(capsys: pytest.CaptureFixture[str]) -> None:
    main(["recipe", "show", "recipes/no_adv.yaml"])
    out = capsys.readouterr().out
    assert "photometric:" in out and "recognition:" in out
    assert "adversarial:" not in out and "wgan_div" not in out and "rmsprop" not in out
    assert "\ncritic:" not in out and "\n  critic:" not in out


def test_recipe_show_origin_and_stage(capsys: pytest.CaptureFixture[str]) -> None:
    main(["recipe", "show", "demo", "--origin", "--stage", "unet_albedo"])
    out = capsys.readouterr().out
    assert re.search(
        r"vertices: 2000 +# \S*demo_pixels\.yaml:13\n", out
    )  # from demo_pixels.yaml, demo's ancestor
    assert "type: unet" in out


def test_misspelt_type_exits_2_with_file_line_and_suggestion(tmp_path: Path) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("name: bad\noptim:\n  model:\n    type: adamm\n")
    code, out = run_cli("recipe", "validate", str(recipe))
    assert code == 2
    assert f"{recipe}:4" in out and "did you mean 'adam'" in out


def test_bad_override_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["recipe", "show", "full", "--set", "trian.epochs=3"])
    assert info.value.code == 2
    assert "did you mean 'train'" in capsys.readouterr().err


def test_recipe_diff_lists_changes(capsys: pytest.CaptureFixture[str]) -> None:
    main(["recipe", "diff", "full", "laplacian_smooth"])
    out = capsys.readouterr().out
    assert "losses.smooth.type" in out and "laplacian_smooth" in out


def test_plugins_lists_components_with_origin(capsys: pytest.CaptureFixture[str]) -> None:
    main(["plugins", "--kind", "optimizer"])
    out = capsys.readouterr().out
    assert "rmsprop" in out and "facerep" in out


def test_a_command_exit_code_reaches_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import facerep.cli.app as cli

    monkeypatch.setattr(cli, "app", lambda args, standalone_mode: 3)  # a command that ended with Exit(3)
    with pytest.raises(SystemExit) as info:
        cli.main(["anything"])
    assert info.value.code == 3


def test_usage_errors_exit_2_with_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["recipe", "show"])
    assert info.value.code == 2
    assert "Missing argument" in capsys.readouterr().err


def test_the_command_asks_for_huge_pages_unless_the_environment_says_otherwise() -> None:
    import os

    code = "import os, facerep.cli; print(os.environ['THP_MEM_ALLOC_ENABLE'])"
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert default.stdout.strip() == "1", default.stderr
    kept = subprocess.run(
        [sys.executable, "-c", code], env={**env, "THP_MEM_ALLOC_ENABLE": "0"}, capture_output=True, text=True
    )
    assert kept.stdout.strip() == "0", kept.stderr


_MALLOC_PROBE = """
import ctypes, facerep.cli
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
block = libc.malloc(64 << 20)
print(libc.mallinfo2().hblkhd >= 64 << 20)  # the block was mmap'd (returned to the kernel when freed)
"""


def test_the_command_keeps_freed_memory_for_reuse_unless_told_not_to() -> None:
    import ctypes
    import os
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("the malloc setting applies to glibc only")
    if not hasattr(ctypes.CDLL(None), "mallinfo2"):
        pytest.skip("this glibc has no mallinfo2 (2.33 and later) to observe where a block came from")
    env = {k: v for k, v in os.environ.items() if k != "FACEREP_MALLOC_CACHE"}
    run = [sys.executable, "-c", _MALLOC_PROBE]
    configured = subprocess.run(run, env=env, capture_output=True, text=True)
    assert configured.stdout.strip() == "False", configured.stderr  # a 64 MB block came from the heap
    off = subprocess.run(run, env={**env, "FACEREP_MALLOC_CACHE": "0"}, capture_output=True, text=True)
    assert off.stdout.strip() == "True", off.stderr  # glibc's default: mmap'd


def test_recipe_validate_checks_train_options_as_run_does(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: demo\ntrain:\n  validate:\n    evry: 3\n")
    code, out = run_cli("recipe", "validate", str(bad))
    assert code == 2 and f"{bad}:4" in out and "did you mean 'every'" in out
    bad.write_text("extends: demo\ntrain:\n  lr_decay: linear\n")
    code, out = run_cli("recipe", "validate", str(bad))
    assert code == 2 and "lr_decay must be 'none' or 'cosine'" in out
