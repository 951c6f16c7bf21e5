"""A mesh's mean-neighbour operator and its template's umbrella vectors, copied once per device and dtype."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from facerep.geometry.laplacian import mean_neighbour_matrix, to_torch_sparse, umbrella


def mean_neighbour_operator(triangles: np.ndarray, num_vertices: int) -> Tensor:
    """A mesh's row-normalised vertex adjacency ((F, 3) triangles) as a torch sparse (N, N) float32 matrix."""
    matrix = mean_neighbour_matrix(triangles, num_vertices)
    return to_torch_sparse(matrix, torch.float32)


class MeanNeighbourCache:
    """The mean-neighbour operator (and the template's umbrella vectors) per device and dtype.

    Kept out of the module's buffers on purpose: the trainer averages floating buffers across processes
    and checkpoints them, neither of which suits a derived sparse operator; copies are made on first
    use on each (device, dtype).
    """

    def __init__(self, triangles: np.ndarray, template: np.ndarray) -> None:
        """`triangles` (F, 3) int, `template` (N, 3) mm: the mesh whose umbrella vectors are kept."""
        self.operator = mean_neighbour_operator(triangles, int(np.shape(template)[0]))
        self.template = torch.as_tensor(template, dtype=torch.float32)
        self._copies: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    def get(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """(operator (N, N) sparse, template umbrella (N, 3)) on `like`'s device and dtype."""
        key = (like.device, like.dtype)
        if key not in self._copies:
            operator = self.operator.to(device=like.device, dtype=like.dtype)
            template = self.template.to(device=like.device, dtype=like.dtype)[None]
            self._copies[key] = (operator, umbrella(template, operator)[0])
        return self._copies[key]
