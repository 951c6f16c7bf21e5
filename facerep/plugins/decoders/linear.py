"""Shape decoder ``linear``: codes -> linear 3DMM coefficients -> shape (the paper's baseline).

``alpha = FC(concat(identity, expression)) * std`` (the FC predicts whitened coefficients, scaled by
the face model's prior standard deviations), then equation (1) of the paper,
``mean + id_basis . alpha_id + exp_basis . alpha_exp`` (exactly ``face_model.shape``), computed here from
buffers so it follows the module's device. The FC starts at zero: the untrained decoder outputs the
mean shape. The last coefficients are kept in ``last_coefficients`` (alpha_id, alpha_exp) for losses
and inspection.

With ``separate: true`` the map is block-diagonal, as the 3DMM itself is: ``alpha_id =
FC_id(identity) * std_id`` and ``alpha_exp = FC_exp(expression) * std_exp``, so the identity
coefficients depend on the identity code alone (a zero expression code adds only FC_exp's bias, zero
at the start). The default, one FC over both codes, lets the expression code move identity
coefficients: a network can then carry identity in its expression code.

With ``detail: true`` the decoder adds a learned linear map from the identity code to per-vertex
offsets, ``+ scale * W_detail . identity`` (``scale`` the prior's RMS displacement per coordinate,
`facerep.geometry.shape_prior`; ``W_detail`` starts at zero): faces carry detail outside any linear
model's span (a 3DMM fit of a scan misses it: 0.65 mm of the synthetic MICC scans' error), and this is
the smallest decoder that can learn it where exact shapes are its targets (landmark pre-training on
fresh synthetic faces, `facerep.world.fresh_faces`). Off, the decoder is exactly the paper's linear
3DMM baseline.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from facerep.core.interfaces import FaceModel, ShapeDecoder
from facerep.core.registry import Component, hookimpl
from facerep.core.types import CodeSizes
from facerep.geometry.shape_prior import prior_shape_scale


def _buffer(array: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(array), dtype=torch.float32)


class LinearShapeDecoder(ShapeDecoder):
    """concat(identity, expression) -> 3DMM coefficients -> vertices (B, N, 3) in mm.

    Args:
        face_model: injected; the linear model (mean, bases, standard deviations).
        code_sizes: injected; the encoder's identity and expression sizes.
        separate: identity code -> identity coefficients and expression code -> expression
            coefficients only (block-diagonal), instead of one FC over both codes.
        detail: also a learned linear map identity code -> vertex offsets beyond the 3DMM's span.
    """

    def __init__(
        self, face_model: FaceModel, code_sizes: CodeSizes, separate: bool = False, detail: bool = False
    ) -> None:
        super().__init__()
        sizes = CodeSizes.of(code_sizes)
        self.id_dim, self.exp_dim = sizes.identity, sizes.expression
        self.num_id = face_model.num_id
        self.num_exp = face_model.num_exp
        n = face_model.num_vertices
        self.separate = bool(separate)
        if self.separate:
            self.fc_id = nn.Linear(self.id_dim, self.num_id)
            self.fc_exp = nn.Linear(self.exp_dim, self.num_exp)
            layers = [self.fc_id, self.fc_exp]
        else:
            self.fc = nn.Linear(self.id_dim + self.exp_dim, self.num_id + self.num_exp)
            layers = [self.fc]
        self.detail: nn.Linear | None = None
        self.detail_scale = prior_shape_scale(face_model) if detail else 1.0
        if detail:
            self.detail = nn.Linear(self.id_dim, n * 3, bias=False)
            layers.append(self.detail)
        for layer in layers:
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
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
        if self.separate:
            alpha = torch.cat([self.fc_id(identity), self.fc_exp(expression)], dim=1) * self.std
        else:
            alpha = self.fc(torch.cat([identity, expression], dim=1)) * self.std
        return alpha[:, : self.num_id], alpha[:, self.num_id :]

    def forward(self, identity: Tensor, expression: Tensor) -> Tensor:
        """(B, D_id), (B, D_exp) -> (B, N, 3) vertices in mm."""
        alpha_id, alpha_exp = self.coefficients(identity, expression)
        self.last_coefficients = (alpha_id, alpha_exp)
        flat = torch.addmm(self.mean, torch.cat([alpha_id, alpha_exp], dim=1), self.basis)
        if self.detail is not None:
            flat = flat + self.detail(identity) * self.detail_scale
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
