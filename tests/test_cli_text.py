"""What the CLI prints is the text it means: brackets in messages, paths and help are not rich markup."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from facerep.cli.app import main

BRACKETED = ["facerep[detect]", "x[/b]y", "[bold]loud[/bold]", "[/]", "a:ok:b", "trailing\\"]


def _error_line(capsys: Any, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()  # a "device: ..." line may come first
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], lines
    return lines[-1]


@pytest.mark.parametrize("name", BRACKETED)
def test_error_messages_print_brackets_and_colons_as_they_are(capsys: Any, name: str) -> None:
    line = _error_line(capsys, ["plugins", "--kind", name])
    assert line.startswith(f"error: unknown kind {name!r}")


def test_paths_with_markup_print_literally(tmp_path: Path, capsys: Any) -> None:
    photo = tmp_path / "x[/b]y [red]z.png"
    line = _error_line(capsys, ["transfer", str(photo), str(photo), "--run", str(tmp_path)])
    assert line == f"error: {photo}: no such photo or folder"


def _help_text(capsys: Any, argv: list[str], monkeypatch: Any) -> str:
    monkeypatch.setenv("COLUMNS", "250")
    main(argv)
    out = capsys.readouterr().out
    return re.sub(r"[\s│]+", " ", out)


@pytest.mark.parametrize("command", ["transfer", "reconstruct"])
def test_help_keeps_bracketed_words(capsys: Any, monkeypatch: Any, command: str) -> None:
    text = _help_text(capsys, [command, "--help"], monkeypatch)
    assert "needs facerep[detect]" in text


def test_plain_help_is_idempotent_and_leaves_plain_text() -> None:
    from facerep.cli.app import _plain

    once = _plain("needs facerep[detect] and [/b]")
    assert _plain(once) == once
    assert _plain("no brackets: a [1] b") == "no brackets: a [1] b"
    assert Console().render_str(once).plain == "needs facerep[detect] and [/b]"


def test_plugin_load_errors_print_their_text(capsys: Any, monkeypatch: Any) -> None:
    from facerep.core.registry import PluginLoadError, get_registry

    registry = get_registry()
    broken = PluginLoadError("pkg[extra]", "demo[/b]", "needs: pip install 'pkg[extra]'")
    monkeypatch.setattr(registry, "_import_errors", [*registry._import_errors, broken])
    monkeypatch.setenv("COLUMNS", "250")
    main(["plugins", "--kind", "optimizer"])
    out = capsys.readouterr().out
    assert (
        "plugin 'demo[/b]' from package 'pkg[extra]' failed to load: needs: pip install 'pkg[extra]'" in out
    )


def test_bench_tables_print_run_names_and_data_root_as_text() -> None:
    from facerep.bench.published import CONDITIONS
    from facerep.bench.results import Cell, TableRow
    from facerep.bench.tables import BenchTables, print_tables

    row = TableRow("[/b]run[x]", "run", {c: Cell(1.0, 0.1, 3) for c in CONDITIONS})
    tables = BenchTables({"identity": [row]}, [], {"data_root": "/data/[/]micc"})
    console = Console(record=True, width=200)
    print_tables(tables, console)
    text = console.export_text()
    assert "[/b]run[x]" in text and "data root: /data/[/]micc" in text


# -- messages of a trained run's commands ----------------------------------------------------------------


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic face photo at a path with markup in it (``.../face[/b] [detect].png``)."""
    from facerep.data.photos import find_photos
    from facerep.world.cache import ensure_world

    world = ensure_world("tiny", 0, progress=False)
    source = find_photos(world / "celeba" / "img_align_celeba")[0]
    target = tmp_path_factory.mktemp("photos") / "face[" / "b] [detect].png"
    target.parent.mkdir()
    shutil.copy(source, target)
    return target


def test_transfer_summary_names_the_photos_as_they_are(
    tiny_trained_run: Path, photo: Path, tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "out[/i]"
    main(["transfer", str(photo), str(photo), "--run", str(tiny_trained_run), "--out", str(out)])
    err = capsys.readouterr().err
    assert "[/b]" in str(photo) and "[/i]" in str(out)
    assert f"transferred {photo.name}'s expression onto {photo.name}: {out.resolve() / 'transfer.obj'}" in err


def test_missing_detector_names_the_pip_command(
    tiny_trained_run: Path, photo: Path, capsys: Any, monkeypatch: Any
) -> None:
    """The detector's package is missing (simulated where it is installed): the install line shows whole."""
    from facerep.common.errors import FacerepError
    from facerep.data import photos
    from facerep.data.dlib_models import DLIB_INSTALL

    def missing(self: Any, *args: Any, **kwargs: Any) -> None:
        raise FacerepError(f"face detector 'dlib' needs its package: {DLIB_INSTALL}")

    monkeypatch.setattr(photos.LandmarkDetector, "__init__", missing)
    line = _error_line(
        capsys, ["transfer", str(photo), str(photo), "--run", str(tiny_trained_run), "--detect"]
    )
    assert line == f"error: face detector 'dlib' needs its package: {DLIB_INSTALL}"
    assert "pip install 'facerep[detect]'" in line


def test_greyscale_16_bit_photo_is_not_white_in_the_transfer_panel(
    tiny_trained_run: Path, photo: Path, tmp_path: Path
) -> None:
    grey = np.asarray(Image.open(photo).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    main(
        [
            "transfer",
            str(tmp_path / "grey16.png"),
            str(photo),
            "--run",
            str(tiny_trained_run),
            "--out",
            str(tmp_path),
        ]
    )
    panel = np.asarray(Image.open(tmp_path / "panel.png"))
    source_crop = panel[:, : panel.shape[0]]
    assert 30 < source_crop.mean() < 225 and source_crop.std() > 10


def test_training_summary_prints_a_bracketed_run_folder(tmp_path: Path, capsys: Any) -> None:
    """The closing lines of a run name its folder as it is (a folder holding ``[/b]`` used to crash rich)."""
    from facerep.core.recipe import load_recipe
    from facerep.testing.runs import tiny_recipe_text
    from facerep.train.options import TrainOptions
    from facerep.train.trainer import Trainer

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(tiny_recipe_text("gcn_albedo_only", 1))
    out = tmp_path / "r[/b]un[x]"
    Trainer(load_recipe(recipe), TrainOptions(out=out, quiet=False)).fit()
    printed = capsys.readouterr().err.replace("\n", "")  # the run's console is stderr
    assert f"run directory {out}" in printed
    assert f"facerep bench {out}" in printed
