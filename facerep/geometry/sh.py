"""Second-order spherical-harmonics (SH) Lambertian lighting, Deep3DFaceRecon convention.

Layout of a light code (B, 27): channel-major 3 x 9, i.e. ``light.view(B, 3, 9)[:, c, k]`` is the
coefficient of basis function k for colour channel c (R's nine, then G's, then B's).

Basis on a unit normal n = (x, y, z) in the camera frame (x right, y up, z towards the camera), with
a = (pi, 2 pi / sqrt(3), 2 pi / sqrt(8)) and c = (1 / sqrt(4 pi), sqrt(3) / sqrt(4 pi),
3 sqrt(5) / sqrt(12 pi)) (Deng et al. 2019)::

    H0 = a0 c0                               = 0.8862
    H1 = -a1 c1 y                            (a1 c1 = 1.7725)
    H2 =  a1 c1 z
    H3 = -a1 c1 x
    H4 =  a2 c2 x y                          (a2 c2 = 2.4270)
    H5 = -a2 c2 y z
    H6 =  a2 c2 / (2 sqrt(3)) (3 z^2 - 1)    (0.7006)
    H7 = -a2 c2 x z
    H8 =  a2 c2 / 2 (x^2 - y^2)              (1.2135)

Irradiance of channel c: ``E_c(n) = sum_k H_k(n) * gamma_ck`` where ``gamma = light.view(B, 3, 9)``
with ``ambient`` (0.8 by default) added to each channel's DC coefficient ``gamma_c0``, so a zero light
code gives the uniform irradiance 0.8 * 0.8862 = 0.709. The shaded colour is ``albedo * E``.
Note that ``H_k / a_l`` (a_l the band's constant) are orthonormal real spherical harmonics on the unit
sphere (up to the signs above); the test suite checks this.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from facerep.geometry.render import RasterizedMesh

#: Band factors a_l of Deep3DFaceRecon (not Ramamoorthi's pi, 2pi/3, pi/4).
SH_A: tuple[float, float, float] = (math.pi, 2 * math.pi / math.sqrt(3.0), 2 * math.pi / math.sqrt(8.0))
#: Normalisation constants c_l.
SH_C: tuple[float, float, float] = (
    1 / math.sqrt(4 * math.pi),
    math.sqrt(3.0) / math.sqrt(4 * math.pi),
    3 * math.sqrt(5.0) / math.sqrt(12 * math.pi),
)
#: Default ambient added to each channel's DC coefficient.
DEFAULT_AMBIENT = 0.8
#: Number of SH coefficients per colour channel, and of a full RGB light code.
NUM_SH = 9
LIGHT_SIZE = 27


def sh_basis(normals: Tensor) -> Tensor:
    """The nine scaled SH basis values H_k of unit normals.

    Args:
        normals: (..., 3) unit normals (x, y, z) in the camera frame.

    Returns:
        (..., 9) basis values (see the module docstring for the formulas).
    """
    if normals.shape[-1] != 3:
        raise ValueError(f"sh_basis expects (..., 3) normals, got shape {tuple(normals.shape)}")
    a0, a1, a2 = SH_A
    c0, c1, c2 = SH_C
    x, y, z = normals.unbind(-1)
    k1 = a1 * c1
    k2 = a2 * c2
    return torch.stack(
        [
            torch.full_like(x, a0 * c0),
            -k1 * y,
            k1 * z,
            -k1 * x,
            k2 * x * y,
            -k2 * y * z,
            0.5 * k2 / math.sqrt(3.0) * (3 * z * z - 1),
            -k2 * x * z,
            0.5 * k2 * (x * x - y * y),
        ],
        -1,
    )


def light_coefficients(light: Tensor, ambient: float = DEFAULT_AMBIENT) -> Tensor:
    """(B, 27) channel-major light code -> (B, 3, 9) coefficients with ``ambient`` added to each DC term."""
    if light.shape[-1] != LIGHT_SIZE:
        raise ValueError(f"SH light codes have {LIGHT_SIZE} values (3 x 9), got shape {tuple(light.shape)}")
    gamma = light.reshape(*light.shape[:-1], 3, NUM_SH)
    offset = torch.zeros(NUM_SH, dtype=light.dtype, device=light.device)
    offset[0] = ambient
    return gamma + offset


def irradiance(normals: Tensor, light: Tensor, ambient: float = DEFAULT_AMBIENT) -> Tensor:
    """Per-point RGB irradiance.

    Args:
        normals: (B, N, 3) unit normals in the camera frame.
        light: (B, 27) channel-major SH light code.
        ambient: added to each channel's DC coefficient.

    Returns:
        (B, N, 3) irradiance (multiply by albedo for the shaded colour).
    """
    gamma = light_coefficients(light, ambient)  # (B, 3, 9)
    basis = sh_basis(normals)  # (B, N, 9)
    return basis @ gamma.transpose(-1, -2)


def light_from_direction(
    direction: tuple[float, float, float] | Tensor,
    strength: float = 0.5,
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0),
    batch: int = 1,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """A (batch, 27) light code: a first-order lobe from ``direction`` (camera frame, towards the light).

    The lobe's irradiance is ``strength * colour_c * a1 c1 * (n . d)`` on top of the ambient term.
    """
    d = torch.as_tensor(direction, dtype=dtype)
    d = d / d.norm().clamp_min(1e-12)
    row = torch.zeros(3, NUM_SH, dtype=dtype)
    for c in range(3):
        row[c, 1] = -strength * colour[c] * d[1]
        row[c, 2] = strength * colour[c] * d[2]
        row[c, 3] = -strength * colour[c] * d[0]
    return row.reshape(1, LIGHT_SIZE).expand(batch, LIGHT_SIZE).clone()


#: How `SHShader` evaluates the irradiance: per pixel (blended normals) or per vertex (Gouraud).
SHADING_MODES: tuple[str, ...] = ("pixel", "vertex")


class SHShader:
    """Lambertian shading under second-order SH light, colour = albedo * E(n): `render`'s default shader.

    A `facerep.geometry.render.Shader`.

    Args:
        ambient: added to each channel's DC coefficient (`DEFAULT_AMBIENT`: a zero light code renders lit).
        mode: "pixel" blends the vertex normals at each pixel, renormalises them and evaluates ``E`` there;
            "vertex" evaluates ``E`` at the vertices and blends the irradiance (Gouraud; cheaper).

    Reads (B, `LIGHT_SIZE`) channel-major light codes; normals are the rasteriser's camera-frame ones.
    """

    light_size = LIGHT_SIZE

    def __init__(self, ambient: float = DEFAULT_AMBIENT, mode: str = "pixel") -> None:
        if mode not in SHADING_MODES:
            raise ValueError(f"SH shading mode must be one of {SHADING_MODES}, got {mode!r}")
        self.ambient = float(ambient)
        self.mode = mode

    def __repr__(self) -> str:
        return f"SHShader(ambient={self.ambient}, mode={self.mode!r})"

    def vertex_attributes(self, mesh: RasterizedMesh, light: Tensor) -> Tensor:
        """(B, N, 3): the camera-frame normals ("pixel") or the irradiance at each vertex ("vertex")."""
        if self.mode == "vertex":
            return sh_basis(mesh.normals) @ light_coefficients(light, self.ambient).transpose(-1, -2)
        return mesh.normals

    def shade(self, attributes: Tensor, surface: Tensor, mesh: RasterizedMesh, light: Tensor) -> Tensor:
        """(P, 3) blended normals or irradiance, (P, 3) albedo -> (P, 3) colour."""
        if self.mode == "vertex":
            return surface * attributes
        n = attributes / attributes.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        gamma = light_coefficients(light, self.ambient).reshape(light.shape[0], LIGHT_SIZE)
        g = gamma.index_select(0, mesh.fragments.batch).reshape(-1, 3, NUM_SH)
        return surface * (g * sh_basis(n)[:, None, :]).sum(-1)


__all__ = [
    "DEFAULT_AMBIENT",
    "LIGHT_SIZE",
    "NUM_SH",
    "SH_A",
    "SHADING_MODES",
    "SH_C",
    "SHShader",
    "irradiance",
    "light_coefficients",
    "light_from_direction",
    "sh_basis",
]
