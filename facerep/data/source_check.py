"""``facerep recipe validate --data``: every data source's root exists and its first samples load.

Each ``data.sources`` node of every stage is built through the registry as ``facerep run`` builds it (so a
source with ``landmarks: detect`` fills its landmark cache here, once), then its first few samples are read.
A missing root, a missing or corrupt file is a `facerep.common.errors.RecipeError` at the source's line that
names the file. The synthetic world (``root: builtin``) is generated on first use and not checked here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facerep.common.errors import DataError, RecipeError
from facerep.core.types import DEFAULT_IMAGE_SIZE


def check_sources(recipe: Any, *, samples: int = 3, registry: Any = None) -> list[str]:
    """Build every data source of `recipe` (a resolved `facerep.core.recipe.Recipe`) and read its first
    `samples` samples; returns one line per source. Raises `RecipeError` naming the first problem."""
    from facerep.core.recipe import BUILTIN_ROOT
    from facerep.core.registry import get_registry

    registry = registry or get_registry()
    lines: list[str] = []
    seen: set[tuple[str, str]] = set()
    for stage_name, stage in recipe.stages():
        image_size = int(stage.get("data.image_size", DEFAULT_IMAGE_SIZE))
        for role, node in (stage.get("data.sources") or {}).items():
            address = f"data.sources.{role}"
            node = dict(node)
            root = node.get("root")
            kind = str(node.get("type"))
            if (kind, str(root)) in seen:
                continue
            seen.add((kind, str(root)))
            label = f"{stage_name}: {role} ({kind})" if stage_name else f"{role} ({kind})"
            if root == BUILTIN_ROOT:
                lines.append(f"{label}: the synthetic world (generated on first use)")
                continue
            if root is not None and not Path(str(root)).expanduser().is_dir():
                raise RecipeError(
                    f"{address}.root: folder not found: {root}",
                    where=stage.locate(f"{address}.root"),
                    address=f"{address}.root",
                )
            where = stage.locate(address)
            try:
                dataset = registry.build("dataset", node, {"image_size": image_size}, address=address)
                count = min(int(samples), len(dataset))
                for index in range(count):
                    dataset[index]
            except DataError as exc:
                raise RecipeError(f"{address}: {exc}", where=where, address=address) from None
            skipped = list(getattr(dataset, "skipped", []))
            line = f"{label}: {root}: {len(dataset)} samples, the first {count} load"
            if skipped:
                line += f"; {len(skipped)} bad sample(s) skipped, the first: {skipped[0]}"
            lines.append(line)
    return lines
