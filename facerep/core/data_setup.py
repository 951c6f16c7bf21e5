"""From a recipe's ``data`` section to hybrid training batches.

``data.sources`` maps roles to dataset nodes; a node whose ``root`` is ``builtin`` reads the embedded
synthetic world of ``data.world`` (generated and cached on first use). All sources are concatenated
into one `facerep.data.hybrid.HybridDataset` (identity label spaces kept disjoint) and batched by the
hybrid sampler (``data.batch``: P identities x K photos of unlabelled rows + labelled pairs).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from facerep.core.errors import RecipeError
from facerep.core.recipe import Recipe
from facerep.core.registry import Registry
from facerep.core.types import Batch
from facerep.data.holdout import split_identities

BUILTIN_ROOT = "builtin"


@dataclass
class TrainingData:
    """The training data of one stage.

    Attributes:
        dataset: the `HybridDataset` over every source.
        loader: a DataLoader yielding `Batch`es in the sampler's order.
        sampler: the `HybridBatchSampler` (set_epoch, state_dict / load_state_dict for resume).
        image_size: side of the square images in pixels.
        num_identities: identity classes over all sources.
        epoch_length: batches in one epoch on this rank (at build time).
        heldout: the held-out labelled samples of ``train.validate`` (never in `dataset`), or None.
        heldout_source: the training view of the source they were split from, or None.
        validation: the stage's ``train.validate`` options (`validation_config`), or None.
    """

    dataset: Any
    loader: torch.utils.data.DataLoader
    sampler: Any
    image_size: int
    num_identities: int
    epoch_length: int
    heldout: Any = None
    heldout_source: Any = None
    validation: dict[str, Any] | None = None

    def batches(self) -> Iterator[Batch]:
        """The rest of the current epoch (the sampler resumes mid-epoch after load_state_dict)."""
        return iter(self.loader)


def resolve_root(stage: Recipe, address: str, node: dict[str, Any]) -> dict[str, Any]:
    """Replace ``root: builtin`` by the cached synthetic world folder of the dataset's type."""
    if node.get("root") != BUILTIN_ROOT:
        return node
    from facerep.data.world import source_root

    try:
        root = source_root(world_path(stage), str(node["type"]).split(":")[-1])
    except KeyError as exc:
        raise RecipeError(
            f"the synthetic world has no data for dataset type {node['type']!r} ({exc})",
            where=stage.locate(f"{address}.root"),
            address=f"{address}.root",
        ) from None
    return {**node, "root": str(root)}


def build_sources(stage: Recipe, face_model: Any, registry: Registry, *, image_size: int) -> dict[str, Any]:
    """Build every ``data.sources`` node through the registry: {role: FaceDataset}."""
    sources = stage.get("data.sources") or {}
    if not sources:
        raise RecipeError(
            "the recipe has no data sources", where=stage.locate("data"), address="data.sources"
        )
    on_bad = (stage.get("train") or {}).get("on_bad_sample")
    built = {}
    for role, node in sources.items():
        address = f"data.sources.{role}"
        node = resolve_root(stage, address, dict(node))
        comp = registry.check("dataset", node, address=address, locate=stage.locate)
        if on_bad is not None and "on_bad_sample" in comp.recipe_parameters() and "on_bad_sample" not in node:
            node["on_bad_sample"] = on_bad
        context = {"face_model": face_model, "image_size": image_size}
        built[role] = registry.build("dataset", node, context, address=address, locate=stage.locate)
    return built


def build_training_data(
    stage: Recipe, face_model: Any, *, registry: Registry, rank: int = 0, world_size: int = 1
) -> TrainingData:
    """Sources, augmentation, hybrid sampler and loader of one stage."""
    from facerep.data.augment import Augment
    from facerep.data.hybrid import HybridDataset

    image_size = int(stage.get("data.image_size", 64))
    sources = build_sources(stage, face_model, registry, image_size=image_size)
    heldout = heldout_source = None
    validate = validation_config(stage, [r for r, src in sources.items() if getattr(src, "labelled", False)])
    if validate is not None:
        role = validate["source"]
        try:
            heldout_source, heldout = split_identities(
                sources[role], validate["identities"], seed=int(stage.get("seed", 0))
            )
        except ValueError as exc:
            raise RecipeError(
                f"train.validate.identities: {exc}",
                where=stage.locate("train.validate.identities"),
                address="train.validate.identities",
            ) from None
        sources[role] = heldout_source
    augment = Augment.from_config(stage.get("data.augment"), face_model=face_model)
    dataset = HybridDataset(sources, augment)
    batch = stage.get("data.batch") or {}
    for key in ("identities", "labelled_pairs"):
        if key in batch and int(batch[key]) % world_size:
            raise RecipeError(
                f"data.batch.{key} = {batch[key]} is not a multiple of the {world_size} processes: the "
                "batch sizes are global and every process takes an equal share of each batch",
                where=stage.locate(f"data.batch.{key}"),
                address=f"data.batch.{key}",
            )
    try:
        loader = dataset.loader(
            stage.get("data.batch"),
            num_workers=int(stage.get("data.num_workers", 0)),
            seed=int(stage.get("seed", 0)),
            num_replicas=world_size,
            rank=rank,
        )
    except ValueError as exc:  # batch sizes the data or the processes cannot provide
        raise RecipeError(str(exc), where=stage.locate("data.batch"), address="data.batch") from None
    # A private generator: creating an iterator must not draw from the global RNG (exact resume).
    loader.generator = torch.Generator().manual_seed(int(stage.get("seed", 0)))
    sampler = loader.batch_sampler
    return TrainingData(
        dataset,
        loader,
        sampler,
        image_size,
        dataset.num_identities,
        len(sampler),
        heldout,
        heldout_source,
        validate,
    )


#: ``train.validate`` keys and their defaults (``source``: the first labelled source when absent).
VALIDATE_DEFAULTS: dict[str, Any] = {"every": 100, "identities": 16, "source": None}


def validation_config(stage: Recipe, labelled: list[str]) -> dict[str, Any] | None:
    """The stage's ``train.validate`` section with defaults, or None when validation is off.

    `labelled` lists the 3DMM-labelled ``data.sources`` roles. Unknown keys, non-positive numbers and a
    source that is not one of them are recipe errors at the key's line.
    """
    node = (stage.get("train") or {}).get("validate")
    if node is None or node is False:
        return None
    where = stage.locate("train.validate")
    if not isinstance(node, dict):
        raise RecipeError(
            "train.validate must be a mapping (every, identities, source) or null",
            where=where,
            address="train.validate",
        )
    from facerep.core.errors import did_you_mean
    from facerep.core.recipe import options_with_defaults

    config = options_with_defaults(stage, "train.validate", node, VALIDATE_DEFAULTS)
    for key in ("every", "identities"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RecipeError(
                f"train.validate.{key} must be a positive integer, got {value!r}",
                where=stage.locate(f"train.validate.{key}"),
                address=f"train.validate.{key}",
            )
    if config["source"] is None:
        if not labelled:
            raise RecipeError(
                "train.validate needs a 3DMM-labelled data source (none of data.sources is labelled)",
                where=where,
                address="train.validate",
            )
        config["source"] = labelled[0]
    elif config["source"] not in labelled:
        key = str(config["source"])
        raise RecipeError(
            f"train.validate.source {key!r} is not a 3DMM-labelled data.sources role"
            f"{did_you_mean(key, labelled)} (labelled: {', '.join(labelled) or 'none'})",
            where=stage.locate("train.validate.source"),
            address="train.validate.source",
        )
    return config


def neutral_candidates(data: TrainingData, limit: int = 256) -> torch.Tensor | None:
    """(M, 3, H, W) images of the most neutral labelled samples (smallest expression coefficients).

    Scans at most `limit` labelled samples (without augmentation) and keeps the quarter whose 3DMM
    expression coefficients have the smallest norm; None when no source is labelled.
    """
    dataset = data.dataset
    labelled = [i for i, flag in enumerate(dataset.labelled) if flag][:limit]
    if not labelled:
        return None
    augment, dataset.augment = dataset.augment, None
    try:
        samples = [dataset[i] for i in labelled]
    finally:
        dataset.augment = augment
    norms = torch.stack([torch.as_tensor(s["exp_params"]).float().norm() for s in samples])
    keep = norms.argsort()[: max(1, len(samples) // 4)]
    return torch.stack([samples[int(i)]["image"].float() for i in keep])


def world_path(stage: Recipe) -> Path:
    """The synthetic world folder a stage's ``data.world`` names (generated if missing)."""
    from facerep.data.world import ensure_world

    world = dict(stage.get("data.world") or {})
    preset, seed = str(world.pop("preset", "demo")), int(world.pop("seed", 0))
    try:
        return ensure_world(preset, seed, sizes=world or None)
    except KeyError as exc:
        from facerep.core.errors import did_you_mean
        from facerep.data.world import TRAINING_SIZES

        key = str(exc.args[0])
        raise RecipeError(
            f"unknown data.world option {key!r}{did_you_mean(key, TRAINING_SIZES)}; options: preset, seed, "
            + ", ".join(TRAINING_SIZES),
            where=stage.locate(f"data.world.{key}"),
            address=f"data.world.{key}",
        ) from None
    except ValueError as exc:
        raise RecipeError(str(exc), where=stage.locate("data.world"), address="data.world") from None
