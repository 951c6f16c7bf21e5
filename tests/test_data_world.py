"""The synthetic world: written in the real layouts, read back by the dataset plugins unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facerep.common.errors import DataError
from facerep.data.hybrid import HybridDataset
from facerep.data.micc import MICC
from facerep.plugins.datasets.celeba import CelebA
from facerep.plugins.datasets.w300lp import W300LP
from facerep.world.synth import LABELLED_FRAME, PRESETS, WORLD_FORMAT, generate_world

TINY = PRESETS["tiny"]


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The tiny world, generated once per test session, with the record of what was generated."""
    record: dict = {}
    path = generate_world(tmp_path_factory.mktemp("world") / "tiny-0", "tiny", 0, record=record)
    return path, record


@pytest.fixture(scope="session")
def face_model():
    from facerep.plugins.facemodels.synthetic import synthetic

    return synthetic(vertices=TINY.vertices, seed=0)


def test_world_layout_and_meta(tiny_world) -> None:
    path, _ = tiny_world
    for rel in ("celeba/img_align_celeba/000001.jpg", "celeba/identity_CelebA.txt",
                "celeba/list_eval_partition.txt", "celeba/landmarks68/img_align_celeba/000001.pts",
                "celeba/masks/img_align_celeba/000001.png", "300w_lp/AFW/AFW_000000_1_0.jpg",
                "300w_lp/AFW/AFW_000000_1_0.mat", "micc/subject_01/Video/PTZ-Outdoor.mjpg",
                "micc/subject_03/Video/Indoor-Cooperative.landmarks68.csv"):  # fmt: skip
        assert (path / rel).is_file(), rel
    scans = list((path / "micc/subject_02/Model/frontal1/obj").glob("*.obj"))
    assert len(scans) == 1 and scans[0].with_suffix(".landmarks68.csv").is_file()
    for sub in ("celeba", "300w_lp", "micc"):
        meta = json.loads((path / sub / "meta.json").read_text())
        assert meta["face_model"] == {"type": "synthetic", "vertices": TINY.vertices, "seed": 0}
    n = TINY.identities * TINY.photos_per_identity
    assert len((path / "celeba/identity_CelebA.txt").read_text().split("\n")) == n + 1
    import scipy.io

    mat = scipy.io.loadmat(str(path / "300w_lp/AFW/AFW_000000_1_0.mat"))
    assert mat["Shape_Para"].shape == (80, 1) and mat["Exp_Para"].shape == (29, 1)
    assert mat["Pose_Para"].shape == (1, 7) and mat["pt2d"].shape == (2, 68) and mat["roi"].shape == (1, 4)


def test_celeba_round_trip(tiny_world) -> None:
    path, record = tiny_world
    data = CelebA(path / "celeba", image_size=TINY.image_size, split="all")
    assert len(data) == TINY.identities * TINY.photos_per_identity and data.num_identities == TINY.identities
    for i in range(len(data)):
        s = data[i]
        truth = record["celeba"][s["sample_id"]]
        assert s["celeba_identity"] == truth["identity"]
        np.testing.assert_allclose(s["landmarks"].numpy(), truth["landmarks"], atol=1e-3)
        np.testing.assert_array_equal(s["mask"][0].numpy(), truth["mask"])
    # photos of one identity vary: different poses give different landmark layouts
    by_id: dict[int, list] = {}
    for i in range(len(data)):
        by_id.setdefault(data.identities[i], []).append(data[i]["landmarks"])
    spread = torch.stack(next(iter(by_id.values()))).std(dim=0).mean()
    assert spread > 0.5


def test_300w_lp_round_trip_and_fitted_params(tiny_world, face_model) -> None:
    path, record = tiny_world
    frame = round(LABELLED_FRAME * TINY.image_size)  # the stored frames: read at their own size
    data = W300LP(path / "300w_lp", image_size=frame, face_model=face_model, crop="center")
    assert len(data) == TINY.labelled_sources * TINY.views_per_source
    assert data.num_identities == TINY.labelled_sources
    sources: dict[str, set[int]] = {}
    for i in range(len(data)):
        s = data[i]
        truth = record["300w_lp"][s["sample_id"]]
        np.testing.assert_allclose(s["id_params"].numpy(), truth["id_params"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s["exp_params"].numpy(), truth["exp_params"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s["landmarks"].numpy(), truth["landmarks"], atol=1e-3)
        np.testing.assert_array_equal(s["mask"][0].numpy(), truth["mask"])
        sources.setdefault(truth["source"], set()).add(s["identity"])
    assert all(len(v) == 1 for v in sources.values()) and len(sources) == TINY.labelled_sources
    # views are profiled: yaw grows within a source, from within 25 degrees up to at most 90
    for first in range(0, len(data), TINY.views_per_source):
        yaws = [abs(float(data[first + v]["pose_params"][1])) for v in range(TINY.views_per_source)]
        assert yaws == sorted(yaws) and yaws[0] <= np.radians(25) + 1e-6 and yaws[-1] <= np.pi / 2 + 1e-6
    all_yaws = np.degrees([abs(float(data[i]["pose_params"][1])) for i in range(len(data))])
    assert ((all_yaws > 30) & (all_yaws < 80)).any()  # half-profiles, not only near-frontal and profile
    # the face fills LABELLED_FACE_SHARE of the frame: the landmark extents vary with it
    extents = [
        float(np.ptp(record["300w_lp"][data[i]["sample_id"]]["landmarks"][:, 1])) for i in range(len(data))
    ]
    assert max(extents) / min(extents) > 1.3
    # the labels are the best linear fit of a face outside the linear span: close, not exact
    s = data[0]
    with torch.no_grad():
        fitted = face_model.shape(s["id_params"][None], s["exp_params"][None])
        refit = face_model.fit(fitted)
    torch.testing.assert_close(refit[0][0], s["id_params"], atol=1e-3, rtol=1e-3)


def test_wrong_face_model_seed_is_refused(tiny_world) -> None:
    from types import SimpleNamespace

    path, _ = tiny_world
    other = SimpleNamespace(
        name="synthetic", seed=5, id_basis=np.zeros((80, 1, 3)), exp_basis=np.zeros((29, 1, 3))
    )
    with pytest.raises(DataError, match="seed 0"):
        W300LP(path / "300w_lp", image_size=32, face_model=other)


def test_micc_round_trip(tiny_world) -> None:
    path, record = tiny_world
    data = MICC(path / "micc", image_size=TINY.image_size)
    assert data.subjects == [f"subject_{k:02d}" for k in range(1, TINY.micc_subjects + 1)]
    assert len(data) == TINY.micc_subjects * 3 * TINY.frames_per_video
    for subject in data.subjects:
        v, f = data.load_scan(subject)
        np.testing.assert_allclose(v, record["micc"][subject]["scan"], atol=1e-3)
        assert v.shape[0] > 2 * TINY.vertices * 0.9 and len(f) > 0
    s = data[data.indices("subject_02", "PTZ-Indoor")[1]]
    assert s["image"].shape == (3, TINY.image_size, TINY.image_size) and s["identity"] == 1
    assert (s["landmarks"] > 0).all() and (s["landmarks"] < TINY.image_size).all()


def test_hybrid_batches_from_the_world(tiny_world, face_model) -> None:
    from facerep.data.augment import Augment

    path, _ = tiny_world
    sources = {
        "photos": CelebA(path / "celeba", image_size=TINY.image_size),
        "labelled": W300LP(path / "300w_lp", image_size=TINY.image_size, face_model=face_model),
    }
    data = HybridDataset(sources, Augment(flip=True, scale=(0.8, 1.0), face_model=face_model))
    loader = data.loader({"identities": 3, "photos_per_identity": 2, "labelled_pairs": 2}, seed=1)
    batch = next(iter(loader))
    assert batch.images.shape == (10, 3, TINY.image_size, TINY.image_size)
    assert batch.labelled.tolist() == [False] * 6 + [True] * 4
    assert batch.id_params.shape == (10, 80) and batch.pair_index.tolist()[6:] == [7, 6, 9, 8]
    assert (batch.identity[6:] >= TINY.identities).all()


def test_flipped_labelled_params_describe_the_mirrored_face(face_model) -> None:
    from facerep.data.augment import MirrorParams

    mirror = MirrorParams(face_model)
    g = torch.Generator().manual_seed(0)
    a_id = torch.randn(80, generator=g) * torch.from_numpy(face_model.id_std)
    a_exp = torch.randn(29, generator=g) * torch.from_numpy(face_model.exp_std)
    m_id, m_exp = mirror(a_id, a_exp)
    shape = face_model.shape(a_id[None], a_exp[None])[0]
    mirrored = shape[torch.from_numpy(face_model.mirror)] * torch.tensor([-1.0, 1.0, 1.0])
    torch.testing.assert_close(face_model.shape(m_id[None], m_exp[None])[0], mirrored, atol=0.05, rtol=0)


def _fake_generate(calls: list):
    def fake(out, preset, seed, *, progress=None, record=None):
        calls.append((Path(out).name, preset.name, seed))
        (Path(out) / "celeba").mkdir(parents=True)
        (Path(out) / "world.json").write_text(json.dumps({"generator": {"format": WORLD_FORMAT}}))
        if progress:
            progress(1)
        return Path(out)

    return fake


def test_root_builtin_reads_the_world_folder_the_dataset_class_declares(tmp_path, monkeypatch) -> None:
    """The world keys its folders by layout, not by plugin name: any dataset declaring a `world_part`."""
    import types

    import facerep.core.registry as registry
    import facerep.world.cache as world

    class Faces(CelebA):
        world_part = "celeba"

    @registry.hookimpl
    def facerep_components() -> list:
        return [registry.Component("dataset", "my_faces", Faces, "CelebA's layout, elsewhere")]

    reg = registry.Registry(entry_points=False)
    reg.register(types.SimpleNamespace(facerep_components=facerep_components), name="mine", package="mine")
    monkeypatch.setattr(registry, "_DEFAULT", reg)
    assert world.source_root(tmp_path, "my_faces") == tmp_path / "celeba"
    assert world.source_root(tmp_path, "micc") == tmp_path / "micc"
    with pytest.raises(KeyError, match=r"holds \['celeba', 'micc', 'my_faces', 'w300lp'\], not 'aflw2000'"):
        world.source_root(tmp_path, "aflw2000")  # an evaluation folder no dataset trains from


def test_ensure_world_is_cached_atomic_and_reused(tmp_path, monkeypatch) -> None:
    import facerep.world.cache as world

    calls: list = []
    monkeypatch.setattr(world, "generate_world", _fake_generate(calls))
    first = world.ensure_world("tiny", 3, root=tmp_path, progress=False)
    assert first == tmp_path / "tiny-3" and (first / "celeba").is_dir()
    assert world.ensure_world("tiny", 3, root=tmp_path, progress=False) == first
    assert len(calls) == 1  # reused, not regenerated
    assert world.source_root(first, "w300lp") == first / "300w_lp"
    with pytest.raises(KeyError):
        world.source_root(first, "aflw2000")

    def broken(out, preset, seed, *, progress=None, record=None):
        (Path(out) / "celeba").mkdir()
        raise RuntimeError("interrupted")

    monkeypatch.setattr(world, "generate_world", broken)
    with pytest.raises(RuntimeError):
        world.ensure_world("demo", 1, root=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["tiny-3"]
    with pytest.raises(DataError, match="unknown synthetic world preset 'huge'"):
        world.ensure_world("huge", 0, root=tmp_path)


def test_cli_data_synth_writes_the_world(tmp_path, monkeypatch) -> None:
    import facerep.world.cache as world
    from facerep.cli.app import main

    calls: list = []
    monkeypatch.setattr(world, "generate_world", _fake_generate(calls))
    main(["data", "synth", "--out", str(tmp_path / "w"), "--preset", "tiny", "--seed", "2"])
    assert (tmp_path / "w" / "celeba").is_dir() and calls[0][1:] == ("tiny", 2)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("user data")
    with pytest.raises(SystemExit) as exc:
        main(["data", "synth", "--out", str(tmp_path / "x"), "--preset", "tiny"])
    assert exc.value.code == 2 and (tmp_path / "x" / "keep.txt").is_file()


def test_cli_data_landmarks_without_dlib_says_which_pip_install(tmp_path, capsys, monkeypatch) -> None:
    import sys

    from PIL import Image

    from facerep.cli.app import main

    monkeypatch.setitem(sys.modules, "dlib", None)  # as if dlib were not installed
    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg")
    with pytest.raises(SystemExit) as exc:
        main(["data", "landmarks", str(tmp_path), "--device", "cpu"])
    err = " ".join(capsys.readouterr().err.split())
    assert exc.value.code == 2
    assert "pip install 'facerep[detect]' (or: pip install dlib-bin face-recognition-models)" in err


def test_training_set_sizes_change_the_training_sets_only(tmp_path) -> None:
    """data.world sizes: a separate cached world whose MICC evaluation set is byte for byte the preset's."""
    from facerep.world.cache import ensure_world, world_spec

    plain = ensure_world("tiny", 0, root=tmp_path, progress=False)
    bigger = ensure_world("tiny", 0, root=tmp_path, progress=False, sizes={"labelled_sources": 7})
    assert bigger.name == "tiny-0-labelled_sources7" and bigger != plain
    assert len(list((bigger / "300w_lp").rglob("*.jpg"))) == 7 * TINY.views_per_source
    assert len(list((plain / "300w_lp").rglob("*.jpg"))) == TINY.labelled_sources * TINY.views_per_source
    plain_micc = sorted(p for p in (plain / "micc").rglob("*") if p.is_file())
    assert plain_micc
    for path in plain_micc:
        assert (bigger / path.relative_to(plain)).read_bytes() == path.read_bytes(), path
    with pytest.raises(KeyError):
        world_spec("tiny", {"micc_subjects": 4})  # the evaluation set cannot be resized
    with pytest.raises(ValueError, match="positive integer"):
        world_spec("tiny", {"identities": 0})


def test_unknown_world_size_is_a_recipe_error_at_its_key(tmp_path) -> None:
    from facerep.common.errors import RecipeError
    from facerep.core.recipe import load_recipe
    from tests.test_engine import tiny_recipe, train

    recipe = tiny_recipe(tmp_path, parent="no_adv")
    with pytest.raises(RecipeError, match="'labeled_sources'.*did you mean 'labelled_sources'"):
        train(recipe, tmp_path / "run", overrides=["+data.world.labeled_sources=9"])
    assert (
        load_recipe(recipe, overrides=["+data.world.labelled_sources=9"]).get("data.world.labelled_sources")
        == 9
    )
