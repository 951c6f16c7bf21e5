"""`LinearFaceModel`: the concrete linear 3DMM every face-model loader returns.

A shape is ``mean + sum_k alpha_id[k] id_basis[k] + sum_k alpha_exp[k] exp_basis[k]`` (equation 1 of the
paper) in millimetres, with the coefficient prior N(0, std**2) (coefficients are not whitened); an
albedo is ``clip(albedo_mean + sum_k alpha_tex[k] albedo_basis[k], 0, 1)``. Arrays are kept as numpy
(float32 / int64) and copied to torch per (device, dtype) on first use.

Loaders fill what a model lacks (see `LinearFaceModel.__init__`): the template defaults to the mean, the
mirror map to the nearest vertex of the x-mirrored mean, the nose tip to landmark 30 (iBUG), the UVs to a
planar projection of the template.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from facerep.core.interfaces import FaceModel
from facerep.geometry.symmetry import nearest_mirror_map

#: iBUG-68 index of the nose tip (pronasale).
IBUG_NOSE_TIP = 30


def planar_uv(vertices: np.ndarray) -> np.ndarray:
    """UVs (N, 2) in [0, 1] from the frontal (x, y) projection, scaled by the larger extent (aspect kept)."""
    xy = np.asarray(vertices, dtype=np.float64)[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    centre, extent = (lo + hi) / 2, float((hi - lo).max()) or 1.0
    return ((xy - centre) / extent + 0.5).astype(np.float32)


def _as(a: Any, dtype: Any, shape_tail: tuple[int, ...] | None = None, what: str = "") -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(a), dtype=dtype)
    if shape_tail is not None and arr.shape[arr.ndim - len(shape_tail) :] != shape_tail:
        raise ValueError(f"{what}: expected shape (..., {', '.join(map(str, shape_tail))}), got {arr.shape}")
    return arr


class LinearFaceModel(FaceModel):
    """A linear morphable face model (see `facerep.core.interfaces.FaceModel` for the attributes).

    Args:
        name: short model name.
        mean: (N, 3) mean shape, mm.
        triangles: (F, 3) vertex indices, counter-clockwise seen from +z.
        id_basis: (K_id, N, 3) identity offsets per unit coefficient, mm.
        id_std: (K_id,) prior standard deviations of the identity coefficients.
        exp_basis: (K_exp, N, 3) expression offsets per unit coefficient, mm (K_exp may be 0).
        exp_std: (K_exp,) prior standard deviations of the expression coefficients.
        albedo_mean: (N, 3) mean albedo in [0, 1]; default a uniform skin tone.
        albedo_basis: (K_tex, N, 3) albedo offsets per unit coefficient; default none (K_tex = 0).
        albedo_std: (K_tex,) prior standard deviations of the albedo coefficients.
        landmarks: (68,) vertex indices in iBUG order.
        mirror: (N,) mirror map; default: nearest vertex of the x-mirrored, x-centred mean.
        nose_tip: nose-tip vertex; default: ``landmarks[30]``.
        uv: (N, 2) texture coordinates in [0, 1]; default: `planar_uv` of the template.
        template: (N, 3) template mesh, mm; default: the mean.
        exp_names: names of the expression components; default "exp_00", ...
        info: free-form provenance (source files, unit conversion, what was filled in).
    """

    #: Uniform skin tone used when a model has no albedo (linear RGB in [0, 1]).
    DEFAULT_SKIN = (0.78, 0.60, 0.50)

    def __init__(
        self,
        name: str,
        mean: np.ndarray,
        triangles: np.ndarray,
        id_basis: np.ndarray,
        id_std: np.ndarray,
        exp_basis: np.ndarray | None = None,
        exp_std: np.ndarray | None = None,
        albedo_mean: np.ndarray | None = None,
        albedo_basis: np.ndarray | None = None,
        albedo_std: np.ndarray | None = None,
        landmarks: np.ndarray | None = None,
        mirror: np.ndarray | None = None,
        nose_tip: int | None = None,
        uv: np.ndarray | None = None,
        template: np.ndarray | None = None,
        exp_names: Sequence[str] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.mean = _as(mean, np.float32, (3,), "mean")
        n = self.mean.shape[0]
        self.triangles = _as(triangles, np.int64, (3,), "triangles")
        if self.triangles.size and (self.triangles.min() < 0 or self.triangles.max() >= n):
            raise ValueError(f"triangles index outside [0, {n})")
        self.id_basis = _as(id_basis, np.float32, (n, 3), "id_basis").reshape(-1, n, 3)
        self.id_std = _as(id_std, np.float32).reshape(-1)
        if exp_basis is None:
            exp_basis, exp_std = np.zeros((0, n, 3)), np.zeros((0,))
        self.exp_basis = _as(exp_basis, np.float32, (n, 3), "exp_basis").reshape(-1, n, 3)
        self.exp_std = _as(exp_std if exp_std is not None else np.ones(len(self.exp_basis)), np.float32)
        self.exp_std = self.exp_std.reshape(-1)
        if albedo_mean is None:
            albedo_mean = np.broadcast_to(np.asarray(self.DEFAULT_SKIN), (n, 3))
        self.albedo_mean = _as(albedo_mean, np.float32, (n, 3), "albedo_mean")
        if albedo_basis is None:
            albedo_basis, albedo_std = np.zeros((0, n, 3)), np.zeros((0,))
        self.albedo_basis = _as(albedo_basis, np.float32, (n, 3), "albedo_basis").reshape(-1, n, 3)
        self.albedo_std = _as(
            albedo_std if albedo_std is not None else np.ones(len(self.albedo_basis)), np.float32
        ).reshape(-1)
        for basis, std, what in (
            (self.id_basis, self.id_std, "id"),
            (self.exp_basis, self.exp_std, "exp"),
            (self.albedo_basis, self.albedo_std, "albedo"),
        ):
            if basis.shape[0] != std.shape[0]:
                raise ValueError(
                    f"{what}_basis has {basis.shape[0]} components but {what}_std {std.shape[0]}"
                )
        self.template = self.mean.copy() if template is None else _as(template, np.float32, (3,), "template")
        if self.template.shape[0] != n:
            raise ValueError(f"template has {self.template.shape[0]} vertices, mean {n}")
        if landmarks is None:
            landmarks = np.full(68, int(np.argmax(self.mean[:, 2])), dtype=np.int64)
        self.landmarks = _as(landmarks, np.int64).reshape(-1)
        if self.landmarks.shape != (68,):
            raise ValueError(f"landmarks must be 68 iBUG vertex indices, got shape {self.landmarks.shape}")
        self.mirror = nearest_mirror_map(self.mean) if mirror is None else _as(mirror, np.int64).reshape(-1)
        if self.mirror.shape != (n,):
            raise ValueError(f"mirror must be ({n},), got {self.mirror.shape}")
        self.nose_tip = int(self.landmarks[IBUG_NOSE_TIP] if nose_tip is None else nose_tip)
        self.uv = planar_uv(self.template) if uv is None else _as(uv, np.float32, (2,), "uv")
        self.exp_names = (
            list(exp_names) if exp_names is not None else [f"exp_{k:02d}" for k in range(self.num_exp)]
        )
        if len(self.exp_names) != self.num_exp:
            raise ValueError(f"{len(self.exp_names)} expression names for {self.num_exp} components")
        self.info = dict(info or {})
        self._torch: dict[tuple[str, str, torch.dtype], Tensor] = {}

    # ------------------------------------------------------------------------------------------------------
    # torch views

    @property
    def num_tex(self) -> int:
        return int(self.albedo_basis.shape[0])

    def tensor(self, name: str, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32):
        """A numpy attribute (or derived matrix, see `_derived`) as a cached torch tensor."""
        key = (name, str(torch.device(device) if device is not None else torch.device("cpu")), dtype)
        t = self._torch.get(key)
        if t is None:
            arr = self._derived(name) if name.startswith("_") else getattr(self, name)
            t = torch.as_tensor(np.asarray(arr)).to(device=key[1], dtype=dtype)
            self._torch[key] = t
        return t

    def _derived(self, name: str) -> np.ndarray:
        if name.startswith("_fit_"):
            return self._fit_matrix(float(name[len("_fit_") :]))
        raise KeyError(name)

    def _fit_matrix(self, prior_weight: float) -> np.ndarray:
        """(K_id + K_exp, 3N) matrix P with coefficients = P @ (v - mean).ravel() (regularised LS)."""
        k = self.num_id + self.num_exp
        b = torch.from_numpy(np.concatenate([self.id_basis, self.exp_basis], axis=0).reshape(k, -1))
        b = b.to(torch.float64)
        gram = b @ b.T
        if prior_weight > 0:
            std = torch.from_numpy(np.concatenate([self.id_std, self.exp_std]).astype(np.float64))
            gram = gram + prior_weight * torch.diag(1.0 / std.clamp_min(1e-12) ** 2)
        return torch.linalg.solve(gram, b).numpy()

    @staticmethod
    def _check_batch(x: Tensor, k: int, what: str) -> Tensor:
        if x.dim() != 2 or x.shape[1] != k:
            raise ValueError(f"{what} must be (B, {k}), got {tuple(x.shape)}")
        return x

    # ------------------------------------------------------------------------------------------------------
    # the FaceModel contract

    def shape(self, alpha_id: Tensor, alpha_exp: Tensor | None = None) -> Tensor:
        """Equation (1): (B, K_id), (B, K_exp) coefficients -> (B, N, 3) vertices, mm.

        ``alpha_exp`` None means neutral. The result is on the coefficients' device and dtype.
        """
        self._check_batch(alpha_id, self.num_id, "alpha_id")
        dev, dt = alpha_id.device, alpha_id.dtype if alpha_id.is_floating_point() else torch.float32
        out = self.tensor("mean", dev, dt) + torch.einsum(
            "bk,knc->bnc", alpha_id.to(dt), self.tensor("id_basis", dev, dt)
        )
        if alpha_exp is not None and self.num_exp:
            self._check_batch(alpha_exp, self.num_exp, "alpha_exp")
            out = out + torch.einsum("bk,knc->bnc", alpha_exp.to(dt), self.tensor("exp_basis", dev, dt))
        return out

    def sample_coefficients(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draw (alpha_id (n, K_id), alpha_exp (n, K_exp)) from the prior N(0, std**2)."""
        dev = device if device is not None else (generator.device if generator is not None else "cpu")
        a = torch.randn(n, self.num_id, generator=generator, device=dev) * self.tensor("id_std", dev)
        e = torch.randn(n, self.num_exp, generator=generator, device=dev) * self.tensor("exp_std", dev)
        return a, e

    def sample(self, n: int, generator: torch.Generator | None = None, expression: bool = True) -> Tensor:
        """(n, N, 3) random shapes from the prior (with random expressions unless ``expression`` is False)."""
        a, e = self.sample_coefficients(n, generator)
        return self.shape(a, e if expression else None)

    def fit(self, vertices: Tensor, prior_weight: float = 0.0) -> tuple[Tensor, Tensor]:
        """Least-squares coefficients of (B, N, 3) shapes: (alpha_id (B, K_id), alpha_exp (B, K_exp)).

        Minimises ``||shape(a, e) - vertices||^2 + prior_weight * sum((c / std)^2)`` jointly over identity
        and expression (``prior_weight`` 0: plain least squares, exact for shapes in the model's span).
        """
        if vertices.dim() != 3 or vertices.shape[1:] != (self.num_vertices, 3):
            raise ValueError(f"vertices must be (B, {self.num_vertices}, 3), got {tuple(vertices.shape)}")
        dev = vertices.device
        dt = vertices.dtype if vertices.is_floating_point() else torch.float32
        p = self.tensor(f"_fit_{float(prior_weight)!r}", dev, dt)
        d = (vertices.to(dt) - self.tensor("mean", dev, dt)).reshape(vertices.shape[0], -1)
        c = d @ p.T
        return c[:, : self.num_id], c[:, self.num_id :]

    # ------------------------------------------------------------------------------------------------------
    # albedo

    def albedo(self, alpha_tex: Tensor | None = None, clamp: bool = True) -> Tensor:
        """(B, K_tex) albedo coefficients -> (B, N, 3) per-vertex albedo in [0, 1] (None: the mean, B = 1)."""
        if alpha_tex is None:
            return self.tensor("albedo_mean").unsqueeze(0).clone()
        self._check_batch(alpha_tex, self.num_tex, "alpha_tex")
        dev, dt = alpha_tex.device, alpha_tex.dtype
        out = self.tensor("albedo_mean", dev, dt) + torch.einsum(
            "bk,knc->bnc", alpha_tex, self.tensor("albedo_basis", dev, dt)
        )
        return out.clamp(0.0, 1.0) if clamp else out

    def sample_albedo_coefficients(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """(n, K_tex) albedo coefficients from the prior N(0, albedo_std**2)."""
        dev = device if device is not None else (generator.device if generator is not None else "cpu")
        return torch.randn(n, self.num_tex, generator=generator, device=dev) * self.tensor("albedo_std", dev)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_torch"] = {}  # device copies are rebuilt on demand
        return state

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, vertices={self.num_vertices}, "
            f"triangles={len(self.triangles)}, id={self.num_id}, exp={self.num_exp}, tex={self.num_tex})"
        )


__all__ = ["IBUG_NOSE_TIP", "LinearFaceModel", "planar_uv"]
