"""``facerep facemodel show``: a shaded grid picture of a face model, rendered by sh_rasterizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from facerep.cli.app import app
from facerep.cli.facemodel_cmd import parse_light
from facerep.common.errors import FacerepError


def test_facemodel_show_writes_a_shaded_grid(tmp_path: Path) -> None:
    pytest.importorskip("facerep.plugins.facemodels.synthetic")
    out = tmp_path / "model.png"
    args = ["facemodel", "show", "synthetic", "--out", str(out), "--vertices", "600", "--size", "48"]
    result = CliRunner().invoke(app, [*args, "--light", "left"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    img = np.asarray(Image.open(out).convert("RGB"), dtype=np.float32) / 255
    assert img.shape[1] == 3 * 48 + 4 * 4 and img.shape[0] > 2 * 48
    # the mean face (top middle) is rendered: face pixels differ from the grey background, with shading
    top_mid = img[4 + 16 : 4 + 16 + 48, 4 + 48 + 4 : 4 + 2 * 48 + 4]
    face = np.abs(top_mid - 0.18).sum(-1) > 0.1
    assert face.mean() > 0.3
    lum = top_mid[face].mean(-1)
    assert lum.max() - lum.min() > 0.2
    # lit from the image's left: the left half of the face is brighter than the right half
    cols = np.nonzero(face.any(0))[0]
    centre = (cols.min() + cols.max()) // 2
    left = top_mid[:, :centre][face[:, :centre]].mean()
    right = top_mid[:, centre:][face[:, centre:]].mean()
    assert left > right


def test_light_parsing() -> None:
    assert parse_light("front").shape == (1, 27)
    nine = parse_light(",".join(["0.1"] * 9))
    assert torch.allclose(nine, torch.full((1, 27), 0.1))
    assert parse_light(",".join(str(i) for i in range(27)))[0, 26] == 26
    with pytest.raises(FacerepError, match="9 or 27"):
        parse_light("1,2,3")
    with pytest.raises(FacerepError, match="preset"):
        parse_light("sunset")


def test_facemodel_show_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["facemodel", "show", "no_such_model", "--out", str(tmp_path / "x.png")])
    assert result.exit_code != 0
    assert not (tmp_path / "x.png").exists()
