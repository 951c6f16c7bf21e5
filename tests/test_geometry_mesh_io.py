"""OBJ / PLY reading and writing: round trips, colours, UV + texture, polygons, errors, a real scan."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_data
from PIL import Image

from facerep.common.errors import DataError
from facerep.geometry.mesh_io import read_mesh, read_obj, read_ply, write_mesh, write_obj, write_ply

RNG = np.random.default_rng(0)
V = RNG.normal(size=(12, 3)) * 50
F = np.array([[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 8], [8, 9, 10], [10, 11, 0]])
C = RNG.uniform(size=(12, 3))
UV = RNG.uniform(size=(12, 2))


def test_obj_round_trip_with_colours(tmp_path) -> None:
    p = write_obj(tmp_path / "m.obj", V, F, colors=C)
    m = read_obj(p)
    assert np.allclose(m.vertices, V, atol=1e-5) and np.array_equal(m.triangles, F)
    assert m.colors is not None and np.allclose(m.colors, C, atol=1e-5)
    assert m.uv is None and m.texture is None


def test_obj_uv_texture_and_mtl(tmp_path) -> None:
    tex = RNG.uniform(size=(16, 8, 3))
    p = write_obj(tmp_path / "face.obj", V, F, uv=UV, texture=tex)
    assert (tmp_path / "face.mtl").exists() and (tmp_path / "face.png").exists()
    m = read_mesh(p)
    assert np.allclose(m.uv, UV, atol=1e-5) and np.array_equal(m.face_uv, F)
    assert m.texture == tmp_path / "face.png"
    img = np.asarray(Image.open(m.texture)) / 255.0
    assert img.shape == (16, 8, 3) and np.abs(img - tex).max() < 1 / 255 + 1e-6


def test_obj_texture_given_as_a_path_is_refused_and_nothing_is_written(tmp_path) -> None:
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "skin.png")
    with pytest.raises(TypeError, match=r"texture '.*skin.png' is a path; pass the image"):
        write_obj(tmp_path / "out" / "face.obj", V, F, uv=UV, texture=tmp_path / "skin.png")
    assert not (tmp_path / "out" / "face.obj").exists() and not (tmp_path / "out" / "face.png").exists()


def test_obj_polygons_negative_indices_and_seams(tmp_path) -> None:
    text = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvt 0.5 0.5\n"
    text += "f -4/1 -3/2 -2/3 -1/4\nf 1/5 3/3 4/4\n"
    (tmp_path / "q.obj").write_text(text)
    m = read_obj(tmp_path / "q.obj")
    assert np.array_equal(m.triangles, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])
    assert m.uv is None and m.uv_coords.shape == (5, 2)  # vertex 0 has two UVs: no per-vertex uv
    assert np.array_equal(m.face_uv[2], [4, 2, 3])


@pytest.mark.parametrize("binary", [False, True])
def test_ply_round_trip(tmp_path, binary: bool) -> None:
    p = write_ply(tmp_path / "m.ply", V, F, colors=C, binary=binary)
    m = read_ply(p)
    assert np.allclose(m.vertices, V, atol=1e-4) and np.array_equal(m.triangles, F)
    assert np.allclose(m.colors, C, atol=0.5 / 255 + 1e-9)


def test_ply_big_endian_quads(tmp_path) -> None:
    header = (
        "ply\nformat binary_big_endian 1.0\nelement vertex 4\nproperty double x\nproperty double y\n"
        "property double z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
    )
    body = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=">f8").tobytes()
    body += np.array([4], dtype="u1").tobytes() + np.array([0, 1, 2, 3], dtype=">i4").tobytes()
    (tmp_path / "q.ply").write_bytes(header.encode() + body)
    m = read_ply(tmp_path / "q.ply")
    assert np.array_equal(m.triangles, [[0, 1, 2], [0, 2, 3]]) and m.vertices[2, 1] == 1


def test_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(DataError, match="missing.obj"):
        read_obj(tmp_path / "missing.obj")
    (tmp_path / "bad.obj").write_text("v 0 0 0\nf 1 2 3\n")
    with pytest.raises(DataError, match="bad.obj"):
        read_obj(tmp_path / "bad.obj")
    (tmp_path / "bad.ply").write_text("not a ply")
    with pytest.raises(DataError, match="bad.ply"):
        read_ply(tmp_path / "bad.ply")
    with pytest.raises(DataError, match="unsupported"):
        read_mesh(tmp_path / "x.stl")
    with pytest.raises(ValueError):
        write_mesh(tmp_path / "x.stl", V, F)


def test_reads_a_real_textured_scan() -> None:
    obj = shared_data("scans", "james", "james.obj")
    m = read_obj(obj)
    assert m.vertices.shape == (6393, 3) and m.triangles.shape == (12228, 3)
    assert m.face_uv.shape == (12228, 3) and m.texture is not None and m.texture.name == "james.jpg"
    assert m.texture.exists()
