"""`facerep bench`: argument parsing and clear errors for bad paths and runs without checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from facerep.cli.app import main
from facerep.cli.bench_cmd import parse_data
from facerep.common.errors import FacerepError


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out + captured.err


def test_parse_data() -> None:
    assert parse_data(None) == ("micc", None)
    assert parse_data("micc:/data/MICC") == ("micc", "/data/MICC")
    assert parse_data("/data/MICC") == ("micc", "/data/MICC")
    with pytest.raises(FacerepError, match="unknown benchmark 'now'"):
        parse_data("now:/data/NoW")
    with pytest.raises(FacerepError, match="after 'micc:'"):
        parse_data("micc:")


def test_missing_run_directory_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run_cli(["bench", str(tmp_path / "no_such_run"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert "no_such_run" in text and "not found" in text


def test_run_without_checkpoint_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "untrained"
    (run / "checkpoints").mkdir(parents=True)
    code, text = run_cli(["bench", str(run), "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert "checkpoint" in text and "untrained" in text


def test_missing_data_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    code, text = run_cli(["bench", str(run), "--data", f"micc:{tmp_path / 'nowhere'}"], capsys)
    assert code == 2
    assert "nowhere" in text and "not found" in text


def test_bad_protocol_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run_cli(["bench", str(tmp_path), "--protocol", "sideways"], capsys)
    assert code == 2
    assert "--protocol" in text
