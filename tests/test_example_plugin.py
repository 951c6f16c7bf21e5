"""The third-party example package (examples/facerep-plugin-example): installed with pip into a temporary
folder, found through its ``facerep`` entry point, shown by ``facerep plugins`` with its package name and
version, and used by its recipe."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from facerep.core.recipe import load_recipe
from facerep.core.registry import Registry, reset_registry
from facerep.testing import tiny_context
from facerep.train.recipe_check import check_recipe

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "facerep-plugin-example"
RECIPE = EXAMPLE / "recipes" / "spiral.yaml"
PACKAGE, VERSION = "facerep-plugin-example", "0.1.0"


def _forget_example_modules() -> None:
    for name in [m for m in sys.modules if m.startswith("facerep_plugin_example")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``pip install --no-deps --no-build-isolation --target TMP`` of a copy of the example, on sys.path."""
    work = tmp_path_factory.mktemp("example-plugin")
    source = work / "source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = work / "site"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    command += ["--quiet", "--target", str(target), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"pip install of the example failed:\n{done.stdout}\n{done.stderr}"
    _forget_example_modules()  # a copy installed in the environment (CI) must not shadow this one
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    reset_registry()
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        importlib.invalidate_caches()
        _forget_example_modules()
        reset_registry()


def test_pip_installs_the_package_and_its_entry_point(installed: Path) -> None:
    dist = installed / f"facerep_plugin_example-{VERSION}.dist-info"
    assert (installed / "facerep_plugin_example" / "decoder.py").is_file()
    assert "spiral = facerep_plugin_example.plugin" in (dist / "entry_points.txt").read_text()
    assert "[facerep]" in (dist / "entry_points.txt").read_text()


def test_discovered_through_its_entry_point(installed: Path) -> None:
    registry = Registry()
    comp = registry.get("shape_decoder", "spiral")
    assert (comp.package, comp.version) == (PACKAGE, VERSION)
    assert comp.factory.__module__ == "facerep_plugin_example.decoder"
    assert Path(sys.modules[comp.factory.__module__].__file__).is_relative_to(installed)
    assert registry.get("shape_decoder", f"{PACKAGE}:spiral") is not None  # the qualified form works too
    assert not registry.load_errors


def test_plugins_command_shows_package_and_version(
    installed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from facerep.cli.app import main

    monkeypatch.setenv("COLUMNS", "240")
    reset_registry()
    main(["plugins", "--kind", "shape_decoder"])
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if " spiral " in row)
    assert f"{PACKAGE} {VERSION}" in line and "shape_decoder" in line


def test_recipe_validates_and_the_decoder_trains(installed: Path) -> None:
    registry = Registry()
    recipe = load_recipe(RECIPE)
    checked = check_recipe(recipe, registry)
    assert ("gcn_albedo", "model.shape_decoder", "shape_decoder:spiral") in checked
    assert ("unet_albedo", "model.shape_decoder", "shape_decoder:spiral") in checked
    node = recipe.stage("gcn_albedo").get("model.shape_decoder")
    assert node["type"] == "spiral" and "K" not in node  # _replace_ dropped the gcn arguments
    context = tiny_context(registry=registry)
    torch.manual_seed(0)
    decoder = registry.build("shape_decoder", {**node, "channels": [16, 8, 8, 8]}, context)
    fm = context["face_model"]
    target = fm.sample(2, generator=torch.Generator().manual_seed(3))
    codes = torch.randn(2, 128), torch.randn(2, 64)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        vertices = decoder(*codes)
        assert vertices.shape == (2, fm.num_vertices, 3)
        loss = (vertices - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


@pytest.mark.slow
def test_the_engine_trains_the_spiral_recipe(installed: Path, tmp_path: Path) -> None:
    from facerep.train.options import TrainOptions
    from facerep.train.run import load_run
    from facerep.train.trainer import Trainer

    tiny = tmp_path / "spiral_tiny.yaml"
    tiny.write_text(
        f"extends: {RECIPE}\n"
        "face_model: {vertices: 600}\n"
        "data: {world: {preset: tiny}, image_size: 32, batch: {identities: 2, photos_per_identity: 2,"
        " labelled_pairs: 1}}\n"
        "model:\n  shape_decoder: {channels: [16, 8, 8, 8]}\n"
        "  albedo_decoder: {channels: [16, 8, 8, 8], K: 3}\n"
        "critic: {channels: [8, 8, 8, 8], K: 3}\n"
        "train: {steps_per_epoch: 2, sample_every: 100000, checkpoint_every: 100000}\n"
        "stages: {gcn_albedo: {train: {epochs: 1}}, unet_albedo: {train: {epochs: 1}}}\n"
    )
    registry = Registry()
    run = Trainer(load_recipe(tiny), TrainOptions(out=tmp_path / "run", quiet=True), registry=registry).fit()
    loaded = load_run(run, registry=registry)
    assert type(loaded.model.shape_decoder).__name__ == "SpiralShapeDecoder"
    codes = loaded.model.encode(torch.rand(1, 3, 32, 32))
    assert loaded.model.decode_shape(codes.identity, codes.expression).shape == (1, 600, 3)
