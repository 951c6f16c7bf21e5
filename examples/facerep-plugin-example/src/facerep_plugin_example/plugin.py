"""The module the ``facerep`` entry point names: it tells facerep which components this package adds."""

from __future__ import annotations

from facerep.core.registry import Component, hookimpl

from facerep_plugin_example.decoder import SpiralShapeDecoder


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "shape_decoder",
            "spiral",
            SpiralShapeDecoder,
            "spiral convolutions (Bouritsas et al. 2019) on the COMA hierarchy: concat(id, exp) -> mm",
        )
    ]
