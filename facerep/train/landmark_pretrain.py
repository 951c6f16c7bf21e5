"""Landmark pre-training: fit the encoder's landmark branch and the shape decoder before the images.

A stage's ``train.landmark_pretrain`` (off by default) runs before its first image step: the
encoder's codes from the 68 landmarks alone (`Encoder.encode_landmarks`) are decoded by the stage's
shape decoder and fitted to the 3DMM shapes of the stage's labelled training images, with no image,
renderer or critic involved, so it takes seconds to a minute where learning the same geometry from
pixels takes the whole CPU budget. The loss, per labelled image (shapes in mm):

    mean_v |decode(id, exp)_v - s(id_params, exp_params)_v|^2
    + neutral * mean_v |decode(id, 0)_v - s(id_params, 0)_v|^2

with (id, exp) = encode_landmarks(landmarks); the second term teaches the decoder that a zero
expression code means the neutral face, which is how benchmarks decode identity. Adam over every
encoder and shape-decoder parameter the loss reaches (the landmark heads, their normalisation and
the whole decoder), with a cosine learning-rate schedule, on mini-batches drawn with the recipe's
seed; the stage's own optimiser starts afterwards, untouched. Held-out identities
(``train.validate``) are never read: the labels come from the stage's training views.

With ``source: fresh`` the labels are not the stage's images but fresh synthetic faces drawn anew
for every batch from the run's face model (`facerep.world.fresh_faces`: random identities,
expressions and 300W-LP-like poses, their projected landmarks with detector-like noise up to
``noise`` times the landmarks' box size, and their exact shapes, `FaceModel.true_shape`, as targets
in place of s(.)): synthetic pre-training, with no limit on identities and, for the synthetic
world's model, the faces' detail beyond the 3DMM span (which a decoder can learn only if it can
represent it: the linear decoder's ``detail``). The stage then needs no labelled source.

Options (``train.landmark_pretrain``): ``steps`` (default 2000), ``lr`` (1e-3), ``batch`` (128
labelled images a step), ``neutral`` (1.0, the weight of the neutral term), ``source`` (``labelled``,
the stage's labelled images; or ``fresh``), ``noise`` (0.02; ``fresh`` only). Measured on the demo
world (benchmarks/RESULTS.md, "Landmark pre-training" and "Fresh synthetic faces"). The pre-training
runs when a stage starts, not when a run resumes mid-stage (the checkpoint holds its result). Under
``torchrun`` every process runs the same pre-training on all the labels or faces (same draws, same
seed), so their weights stay equal without exchanging gradients.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from facerep.common.errors import RecipeError, did_you_mean
from facerep.core.interfaces import offers_encode_landmarks
from facerep.core.recipe import Recipe, options_with_defaults
from facerep.train.data_setup import whole_option
from facerep.train.freeze import trainable_flags

ADDRESS = "train.landmark_pretrain"
#: ``train.landmark_pretrain`` keys and their defaults.
PRETRAIN_DEFAULTS: dict[str, Any] = {
    "steps": 2000,
    "lr": 1.0e-3,
    "batch": 128,
    "neutral": 1.0,
    "source": "labelled",
    "noise": 0.02,
}
#: Where the pre-training's labels come from (``source``).
SOURCES = ("labelled", "fresh")


def pretrain_config(stage: Recipe) -> dict[str, Any] | None:
    """The stage's ``train.landmark_pretrain`` with defaults, or None when it is off (absent, null or
    false; ``true`` means every default). Unknown keys and bad values are recipe errors at their line."""
    node = (stage.get("train") or {}).get("landmark_pretrain")
    if node is None or node is False:
        return None
    address = ADDRESS
    if node is True:
        node = {}
    if not isinstance(node, dict):
        raise RecipeError(
            f"{address} must be a mapping ({', '.join(PRETRAIN_DEFAULTS)}), true or null",
            where=stage.locate(address),
            address=address,
        )
    config = options_with_defaults(stage, address, node, PRETRAIN_DEFAULTS)
    for key in ("steps", "batch"):
        whole_option(stage, f"{address}.{key}", config[key], 1)
    if config["source"] not in SOURCES:
        raise RecipeError(
            f"{address}.source must be one of {', '.join(SOURCES)}, got {config['source']!r}"
            + did_you_mean(str(config["source"]), SOURCES),
            where=stage.locate(f"{address}.source"),
            address=f"{address}.source",
        )
    if config["source"] == "labelled" and "noise" in node:
        raise RecipeError(
            f"{address}.noise applies to source: fresh only (the labelled images' landmarks are "
            "the detector's or the labels'; model.encoder.landmark_noise jitters them)",
            where=stage.locate(f"{address}.noise"),
            address=f"{address}.noise",
        )
    for key, meaning in (("lr", "a number > 0"), ("neutral", "a number >= 0"), ("noise", "a number >= 0")):
        value = config[key]
        number = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
        if not number or float(value) < 0 or (key == "lr" and float(value) == 0):
            raise RecipeError(
                f"{address}.{key} must be {meaning}, got {value!r}",
                where=stage.locate(f"{address}.{key}"),
                address=f"{address}.{key}",
            )
    return config


def require_landmark_encoder(stage: Recipe, encoder: Any) -> None:
    """A recipe error at ``train.landmark_pretrain`` when the stage pre-trains on landmarks and its
    encoder does not read them (or cannot encode them alone)."""
    if pretrain_config(stage) is None:
        return
    offered = offers_encode_landmarks(encoder)
    if not (getattr(encoder, "reads_landmarks", False) and offered):
        raise RecipeError(
            f"{ADDRESS} needs an encoder that reads landmarks and encodes them alone (encode_landmarks), "
            f"e.g. resnet with model.encoder.landmark_input: true; {type(encoder).__name__} "
            + ("does not read them as configured" if offered else "offers no encode_landmarks"),
            where=stage.locate(ADDRESS),
            address=ADDRESS,
        )


def require_labelled(stage: Recipe, labelled: list[Any]) -> None:
    """A recipe error at ``train.landmark_pretrain`` when the stage pre-trains on its labelled images
    and `labelled` (its 3DMM-labelled sources, or their roles) is empty."""
    config = pretrain_config(stage)
    if config is not None and config["source"] == "labelled" and not labelled:
        raise RecipeError(
            f"{ADDRESS} needs a 3DMM-labelled data source (none of data.sources is labelled); "
            "source: fresh pre-trains on fresh synthetic faces instead",
            where=stage.locate(ADDRESS),
            address=ADDRESS,
        )


def labelled_landmarks(sources: list[Any]) -> tuple[Tensor, Tensor, Tensor]:
    """The labels of every sample of the labelled `sources` (`FaceDataset.labels`, no image read when
    the source holds them): (landmarks (M, 68, 2) px, id_params (M, K_id), exp_params (M, K_exp))."""
    landmarks, id_params, exp_params = [], [], []
    for source in sources:
        for index in range(len(source)):
            labels = source.labels(index)
            landmarks.append(np.asarray(labels["landmarks"], dtype=np.float32))
            id_params.append(np.asarray(labels["id_params"], dtype=np.float32))
            exp_params.append(np.asarray(labels["exp_params"], dtype=np.float32))
    return (
        torch.from_numpy(np.stack(landmarks)),
        torch.from_numpy(np.stack(id_params)),
        torch.from_numpy(np.stack(exp_params)),
    )


class _LabelledDraws:
    """Mini-batches of the stage's labelled images' labels: (landmarks, shape, neutral shape)."""

    def __init__(self, sources: list[Any], face_model: Any) -> None:
        self.landmarks, self.id_params, self.exp_params = labelled_landmarks(sources)
        self.face_model = face_model
        self.count = int(self.landmarks.shape[0])
        self.title = f"landmark pre-training on {self.count} labelled images"

    def draw(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        rows = torch.randint(0, self.count, (min(batch, self.count),), generator=generator)
        id_params, exp_params = self.id_params[rows], self.exp_params[rows]
        with torch.no_grad():
            shape = self.face_model.shape(id_params, exp_params).float()
            neutral = self.face_model.shape(id_params, torch.zeros_like(exp_params)).float()
        return self.landmarks[rows], shape, neutral


class _FreshDraws:
    """Mini-batches of fresh synthetic faces (`facerep.world.fresh_faces`), never the same twice."""

    def __init__(self, face_model: Any, noise: float, steps: int, batch: int) -> None:
        from facerep.world.fresh_faces import FreshFaces

        self.faces = FreshFaces(face_model, noise=noise)
        self.count = steps * batch
        self.title = f"landmark pre-training on {self.count} fresh synthetic faces"

    def draw(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        faces = self.faces.draw(batch, generator)
        return faces.landmarks, faces.shape, faces.neutral


def pretrain_on_landmarks(
    run: Any, name: str, stage: Recipe, comps: Any, config: dict[str, Any]
) -> dict[str, float]:
    """Fit the encoder's landmark codes and the shape decoder of stage `name` to its labelled shapes
    or to fresh synthetic faces (see the module docstring). Logs one record (``landmark_pretrain/*``)
    and returns it."""
    model, device = comps.model, run.device
    encoder, decoder = model.encoder, model.shape_decoder
    require_landmark_encoder(stage, encoder)
    steps, batch, neutral = int(config["steps"]), int(config["batch"]), float(config["neutral"])
    started = time.perf_counter()
    if config["source"] == "fresh":
        draws: _LabelledDraws | _FreshDraws = _FreshDraws(
            comps.face_model, float(config["noise"]), steps, batch
        )
    else:
        labelled = [src for src in comps.data.dataset.sources if getattr(src, "labelled", False)]
        require_labelled(stage, labelled)
        draws = _LabelledDraws(labelled, comps.face_model)
    flags = trainable_flags([encoder, decoder])  # `train.freeze` applies to the image steps only
    params = [p.requires_grad_(True) for p, _ in flags]
    optimiser = torch.optim.Adam(params, lr=float(config["lr"]))
    generator = torch.Generator().manual_seed(int(stage.get("seed", 0)) * 104729 + 11)
    model.train()
    loss_value, first = math.nan, math.nan
    with run.terminal.progress(draws.title, steps) as bar:
        for step in range(steps):
            scale = 0.5 * (1.0 + math.cos(math.pi * step / steps))
            for group in optimiser.param_groups:
                group["lr"] = float(config["lr"]) * scale
            landmarks, shape, neutral_shape = (t.to(device) for t in draws.draw(batch, generator))
            codes = encoder.encode_landmarks(landmarks)
            loss = pretrain_loss(decoder, codes, shape, neutral_shape, neutral)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            loss_value = float(loss.detach())
            if step == 0:
                first = loss_value
            bar.advance(1)
            if step % 50 == 0 or step == steps - 1:
                bar.update_losses({"loss/landmark_pretrain": loss_value})
    optimiser.zero_grad(set_to_none=True)
    for parameter, flag in flags:
        parameter.requires_grad_(flag)
    record = {
        "landmark_pretrain/loss_first": first,
        "landmark_pretrain/loss": loss_value,
        "landmark_pretrain/images": draws.count,
        "landmark_pretrain/steps": steps,
        "landmark_pretrain/seconds": round(time.perf_counter() - started, 2),
    }
    run.log.write({"stage": name, "step": run.state.step, **record})
    return record


def pretrain_loss(
    decoder: Any, codes: dict[str, Tensor], shape: Tensor, neutral_shape: Tensor, neutral: float
) -> Tensor:
    """The pre-training loss of one mini-batch (mm^2, see the module docstring): the landmark codes
    (``identity`` (B, D_id), ``expression`` (B, D_exp), as `Encoder.encode_landmarks` gives them),
    target shapes with and without the expression (B, N, 3) mm, and the neutral term's weight."""
    identity, expression = codes["identity"], codes["expression"]
    loss = (decoder(identity, expression) - shape).pow(2).sum(-1).mean()
    if neutral > 0:
        decoded_neutral = decoder(identity, torch.zeros_like(expression))
        loss = loss + neutral * (decoded_neutral - neutral_shape).pow(2).sum(-1).mean()
    return loss
