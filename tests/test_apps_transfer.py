"""Expression transfer (`facerep transfer`) on synthetic photos with a few-step run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import facerep
from facerep.apps.model import FaceRep
from facerep.apps.transfer import expression_grid, transfer, transfer_codes, write_transfer
from facerep.core.types import Codes
from facerep.data.photos import find_photos, load_face_photo
from facerep.geometry import mesh_io


@pytest.fixture(scope="module")
def model(tiny_trained_run: Path) -> FaceRep:
    return facerep.load(tiny_trained_run)


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    from facerep.world.cache import ensure_world

    world = ensure_world("tiny", 0, progress=False)
    return find_photos(world / "celeba" / "img_align_celeba")[:3]


@pytest.fixture(scope="module")
def crops(model: FaceRep, photos: list[Path]) -> torch.Tensor:
    return torch.stack([load_face_photo(p, model.image_size).image for p in photos])


def test_transfer_is_decode_of_source_identity_and_target_expression(
    model: FaceRep, crops: torch.Tensor
) -> None:
    source, target = crops[:1], crops[1:2]
    result = transfer(model, source, target)
    s, t = model.encode(source), model.encode(target)
    expected = model.model.decode_shape(s.identity, t.expression)
    assert torch.allclose(result.reconstruction.vertices, expected, atol=1e-5)
    assert torch.equal(result.codes.identity, s.identity) and torch.equal(
        result.codes.expression, t.expression
    )
    assert torch.equal(result.codes.pose, s.pose) and torch.equal(result.codes.light, s.light)
    # the albedo follows the identity: it is the source's albedo
    assert torch.allclose(result.reconstruction.albedo, model.reconstruct(source).albedo, atol=1e-5)


def test_transfer_with_the_sources_own_expression_is_its_reconstruction(
    model: FaceRep, crops: torch.Tensor
) -> None:
    source = crops[:1]
    own = model.reconstruct(source)
    same = transfer(model, source, source)
    assert torch.allclose(same.reconstruction.vertices, own.vertices, atol=1e-5)
    assert torch.allclose(same.reconstruction.rendering.image, own.rendering.image, atol=1e-5)
    # any target whose expression code equals the source's gives the source's shape, whatever its identity
    s, t = model.encode(source), model.encode(crops[1:2])
    t_same_exp = Codes(t.identity, s.expression.clone(), t.pose, t.light, t.skips)
    vertices = model.decode(transfer_codes(s, t_same_exp)).vertices
    assert torch.allclose(vertices, own.vertices, atol=1e-5)
    # and the result differs from the source only through the expression code
    other = model.decode(transfer_codes(s, t)).vertices
    assert not torch.allclose(other, own.vertices)


def test_pose_and_light_flags_take_the_targets(model: FaceRep, crops: torch.Tensor) -> None:
    s, t = model.encode(crops[:1]), model.encode(crops[1:2])
    codes = transfer_codes(s, t, pose=True, light=True)
    assert torch.equal(codes.pose, t.pose) and torch.equal(codes.light, t.light)
    assert torch.equal(codes.identity, s.identity)


def test_write_transfer_files(model: FaceRep, crops: torch.Tensor, tmp_path: Path) -> None:
    result = transfer(model, crops[:1], crops[1:2])
    files = write_transfer(model, result, tmp_path, source=crops[:1], target=crops[1:2])
    mesh = mesh_io.read_obj(files["mesh_obj"])
    assert mesh.vertices.shape == (model.face_model.num_vertices, 3)
    assert np.allclose(mesh.vertices, result.reconstruction.vertices[0].numpy(), atol=1e-4)
    assert mesh_io.read_ply(files["mesh_ply"]).vertices.shape == (model.face_model.num_vertices, 3)
    with Image.open(files["panel"]) as im:
        assert im.size == (3 * model.image_size, model.image_size)


def test_expression_grid_layout_and_diagonal(model: FaceRep, crops: torch.Tensor) -> None:
    grid = expression_grid(model, crops, crops)
    size = model.image_size
    assert grid.shape == (4 * size, 4 * size, 3) and grid.dtype == np.uint8
    # header row and column hold the input crops
    header = (crops[1].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(grid[:size, 2 * size : 3 * size], header)
    assert np.array_equal(grid[2 * size : 3 * size, :size], header)
    # cell (i, i) is identity i's own reconstruction over a white background
    recon = model.reconstruct(crops[1:2]).rendering
    mask = recon.mask[0]
    expected = (recon.image[0] * mask + (1 - mask)).permute(1, 2, 0).numpy()
    cell = grid[2 * size : 3 * size, 2 * size : 3 * size].astype(np.float32) / 255
    assert np.abs(cell - expected).max() <= 1.0 / 255 + 1e-6


def test_cli_transfer_and_grid(tiny_trained_run: Path, photos: list[Path], tmp_path: Path) -> None:
    from facerep.cli.app import main

    run = str(tiny_trained_run)
    main(["transfer", str(photos[0]), str(photos[1]), "--run", run, "--out", str(tmp_path / "one"), "--pose"])
    mesh = mesh_io.read_obj(tmp_path / "one" / "transfer.obj")
    assert mesh.vertices.shape[0] == facerep.load(run).face_model.num_vertices
    assert (tmp_path / "one" / "transfer.png").is_file() and (tmp_path / "one" / "panel.png").is_file()
    folder = photos[0].parent
    main(["transfer", str(folder), str(folder), "--run", run, "--out", str(tmp_path / "grid"), "--grid", "2"])
    with Image.open(tmp_path / "grid" / "grid.png") as im:
        assert im.size == (3 * 32, 3 * 32)
