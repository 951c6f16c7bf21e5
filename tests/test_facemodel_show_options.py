"""``facerep facemodel show``: real models from a file or folder; bad options are one clear error (exit 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerep.cli.app import main
from facerep.cli.facemodel_cmd import parse_setting

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SFM = DATA / "sfm"
ICT = DATA / "ict" / "ict_facemodel_light_face9409.npz"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the console entry point."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _mean_face_pixels(png: Path, size: int) -> np.ndarray:
    """The top-middle picture (the mean face) of the grid, (size, size, 3) in [0, 1]."""
    img = np.asarray(Image.open(png).convert("RGB"), dtype=np.float32) / 255
    return img[4 + 16 : 4 + 16 + size, 4 + size + 4 : 4 + 2 * size + 4]


def _assert_shaded_face(png: Path, size: int) -> None:
    mean = _mean_face_pixels(png, size)
    face = np.abs(mean - 0.18).sum(-1) > 0.1
    assert face.mean() > 0.3  # the face fills the picture (framed from the model's own mean)
    lum = mean[face].mean(-1)
    assert lum.max() - lum.min() > 0.15  # shaded, not a flat silhouette


@pytest.mark.skipif(not SFM.is_dir(), reason=f"real Surrey Face Model files not found at {SFM}")
def test_show_renders_the_real_surrey_face_model_from_its_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sfm.png"
    code, stdout, err = _run(
        ["facemodel", "show", "sfm", "--path", str(SFM), "--out", str(out), "--size", "48"], capsys
    )
    assert code == 0, err
    assert "3448 vertices" in stdout and "63 identity / 6 expression" in stdout
    assert "sfm_shape_3448.bin" in stdout  # says which file it showed
    _assert_shaded_face(out, 48)
    # the folder as NAME picks the sfm loader
    code, stdout, err = _run(["facemodel", "show", str(SFM), "--out", str(out), "--size", "32"], capsys)
    assert code == 0, err
    assert "3448 vertices" in stdout


@pytest.mark.skipif(not ICT.is_file(), reason=f"real ICT-FaceKit model not found at {ICT}")
def test_show_renders_a_real_npz_model_named_by_its_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ict.png"
    code, stdout, err = _run(["facemodel", "show", str(ICT), "--out", str(out), "--size", "48"], capsys)
    assert code == 0, err
    assert "9409 vertices" in stdout and "100 identity / 53 expression" in stdout
    _assert_shaded_face(out, 48)
    # loader arguments reach the loader through --set (an unknown unit is the loader's own clear error)
    code, _, err = _run(
        ["facemodel", "show", "npz", "--path", str(ICT), "--set", "units=parsec", "--out", str(out)], capsys
    )
    assert code == 2 and "parsec" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "0"], "--size"),
        (["--size", "100000"], "--size"),
        (["--vertices", "3"], "vertices must be within"),
        (["--out", "x.xyz"], "ending in .png"),
        (["--sigmas", "nan"], "--sigmas"),
        (["--yaw", "500"], "--yaw"),
        (["--path", "somewhere"], "reads no file"),
        (["--set", "novalue"], "KEY=VALUE"),
        (["--set", "colour=red"], "no argument 'colour'"),
    ],
)
def test_bad_options_are_one_clear_error_with_status_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["facemodel", "show", "synthetic", "--out", str(tmp_path / "grid.png"), *args]
    if "--out" in args:
        argv = ["facemodel", "show", "synthetic", *args]
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_file_models_need_a_path_and_names_must_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.png"
    code, _, err = _run(["facemodel", "show", "sfm", "--out", str(out)], capsys)
    assert code == 2 and "--path" in err
    code, _, err = _run(
        ["facemodel", "show", "npz", "--path", str(tmp_path / "no.npz"), "--out", str(out)], capsys
    )
    assert code == 2 and "no.npz" in err and "not found" in err
    code, _, err = _run(
        ["facemodel", "show", str(tmp_path / "none" / "model.obj"), "--out", str(out)], capsys
    )
    assert code == 2 and "no such model file" in err
    assert not out.exists()


def test_an_unwritable_out_is_one_line_and_leaves_no_partial_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    code, _, err = _run(
        [
            "facemodel",
            "show",
            "synthetic",
            "--vertices",
            "600",
            "--size",
            "16",
            "--out",
            str(blocked / "g.png"),
        ],
        capsys,
    )
    assert code == 2 and "cannot write" in err and str(blocked / "g.png") in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked"]


def test_set_values_are_typed() -> None:
    assert parse_setting("units=cm") == ("units", "cm")
    assert parse_setting("default_exp_std=0.25") == ("default_exp_std", 0.25)
    assert parse_setting("seed=3") == ("seed", 3)
    assert parse_setting("centre=false") == ("centre", False)
    assert parse_setting("crop=null") == ("crop", None)
