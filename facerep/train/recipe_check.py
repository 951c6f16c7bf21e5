"""Every check ``facerep run`` makes on a recipe before it trains, shared with ``facerep recipe validate``.

`check_recipe` runs, for every stage in order: the top-level keys and scalars (``name``, ``seed``, ...),
the shape and keys of each section, every component node against the registry (its factory's signature
and argument annotations, `facerep.core.registry.Registry.check`), the components a run needs, the
``data`` section (`facerep.train.data_setup.data_options`), the ``train`` options (`train_options`) and
``train.validate`` (`facerep.train.data_setup.validation_config`). It reads no data and builds nothing,
so it costs milliseconds; ``facerep recipe validate`` runs this function, and the trainer calls it
before anything else.

With ``build=True`` it then builds, stage by stage, what ``facerep run`` builds before its first step
except the data: the face model, encoder, decoders, renderer, critic, losses and optimizers, through
the registry, so that a factory's refusal (``model.encoder.depth: 7``, a missing weights file) is found
before training, as a recipe error at the argument's line (`facerep.core.registry.factory_error`).

Every problem is a `RecipeError` naming the file and line the offending value came from (in a recipe
that extends another, the child's line when the child set it), the key, the cause and, for a misspelt
name, the closest valid one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facerep.common.errors import RecipeError, did_you_mean
from facerep.core.recipe import TOP_LEVEL_KEYS, Recipe, component_nodes
from facerep.core.registry import Registry, get_registry

#: Keys of the ``model`` and ``optim`` sections.
MODEL_KEYS: tuple[str, ...] = ("encoder", "shape_decoder", "albedo_decoder")
OPTIM_KEYS: tuple[str, ...] = ("model", "critic")
#: (address, kind) of the components every stage needs.
REQUIRED_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("face_model", "facemodel"),
    ("model.encoder", "encoder"),
    ("model.shape_decoder", "shape_decoder"),
    ("model.albedo_decoder", "albedo_decoder"),
    ("renderer", "renderer"),
    ("optim.model", "optimizer"),
)
#: Top-level keys that hold mappings.
MAPPING_SECTIONS: tuple[str, ...] = ("data", "model", "losses", "optim", "train", "bench")
#: Keys that only the top of a recipe file may hold, not a stage's overrides.
FILE_ONLY_KEYS: tuple[str, ...] = ("extends", "stages")
#: Largest ``seed`` (and ``data.world.seed``): random generators take 32-bit seeds everywhere.
MAX_SEED = 2**32 - 1
#: ``train.precision`` values.
PRECISIONS: tuple[str, ...] = ("32", "bf16-mixed")
#: Identity classes assumed when ``build=True`` builds the losses without reading the data (the count
#: only sizes the recognition loss's classifier).
PLACEHOLDER_IDENTITIES = 2


def check_recipe(
    recipe: Recipe, registry: Registry | None = None, *, build: bool = False
) -> list[tuple[str, str, str]]:
    """Check every stage of `recipe` as ``facerep run`` does before training (see the module docstring).

    Returns (stage, address, "kind:name") for each component node; raises `RecipeError` on the first
    problem. `build` also builds each stage's components except the data.
    """
    registry = registry or get_registry()
    checked = []
    base = Recipe(
        {k: v for k, v in recipe.data.items() if k != "stages"}, recipe.origins, recipe.source, recipe.chain
    )
    _check_top_level(base)  # what stages override is never used, but must still make sense
    stages = list(recipe.stages())
    for stage_name, stage in stages:
        for address, component in check_stage(stage, registry):
            checked.append((stage_name, address, component))
    if build:
        face_models: list[tuple[Any, Any]] = []
        for _, stage in stages:
            build_stage_components(stage, registry, face_models)
    return checked


def check_stage(stage: Recipe, registry: Registry) -> list[tuple[str, str]]:
    """Check one stage's resolved recipe; returns (address, "kind:name") of its component nodes."""
    from facerep.train.data_setup import data_options, validation_config
    from facerep.train.landmark_pretrain import require_labelled

    _check_top_level(stage)
    checked, components = [], {}
    for address, kind, node in component_nodes(stage.data):
        components[address] = comp = registry.check(kind, node, address=address, locate=stage.locate)
        checked.append((address, f"{kind}:{comp.name}"))
    for address, kind in REQUIRED_COMPONENTS:
        if stage.get(address) is None:  # at the unset that removed it, else the nearest section
            raise RecipeError(
                f"the recipe has no {address!r} ({kind}); a run needs one",
                where=stage.locate(address),
                address=address,
            )
    if stage.get("critic") is not None and stage.get("optim.critic") is None:
        raise RecipeError(
            "a critic needs an optimizer at 'optim.critic'",
            where=_removed_or(stage, "optim.critic", "critic"),
            address="critic",
        )
    for address, comp in components.items():
        adversarial = address.startswith("losses.") and getattr(comp.factory, "has_critic", False)
        if adversarial and stage.get("critic") is None:
            raise RecipeError(
                f"the adversarial loss {comp.name!r} needs a 'critic'",
                where=_removed_or(stage, "critic", address),
                address=address,
            )
    for address, comp in components.items():
        if address.startswith("data.sources."):
            _check_source(stage, address, stage.get(address), comp)
    data_options(stage)
    train_options(stage)
    labelled = [
        address.split(".")[-1]
        for address, comp in components.items()
        if address.startswith("data.sources.") and getattr(comp.factory, "labelled", False)
    ]
    validation_config(stage, labelled)
    require_labelled(stage, labelled)
    return checked


def _removed_or(stage: Recipe, removed: str, other: str) -> str | None:
    """Where `removed` was unset (the cause of a missing partner), else where `other` is."""
    path = tuple(removed.split("."))
    return stage.removed[path] if path in stage.removed else stage.locate(other)


def _check_source(stage: Recipe, address: str, node: dict[str, Any], comp: Any) -> None:
    """What a dataset would refuse when built, found without reading it: a ``root`` folder (annotated
    as a path) that does not exist, and for `facerep.data.base.ImageFaceDataset` sources a ``crop`` or
    ``on_bad_sample`` it does not know."""
    from facerep.core.recipe import BUILTIN_ROOT
    from facerep.data.base import BAD_SAMPLE_POLICIES, CROPS, ImageFaceDataset

    root = node.get("root")
    param = comp.recipe_parameters().get("root")
    annotation = str(param.annotation) if param is not None else ""
    local = isinstance(root, str) and root != BUILTIN_ROOT and "Path" in annotation
    if local and not Path(root).expanduser().is_dir():
        raise RecipeError(
            f"dataset root {root!r} is not a folder ('builtin' reads the synthetic world)",
            where=stage.locate(f"{address}.root"),
            address=f"{address}.root",
        )
    if isinstance(comp.factory, type) and issubclass(comp.factory, ImageFaceDataset):
        for key, choices in (("crop", CROPS), ("on_bad_sample", BAD_SAMPLE_POLICIES)):
            if key in node and node[key] not in choices:
                raise RecipeError(
                    f"dataset {comp.name!r} argument {key!r} must be one of {', '.join(choices)}, got "
                    f"{node[key]!r}{did_you_mean(str(node[key]), choices)}",
                    where=stage.locate(f"{address}.{key}"),
                    address=f"{address}.{key}",
                )


def _check_top_level(stage: Recipe) -> None:
    """Keys a stage may hold, the scalars' types and the sections' shapes."""
    for key, value in stage.data.items():
        if key in FILE_ONLY_KEYS:
            raise RecipeError(
                f"{key!r} belongs at the top of a recipe file, not in a stage's overrides",
                where=stage.locate(key),
                address=key,
            )
        if key not in TOP_LEVEL_KEYS:
            raise RecipeError(
                f"unknown top-level key {key!r}{did_you_mean(key, TOP_LEVEL_KEYS)}; "
                f"valid keys: {', '.join(TOP_LEVEL_KEYS)}",
                where=stage.locate(key),
                address=key,
            )
        if key in MAPPING_SECTIONS and value is not None and not isinstance(value, dict):
            raise RecipeError(
                f"{key!r} must be a mapping, got {type(value).__name__} {value!r}",
                where=stage.locate(key),
                address=key,
            )
    for key in ("name", "description"):
        value = stage.data.get(key)
        if value is not None and (not isinstance(value, str) or (key == "name" and not value.strip())):
            raise RecipeError(
                f"{key!r} must be text, got {type(value).__name__} {value!r}",
                where=stage.locate(key),
                address=key,
            )
    seed = stage.data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise RecipeError(
            f"'seed' must be an integer in [0, {MAX_SEED}], got {seed!r}",
            where=stage.locate("seed"),
            address="seed",
        )
    for section, keys in (("model", MODEL_KEYS), ("optim", OPTIM_KEYS)):
        for key in stage.data.get(section) or {}:
            if key not in keys:
                raise RecipeError(
                    f"unknown {section} key {key!r}{did_you_mean(key, keys)}; {section} holds: "
                    + ", ".join(keys),
                    where=stage.locate(f"{section}.{key}"),
                    address=f"{section}.{key}",
                )


def train_options(stage: Recipe) -> dict[str, Any]:
    """A stage's ``train`` options with defaults, each value checked: `facerep.train.config.train_config`
    (unknown keys, counts, the learning-rate schedule, ``on_nonfinite``), then ``on_bad_sample`` (error or
    skip), ``precision`` (one of `PRECISIONS`) and ``grad_clip`` (a number >= 0)."""
    from facerep.train.config import train_config

    try:
        config = train_config(stage)
    except RecipeError as exc:
        if exc.address is not None:
            raise
        key = next((k for k in (stage.get("train") or {}) if exc.message.startswith(f"{k} ")), None)
        if key is None:
            raise
        raise RecipeError(exc.message, where=exc.where, address=f"train.{key}") from None
    if config["on_bad_sample"] not in ("error", "skip"):
        raise RecipeError(
            f"train.on_bad_sample must be 'error' or 'skip', got {config['on_bad_sample']!r}",
            where=stage.locate("train.on_bad_sample"),
            address="train.on_bad_sample",
        )
    precision = config["precision"]
    if isinstance(precision, bool) or str(precision) not in PRECISIONS:
        raise RecipeError(
            f"train.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
            + did_you_mean(str(precision), PRECISIONS),
            where=stage.locate("train.precision"),
            address="train.precision",
        )
    clip = config["grad_clip"]
    if isinstance(clip, bool) or not isinstance(clip, int | float) or not clip >= 0:
        raise RecipeError(
            f"train.grad_clip must be a number >= 0 (0: off), got {clip!r}",
            where=stage.locate("train.grad_clip"),
            address="train.grad_clip",
        )
    return config


def build_stage_components(stage: Recipe, registry: Registry, face_models: list[tuple[Any, Any]]) -> None:
    """Build a checked stage's face model, networks, critic, losses and optimizers on the CPU (no data).

    `face_models` caches (node, face model) pairs across stages. Factory errors surface as recipe
    errors at the argument's line (`facerep.core.registry.Registry.build`).
    """
    import torch

    from facerep.common.paths import cache_dir
    from facerep.core.model import build_model
    from facerep.train.data_setup import data_options
    from facerep.train.freeze import freeze_parameters
    from facerep.train.landmark_pretrain import require_landmark_encoder

    locate = stage.locate
    context: dict[str, Any] = {"cache_dir": cache_dir(), "device": torch.device("cpu")}
    node = stage.get("face_model")
    face_model = next((built for seen, built in face_models if seen == node), None)
    if face_model is None:
        face_model = registry.build("facemodel", node, context, address="face_model", locate=locate)
        face_models.append((node, face_model))
    context.update(
        face_model=face_model,
        image_size=data_options(stage)["image_size"],
        num_identities=PLACEHOLDER_IDENTITIES,
    )
    model = build_model(stage, context, registry)
    require_landmark_encoder(stage, model.encoder)
    freeze_parameters(stage, model)
    critic = None
    if stage.get("critic") is not None:
        critic = registry.build("critic", stage.get("critic"), context, address="critic", locate=locate)
    losses = [
        registry.build("loss", node, context, address=f"losses.{role}", locate=locate)
        for role, node in (stage.get("losses") or {}).items()
    ]
    params = [p for p in model.parameters() if p.requires_grad]
    params += [p for loss in losses for p in loss.parameters() if p.requires_grad]
    registry.build(
        "optimizer", stage.get("optim.model"), {"params": params}, address="optim.model", locate=locate
    )
    if critic is not None:
        registry.build(
            "optimizer",
            stage.get("optim.critic"),
            {"params": list(critic.parameters())},
            address="optim.critic",
            locate=locate,
        )
