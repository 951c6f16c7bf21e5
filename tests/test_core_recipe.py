"""YAML recipes: extends, merge rules, unset, _replace_, overrides, stages, origins and errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from facerep.common.errors import RecipeError
from facerep.core.recipe import builtin_recipe_names, diff, load_recipe
from facerep.core.registry import Registry
from facerep.train.recipe_check import check_recipe


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write(
        tmp_path / "base.yaml",
        """
        name: base
        seed: 1
        model:
          encoder:
            type: resnet
            depth: 50
            id_dim: 128
        losses:
          photometric:
            type: photometric
            weight: 10.0
            mask: true
          adversarial:
            type: wgan_div
            weight: 0.01
        data:
          augment:
            scale: [0.8, 1.0]
        optim:
          model:
            type: adam
            lr: 1.0e-4
        stages:
          first:
            train:
              epochs: 2
          second:
            model:
              encoder:
                _replace_: true
                type: other
            train:
              epochs: 3
        train:
          epochs: 1
          n_critic: 1
        """,
    )


def test_extends_merges_mappings_and_replaces_lists(tmp_path: Path, base: Path) -> None:
    child = write(
        tmp_path / "child.yaml",
        """
        extends: base.yaml
        model:
          encoder:
            depth: 18
        data:
          augment:
            scale: [0.9]
        """,
    )
    r = load_recipe(child)
    assert r.get("model.encoder") == {"type": "resnet", "depth": 18, "id_dim": 128}
    assert r.get("data.augment.scale") == [0.9]
    assert r.get("name") == "base"
    assert "extends" not in r.data
    assert r.locate("model.encoder.depth") == f"{child}:4"
    assert r.locate("model.encoder.id_dim") == f"{base}:7"
    assert r.chain == [child, base]


def test_replace_swaps_the_whole_subtree(tmp_path: Path, base: Path) -> None:
    child = write(
        tmp_path / "child.yaml",
        """
        extends: base.yaml
        model:
          encoder:
            _replace_: true
            type: vit
            patch: 16
        """,
    )
    r = load_recipe(child)
    assert r.get("model.encoder") == {"type": "vit", "patch": 16}
    assert r.locate("model.encoder.depth") == f"{child}:3"  # falls back to the nearest ancestor


def test_unset_removes_paths_and_missing_paths_are_errors(tmp_path: Path, base: Path) -> None:
    child = write(tmp_path / "child.yaml", "extends: base.yaml\nunset: [losses.adversarial, seed]\n")
    r = load_recipe(child)
    assert "adversarial" not in r.get("losses") and "seed" not in r.data
    bad = write(tmp_path / "bad.yaml", "extends: base.yaml\nunset:\n  - losses.adversaria\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(bad)
    assert f"{bad}:3" in str(info.value)
    assert "did you mean 'adversarial'" in str(info.value)


def test_cli_overrides(base: Path) -> None:
    r = load_recipe(base, overrides=["model.encoder.depth=34", "+train.max_steps=5", "seed=[1, 2]"])
    assert r.get("model.encoder.depth") == 34
    assert r.get("train.max_steps") == 5
    assert r.get("seed") == [1, 2]
    assert r.locate("model.encoder.depth") == "--set model.encoder.depth=34"
    with pytest.raises(RecipeError, match=r"no key 'dpth' to override \(did you mean 'depth'\?\)"):
        load_recipe(base, overrides=["model.encoder.dpth=3"])
    with pytest.raises(RecipeError, match="drop the '\\+'"):
        load_recipe(base, overrides=["+seed=3"])
    with pytest.raises(RecipeError, match="key.path=value"):
        load_recipe(base, overrides=["seed"])
    r = load_recipe(base, unsets=["losses.adversarial"])
    assert "adversarial" not in r.get("losses")
    with pytest.raises(RecipeError, match="cannot unset"):
        load_recipe(base, unsets=["losses.nothing"])


def test_stages_override_the_base(base: Path) -> None:
    r = load_recipe(base)
    assert r.stage_names() == ["first", "second"]
    first, second = r.stage("first"), r.stage("second")
    assert first.get("train.epochs") == 2 and second.get("train.epochs") == 3
    assert first.get("model.encoder.type") == "resnet"
    assert second.get("model.encoder") == {"type": "other"}
    assert "stages" not in first.data
    assert second.locate("model.encoder.type").endswith(f"{base}:31")
    with pytest.raises(RecipeError, match="did you mean 'second'"):
        r.stage("secnd")


def test_stage_list_form_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "train: {epochs: 1}\nstages:\n  - name: a\n    train: {epochs: 5}\n")
    assert load_recipe(path).stage("a").get("train.epochs") == 5


def test_errors_carry_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", "name: x\nmodel:\n  encoder: [1,\n")
    with pytest.raises(RecipeError, match=r"bad.yaml:\d+.*invalid YAML"):
        load_recipe(bad)
    top = write(tmp_path / "top.yaml", "name: x\nlosess: {}\n")
    with pytest.raises(RecipeError, match=r"top.yaml:2.*did you mean 'losses'"):
        load_recipe(top)
    dup = write(tmp_path / "dup.yaml", "seed: 1\nseed: 2\n")
    with pytest.raises(RecipeError, match=r"dup.yaml:2.*duplicate key"):
        load_recipe(dup)
    a = write(tmp_path / "a.yaml", "extends: b.yaml\n")
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(a)
    missing = write(tmp_path / "m.yaml", "extends: fulll\n")
    with pytest.raises(RecipeError, match=r"m.yaml:1.*did you mean 'full'"):
        load_recipe(missing)


def test_misspelt_component_type_names_file_line_and_closest(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "name: x\noptim:\n  model:\n    type: adma\n    lr: 0.1\n")
    with pytest.raises(RecipeError) as info:
        check_recipe(load_recipe(path), Registry(entry_points=False))
    assert f"{path}:4" in str(info.value)
    assert "did you mean 'adam'" in str(info.value)
    path = write(tmp_path / "r2.yaml", "optim:\n  model:\n    type: adam\n    betas1: 0.1\n")
    with pytest.raises(RecipeError, match=r"r2.yaml:4.*did you mean 'betas'"):
        check_recipe(load_recipe(path), Registry(entry_points=False))


def test_builtin_recipes_resolve_with_intended_differences() -> None:
    names = builtin_recipe_names()
    for required in (
        "full",
        "no_adv",
        "no_recog",
        "laplacian_smooth",
        "no_mask_symm",
        "gcn_albedo_only",
        "linear_3dmm",
        "demo",
        "demo_pixels",
        "demo_long",
        "demo_long_pixels",
    ):
        assert required in names
    full = load_recipe("full")
    assert full.stage_names() == ["gcn_albedo", "unet_albedo"]
    assert full.stage("unet_albedo").get("model.albedo_decoder") == {"type": "unet"}
    assert full.get("optim.model") == {"type": "adam", "lr": 1e-4}
    assert full.get("optim.critic") == {"type": "rmsprop", "lr": 5e-5}

    def changed(name: str) -> set[str]:
        return {key for key, *_ in diff(full, load_recipe(name)) if key not in ("name", "description")}

    assert changed("no_adv") == {
        "losses.adversarial.type",
        "losses.adversarial.weight",
        "losses.adversarial.k",
        "losses.adversarial.p",
        "critic.type",
        "critic.channels",
        "critic.K",
        "critic.factor",
        "optim.critic.type",
        "optim.critic.lr",
    }
    assert changed("no_recog") == {
        "losses.recognition.type",
        "losses.recognition.weight",
        "losses.recognition.center_weight",
    }
    assert changed("laplacian_smooth") == {"losses.smooth.type"}
    assert "losses.photometric.mask" in changed("no_mask_symm")
    assert all(k.startswith("stages.unet_albedo") for k in changed("gcn_albedo_only"))
    assert load_recipe("gcn_albedo_only").stage_names() == ["gcn_albedo"]
    assert load_recipe("linear_3dmm").get("model.shape_decoder") == {"type": "linear"}
    demo = load_recipe("recipes/demo.yaml")
    assert demo.get("face_model.vertices") == 2000 and demo.get("data.image_size") == 64
    # demo = demo_pixels + the landmark branch, pre-trained on fresh faces; the long recipes alike
    landmark_keys = {
        "model.encoder.landmark_input",
        "model.encoder.landmark_noise",
        "model.encoder.start_from",
        "model.shape_decoder.type",
        "model.shape_decoder.channels",
        "model.shape_decoder.K",
        "model.shape_decoder.factor",
        "model.shape_decoder.detail",
        "stages.gcn_albedo.train.landmark_pretrain.steps",
        "stages.gcn_albedo.train.landmark_pretrain.source",
        "stages.gcn_albedo.train.landmark_pretrain.noise",
        "train.freeze",
    }
    for short, pixels in (("demo", "demo_pixels"), ("demo_long", "demo_long_pixels")):
        keys = {
            k for k, *_ in diff(load_recipe(pixels), load_recipe(short)) if k not in ("name", "description")
        }
        assert keys == landmark_keys, (short, keys)


def test_show_with_origins_annotates_every_leaf(base: Path) -> None:
    text = load_recipe(base).to_yaml(with_origins=True)
    assert f"# {base}:3" in text  # seed
    plain = load_recipe(base).to_yaml()
    assert "depth: 50" in plain and "#" not in plain


@pytest.mark.parametrize("name", builtin_recipe_names())
def test_every_builtin_recipe_validates_against_the_registry(name: str) -> None:
    checked = check_recipe(load_recipe(name))
    kinds = {entry.split(":")[0] for _, _, entry in checked}
    assert {"facemodel", "dataset", "encoder", "shape_decoder", "albedo_decoder", "renderer", "loss"} <= kinds


def test_exponent_floats_are_numbers_in_files_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path / "f.yaml", "optim:\n  model:\n    type: adam\n    lr: 1e-4\n")
    recipe = load_recipe(path, overrides=["+seed=5e-1"])
    assert recipe.get("optim.model.lr") == 1e-4 and recipe.get("seed") == 0.5
