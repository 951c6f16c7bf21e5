"""The synthetic world: procedural faces rendered into the real datasets' on-disk layouts.

`facerep.world.synth` generates a world (its presets, its folders and their writers), drawing scenes
from `facerep.world.scene`; `facerep.world.cache` keeps one generated world per (preset, seed) in the
cache (`ensure_world`, `ensure_world_part`, `write_world`). The face model and the renderer it draws
with are built through the registry by name (``synthetic``, ``sh_rasterizer``), never imported.
"""
