"""Shape decoder ``linear``: codes -> linear 3DMM coefficients -> shape (the paper's baseline).

``alpha = FC(concat(identity, expression)) * std`` (the FC predicts whitened coefficients, scaled by
the face model's prior standard deviations), then equation (1) of the paper,
``mean + id_basis . alpha_id + exp_basis . alpha_exp`` (exactly ``face_model.shape``), computed here from
buffers so it follows the module's device. The FC starts at zero: the untrained decoder outputs the
mean shape. The last coefficients are kept in ``last_coefficients`` (alpha_id, alpha_exp) for losses
and inspection.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from facerep.core.interfaces import FaceModel, ShapeDecoder
from facerep.core.registry import Component, hookimpl
from facerep.core.types import CodeSizes


def _buffer(array: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(array), dtype=torch.float32)


class LinearShapeDecoder(ShapeDecoder):
    """concat(identity, expression) -> 3DMM coefficients -> vertices (B, N, 3) in mm.

    Args:
        face_model: injected; the linear model (mean, bases, standard deviations).
        code_sizes: injected; the encoder's identity and expression sizes.
    """

    def __init__(self, face_model: FaceModel, code_sizes: CodeSizes) -> None:
        super().__init__()
        sizes = CodeSizes.of(code_sizes)
        self.id_dim, self.exp_dim = sizes.identity, sizes.expression
        self.num_id = face_model.num_id
        self.num_exp = face_model.num_exp
        n = face_model.num_vertices
        self.fc = nn.Linear(self.id_dim + self.exp_dim, self.num_id + self.num_exp)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        self.register_buffer("mean", _buffer(face_model.mean).reshape(n * 3), persistent=False)
        self.register_buffer("basis", self._stack_bases(face_model), persistent=False)
        std = np.concatenate([np.asarray(face_model.id_std), np.asarray(face_model.exp_std)])
        self.register_buffer("std", _buffer(std), persistent=False)
        self.last_coefficients: tuple[Tensor, Tensor] | None = None

    @staticmethod
    def _stack_bases(face_model: FaceModel) -> Tensor:
        n = face_model.num_vertices
        id_basis = np.asarray(face_model.id_basis, dtype=np.float32).reshape(face_model.num_id, n * 3)
        exp_basis = np.asarray(face_model.exp_basis, dtype=np.float32).reshape(face_model.num_exp, n * 3)
        return torch.from_numpy(np.concatenate([id_basis, exp_basis], axis=0))  # (K_id + K_exp, 3N)

    def coefficients(self, identity: Tensor, expression: Tensor) -> tuple[Tensor, Tensor]:
        """(B, D_id), (B, D_exp) -> (alpha_id (B, K_id), alpha_exp (B, K_exp)), prior units (not whitened)."""
        alpha = self.fc(torch.cat([identity, expression], dim=1)) * self.std
        return alpha[:, : self.num_id], alpha[:, self.num_id :]

    def forward(self, identity: Tensor, expression: Tensor) -> Tensor:
        """(B, D_id), (B, D_exp) -> (B, N, 3) vertices in mm."""
        alpha_id, alpha_exp = self.coefficients(identity, expression)
        self.last_coefficients = (alpha_id, alpha_exp)
        flat = torch.addmm(self.mean, torch.cat([alpha_id, alpha_exp], dim=1), self.basis)
        return flat.view(identity.shape[0], -1, 3)


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "shape_decoder",
            "linear",
            LinearShapeDecoder,
            "baseline: FC -> linear 3DMM coefficients (x prior std) -> face_model.shape",
        )
    ]
