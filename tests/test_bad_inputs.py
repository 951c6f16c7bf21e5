"""Bad inputs get one clear error naming the file (and line): images, meshes, command-line options."""

from __future__ import annotations

import re
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from facerep.common.errors import DataError
from facerep.data import objfile
from facerep.data.imagefile import load_image, load_image_within
from facerep.geometry import mesh_io

# -- images: bit depth ------------------------------------------------------------------------------------


def _ramp16(height: int = 16, width: int = 64) -> np.ndarray:
    return np.tile(np.linspace(0, 65535, width).round().astype(np.uint16), (height, 1))


def test_16_bit_greyscale_png_is_scaled_to_8_bits(tmp_path: Path) -> None:
    values = _ramp16()
    Image.fromarray(values).save(tmp_path / "grey16.png")
    with Image.open(tmp_path / "grey16.png") as im:
        assert im.mode.startswith("I")  # what PIL makes of it; converting it naively clips to white
    rgb = np.asarray(load_image(tmp_path / "grey16.png"))
    assert rgb.shape == (16, 64, 3) and rgb.dtype == np.uint8
    expected = np.round(values / 257.0)
    assert np.abs(rgb[..., 0].astype(float) - expected).max() <= 1
    assert (rgb[..., 0] == rgb[..., 2]).all() and rgb.min() == 0 and rgb.max() == 255


def test_16_bit_big_endian_tiff_and_32_bit_and_float_greyscale(tmp_path: Path) -> None:
    values = _ramp16()
    Image.fromarray(values.astype(">u2")).save(tmp_path / "grey16.tif")
    Image.fromarray(values.astype(np.int32), mode="I").save(tmp_path / "grey32.tif")
    Image.fromarray((values / 65535.0).astype(np.float32), mode="F").save(tmp_path / "unit.tif")
    expected = np.round(values / 257.0)
    for name in ("grey16.tif", "grey32.tif", "unit.tif"):
        grey = np.asarray(load_image(tmp_path / name))[..., 1].astype(float)
        assert np.abs(grey - expected).max() <= 1, name
    # 8-bit values stored in a 32-bit image stay 8-bit values
    Image.fromarray(np.full((4, 4), 200, dtype=np.int32), mode="I").save(tmp_path / "small.tif")
    assert (np.asarray(load_image(tmp_path / "small.tif")) == 200).all()


# -- images: bombs, corrupt files ---------------------------------------------------------------------------


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A 100-byte PNG that claims width x height greyscale pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def _bmp_header_only(path: Path, width: int, height: int) -> Path:
    """A 54-byte BMP that claims width x height 24-bit pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    path.write_bytes(b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + info)
    return path


@pytest.mark.parametrize("make", [_png_header_only, _bmp_header_only])
def test_decompression_bomb_is_a_data_error_naming_the_file(tmp_path: Path, make: Any) -> None:
    bomb = make(tmp_path / f"bomb.{make.__name__[1:4]}", 40000, 40000)  # 1.6 Gpx claimed in < 100 bytes
    for read in (load_image, lambda p: load_image_within(p, 10_000)):
        with pytest.raises(DataError) as caught:
            read(bomb)
        message = str(caught.value)
        assert message.startswith(f"{bomb}: image too large to read (1600 Mpx; the limit is 179 Mpx")


def test_pixel_limit_follows_pil_setting(tmp_path: Path, monkeypatch: Any) -> None:
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2_000)  # limit 4000 px
    with pytest.raises(DataError, match=r"a\.png: image too large to read \(10000 px; the limit is 4000 px"):
        load_image(tmp_path / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6_000)  # 10000 px: over PIL's warning, under the limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning is handled, not passed on
        assert load_image(tmp_path / "a.png").size == (100, 100)


def test_corrupt_and_truncated_images_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(0).bytes(300))
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)).save(
        tmp_path / "ok.png"
    )
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "header.png").write_bytes(data[:40])
    _png_header_only(tmp_path / "empty_body.png", 3000, 3000)
    for name in ("noise.png", "cut.png", "header.png", "empty_body.png"):
        with pytest.raises(DataError) as caught:
            load_image(tmp_path / name)
        assert str(caught.value).startswith(f"{tmp_path / name}: "), caught.value
    with pytest.raises(DataError, match="image file not found"):
        load_image(tmp_path / "missing.png")


def test_damaged_images_load_or_fail_naming_the_file(tmp_path: Path) -> None:
    """Random byte flips and cuts of small PNG, JPEG, GIF, TIFF, BMP and WebP files: every one either reads
    as RGB or raises a `DataError` that starts with its path, never another exception."""
    import io
    import random

    picture = np.random.default_rng(3).integers(0, 255, (24, 32, 3), np.uint8)
    seeds = {}
    for fmt in ("PNG", "JPEG", "GIF", "TIFF", "BMP", "WEBP"):
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, format=fmt)
        seeds[fmt.lower()] = buffer.getvalue()
    rng = random.Random(0)
    outcomes = {"read": 0, "refused": 0}
    for i in range(240):
        fmt = rng.choice(sorted(seeds))
        data = bytearray(seeds[fmt])
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        path = tmp_path / f"damaged{i}.{fmt}"
        path.write_bytes(bytes(data))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PIL warns about some broken TIFF tags
                image = load_image(path)
        except DataError as exc:
            assert str(exc).startswith(f"{path}: "), exc
            outcomes["refused"] += 1
        else:
            assert image.mode == "RGB"
            outcomes["read"] += 1
    assert outcomes["read"] > 20 and outcomes["refused"] > 20


# -- images: large ones are reduced while decoding ----------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_load_image_within_reduces_and_reports_the_scale(tmp_path: Path, suffix: str) -> None:
    width, height = 803, 601
    picture = np.random.default_rng(2).integers(0, 8, (height, width, 3), dtype=np.uint8)
    picture[200:400, 300:500] = 250  # a white square: its edges locate the mapping
    Image.fromarray(picture).save(tmp_path / f"big{suffix}", quality=95)
    image, scale = load_image_within(tmp_path / f"big{suffix}", 50_000)
    assert image.mode == "RGB" and image.width * image.height <= 50_000
    assert scale < 1 and abs(image.width - width * scale) < 1 and abs(image.height - height * scale) < 1
    grey = np.asarray(image)[..., 0].astype(float)

    def at(x: float, y: float) -> float:  # the reduced image at the file's pixel (x, y)
        return grey[int(y * scale), int(x * scale)]

    square = grey[int(200 * scale) + 2 : int(400 * scale) - 2, int(300 * scale) + 2 : int(500 * scale) - 2]
    assert square.min() > 200  # edges land where the scale puts them
    assert at(400, 300) > 200 and at(560, 300) < 60 and at(400, 180) < 60 and at(400, 420) < 60
    full, one = load_image_within(tmp_path / f"big{suffix}", width * height)
    assert one == 1.0 and full.size == (width, height)


def test_load_image_within_reduces_16_bit_greyscale(tmp_path: Path) -> None:
    Image.fromarray(np.tile(_ramp16(1, 512), (512, 1))).save(tmp_path / "g.png")
    image, scale = load_image_within(tmp_path / "g.png", 128 * 128)
    assert image.size == (128, 128) and scale == 0.25
    row = np.asarray(image)[0, :, 0].astype(float)
    assert row[0] <= 2 and row[-1] >= 253 and (np.diff(row) >= 0).all()


# -- meshes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_obj_with_a_non_finite_coordinate_names_file_and_line(tmp_path: Path, value: str) -> None:
    path = tmp_path / "scan.obj"
    path.write_text(f"# scan\nv 0 0 0\nv 1 0 0\nv 0 {value} 0\nf 1 2 3\n")
    with pytest.raises(DataError, match=rf"scan\.obj:4: coordinate is not a finite number: 'v 0 {value} 0'"):
        objfile.read_obj(path)
    with pytest.raises(DataError, match=r"scan\.obj:4: coordinate is not a finite number"):
        mesh_io.read_obj(path)


def test_obj_non_finite_texture_or_normal_and_bad_faces(tmp_path: Path) -> None:
    path = tmp_path / "m.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 nan\nf 1 2 3\n")
    with pytest.raises(DataError, match=r"m\.obj:4: coordinate is not a finite number"):
        mesh_io.read_obj(path)
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2 9\n")
    with pytest.raises(DataError, match=r"m\.obj:5: face index outside the file's 3 vertices"):
        objfile.read_obj(path)
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n")
    with pytest.raises(DataError, match=r"m\.obj:4: face index 0"):
        objfile.read_obj(path)


def test_ply_with_a_non_finite_vertex_names_it(tmp_path: Path) -> None:
    vertices = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    for binary in (False, True):
        path = mesh_io.write_ply(tmp_path / f"m{int(binary)}.ply", vertices, [[0, 1, 2]], binary=binary)
        text = path.read_bytes()
        bad = vertices.copy()
        bad[1, 2] = np.nan
        mesh_io.write_ply(path, bad, [[0, 1, 2]], binary=binary)
        assert path.read_bytes() != text
        with pytest.raises(DataError, match=rf"m{int(binary)}\.ply: vertex 1 \(0-based\) has a coordinate"):
            mesh_io.read_ply(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("element vertex many", r":4: malformed PLY element line 'element vertex many'"),
        ("element vertex", r":4: malformed PLY element line"),
        ("property float", r":5: malformed PLY property line"),
        ("property quad x", r":5: malformed PLY property line 'property quad x'"),
        ("property list uchar x", r":5: malformed PLY property line"),
    ],
)
def test_ply_header_errors_name_the_line(tmp_path: Path, header: str, message: str) -> None:
    lines = [
        "ply",
        "format ascii 1.0",
        "comment x",
        "element vertex 1",
        "property float x",
        "end_header",
        "0",
    ]
    replace = 3 if header.startswith("element") else 4
    lines[replace] = header
    path = tmp_path / "h.ply"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=re.escape(str(path)) + message):
        mesh_io.read_ply(path)


def test_ply_body_too_short_or_out_of_range(tmp_path: Path) -> None:
    head = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
    path = tmp_path / "b.ply"
    path.write_text(head + "end_header\n0 0 0\n1 0 0\n")
    with pytest.raises(DataError, match=r"b\.ply: PLY body ends before the elements its header announces"):
        mesh_io.read_ply(path)
    path.write_text(head + "property uchar red\nend_header\n0 0 0 1\n1 0 0 2\n0 1 0 999\n")
    with pytest.raises(DataError, match=r"b\.ply: malformed PLY body"):
        mesh_io.read_ply(path)
    path.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 0\nend_header")
    with pytest.raises(DataError, match=r"b\.ply: PLY has no vertex element"):
        mesh_io.read_ply(path)


def test_damaged_meshes_load_or_fail_naming_the_file(tmp_path: Path) -> None:
    """Random edits of small OBJ and PLY (ascii, binary) files: every one reads with finite vertices or
    raises a `DataError` that starts with its path, never another exception."""
    import random

    rng = np.random.default_rng(0)
    vertices, faces = rng.random((6, 3)), np.array([[0, 1, 2], [2, 3, 4], [3, 4, 5]])
    seeds = {
        "a.ply": mesh_io.write_ply(tmp_path / "a.ply", vertices, faces, colors=rng.random((6, 3))),
        "b.ply": mesh_io.write_ply(tmp_path / "b.ply", vertices, faces, binary=True),
        "c.obj": mesh_io.write_obj(
            tmp_path / "c.obj", vertices, faces, uv=rng.random((6, 2)), normals=vertices
        ),
    }
    original = {name: path.read_bytes() for name, path in seeds.items()}
    pick = random.Random(0)
    for i in range(300):
        name = pick.choice(sorted(original))
        data = bytearray(original[name])
        for _ in range(pick.randint(1, 4)):
            pos = pick.randrange(len(data))
            if pick.random() < 0.5:
                data[pos] = pick.choice(b"0123456789-. \nabcxyzvf/enan")
            elif pick.random() < 0.6:
                del data[pos]
            else:
                data.insert(pos, pick.choice(b"0123456789 \n-"))
        path = tmp_path / f"m{i}_{name}"
        path.write_bytes(bytes(data))
        readers = [lambda p: mesh_io.read_mesh(p).vertices]
        if name.endswith(".obj"):
            readers.append(lambda p: objfile.read_obj(p)[0])
        for read in readers:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    assert np.isfinite(read(path)).all()
            except DataError as exc:
                assert str(exc).startswith(f"{path}"), exc


# -- command-line option ranges (checked before anything is loaded) -----------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "error: --batch-size must be at least 1 (frames per forward pass), got 0"),
        (["--batch-size", "-3"], "error: --batch-size must be at least 1"),
        (["--max-frames", "0"], "error: --max-frames must be at least 1"),
        (["--error-maps", "-1"], "error: --error-maps must be 0 or more"),
        (["--statistic", "median"], "error: --statistic 'median': choose "),
        (["--direction", "both"], "error: --direction 'both': choose "),
        (["--protocol", "all"], "error: --protocol 'all': choose identity, three_views, both"),
    ],
)
def test_bench_option_ranges(tmp_path: Path, capsys: Any, args: list[str], message: str) -> None:
    from facerep.cli.app import main

    with pytest.raises(SystemExit) as caught:
        main(["bench", str(tmp_path / "no-run"), *args])
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "-2"], "error: --grid must be 0 (one transfer) or a number of photos per side, got -2"),
        (["--crop-scale", "0"], "error: --crop-scale must be a positive number"),
        (["--crop-scale", "-1.5"], "error: --crop-scale must be a positive number"),
        (["--crop-scale", "nan"], "error: --crop-scale must be a positive number"),
    ],
)
def test_transfer_option_ranges(tmp_path: Path, capsys: Any, args: list[str], message: str) -> None:
    from facerep.cli.app import main

    photo = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photo)
    with pytest.raises(SystemExit) as caught:
        main(["transfer", str(photo), str(photo), "--run", str(tmp_path / "no-run"), *args])
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err
