"""The embedded synthetic face model (facemodel ``synthetic``): a procedural 3DMM plus a nonlinear truth.

`synthetic(vertices, seed, ...)` meshes the continuous procedural face of
`facerep.geometry.procedural_face` at the requested vertex count and returns a `SyntheticFaceModel`: a
`LinearFaceModel` (the prior handed to the learner, like BFM + FaceWarehouse in the paper) that also
knows each synthetic identity's *true* shape and albedo, which are not in the linear span::

    true_shape(a, e) = mean + A_id a + A_exp e + r(a)       r(a) = sum_r c_r tanh(W a / std_id)_r R_r

r is smooth, identity-specific, about ``residual_mm`` RMS over the prior and orthogonal to the span of
A_id and A_exp. Two models with the same seed and different vertex counts describe the same faces (the
fields are continuous functions of the surface parameters ``surface_params``); the MICC-like ground-truth
scans are this model evaluated at a denser vertex count.

Conventions: mm, x to the subject's left, y up, z towards the camera; the mean is exactly mirror
symmetric; basis vectors have 1 mm RMS over the vertices (orthonormal in the continuous sense) and the
stds are in mm (albedo: in albedo units), falling.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import Tensor

from facerep.core.registry import Component, hookimpl
from facerep.data.linear_face_model import LinearFaceModel
from facerep.geometry.ibug_layout import IBUG_MIRROR, IBUG_RIGHT, jaw_points
from facerep.geometry.procedural_face import FACE_A, FACE_B, ProceduralFace, face_lattice


def _snap_landmarks(xy: np.ndarray, mirror: np.ndarray, nose_tip: int) -> np.ndarray:
    """68 vertex indices: right-half and midline targets snapped to the nearest vertex, left = mirror."""
    targets = {**jaw_points(), **IBUG_RIGHT}
    lm = -np.ones(68, dtype=np.int64)
    mid = np.flatnonzero(xy[:, 0] == 0)
    right = np.flatnonzero(xy[:, 0] < 0)
    for k, (tx, ty) in targets.items():
        pool = mid if tx == 0 else right
        d = (xy[pool, 0] - tx) ** 2 + (xy[pool, 1] - ty) ** 2
        lm[k] = pool[int(np.argmin(d))]
    lm[30] = nose_tip
    for k in range(68):
        if lm[k] < 0:
            lm[k] = mirror[lm[IBUG_MIRROR[k]]]
    return lm


class SyntheticFaceModel(LinearFaceModel):
    """The procedural linear 3DMM at one resolution, plus the nonlinear truth of each identity.

    Extra attributes: ``surface_params`` (N, 2) the (x, y) surface parameters of the vertices, mm;
    ``procedural`` the continuous `ProceduralFace`; ``res_basis`` (R, N, 3) the residual fields (1 mm
    RMS); ``albedo_res_basis`` (R_tex, N, 3).
    """

    def __init__(
        self,
        vertices: int = 2000,
        seed: int = 0,
        n_id: int = 80,
        n_exp: int = 29,
        n_tex: int = 40,
        residual_mm: float = 2.0,
    ) -> None:
        if not 500 <= vertices <= 60_000:
            raise ValueError(f"synthetic face model: vertices must be within [500, 60000], got {vertices}")
        proc = _procedural(int(seed), int(n_id), int(n_exp), int(n_tex), float(residual_mm))
        lattice = face_lattice(int(vertices))
        f = proc.evaluate(lattice.xy, lattice.mirror)
        xy = lattice.xy
        midline = np.flatnonzero(xy[:, 0] == 0)
        nose_tip = int(midline[np.argmax(f["mean"][midline, 2])])
        landmarks = _snap_landmarks(xy, lattice.mirror, nose_tip)
        uv = np.stack([(xy[:, 0] / FACE_A + 1) / 2, (xy[:, 1] / FACE_B + 1) / 2], axis=1)
        super().__init__(
            name="synthetic",
            mean=f["mean"],
            triangles=lattice.triangles,
            id_basis=f["id_basis"],
            id_std=proc.identity.std,
            exp_basis=f["exp_basis"],
            exp_std=proc.expression.std,
            albedo_mean=f["albedo_mean"],
            albedo_basis=f["albedo_basis"],
            albedo_std=proc.albedo.std,
            landmarks=landmarks,
            mirror=lattice.mirror,
            nose_tip=nose_tip,
            uv=uv,
            exp_names=proc.expression.names,
            info={
                "source": "procedural",
                "seed": int(seed),
                "residual_mm": float(residual_mm),
                "lattice_spacing_mm": lattice.spacing,
            },
        )
        self.id_names = list(proc.identity.names)
        self.albedo_names = list(proc.albedo.names)
        self.surface_params = xy.astype(np.float32)
        self.procedural = proc
        self.res_basis = f["res_basis"].astype(np.float32)
        self.albedo_res_basis = f["albedo_res_basis"].astype(np.float32)
        self.res_mix = proc.res_mix.astype(np.float32)
        self.res_scale = proc.res_scale.astype(np.float32)
        self.tex_res_mix = proc.tex_res_mix.astype(np.float32)
        self.tex_res_scale = proc.tex_res_scale.astype(np.float32)
        self.seed = int(seed)
        self._args = (int(vertices), int(seed), int(n_id), int(n_exp), int(n_tex), float(residual_mm))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # rebuilt (memoised) from its arguments: the procedural fields hold functions, not data
        return (_synthetic_cached, self._args)

    # ------------------------------------------------------------------------------------------------------

    def _residual_weights(self, alpha_id: Tensor, mix: str, scale: str) -> Tensor:
        self._check_batch(alpha_id, self.num_id, "alpha_id")
        dev, dt = alpha_id.device, alpha_id.dtype
        u = (alpha_id / self.tensor("id_std", dev, dt)) @ self.tensor(mix, dev, dt).T
        return torch.tanh(u) * self.tensor(scale, dev, dt)

    def residual(self, alpha_id: Tensor) -> Tensor:
        """Nonlinear identity residual r(alpha_id): (B, K_id) -> (B, N, 3) mm, orthogonal to the span."""
        w = self._residual_weights(alpha_id, "res_mix", "res_scale")
        return torch.einsum("br,rnc->bnc", w, self.tensor("res_basis", alpha_id.device, alpha_id.dtype))

    def true_shape(self, alpha_id: Tensor, alpha_exp: Tensor | None = None) -> Tensor:
        """The synthetic identity's true shape: linear shape + residual, (B, N, 3) mm."""
        return self.shape(alpha_id, alpha_exp) + self.residual(alpha_id)

    def albedo_residual(self, alpha_id: Tensor) -> Tensor:
        """Nonlinear, identity-specific albedo detail (B, N, 3) (albedo units, ~0.02 RMS)."""
        w = self._residual_weights(alpha_id, "tex_res_mix", "tex_res_scale")
        return torch.einsum(
            "br,rnc->bnc", w, self.tensor("albedo_res_basis", alpha_id.device, alpha_id.dtype)
        )

    def true_albedo(self, alpha_tex: Tensor, alpha_id: Tensor) -> Tensor:
        """The identity's true albedo: linear albedo + nonlinear detail, clipped to [0, 1], (B, N, 3)."""
        return (self.albedo(alpha_tex, clamp=False) + self.albedo_residual(alpha_id)).clamp(0.0, 1.0)

    def true_shape_at(
        self, surface_params: np.ndarray, alpha_id: Tensor, alpha_exp: Tensor | None = None
    ) -> Tensor:
        """True shapes at arbitrary surface parameters (M, 2) mm -> (B, M, 3) mm (fields in float64)."""
        f = self.procedural.evaluate(np.asarray(surface_params, dtype=np.float64))
        dev, dt = alpha_id.device, alpha_id.dtype

        def t(a: np.ndarray) -> Tensor:
            return torch.as_tensor(a, device=dev, dtype=dt)

        out = t(f["mean"]) + torch.einsum("bk,kmc->bmc", alpha_id, t(f["id_basis"]))
        if alpha_exp is not None:
            out = out + torch.einsum("bk,kmc->bmc", alpha_exp.to(dt), t(f["exp_basis"]))
        w = self._residual_weights(alpha_id, "res_mix", "res_scale")
        return out + torch.einsum("br,rmc->bmc", w, t(f["res_basis"]))


@functools.lru_cache(maxsize=4)
def _procedural(seed: int, n_id: int, n_exp: int, n_tex: int, residual_mm: float) -> ProceduralFace:
    return ProceduralFace(seed=seed, n_id=n_id, n_exp=n_exp, n_tex=n_tex, residual_mm=residual_mm)


@functools.lru_cache(maxsize=8)
def _synthetic_cached(
    vertices: int, seed: int, n_id: int, n_exp: int, n_tex: int, residual_mm: float
) -> SyntheticFaceModel:
    return SyntheticFaceModel(vertices, seed, n_id, n_exp, n_tex, residual_mm)


def synthetic(
    vertices: int = 2000,
    seed: int = 0,
    n_id: int = 80,
    n_exp: int = 29,
    n_tex: int = 40,
    residual_mm: float = 2.0,
) -> SyntheticFaceModel:
    """The embedded procedural face model (memoised in-process by its arguments; treat it as read-only).

    Args:
        vertices: template vertex count (500..60,000; the paper's template has 37,202).
        seed: seed of the random parts (same seed -> same faces at every vertex count).
        n_id: identity components (named features first, then random smooth fields).
        n_exp: expression components (jaw_open, smile, pout, brow_raise, eye_close, ...; see ``exp_names``).
        n_tex: albedo components.
        residual_mm: RMS of the nonlinear identity residual over the prior, mm.
    """
    return _synthetic_cached(int(vertices), int(seed), int(n_id), int(n_exp), int(n_tex), float(residual_mm))


def _facemodel_summary() -> str:
    return "procedural 3DMM (any resolution) with a nonlinear identity residual; the embedded default"


@hookimpl
def facerep_components() -> list[Component]:
    return [Component("facemodel", "synthetic", synthetic, _facemodel_summary())]


__all__ = ["SyntheticFaceModel", "synthetic"]
