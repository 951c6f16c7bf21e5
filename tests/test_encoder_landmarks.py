"""The Encoder landmark contract: an encoder with ``reads_landmarks`` gets, from every caller, the 68
landmarks of exactly the images it encodes, in their frame; without them it is one clear `DataError`; an
encoder that does not read them is unaffected."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import landmark_probe as probe
import numpy as np
import pytest
import torch
from torch import Tensor, nn

from facerep.common.errors import DataError
from facerep.core.interfaces import Encoder
from facerep.core.model import FaceRepModel
from facerep.core.registry import Component, Registry, hookimpl
from facerep.core.types import Batch, Codes, CodeSizes
from facerep.geometry.ibug_layout import IBUG_MIRROR
from facerep.testing import check_component, tiny_face_model
from facerep.testing.fixtures import tiny_encoder


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    probe.CALLS.clear()


def _marks(batch: int, size: int, seed: int = 0) -> Tensor:
    """(batch, 68, 2) distinct points inside (size, size) images, pixels."""
    g = torch.Generator().manual_seed(seed)
    return size * (0.2 + 0.6 * torch.rand(batch, 68, 2, generator=g))


class _Flat(nn.Module):
    """A stand-in decoder: (B, ...) codes -> (B, 4, 3) zeros."""

    def forward(self, identity: Tensor, *rest: object) -> Tensor:
        return torch.zeros(identity.shape[0], 4, 3)


def _probe_model() -> FaceRepModel:
    return FaceRepModel(probe.LandmarkProbeEncoder(), _Flat(), _Flat(), nn.Identity())


class ProbeRun:
    """A benchmark run object whose encoder is the probe (decodes the face model's mean shape)."""

    name = "probe"
    path = Path("runs/probe")
    checkpoint = "step-00000000.safetensors"
    reads_landmarks = True

    def __init__(self, image_size: int, face_model: object = None) -> None:
        self.image_size = image_size
        self.face_model = face_model
        self.neutral_expression = torch.zeros(64)
        self.encoder = probe.LandmarkProbeEncoder()

    def encode(self, images: Tensor, landmarks: Tensor | None = None) -> Codes:
        return self.encoder(images, landmarks)

    def decode_shape(self, identity: Tensor, expression: Tensor) -> Tensor:
        mean = torch.as_tensor(np.asarray(self.face_model.mean), dtype=torch.float32)
        return mean[None].repeat(identity.shape[0], 1, 1)


# -- the contract ------------------------------------------------------------------------------------------


def test_a_reading_encoder_without_landmarks_is_one_clear_error() -> None:
    model = _probe_model()
    assert model.reads_landmarks
    images = torch.rand(2, 3, 32, 32)
    with pytest.raises(
        DataError, match=r"reads the crop's 68 landmarks and none were given: pass landmarks="
    ):
        model.encode(images)
    with pytest.raises(DataError, match=r"shape \(2, 5, 2\) for 2 images: they must be \(2, 68, 2\)"):
        model.encode(images, torch.zeros(2, 5, 2))
    with pytest.raises(DataError, match=r"shape \(3, 68, 2\) for 2 images"):
        model.encode(images, torch.zeros(3, 68, 2))
    with pytest.raises(DataError, match="float pixels"):
        model.encode(images, torch.zeros(2, 68, 2, dtype=torch.long))
    marks = _marks(2, 32)
    codes = model.encode(images, marks)
    assert torch.equal(probe.CALLS[-1].landmarks, marks)
    assert not torch.allclose(codes.identity, model.encode(images, marks.flip(1)).identity)
    recon = model(images, marks, render=False)
    assert torch.equal(probe.CALLS[-1].landmarks, marks) and recon.codes.identity.shape == (2, 128)


def test_an_encoder_that_does_not_read_landmarks_ignores_them() -> None:
    encoder = tiny_encoder()
    model = FaceRepModel(encoder, nn.Identity(), nn.Identity(), nn.Identity()).eval()
    assert not model.reads_landmarks and not type(encoder).reads_landmarks
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        plain = model.encode(images)
        given = model.encode(images, _marks(2, 32))
    assert torch.equal(plain.identity, given.identity) and torch.equal(plain.pose, given.pose)
    with pytest.raises(DataError, match=r"\(2, 68, 2\)"):  # a caller's wrong landmarks are caught anyway
        model.encode(images, torch.zeros(68, 2))


# -- the contract kit --------------------------------------------------------------------------------------


class UncheckedReader(probe.LandmarkProbeEncoder):
    """Reads landmarks but makes up zeros when none are given (no DataError)."""

    def forward(self, images: Tensor, landmarks: Tensor | None = None) -> Codes:
        if landmarks is None:
            landmarks = torch.zeros(images.shape[0], 68, 2)
        return super().forward(images, landmarks)


class SecretReader(Encoder):
    """Says it does not read landmarks, but its identity code moves with them."""

    def __init__(self) -> None:
        super().__init__()
        self.code_sizes = CodeSizes(identity=8, expression=4, pose=6, light=27)
        self.skip_channels: list[int] = []
        self.fc = nn.Linear(3, 8 + 4 + 6 + 27)

    def forward(self, images: Tensor, landmarks: Tensor | None = None) -> Codes:
        h = self.fc(images.mean(dim=(2, 3)))
        if landmarks is not None:
            h = h + landmarks.mean(dim=(1, 2))[:, None]
        return Codes(h[:, :8], h[:, 8:12], h[:, 12:18], h[:, 18:])


class _Plugin:
    @hookimpl
    def facerep_components(self) -> list[Component]:
        return [
            Component("encoder", "probe", probe.LandmarkProbeEncoder, "test"),
            Component("encoder", "unchecked", UncheckedReader, "test"),
            Component("encoder", "secret", SecretReader, "test"),
        ]


def _kit(name: str) -> dict:
    registry = Registry(entry_points=False)
    registry.register(_Plugin(), name="landmark-encoders", package="landmark-test-plugins", version="0.0")
    results = check_component("encoder", name, registry=registry, context={"face_model": tiny_face_model()})
    return {r.check: r for r in results}


def test_the_contract_kit_checks_the_landmark_contract() -> None:
    good = _kit("probe")
    assert not [r for r in good.values() if r.failed], [str(r) for r in good.values()]
    assert good["landmarks"].passed
    unchecked = _kit("unchecked")
    assert unchecked["landmarks"].failed and "must raise DataError" in unchecked["landmarks"].message
    secret = _kit("secret")
    assert secret["landmarks"].failed
    assert "reads_landmarks is False but the codes change" in secret["landmarks"].message


# -- training: the step, validation, the neutral estimate --------------------------------------------------


class _Recording(nn.Module):
    """Stands in for a FaceRepModel: records the arguments of each call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Tensor, Tensor | None]] = []

    def forward(self, images: Tensor, landmarks: Tensor | None = None, *, render: bool = True) -> str:
        self.calls.append((images, landmarks))
        return "reconstruction"


def test_the_train_step_hands_the_batch_landmarks() -> None:
    from facerep.train.step import _forward

    batch = Batch(
        images=torch.rand(3, 3, 32, 32),
        masks=torch.ones(3, 1, 32, 32),
        landmarks=_marks(3, 32),
        identity=torch.arange(3),
        labelled=torch.zeros(3, dtype=torch.bool),
    )
    model = _Recording()
    _forward(model, batch, torch.device("cpu"), "32-true")
    ((images, landmarks),) = model.calls
    assert images is batch.images and landmarks is batch.landmarks


def test_validation_hands_each_chunk_its_landmarks() -> None:
    from test_validation import _Model, _samples

    from facerep.train.validation import Validator

    fm = tiny_face_model()
    samples, truth, pose = _samples(fm)
    seen: list[Tensor] = []

    class Recording(_Model):
        def encode(self, images: Tensor, landmarks: Tensor | None = None) -> Codes:
            assert landmarks is not None and landmarks.shape == (images.shape[0], 68, 2)
            seen.append(landmarks)
            return super().encode(images, landmarks)

    Validator(samples, fm).evaluate(Recording(truth, pose))
    assert torch.equal(torch.cat(seen), torch.stack([s["landmarks"] for s in samples]))


def test_the_neutral_estimate_encodes_the_chosen_images_with_their_landmarks() -> None:
    from facerep.train.neutral import neutral_expression

    class Labelled:
        """8 labelled samples; sample k: image filled with k / 10, landmarks k + its own points."""

        labelled = [True] * 8
        augment = None

        def __len__(self) -> int:
            return 8

        def __getitem__(self, k: int) -> dict:
            return {
                "image": torch.full((3, 32, 32), k / 10),
                "landmarks": _marks(1, 32, seed=k)[0],
                "exp_params": torch.full((4,), float(8 - k)),  # the last two are the most neutral
            }

    model = _probe_model()
    comps = SimpleNamespace(model=model, data=SimpleNamespace(dataset=Labelled()))
    expression = neutral_expression(comps, torch.device("cpu"))
    assert expression.shape == (64,)
    (call,) = probe.CALLS
    chosen = [round(float(v) * 10) for v in call.images[:, 0, 0, 0]]
    assert sorted(chosen) == [6, 7]
    for row, k in enumerate(chosen):
        assert torch.equal(call.landmarks[row], _marks(1, 32, seed=k)[0])


# -- benchmarks --------------------------------------------------------------------------------------------


def test_encode_video_scales_the_landmarks_with_the_frames() -> None:
    from facerep.bench.protocols import encode_video

    run = ProbeRun(image_size=32)
    frames, marks = torch.rand(5, 3, 64, 48), _marks(5, 48)  # 48 wide, 64 high -> 32 x 32
    codes = encode_video(run, frames, marks, batch_size=2)
    assert codes.num_frames == 5 and [c.landmarks.shape[0] for c in probe.CALLS] == [2, 2, 1]
    expected = marks * torch.tensor([32 / 48, 32 / 64])
    assert torch.allclose(torch.cat([c.landmarks for c in probe.CALLS]), expected)
    probe.CALLS.clear()
    chunked = encode_video(run, [frames[:3], frames[3:]], [marks[:3], marks[3:]], batch_size=8)
    assert torch.allclose(chunked.identity, codes.identity, atol=1e-6)
    with pytest.raises(DataError, match="none were given"):
        encode_video(run, frames)


def test_micc_frames_come_with_their_crops_landmarks() -> None:
    from facerep.bench.micc_source import MiccSource
    from facerep.world.cache import ensure_world

    source = MiccSource(ensure_world("tiny", 0, progress=False) / "micc", 32, max_frames=3)
    subject, condition = source.subjects[0], source.conditions[0]
    images, landmarks = source.frames_with_landmarks(subject, condition)
    assert torch.equal(images, source.frames(subject, condition))
    indices = source.frame_indices(subject, condition)
    assert landmarks.shape == (len(indices), 68, 2)
    for row, i in enumerate(indices):
        assert torch.equal(landmarks[row], source.dataset[i]["landmarks"])
    # in the crop's frame: the face (a 1.5-1.7 x crop around the landmarks) sits inside the 32 px crop
    assert float(landmarks.min()) > 0 and float(landmarks.max()) < 32


def test_verification_flip_mirrors_the_landmarks_with_the_image() -> None:
    from facerep.data.augment import mirror_landmarks
    from facerep.plugins.benchmarks.verification import identity_codes

    size = 32
    crops, marks = torch.zeros(2, 3, size, size), _marks(2, size)
    crops[0, :, 5, 3] = 1.0  # a bright pixel under landmark 36 (pixel centre 3.5, 5.5)
    marks[0, 36] = torch.tensor([3.5, 5.5])
    identity_codes(ProbeRun(size), crops, marks, flip=True)
    plain, flipped = probe.CALLS
    assert torch.equal(plain.landmarks, marks) and torch.equal(flipped.images, crops.flip(-1))
    # landmark 36 mirrors to 45: at the flipped image's bright pixel, x -> W - x
    assert torch.equal(flipped.landmarks[0, 45], torch.tensor([size - 3.5, 5.5]))
    x, y = (int(v) for v in flipped.landmarks[0, 45])
    assert float(flipped.images[0, 0, y, x]) == 1.0
    assert torch.equal(flipped.landmarks[:, IBUG_MIRROR, 1], marks[:, :, 1])
    assert torch.allclose(mirror_landmarks(mirror_landmarks(marks, size), size), marks)


def _aflw(tmp_path: Path) -> tuple[Path, SimpleNamespace]:
    from test_bench_aflw2000 import _write_sample

    root = tmp_path / "aflw"
    for name in ("image00002", "image00004"):
        _write_sample(root, name)
    mean = np.random.default_rng(0).normal(0.0, 30.0, (68, 3))
    return root, SimpleNamespace(mean=mean, landmarks=np.arange(68))


def test_aflw2000_feeds_a_reading_run_detected_landmarks_never_the_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facerep.bench.aflw2000_source import read_aflw2000
    from facerep.data.imagefile import landmark_box
    from facerep.plugins.benchmarks import aflw2000

    root, face_model = _aflw(tmp_path)
    samples = read_aflw2000(root)
    detected = [s.landmarks + 2.0 for s in samples]  # a detector's points: near, not equal to, the truth
    monkeypatch.setattr(aflw2000, "dlib_missing", lambda: None)
    monkeypatch.setattr(
        aflw2000.Aflw2000Benchmark, "_dlib_landmarks", lambda self, s, advance: (detected, 0, "stub detector")
    )
    bench = aflw2000.Aflw2000Benchmark(root=str(root), baselines=False, error_images=0, progress=False)
    result = bench.run([ProbeRun(48, face_model)], tmp_path / "out")
    (call,) = probe.CALLS
    for row, (s, points) in enumerate(zip(samples, detected, strict=True)):
        x0, y0, side = landmark_box(s.landmarks, 1.7)  # the crop: the truth's box, as for every run
        expected = (torch.as_tensor(points) - torch.tensor([x0, y0])) * (48 / side)
        assert torch.allclose(call.landmarks[row], expected.float(), atol=1e-4)
    rows = {r.method: r for r in result["table"].rows}
    assert "dlib's 68 points" in rows["probe"].note and "stub detector" in rows["probe"].note


def test_aflw2000_skips_a_reading_run_without_dlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_bench_aflw2000 import MeanFaceRun

    from facerep.plugins.benchmarks import aflw2000

    root, face_model = _aflw(tmp_path)
    monkeypatch.setattr(aflw2000, "dlib_missing", lambda: "dlib is not installed (pip install dlib)")
    bench = aflw2000.Aflw2000Benchmark(root=str(root), error_images=0, progress=False)
    result = bench.run([ProbeRun(48, face_model), MeanFaceRun(face_model)], tmp_path / "out")
    assert probe.CALLS == []
    methods = {r.method for r in result["table"].rows}
    assert "probe" not in methods and "meanface" in methods
    (line,) = [n for n in result["table"].notes if n.startswith("run probe skipped")]
    assert "never the ground truth" in line and "dlib is not installed" in line


def test_verification_gives_a_reading_run_the_crops_landmarks_or_scores_the_pairs_it_can(
    tmp_path: Path,
) -> None:
    from facerep.bench.face_crops import FaceCropper
    from facerep.data.augment import mirror_landmarks
    from facerep.data.photos import landmark_sidecar
    from facerep.plugins.benchmarks.verification import VerificationBenchmark
    from facerep.world.synth import generate_world

    generate_world(tmp_path, "tiny", 0, parts=("verification",), device="cpu")
    root = tmp_path / "verification"
    bench = VerificationBenchmark(root=str(root), flip=True, detector=None, baselines=False, progress=False)
    result = bench.run([ProbeRun(48)], tmp_path / "out")
    images = result["pairs"].images
    cropper = FaceCropper(48, 1.7, None)
    expected = torch.stack([cropper(p).landmarks for p in images])
    plain = torch.cat([c.landmarks for c in probe.CALLS[0::2]])
    flipped = torch.cat([c.landmarks for c in probe.CALLS[1::2]])
    assert torch.allclose(plain, expected) and torch.allclose(flipped, mirror_landmarks(expected, 48))
    assert "probe" in {r.method for r in result["table"].rows}
    full = result["scores"]["probe"]
    # a photo without its sidecar is centre-cropped: no landmarks for it, so the reading run scores the
    # pairs whose photos both have landmarks, with the same scores as before, and says so
    landmark_sidecar(images[0]).unlink()
    probe.CALLS.clear()
    result = bench.run([ProbeRun(48)], tmp_path / "out2")
    assert sum(int(c.images.shape[0]) for c in probe.CALLS) == 2 * (len(images) - 1)  # with the mirrors
    pairs = result["pairs"].pairs
    involved = np.array([images[0] in (p.first, p.second) for p in pairs])
    scores = result["scores"]["probe"]
    assert involved.any() and np.isnan(scores[involved]).all()
    np.testing.assert_allclose(scores[~involved], full[~involved], rtol=1e-6)
    (row,) = [r for r in result["table"].rows if r.method == "probe"]
    assert f"scored on the {int((~involved).sum())} of {len(pairs)} pairs" in row.note
    assert row.counts["same"] + row.counts["different"] == int((~involved).sum())
    written = (tmp_path / "out2" / "verification_pairs.csv").read_text()
    assert ",," in written  # the unscored pairs' empty score fields
