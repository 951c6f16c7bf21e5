"""facerep: semi-supervised 3D face representation learning from photo collections.

The import package has three parts: `facerep.core` (contracts and composition machinery),
`facerep.plugins` (every paper component, registered through the same hook third parties use) and
`facerep.cli` (the ``facerep`` command).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only; `load` imports lazily
    from facerep.apps.model import FaceRep

__version__ = "0.1.0"


def load(run: str | os.PathLike[str], *, device: str = "auto", checkpoint: str | None = None) -> FaceRep:
    """Load a trained run directory as a `facerep.apps.model.FaceRep` (encode / decode / render /
    reconstruct) on `device` ("auto": CUDA when available, else the CPU). Imports torch and the model code
    on first call only."""
    from facerep.apps.model import load as _load

    return _load(run, device=device, checkpoint=checkpoint)
