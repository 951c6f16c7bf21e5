"""`facerep reconstruct`: --texture-size reaches U-Net albedo maps, writes are all-or-nothing per face (a
full disk or a read-only folder is one line, exit 2), huge photos are read reduced; `facerep data synth`
prints bracketed paths as they are.

Faults are simulated as in test_safe_writes (the tests run as root, where a real ``chmod`` stops nothing).
"""

from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from test_safe_writes import _refuse_writes_below

import facerep
from facerep.apps.export import resample_uv_map
from facerep.apps.model import FaceRep
from facerep.apps.reconstruct import reconstruct_photos
from facerep.cli.app import main
from facerep.common.safe_write import TEMP_SUFFIX
from facerep.data.photos import MAX_PHOTO_PIXELS, find_photos, landmark_sidecar, load_face_photo
from facerep.data.sidecars import read_pts, write_pts

FACE_FILES = {
    "input.png", "canonical.obj", "canonical.ply", "canonical_textured.obj", "canonical_textured.mtl",
    "canonical_textured.png", "neutral.obj", "neutral.ply", "posed.obj", "posed.ply", "albedo.png",
    "render.png", "overlay.png", "codes.npz",
}  # fmt: skip


@pytest.fixture(scope="module")
def unet_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny `full` recipe (gcn_albedo, then unet_albedo: a U-Net albedo decoder with 64-texel maps)."""
    from facerep.testing.runs import train_tiny_run

    return train_tiny_run(tmp_path_factory.mktemp("unet-run") / "run", parent="full", steps=1)


@pytest.fixture(scope="module")
def unet_model(unet_run: Path) -> FaceRep:
    return facerep.load(unet_run)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two photos of the tiny world, copied into a folder of their own."""
    from facerep.world.cache import ensure_world

    world = ensure_world("tiny", 0, progress=False)
    folder = tmp_path_factory.mktemp("photos")
    for photo in find_photos(world / "celeba" / "img_align_celeba")[:2]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    return find_photos(folder)


def _reconstruct(run: Path, photos: list[Path], out: Path, *extra: str) -> None:
    """``facerep reconstruct`` of one photo, or of the folder holding `photos` (all of them)."""
    target = photos[0] if len(photos) == 1 else photos[0].parent
    assert len(photos) == 1 or find_photos(target) == photos
    main(["reconstruct", str(target), "--run", str(run), "--out", str(out), "--no-detect", *extra])


def _fails(capsys: Any, run: Path, photos: list[Path], out: Path, *extra: str) -> str:
    """The one error line of a reconstruct that must exit 2 (a device / --no-detect line may come first)."""
    with pytest.raises(SystemExit) as caught:
        _reconstruct(run, photos, out, *extra)
    assert caught.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], lines
    assert "Traceback" not in "\n".join(lines)
    return lines[-1]


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.rglob(f"*{TEMP_SUFFIX}")) if folder.exists() else []


# -- --texture-size --------------------------------------------------------------------------------------


def test_resample_uv_map_keeps_texture_coordinates_in_place() -> None:
    """A map linear in u (red) and v (green) read at the same (u, v) by the decoder's ``grid_sample`` gives
    the same values at any size (``align_corners=True`` would shift them by up to half a texel)."""
    size = 64
    centres = (torch.arange(size) + 0.5) / size
    uv_map = torch.stack(
        [centres.expand(size, size), centres[:, None].expand(size, size), torch.zeros(size, size)]
    )
    assert resample_uv_map(uv_map, size) is uv_map
    u = torch.linspace(0.1, 0.9, 17)
    grid = torch.stack([2 * u - 1, 2 * u.flip(0) - 1], -1).view(1, 1, -1, 2)
    for new in (40, 128):
        resampled = resample_uv_map(uv_map, new)
        assert resampled.shape == (3, new, new)
        read = F.grid_sample(resampled[None], grid, mode="bilinear", align_corners=False)[0, :, 0]
        assert torch.allclose(read[0], u, atol=1e-3) and torch.allclose(read[1], u.flip(0), atol=1e-3)
    with pytest.raises(ValueError, match="positive"):
        resample_uv_map(uv_map, 0)


def test_texture_size_sets_the_unet_albedo_textures(
    unet_run: Path, unet_model: FaceRep, photos: list[Path], tmp_path: Path
) -> None:
    _reconstruct(unet_run, photos[:1], tmp_path / "out", "--texture-size", "40")
    face = tmp_path / "out" / photos[0].stem
    for name in ("albedo.png", "canonical_textured.png"):
        with Image.open(face / name) as image:
            assert image.size == (40, 40), name  # the decoder's own 64-texel map before
    model = unet_model
    assert model.model.albedo_decoder.uv_size == 64
    recon = model.reconstruct(load_face_photo(photos[0], model.image_size).image)
    expected = resample_uv_map(recon.extras["albedo_uv"][0], 40).clamp(0, 1).permute(1, 2, 0).numpy()
    written = np.asarray(Image.open(face / "albedo.png"), dtype=np.float64) / 255.0
    assert np.abs(written - expected).max() <= 1 / 255 + 1e-6  # the same map, resampled, rounded to 8 bits


@pytest.mark.parametrize(("value", "shown"), [("8", "8"), ("100000", "100000"), ("-1", "-1")])
def test_texture_size_out_of_range_is_one_line(
    unet_run: Path, photos: list[Path], tmp_path: Path, capsys: Any, value: str, shown: str
) -> None:
    line = _fails(capsys, unet_run, photos[:1], tmp_path / "out", "--texture-size", value)
    assert line == f"error: --texture-size must be 16 to 4096 texels, got {shown}"
    assert not (tmp_path / "out").exists()


def test_batch_size_and_crop_scale_are_checked(
    unet_run: Path, photos: list[Path], tmp_path: Path, capsys: Any
) -> None:
    line = _fails(capsys, unet_run, photos[:1], tmp_path / "out", "--batch-size", "0")
    assert line == "error: --batch-size must be at least 1 (faces per forward pass), got 0"
    line = _fails(capsys, unet_run, photos[:1], tmp_path / "out", "--crop-scale", "nan")
    assert line == "error: --crop-scale must be a positive number (crop side / landmark extent), got nan"


# -- writes: a full disk, a read-only folder -------------------------------------------------------------


def _full_disk_on_call(monkeypatch: Any, failing: int) -> None:
    """``np.savez`` (codes.npz, each face's last file) puts 100 bytes down and then finds the disk full,
    from its `failing`-th call on (1-based)."""
    real_savez, calls = np.savez, []

    def savez(file: Any, **arrays: Any) -> None:
        calls.append(1)
        if len(calls) < failing:
            return real_savez(file, **arrays)
        buffer = io.BytesIO()
        real_savez(buffer, **arrays)
        if hasattr(file, "write"):
            file.write(buffer.getvalue()[:100])
        else:
            Path(file).write_bytes(buffer.getvalue()[:100])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", savez)


def test_full_disk_at_the_first_face_leaves_nothing(
    unet_run: Path, photos: list[Path], tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    _full_disk_on_call(monkeypatch, 1)
    out = tmp_path / "new" / "out"
    line = _fails(capsys, unet_run, photos, out)
    expected = out.resolve() / photos[0].stem / "codes.npz"
    assert line == f"error: {expected}: cannot write (No space left on device)"
    assert not (tmp_path / "new").exists()  # made for the reconstruction, removed with its files


def test_full_disk_at_the_second_face_keeps_the_first_whole(
    unet_run: Path, photos: list[Path], tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    _full_disk_on_call(monkeypatch, 2)
    out = tmp_path / "out"
    line = _fails(capsys, unet_run, photos, out, "--batch-size", "1")
    assert (
        line
        == f"error: {out.resolve() / photos[1].stem / 'codes.npz'}: cannot write (No space left on device)"
    )
    assert sorted(p.name for p in out.iterdir()) == [photos[0].stem]  # no second folder, no index.json
    assert {p.name for p in (out / photos[0].stem).iterdir()} == FACE_FILES
    assert _temps(out) == []
    assert np.load(out / photos[0].stem / "codes.npz")["identity"].shape == (128,)


def test_full_disk_on_a_rerun_keeps_the_previous_files(
    unet_run: Path, photos: list[Path], tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    out = tmp_path / "out"
    _reconstruct(unet_run, photos[:1], out)
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    _full_disk_on_call(monkeypatch, 1)
    _fails(capsys, unet_run, photos[:1], out, "--texture-size", "32")  # every file would change
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
    assert _temps(out) == []


def test_read_only_output_folder_is_one_line(
    unet_run: Path, photos: list[Path], tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    out = tmp_path / "out"
    _reconstruct(unet_run, photos[:1], out)
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    _refuse_writes_below(monkeypatch, out)
    line = _fails(capsys, unet_run, photos, out)  # photo 0's folder exists; photo 1's cannot be made
    face = out.resolve() / photos[0].stem
    assert line.startswith(f"error: {face}/") and line.endswith(": cannot write (Permission denied)")
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
    line = _fails(capsys, unet_run, photos[1:], out)
    assert (
        line
        == f"error: {out.resolve() / photos[1].stem}: cannot create the output folder (Permission denied)"
    )
    assert sorted(p.name for p in out.iterdir()) == sorted([photos[0].stem, "index.json"])


# -- huge photos -----------------------------------------------------------------------------------------


def test_huge_photos_are_read_reduced_with_boxes_in_file_pixels(unet_model: FaceRep, tmp_path: Path) -> None:
    """A 4096 x 4096 JPEG (16.8 Mpx, above the 16 Mpx cap) is decoded at half size; its sidecar landmarks,
    box and face box still come out in the file's pixels, and the crop is the small photo's."""
    from facerep.world.cache import ensure_world

    side = 4096
    small = find_photos(ensure_world("tiny", 0, progress=False) / "celeba" / "img_align_celeba")[0]
    assert side * side > MAX_PHOTO_PIXELS
    with Image.open(small) as image:
        factor = side / image.size[0]
        image.convert("RGB").resize((side, side), Image.BILINEAR).save(tmp_path / "big.jpg", quality=90)
    points = read_pts(landmark_sidecar(small)) * factor
    write_pts(tmp_path / "big.pts", points)

    big = load_face_photo(tmp_path / "big.jpg", 32)
    assert big.scale == 0.5 and big.original.size == (side // 2, side // 2)
    assert np.allclose(big.face_landmarks, points, atol=1e-2)
    reference = load_face_photo(small, 32)
    assert np.allclose(big.box, np.asarray(reference.box) * factor, atol=1e-2)
    assert np.allclose(big.face_box, np.asarray(reference.face_box) * factor, atol=1e-2)
    assert (big.image - reference.image).abs().mean() < 0.03  # the same face, cut from the reduced photo

    out = tmp_path / "out"
    reconstruct_photos(unet_model, tmp_path / "big.jpg", out)  # the sidecar: no detector is built
    index = json.loads((out / "index.json").read_text())
    (entry,) = index["photos"]
    assert entry["crop"] == "landmarks"
    assert np.allclose(entry["landmarks"], points, atol=0.01)
    codes = np.load(out / "big" / "codes.npz")
    assert np.allclose(codes["box"], big.box, atol=1e-2) and np.allclose(
        codes["face_landmarks"], points, atol=1e-2
    )
    with Image.open(out / "big" / "overlay.png") as overlay:
        assert overlay.size == (side // 2, side // 2)


# -- facerep data synth ----------------------------------------------------------------------------------


def test_data_synth_prints_a_bracketed_path_as_it_is(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "w[/b]x [red]y"
    main(["data", "synth", "--preset", "tiny", "--out", str(out)])
    printed = capsys.readouterr().out
    assert f"synthetic world tiny (seed 0) in {out}\n" in printed
    assert f"  {out / 'celeba'}  (photo collection)\n" in printed
    assert (out / "world.json").is_file()


def test_output_folder_over_a_file_is_one_line(
    unet_run: Path, photos: list[Path], tmp_path: Path, capsys: Any
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("notes")
    line = _fails(capsys, unet_run, photos[:1], taken)
    assert line == f"error: {taken}: cannot create the output folder (a file has that name)"
    assert taken.read_text() == "notes"
