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

from facerep.common.errors import RecipeError
from facerep.core.interfaces import FaceModel
from facerep.core.recipe import BUILTIN_ROOT, Recipe, check_known_keys, options_with_defaults
from facerep.core.registry import Registry
from facerep.core.types import DEFAULT_IMAGE_SIZE, Batch
from facerep.data.holdout import split_identities


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
    return {**node, "root": str(world_folder(stage, address, node, world_path(stage)))}


def world_folder(stage: Recipe, address: str, node: dict[str, Any], world: Path) -> Path:
    """The folder of the synthetic world `world` that the source at `address` (``root: builtin``) reads;
    a recipe error at its ``root`` line for a dataset type the world does not hold."""
    from facerep.world.cache import source_root

    try:
        return source_root(world, str(node.get("type")).split(":")[-1])
    except KeyError as exc:
        raise RecipeError(
            f"the synthetic world has no data for dataset type {node.get('type')!r} ({exc.args[0]})",
            where=stage.locate(f"{address}.root"),
            address=f"{address}.root",
        ) from None


def build_sources(
    stage: Recipe, face_model: FaceModel, registry: Registry, *, image_size: int
) -> dict[str, Any]:
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
    stage: Recipe, face_model: FaceModel, *, registry: Registry, rank: int = 0, world_size: int = 1
) -> TrainingData:
    """Sources, augmentation, hybrid sampler and loader of one stage."""
    from facerep.data.augment import Augment
    from facerep.data.hybrid import HybridDataset

    options = data_options(stage)
    image_size = options["image_size"]
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
            options["batch"],
            num_workers=options["num_workers"],
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


#: ``data`` keys (``sources``: role -> dataset node, see `build_sources`).
DATA_KEYS: tuple[str, ...] = ("world", "image_size", "sources", "batch", "augment", "num_workers")
#: ``data.batch`` keys and their defaults (the global batch: P identities x K photos + labelled pairs).
BATCH_DEFAULTS: dict[str, int] = {"identities": 8, "photos_per_identity": 4, "labelled_pairs": 8}
#: ``data.augment`` keys and their values when the section is given (`facerep.data.augment.Augment`).
AUGMENT_DEFAULTS: dict[str, Any] = {"flip": False, "scale": [1.0, 1.0]}


def whole_option(stage: Recipe, address: str, value: Any, minimum: int, meaning: str = "") -> int:
    """`value` as an integer >= `minimum`, else a recipe error at `address`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        need = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise RecipeError(
            f"{address} must be {need}{meaning}, got {_shown(value)}",
            where=stage.locate(address),
            address=address,
        )
    return value


def _shown(value: Any) -> str:
    return f"the string {value!r}" if isinstance(value, str) else repr(value)


def _mapping(stage: Recipe, address: str, value: Any, what: str) -> dict[str, Any]:
    """`value` (None -> {}) as a mapping, else a recipe error naming `what` it should hold."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecipeError(
            f"{address} must be a mapping ({what}), got {type(value).__name__} {value!r}",
            where=stage.locate(address),
            address=address,
        )
    return value


def data_options(stage: Recipe) -> dict[str, Any]:
    """A stage's ``data`` section checked, without reading any data: {image_size, num_workers, batch,
    augment, world, sources}.

    ``image_size`` (pixels, default 64) and ``num_workers`` (default 0) are integers; ``batch`` holds
    `BATCH_DEFAULTS`' keys (integers; at least one row per batch); ``augment`` holds ``flip`` (bool) and
    ``scale`` ([low, high], 0 < low <= high <= 1); ``world`` is checked by `world_options`; ``sources``
    must name at least one dataset node, and a source whose ``root`` is ``builtin`` must be a type the
    synthetic world holds. Every problem is a `RecipeError` at the key's line.
    """
    data = _mapping(stage, "data", stage.get("data"), "sources, batch, image_size, ...")
    check_known_keys(stage, "data", data, DATA_KEYS)
    sources = _mapping(stage, "data.sources", data.get("sources"), "role -> dataset")
    if not sources:
        raise RecipeError(
            "the recipe has no data sources",
            where=stage.locate_latest("data.sources"),
            address="data.sources",
        )
    for role, node in sources.items():
        if isinstance(node, dict) and node.get("root") == BUILTIN_ROOT:
            world_folder(stage, f"data.sources.{role}", node, Path("."))  # the type only: no world needed
    image_size = whole_option(
        stage, "data.image_size", data.get("image_size", DEFAULT_IMAGE_SIZE), 1, " (pixels)"
    )
    num_workers = whole_option(stage, "data.num_workers", data.get("num_workers", 0), 0)
    batch_node = _mapping(stage, "data.batch", data.get("batch"), ", ".join(BATCH_DEFAULTS))
    check_known_keys(stage, "data.batch", batch_node, BATCH_DEFAULTS)
    batch = {**BATCH_DEFAULTS, **batch_node}
    for key, value in batch.items():
        whole_option(stage, f"data.batch.{key}", value, 1 if key == "photos_per_identity" else 0)
    if batch["identities"] + batch["labelled_pairs"] == 0:
        raise RecipeError(
            "data.batch.identities and data.batch.labelled_pairs are both 0: a batch would be empty",
            where=stage.locate_latest("data.batch"),
            address="data.batch",
        )
    augment = augment_options(stage, data.get("augment"))
    world = world_options(stage)
    return {
        "image_size": image_size,
        "num_workers": num_workers,
        "batch": batch,
        "augment": augment or None,
        "world": world,
        "sources": sources,
    }


def augment_options(stage: Recipe, node: Any) -> dict[str, Any]:
    """A stage's ``data.augment`` checked (``flip`` true or false, ``scale`` [low, high] with
    0 < low <= high <= 1); recipe errors at the key's line."""
    augment = _mapping(stage, "data.augment", node, "flip, scale")
    check_known_keys(stage, "data.augment", augment, AUGMENT_DEFAULTS)
    if "flip" in augment and not isinstance(augment["flip"], bool):
        raise RecipeError(
            f"data.augment.flip must be true or false, got {_shown(augment['flip'])}",
            where=stage.locate("data.augment.flip"),
            address="data.augment.flip",
        )
    if "scale" in augment:
        scale = augment["scale"]
        numbers = isinstance(scale, list) and len(scale) == 2
        numbers = numbers and all(isinstance(v, int | float) and not isinstance(v, bool) for v in scale)
        if not numbers or not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise RecipeError(
                f"data.augment.scale must be [low, high] with 0 < low <= high <= 1, got {_shown(scale)}",
                where=stage.locate("data.augment.scale"),
                address="data.augment.scale",
            )
    return augment


def world_options(stage: Recipe) -> tuple[str, int, dict[str, int]]:
    """A stage's ``data.world`` checked: (preset, seed, changed training-set sizes); recipe errors at the
    key's line for an unknown preset or key, a bad seed or a size that is not a positive integer."""
    from facerep.common.errors import DataError, did_you_mean
    from facerep.train.recipe_check import MAX_SEED
    from facerep.world.cache import TRAINING_SIZES, world_spec
    from facerep.world.synth import PRESETS

    world = dict(_mapping(stage, "data.world", stage.get("data.world"), "preset, seed, ..."))
    preset = world.pop("preset", "demo")
    seed = whole_option(stage, "data.world.seed", world.pop("seed", 0), 0)
    if seed > MAX_SEED:
        raise RecipeError(
            f"data.world.seed must be an integer in [0, {MAX_SEED}], got {seed}",
            where=stage.locate("data.world.seed"),
            address="data.world.seed",
        )
    if not isinstance(preset, str) or preset not in PRESETS:
        raise RecipeError(
            f"unknown synthetic world preset {preset!r}{did_you_mean(str(preset), PRESETS)}; presets: "
            + ", ".join(PRESETS),
            where=stage.locate("data.world.preset"),
            address="data.world.preset",
        )
    try:
        world_spec(preset, world or None)
    except KeyError as exc:
        key = str(exc.args[0])
        raise RecipeError(
            f"unknown data.world option {key!r}{did_you_mean(key, TRAINING_SIZES)}; options: preset, seed, "
            + ", ".join(TRAINING_SIZES),
            where=stage.locate(f"data.world.{key}"),
            address=f"data.world.{key}",
        ) from None
    except (ValueError, DataError) as exc:
        bad = next((k for k in world if f"data.world.{k} " in str(exc)), None)
        address = f"data.world.{bad}" if bad else "data.world"
        raise RecipeError(str(exc), where=stage.locate(address), address=address) from None
    return preset, seed, world


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
    from facerep.common.errors import did_you_mean

    config = options_with_defaults(stage, "train.validate", node, VALIDATE_DEFAULTS)
    for key in ("every", "identities"):
        whole_option(stage, f"train.validate.{key}", config[key], 1)
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


def world_path(stage: Recipe) -> Path:
    """The synthetic world folder a stage's ``data.world`` names (generated if missing)."""
    from facerep.world.cache import ensure_world

    preset, seed, sizes = world_options(stage)
    try:
        return ensure_world(preset, seed, sizes=sizes or None)
    except ValueError as exc:
        raise RecipeError(str(exc), where=stage.locate("data.world"), address="data.world") from None
