"""`facerep bench --benchmark aflw2000 | verification`: option parsing, clear errors before any run loads,
and (slow) both benchmarks end to end on a few-step checkpoint and the tiny synthetic world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facerep.cli.app import main
from facerep.cli.bench_cmd import parse_data
from facerep.common.errors import FacerepError
from tests.test_bench_cli import run_cli


def test_parse_data_knows_the_new_benchmarks() -> None:
    assert parse_data("aflw2000:/data/AFLW2000") == ("aflw2000", "/data/AFLW2000")
    assert parse_data("verification:/data/lfw") == ("verification", "/data/lfw")
    assert parse_data("/data/lfw", "verification") == ("verification", "/data/lfw")
    assert parse_data(None, "aflw2000") == ("aflw2000", None)
    with pytest.raises(FacerepError, match="unknown benchmark 'now'.*micc, aflw2000, verification"):
        parse_data("now:/data/NoW")
    with pytest.raises(FacerepError, match="give the AFLW2000-3D folder after 'aflw2000:'"):
        parse_data("aflw2000:")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--benchmark", "sideways"], "--benchmark 'sideways': choose micc, aflw2000, verification"),
        (["--benchmark", "aflw2000", "--pairs", "all"], "--pairs does not apply to the aflw2000 benchmark"),
        (["--benchmark", "verification", "--max-images", "3"], "--max-images does not apply"),
        (["--benchmark", "aflw2000", "--max-images", "0"], "--max-images must be at least 1"),
        (["--benchmark", "aflw2000", "--data", "verification:/x"], "name different benchmarks"),
    ],
)
def test_bad_options_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code, text = run_cli(["bench", str(tmp_path), *extra], capsys)
    assert code == 2
    assert message in " ".join(text.split())


def test_bad_data_is_refused_before_loading_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    no_run = str(tmp_path / "no_such_run")  # never loaded: the data is checked first
    (tmp_path / "faces" / "ann").mkdir(parents=True)
    code, text = run_cli(["bench", no_run, "--data", f"verification:{tmp_path / 'faces'}"], capsys)
    assert code == 2
    assert "pairs.txt: pairs file not found" in text and "--pairs all" in " ".join(text.split())
    code, text = run_cli(["bench", no_run, "--data", f"aflw2000:{tmp_path / 'faces'}"], capsys)
    assert code == 2 and "is not an AFLW2000-3D folder" in text
    code, text = run_cli(["bench", no_run, "--data", f"aflw2000:{tmp_path / 'nowhere'}"], capsys)
    assert code == 2 and "not found" in text


@pytest.mark.slow
def test_both_benchmarks_on_a_few_step_checkpoint(tmp_path: Path) -> None:
    from facerep.testing.runs import train_tiny_run

    run = train_tiny_run(tmp_path / "tiny_run", parent="gcn_albedo_only", steps=2)
    out = tmp_path / "bench"
    main(["bench", str(run), "--benchmark", "aflw2000", "--out", str(out)])
    table = json.loads((out / "aflw2000.json").read_text())
    assert table["meta"]["synthetic"] and table["meta"]["data_root"].endswith("aflw2000")
    methods = [r["method"] for r in table["rows"]]
    assert methods[:2] == ["tiny_run", "mean_layout"] and "3DDFA" not in methods  # no published rows
    assert [table["rows"][0]["counts"][f"bin{k}"] for k in range(3)] == [10, 10, 10]
    main(["bench", str(run), "--benchmark", "verification", "--flip", "--out", str(out)])
    table = json.loads((out / "verification.json").read_text())
    assert table["meta"]["flip"] and table["meta"]["same_pairs"] == table["meta"]["different_pairs"] == 72
    assert 0.0 <= table["rows"][0]["values"]["auc"] <= 1.0
    assert (out / "verification_roc.png").is_file() and (out / "aflw2000_errors.png").is_file()
