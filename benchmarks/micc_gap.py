"""Where does a run's held-out learning get lost on the MICC videos? One image factor at a time.

    python benchmarks/micc_gap.py runs/demo_long [--identities 96] [--frames 12]

Renders the same identities twice over: as the labelled training set renders them (300W-LP style: the
face filling the 64 px image, default lights, yaw within 25 degrees, exact-landmark crops) and as the
MICC videos do (96 px frames, the face at half the frame, the condition's light, talking expression,
pose path, occluders, sensor noise, JPEG, detector-noise landmarks), then switches the video factors
back to the training style one at a time. Each line is the frame-averaged identity error of the run
(decoded with its neutral expression code, in the model frame, against the identities' linear 3DMM
fit, as `benchmarks/micc_transfer.py` scores) divided by the mean face's. Two groups of identities:
the world's 12 MICC subjects (what the MICC table scores) and `--identities` fresh ones (a low-noise
estimate of the same ratio). Synthetic worlds only.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facerep.data.imagefile import crop_resize, landmark_box  # noqa: E402
from facerep.data.mjpeg import encode_jpeg  # noqa: E402
from facerep.train.run import load_run  # noqa: E402
from facerep.world.scene import detector_noise, sample_lights, sample_poses  # noqa: E402
from facerep.world.synth import VIDEO_STYLES, _coefficients, _face_model, _Studio, _video_plan  # noqa: E402

FACTORS = (
    "scale",
    "canvas",
    "face",
    "light",
    "expression",
    "pose",
    "occluders",
    "noise",
    "jpeg",
    "landmarks",
)


def micc_identities(fm, subjects: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The MICC subjects' identity and albedo coefficients, drawn as `write_micc` draws them."""
    rng = np.random.default_rng([seed, 3])
    a_id = _coefficients(rng, fm.id_std, subjects)
    return a_id, _coefficients(rng, fm.albedo_std, subjects)


def truth(fm, a_id: np.ndarray) -> torch.Tensor:
    """(S, N, 3) mm: the identities' neutral shapes as linear 3DMM fits (what the labels carry)."""
    with torch.no_grad():
        true = fm.true_shape(torch.from_numpy(a_id), torch.zeros(len(a_id), fm.exp_basis.shape[0]))
        fit_id, fit_exp = fm.fit(true)
        return torch.as_tensor(fm.shape(fit_id.float(), torch.zeros_like(fit_exp).float())).float()


def frames(
    studio, fm, a_id, a_tex, condition: str, n: int, trained: set[str], seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, n, 3, 64, 64) crops of every identity, the factors in `trained` in the training style, and their
    (S, n, 68, 2) landmarks in crop pixels (the ones each crop was cut around)."""
    rng = np.random.default_rng([seed, 7])
    st = VIDEO_STYLES[condition]
    plans = [
        _video_plan(rng, fm, condition, n, a_id[s], a_tex[s], rng.random() < 0.5) for s in range(len(a_id))
    ]
    p = {k: np.concatenate([q[k] for q in plans]) for k in plans[0]}
    total = len(p["pose"])
    canvas = 96
    if "scale" in trained:  # the labelled set: rendered at the input size, the face at 0.8-1.0
        canvas = 64
        p["pose"][:, 5] = np.log(rng.uniform(0.8, 1.0, total))
        p["pose"][:, 3:5] = 0.0
    if "canvas" in trained:  # only the frame size
        canvas = 64
    if "face" in trained:  # only the face's share of the frame
        p["pose"][:, 5] = np.log(rng.uniform(0.8, 1.0, total))
    if "light" in trained:
        p["light"] = sample_lights(rng, total)
    if "expression" in trained:
        p["exp"] = _coefficients(rng, fm.exp_std, total) * rng.uniform(0.0, 1.3, (total, 1)).astype(
            np.float32
        )
    if "pose" in trained:
        p["pose"][:, :3] = sample_poses(rng, total, max_yaw=25.0, yaw_std=12.0)[:, :3]
    if "occluders" in trained:
        p["hair"][:] = rng.random(total) < 0.25
        p["glasses"][:] = rng.random(total) < 0.15
        p["occ"] = rng.integers(0, 2**62, total)
    if "noise" in trained:
        p["noise"][:] = 0.01
    photos = studio.photos(rng, p["id"], p["exp"], p["tex"], p["pose"], p["light"], canvas, hair=p["hair"],
                           glasses=p["glasses"], noise=p["noise"], occluder_seeds=p["occ"],
                           background_seeds=None if "scale" in trained else p["background"])  # fmt: skip
    crops, marks = [], []
    for rgb, _mask, lm in photos:
        quality = 92 if "jpeg" in trained else int(st["quality"])
        image = Image.open(io.BytesIO(encode_jpeg(rgb, quality))).convert("RGB")
        if "landmarks" not in trained:
            lm = detector_noise(rng, lm, st["lm"] * canvas)
        crop, crop_marks, _ = crop_resize(image, landmark_box(lm, 1.7), 64, lm)
        crops.append(crop)
        marks.append(crop_marks)
    subjects = len(a_id)
    return torch.stack(crops).reshape(subjects, n, 3, 64, 64), torch.stack(marks).reshape(subjects, n, 68, 2)


def score(run, images: torch.Tensor, landmarks: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """(identity error mm, mean-face error mm) of the frame-averaged identity codes ((S, n, 68, 2)
    `landmarks` in crop pixels go to an encoder that reads them)."""
    with torch.no_grad():
        codes = run.model.encode(images.flatten(0, 1), landmarks.flatten(0, 1))
        codes = codes.identity.reshape(images.shape[0], images.shape[1], -1)
        pred = run.model.decode_shape(codes.mean(1), run.neutral_expression[None].expand(len(codes), -1))
    mean = torch.as_tensor(np.asarray(run.face_model.mean)).float()
    return float((pred.float() - target).norm(dim=-1).mean()), float((mean - target).norm(dim=-1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("--identities", type=int, default=96)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--conditions", nargs="+", default=list(VIDEO_STYLES))
    args = parser.parse_args()
    run = load_run(args.run)
    run.model.eval()
    fm = _face_model(run.face_model.num_vertices, args.seed)
    studio = _Studio(fm)
    groups = {"micc": micc_identities(fm, args.subjects, args.seed)}
    rng = np.random.default_rng([args.seed, 99])
    groups["fresh"] = (
        _coefficients(rng, fm.id_std, args.identities),
        _coefficients(rng, fm.albedo_std, args.identities),
    )
    targets = {g: truth(fm, ids) for g, (ids, _) in groups.items()}
    settings = [
        ("video", set()),
        *((f"train {f}", {f}) for f in FACTORS),
        ("train style", set(FACTORS) - {"canvas", "face"}),
    ]
    print(f"{'condition':<20} {'setting':<18} " + " ".join(f"{g:>14}" for g in groups))
    for condition in args.conditions:
        for label, trained in settings:
            cells = []
            for g, (ids, tex) in groups.items():
                images, marks = frames(studio, fm, ids, tex, condition, args.frames, trained, args.seed)
                err, base = score(run, images, marks, targets[g])
                cells.append(f"{err / base:>8.3f}x {err:.2f}")
            print(f"{condition:<20} {label:<18} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
