"""Hostile or broken recipe files: each gives one `RecipeError` naming the file, line, key and cause.

Alias bombs, deep nesting, bytes that are not UTF-8, control characters, unknown tags (on scalars,
lists and mappings), merge keys, odd keys, long ``extends`` chains and malformed ``unset`` directives;
and the same rules for ``--set`` values.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from facerep.cli.app import main
from facerep.common.errors import RecipeError
from facerep.core.recipe import MAX_EXTENDS_DEPTH, MAX_NESTING, load_recipe

# 489 bytes that expand to 9**7 (4.8 million) strings through aliases of aliases.
ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def error_of(path: Path, **kw: list[str]) -> RecipeError:
    with pytest.raises(RecipeError) as info:
        load_recipe(path, **kw)
    return info.value


def test_an_alias_bomb_is_refused_at_its_first_anchor_in_little_time_and_memory(tmp_path: Path) -> None:
    path = write(tmp_path / "bomb.yaml", ALIAS_BOMB)
    tracemalloc.start()
    started = time.process_time()
    try:
        err = error_of(path)
        seconds = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.where == f"{path}:1" and err.address == "a"
    assert "anchor '&a'" in err.message and "anchors and aliases are not allowed" in err.message
    assert "extends" in err.message  # says what to use instead
    assert peak < 20e6 and seconds < 10  # refused before expanding, not after


def test_a_small_alias_is_refused_too(tmp_path: Path) -> None:
    # a harmless-looking alias still names the key and line (old code accepted it silently)
    path = write(tmp_path / "alias.yaml", "name: x\nseed: 3\ntrain:\n  epochs: 2\n  log_every: *e\n")
    err = error_of(path)
    assert "alias '*e'" in err.message and err.where == f"{path}:5" and err.address == "train.log_every"
    path = write(tmp_path / "anchor.yaml", "name: x\ntrain: &t\n  epochs: 2\n")
    err = error_of(path)
    assert "anchor '&t'" in err.message and err.where == f"{path}:2" and err.address == "train"


def test_deep_nesting_is_one_error_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.yaml", "name: x\ndata: " + "[" * 5000 + "]" * 5000 + "\n")
    err = error_of(path)
    assert err.where == f"{path}:2" and f"nested more than {MAX_NESTING} levels" in err.message
    assert err.address is not None and err.address.startswith("data.0.0")
    block = "".join(f"{'  ' * i}k{i}:\n" for i in range(200))
    err = error_of(write(tmp_path / "block.yaml", block))
    assert "nested more than" in err.message and err.where == f"{tmp_path / 'block.yaml'}:{MAX_NESTING + 2}"
    ok = "".join(f"{'  ' * i}k{i}:\n" for i in range(20)) + "  " * 20 + "leaf: 1\n"
    assert load_recipe(write(tmp_path / "ok.yaml", "name: x\nbench:\n" + _indent(ok))).get("bench.k0")


def _indent(text: str) -> str:
    return "".join("  " + line + "\n" for line in text.splitlines())


def test_bytes_that_are_not_utf8_name_line_column_and_key(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.yaml", "name: x\ndescription: caf\xe9 au lait\n".encode("latin-1"))
    err = error_of(path)
    assert err.where == f"{path}:2" and err.address == "description"
    assert "not UTF-8" in err.message and "0xe9" in err.message and "column 17" in err.message
    utf16 = write(tmp_path / "utf16.yaml", "name: x\n".encode("utf-16"))
    assert "not UTF-8" in error_of(utf16).message


def test_control_characters_are_one_error_at_their_line(tmp_path: Path) -> None:
    path = write(tmp_path / "ctrl.yaml", 'name: x\nmodel:\n  encoder:\n    type: "res\x01net"\n')
    err = error_of(path)
    assert err.where == f"{path}:4" and err.address == "model.encoder.type" and "U+0001" in err.message


@pytest.mark.parametrize(
    ("text", "line", "address", "words"),
    [
        ("name: !custom x\n", 1, "name", "'!custom'"),
        ("name: x\nseed: !!python/object:os.system 1\n", 2, "seed", "'!!python/object:os.system'"),
        ("data:\n  augment:\n    scale: !foo [0.8, 1.0]\n", 3, "data.augment.scale", "'!foo' on a list"),
        ("data:\n  augment: !!omap [{flip: true}]\n", 2, "data.augment", "'!!omap' on a list"),
        ("data: !!set {a, b}\n", 1, "data", "'!!set' on a mapping"),
        ("model: !thing\n  encoder: {type: resnet}\n", 1, "model", "'!thing' on a mapping"),
        ("description: !!binary aGVsbG8=\n", 1, "description", "'!!binary'"),
        ("description: !!timestamp 2024-05-01\n", 1, "description", "'!!timestamp'"),
        ("seed: !!int abc\n", 1, "seed", "cannot read 'abc' as !!int"),
    ],
)
def test_unsupported_tags_are_refused_at_their_line(
    tmp_path: Path, text: str, line: int, address: str, words: str
) -> None:
    path = write(tmp_path / "tags.yaml", text)
    err = error_of(path)
    assert err.where == f"{path}:{line}" and err.address == address and words in err.message


def test_plain_yaml_tags_and_dates_read_as_recipe_values(tmp_path: Path) -> None:
    path = write(
        tmp_path / "plain.yaml",
        "name: !!str 12\nseed: !!int '7'\ndescription: 2024-05-01\n"
        "optim:\n  model: !!map {type: adam, lr: !!float 1}\ndata: {augment: {scale: !!seq [0.5, 1.0]}}\n",
    )
    recipe = load_recipe(path)
    assert recipe.get("name") == "12" and recipe.get("seed") == 7
    assert recipe.get("description") == "2024-05-01"  # a string, not a datetime.date
    assert recipe.get("optim.model.lr") == 1.0 and recipe.get("data.augment.scale") == [0.5, 1.0]


def test_merge_keys_and_keys_that_are_not_names(tmp_path: Path) -> None:
    err = error_of(write(tmp_path / "merge.yaml", "train:\n  <<: {epochs: 2}\n"))
    assert "merge keys ('<<')" in err.message and err.where.endswith(":2") and err.address == "train"
    err = error_of(write(tmp_path / "listkey.yaml", "train:\n  ? [a, b]\n  : 1\n"))
    assert "a key must be a plain name, not a list" in err.message and err.where.endswith(":2")
    err = error_of(write(tmp_path / "nullkey.yaml", "train:\n  ~: 1\n"))
    assert "empty key" in err.message and err.address == "train"


def test_a_long_extends_chain_is_refused(tmp_path: Path) -> None:
    for i in range(MAX_EXTENDS_DEPTH + 5):
        write(tmp_path / f"r{i}.yaml", f"extends: r{i + 1}.yaml\n")
    write(tmp_path / f"r{MAX_EXTENDS_DEPTH + 5}.yaml", "name: end\n")
    err = error_of(tmp_path / "r0.yaml")
    assert f"longer than {MAX_EXTENDS_DEPTH} recipes" in err.message
    assert load_recipe(tmp_path / "r20.yaml").name == "end"  # 16 levels are fine


def test_stage_unset_must_be_a_list_of_key_paths(tmp_path: Path) -> None:
    base = "name: x\nseed: 1\nlosses:\n  a: {type: shape}\n"
    recipe = load_recipe(write(tmp_path / "s.yaml", base + "stages:\n  one:\n    unset: losses.a\n"))
    with pytest.raises(RecipeError) as info:
        recipe.stage("one")
    assert "'unset' must be a list of key paths" in info.value.message
    assert info.value.where == f"{tmp_path / 's.yaml'}:7" and info.value.address == "stages.one.unset"
    recipe = load_recipe(write(tmp_path / "n.yaml", base + "stages:\n  one:\n    unset: [3]\n"))
    with pytest.raises(RecipeError, match=r"n.yaml:7, key 'stages.one.unset.0': 'unset' entries must be"):
        recipe.stage("one")
    err = error_of(write(tmp_path / "top.yaml", base + "unset: [losses.a, {x: 1}]\n"))
    assert "'unset' entries must be key paths" in err.message and err.where.endswith(":5")


def test_two_stages_with_one_name_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "dup.yaml", "name: x\nstages:\n  - name: a\n  - name: b\n  - name: a\n")
    with pytest.raises(RecipeError, match=r"dup.yaml:5, key 'stages.2.name': two stages are named 'a'"):
        load_recipe(path).stage_names()


@pytest.mark.parametrize(
    ("assignment", "words"),
    [
        ("seed=*x", "alias '*x'"),
        ("data.augment.scale=[&s 0.5, *s]", "anchor '&s'"),
        ("seed=" + "[" * 300 + "]" * 300, "nested more than"),
        ("data.augment.scale=!foo [0.5, 1.0]", "'!foo' on a list"),
        ("seed=!!python/name:os.system", "'!!python/name:os.system'"),
        ("seed=a\x02b", "U+0002"),
    ],
)
def test_set_values_follow_the_rules_of_files(tmp_path: Path, assignment: str, words: str) -> None:
    path = write(tmp_path / "r.yaml", "name: x\nseed: 1\ndata:\n  augment:\n    scale: [1.0, 1.0]\n")
    err = error_of(path, overrides=[assignment])
    assert words in err.message and err.where == f"--set {assignment}"
    assert err.address == assignment.split("=", 1)[0]


def test_the_cli_prints_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bomb.yaml", ALIAS_BOMB)
    for command in (
        ["recipe", "validate", str(path)],
        ["recipe", "show", str(path)],
        ["run", str(path), "--out", str(tmp_path / "out")],
    ):
        with pytest.raises(SystemExit) as info:
            main(command)
        assert info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"{path}:1, key 'a'" in err and "Traceback" not in err


def test_replace_flags_must_be_true_or_false(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.yaml", "name: x\nmodel:\n  encoder:\n    _replace_: 'true'\n    type: resnet\n"
    )
    err = error_of(path)
    assert (
        err.where == f"{path}:4"
        and err.address == "model.encoder._replace_"
        and "true or false" in err.message
    )


def test_a_parent_name_too_long_for_the_file_system_is_not_found(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", f"extends: {'x' * 5000}\n")
    err = error_of(path)  # not a raw OSError (ENAMETOOLONG)
    assert err.where == f"{path}:1" and err.address == "extends" and "not found" in err.message


def test_command_line_key_paths_are_named_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "name: x\nseed: 1\n")
    assert error_of(path, overrides=["a..b=1"]).where == "--set a..b=1"
    assert error_of(path, unsets=["a..b"]).where == "--unset a..b"
    err = error_of(path, overrides=["+seed=2"])
    assert err.where == "--set +seed=2" and "drop the '+'" in err.message


def test_a_set_key_path_deeper_than_the_nesting_limit_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "name: x\nbench: {}\n")
    err = error_of(path, overrides=["+bench." + ".".join(["a"] * 2000) + "=1"])  # was a RecursionError
    assert f"more than {MAX_NESTING} keys deep" in err.message and err.where.startswith("--set +bench.a.a")
    recipe = load_recipe(path, overrides=["+bench.new.deeper=1"])
    assert recipe.locate("bench.new") == "--set +bench.new.deeper=1"  # not the line of 'bench'
