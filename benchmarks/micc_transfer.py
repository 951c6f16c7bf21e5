"""Does held-out learning carry over to the MICC frames? Score MICC crops as the validator scores images.

    python benchmarks/micc_transfer.py runs/demo_long [runs/demo ...]

For each run and MICC condition of the run's synthetic world: the identity code averaged over a
subject's frames, decoded with the run's neutral expression code, against the subject's linear 3DMM
fit (regenerated from the world generator's seed), in the model frame without alignment, as
`facerep.train.validation` scores held-out images; beside it the mean face's error, the spread of the
predictions and of the truth. A gap between this ratio and the run's ``val/identity_ratio`` is in the
images (crops, video conditions); a gap between this and the MICC table is in the protocol (alignment,
dense scans). Synthetic worlds only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facerep.bench.micc_source import MiccSource  # noqa: E402
from facerep.train.run import load_run  # noqa: E402
from facerep.train.validation import _spread  # noqa: E402
from facerep.world.cache import ensure_world, source_root  # noqa: E402
from facerep.world.synth import _coefficients, _face_model  # noqa: E402


def subject_truth(preset_vertices: int, subjects: int, seed: int) -> torch.Tensor:
    """(S, N, 3) mm: the MICC subjects' identity shapes as linear 3DMM fits, drawn as `write_micc` draws."""
    fm = _face_model(preset_vertices, seed)
    a_id = _coefficients(np.random.default_rng([seed, 3]), fm.id_std, subjects)
    with torch.no_grad():
        true = fm.true_shape(torch.from_numpy(a_id), torch.zeros(subjects, fm.exp_basis.shape[0]))
        fit_id, fit_exp = fm.fit(true)
        return torch.as_tensor(fm.shape(fit_id.float(), torch.zeros_like(fit_exp).float())).float()


def main() -> None:
    for run_dir in sys.argv[1:]:
        run = load_run(run_dir)
        world = run.recipe.get("data.world") or {}
        seed = int(world.get("seed", 0))
        micc = source_root(ensure_world(str(world.get("preset", "demo")), seed), "micc")
        source = MiccSource(micc, run.image_size)
        truth = subject_truth(run.face_model.num_vertices, len(source.subjects), seed)
        mean = torch.as_tensor(np.asarray(run.face_model.mean)).float()
        base = float((mean - truth).norm(dim=-1).mean())
        for condition in source.conditions:
            preds = []
            for subject in source.subjects:
                images, landmarks = source.frames_with_landmarks(subject, condition)
                with torch.no_grad():
                    identity = run.model.encode(images, landmarks).identity.mean(0, keepdim=True)
                    preds.append(run.model.decode_shape(identity, run.neutral_expression[None]).float()[0])
            pred = torch.stack(preds)
            error = float((pred - truth).norm(dim=-1).mean())
            print(
                f"{run_dir} {condition}: identity {error:.3f} mm, mean face {base:.3f} mm "
                f"({error / base:.3f}x); spread {_spread(pred):.2f} mm (truth {_spread(truth):.2f})"
            )


if __name__ == "__main__":
    main()
