"""The ``micc`` dataset: MICC Florence's layout (ground-truth scans and three videos per subject), read by
`facerep.data.micc.MICC`, which the MICC benchmark shares (`facerep.bench.micc_source`)."""

from __future__ import annotations

from facerep.core.registry import Component, hookimpl
from facerep.data.micc import MICC


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "dataset", "micc", MICC, "MICC Florence layout: GT scans + videos + landmark files or detection"
        )
    ]
