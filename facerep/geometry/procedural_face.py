"""The procedural face: continuous fields over the face's (x, y) surface parameters.

Everything here is a function of the frontal surface parameters (x, y) in millimetres, on the ellipse
``(x / 75)^2 + (y / 100)^2 <= 1`` (x to the subject's left, y up): the mean depth z(x, y), the identity,
expression and albedo displacement fields and the nonlinear-residual fields. A model at any vertex count
samples the same fields (`face_lattice` places the vertices), so two models with the same seed describe
the same faces at different resolutions; `ProceduralFace.evaluate` evaluates everything at arbitrary
surface parameters.

Construction (DESIGN.md, appendix):

- mean: an ellipsoidal cap flattened towards the rim, plus a nose ridge rising to ~28 mm above it at
  the tip (y = -25) with alae and nostrils, eye sockets with eyeballs, a brow ridge, cheekbones, a
  muzzle with upper and lower lips and a mouth crease (y = -50), and a chin;
- raw fields: named displacement fields at their physical 1-sigma size (feature bumps, global widths
  and depths, random smooth Legendre fields), each made exactly symmetric or antisymmetric under the
  mirror x -> -x;
- bases: Gram-Schmidt orthonormalisation of the raw fields in the continuous inner product
  ``<f, g> = mean over the face of f . g`` (approximated on a fixed 8,000-point reference lattice, so it
  does not depend on the requested resolution); each basis vector has 1 mm RMS, its standard deviation
  is the RMS of the new part of its raw field, and components are sorted by decreasing std;
- residual: smooth, more local fields orthonormalised against the identity and expression spans; the
  true face adds ``sum_r c_r tanh(W alpha_id / id_std)_r res_r`` (W fixed, random), scaled so its RMS
  over the prior is ``residual_mm``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit

FACE_A = 75.0  # half width, mm
FACE_B = 100.0  # half height, mm
NOSE_TIP_Y = -25.0  # y of the nose tip (a lattice row passes through it)
REFERENCE_VERTICES = 8000  # resolution of the reference lattice used for orthonormalisation

REFLECT_GEOMETRY = np.array([-1.0, 1.0, 1.0])
REFLECT_COLOUR = np.array([1.0, 1.0, 1.0])

Field = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (x (M,), y (M,)) -> (M, 3)


# ----------------------------------------------------------------------------------------------------------
# the lattice


@dataclass
class FaceLattice:
    """Vertices of the face at one resolution.

    Attributes:
        xy: (N, 2) float64 surface parameters (x, y), mm.
        triangles: (F, 3) int64, counter-clockwise seen from +z.
        mirror: (N,) int64, exact mirror map (x -> -x).
        spacing: lattice spacing h, mm.
    """

    xy: np.ndarray
    triangles: np.ndarray
    mirror: np.ndarray
    spacing: float


def _row_counts(h: float) -> tuple[np.ndarray, np.ndarray]:
    dy = h * math.sqrt(3.0) / 2.0
    j = np.arange(math.floor((-FACE_B - NOSE_TIP_Y) / dy), math.ceil((FACE_B - NOSE_TIP_Y) / dy) + 1)
    y = NOSE_TIP_Y + j * dy
    half = FACE_A * np.sqrt(np.clip(1.0 - (y / FACE_B) ** 2, 0.0, None))
    even = np.where(np.abs(y) <= FACE_B, 2 * np.floor(half / h + 1e-9) + 1, 0)
    odd = np.where(half / h >= 0.5, 2 * (np.floor(half / h - 0.5 + 1e-9) + 1), 0)
    return j, np.where(j % 2 == 0, even, odd)


def face_lattice(num_vertices: int) -> FaceLattice:
    """A mirror-symmetric triangular lattice of exactly ``num_vertices`` points on the face ellipse.

    Rows are horizontal, ``h * sqrt(3) / 2`` apart, one of them through the nose tip; even rows hold
    x = i h (the midline included), odd rows x = (i + 1/2) h. Rim points (largest elliptical radius) are
    trimmed, symmetrically, to hit the count exactly.
    """
    if not 100 <= num_vertices <= 200_000:
        raise ValueError(f"vertex count must be within [100, 200000], got {num_vertices}")
    h0 = math.sqrt(2.0 * math.pi * FACE_A * FACE_B / (math.sqrt(3.0) * num_vertices))
    lo, hi = 0.8 * h0, 1.2 * h0  # count(lo) >= n > count(hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _row_counts(mid)[1].sum() >= num_vertices:
            lo = mid
        else:
            hi = mid
    h = lo
    dy = h * math.sqrt(3.0) / 2.0
    rows, cols, xs, ys = [], [], [], []
    for j in _row_counts(h)[0]:
        y = NOSE_TIP_Y + j * dy
        if abs(y) > FACE_B:
            continue
        half = FACE_A * math.sqrt(max(1.0 - (y / FACE_B) ** 2, 0.0))
        if j % 2 == 0:
            k = int(math.floor(half / h + 1e-9))
            i = np.arange(-k, k + 1)
            x = i * h
        else:
            k = int(math.floor(half / h - 0.5 + 1e-9))
            if k < 0:
                continue
            i = np.arange(-k - 1, k + 1)
            x = (i + 0.5) * h
        rows.append(np.full(i.shape, j))
        cols.append(i)
        xs.append(x)
        ys.append(np.full(i.shape, y))
    j_all, i_all = np.concatenate(rows), np.concatenate(cols)
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)

    # trim the excess at the rim, keeping the mirror symmetry
    excess = x_all.shape[0] - num_vertices
    keep = np.ones(x_all.shape[0], dtype=bool)
    if excess > 0:
        r = (x_all / FACE_A) ** 2 + (y_all / FACE_B) ** 2
        units = np.flatnonzero(x_all >= 0)  # a unit: a midline point or a right-half point with its mirror
        order = units[np.lexsort((x_all[units], y_all[units], -r[units]))]
        for idx in order:
            size = 1 if x_all[idx] == 0 else 2
            if size <= excess:
                keep[idx] = False
                if size == 2:
                    keep[(j_all == j_all[idx]) & (x_all == -x_all[idx])] = False
                excess -= size
            if excess == 0:
                break
    j_all, i_all, x_all, y_all = j_all[keep], i_all[keep], x_all[keep], y_all[keep]
    order = np.lexsort((x_all, j_all))
    j_all, i_all, x_all, y_all = j_all[order], i_all[order], x_all[order], y_all[order]
    n = x_all.shape[0]

    # index grid (row, column) -> vertex
    j0, i0 = j_all.min(), i_all.min() - 1
    grid = -np.ones((j_all.max() - j0 + 2, i_all.max() - i0 + 3), dtype=np.int64)
    grid[j_all - j0, i_all - i0] = np.arange(n)

    def at(j: np.ndarray, i: np.ndarray) -> np.ndarray:
        ok = (j - j0 >= 0) & (j - j0 < grid.shape[0]) & (i - i0 >= 0) & (i - i0 < grid.shape[1])
        out = -np.ones(j.shape, dtype=np.int64)
        out[ok] = grid[j[ok] - j0, i[ok] - i0]
        return out

    # triangles between row j and row j + 1 ("up": base on row j, "down": base on row j + 1)
    even = j_all % 2 == 0
    a = np.arange(n)
    right = at(j_all, i_all + 1)
    up = np.where(even, at(j_all + 1, i_all), at(j_all + 1, i_all + 1))
    down_p = np.where(even, at(j_all + 1, i_all), at(j_all + 1, i_all + 1))
    down_q = np.where(even, at(j_all + 1, i_all - 1), at(j_all + 1, i_all))
    tris = [np.stack([a, right, up], axis=1), np.stack([a, down_p, down_q], axis=1)]
    tri = np.concatenate(tris)
    tri = tri[(tri >= 0).all(axis=1)]
    xy = np.stack([x_all, y_all], axis=1)
    e1, e2 = xy[tri[:, 1]] - xy[tri[:, 0]], xy[tri[:, 2]] - xy[tri[:, 0]]
    cw = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] < 0
    tri[cw] = tri[cw][:, [0, 2, 1]]
    tri = tri[np.lexsort((tri[:, 2], tri[:, 1], tri[:, 0]))]
    if np.unique(tri).shape[0] != n:
        raise AssertionError("face lattice left a vertex without a triangle")  # pragma: no cover

    mirror_i = np.where(j_all % 2 == 0, -i_all, -i_all - 1)
    mirror = at(j_all, mirror_i)
    if (mirror < 0).any():
        raise AssertionError("face lattice is not mirror symmetric")  # pragma: no cover
    xy = _smooth_rim(xy, tri, mirror)
    return FaceLattice(xy=xy, triangles=tri, mirror=mirror, spacing=h)


def _smooth_rim(xy: np.ndarray, tri: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Move the lattice's boundary vertices radially onto one ellipse (no staircase silhouette).

    The ellipse is the face's, scaled to the boundary vertices' median elliptical radius, so the vertices
    keep sampling the face region evenly (which the continuous orthonormalisation relies on).

    A vertex whose move would fold or crush one of its triangles (area below a third of the original)
    moves less (halving the step); the result is re-symmetrised exactly.
    """
    e = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    edges, counts = np.unique(e, axis=0, return_counts=True)
    rim = np.unique(edges[counts == 1])
    r = np.sqrt((xy[rim, 0] / FACE_A) ** 2 + (xy[rim, 1] / FACE_B) ** 2)
    target = xy[rim] * (float(np.median(r)) / r)[:, None]  # onto the ellipse at the rim's median radius

    def areas(p: np.ndarray) -> np.ndarray:
        a, b, c = p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]]
        return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])

    base = areas(xy)
    step = np.ones(rim.shape[0])
    for attempt in range(9):
        out = xy.copy()
        out[rim] = xy[rim] + step[:, None] * (target - xy[rim])
        bad_tri = areas(out) < base / 3.0
        if not bad_tri.any():
            break
        bad = np.isin(rim, np.unique(tri[bad_tri]))
        step[bad] = 0.0 if attempt == 7 else 0.5 * step[bad]  # the last try leaves them in place
    neg = out[:, 0] < 0
    out[neg] = out[mirror[neg]] * np.array([-1.0, 1.0])
    out[xy[:, 0] == 0, 0] = 0.0
    return out


# ----------------------------------------------------------------------------------------------------------
# the mean surface


def gauss(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    """Unit-height 2-D Gaussian bump centred at (cx, cy) with standard deviations (sx, sy), mm."""
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def pair(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    """A symmetric pair of Gaussian bumps at (+cx, cy) and (-cx, cy)."""
    return gauss(x, y, cx, cy, sx, sy) + gauss(x, y, -cx, cy, sx, sy)


def nose_profile(y: np.ndarray) -> np.ndarray:
    """Height of the nose ridge along y as a fraction of its tip height (1 at y = NOSE_TIP_Y)."""
    nasion = 35.0
    u = np.clip((nasion - y) / (nasion - NOSE_TIP_Y), 0.0, 1.0)
    ridge = 0.2 + 0.8 * (2 * u - u * u)
    above = 0.2 * np.exp(-0.5 * ((y - nasion) / 5.0) ** 2)
    below = np.exp(-0.5 * ((y - NOSE_TIP_Y) / 5.0) ** 2)
    return np.where(y >= nasion, above, np.where(y >= NOSE_TIP_Y, ridge, below))


def nose_width(y: np.ndarray) -> np.ndarray:
    """Cross-section standard deviation of the nose ridge along y, mm (6 at the nasion, 12 at the tip)."""
    u = np.clip((35.0 - y) / (35.0 - NOSE_TIP_Y), 0.0, 1.0)
    return 6.0 + 6.0 * u


def lip_window(x: np.ndarray, half_width: float = 25.0) -> np.ndarray:
    """1 across the mouth, falling smoothly to 0 beyond the mouth corners."""
    return expit((half_width - np.abs(x)) / 2.0)


def mean_depth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth z(x, y) of the mean face, mm (nose tip about 84 mm, rim about 3 mm)."""
    r2 = (x / FACE_A) ** 2 + (y / FACE_B) ** 2
    z = 80.0 * np.sqrt(np.clip(1.0 - 0.88 * r2, 0.05, None)) - 25.0
    z = z + 28.0 * nose_profile(y) * np.exp(-0.5 * (x / nose_width(y)) ** 2)
    z = z + 8.0 * pair(x, y, 14.0, -28.0, 5.5, 5.0) - 3.0 * pair(x, y, 9.0, -33.0, 3.0, 2.5)
    z = z - 3.0 * gauss(x, y, 0.0, 30.0, 10.0, 6.0)
    z = z - 11.0 * pair(x, y, 32.0, 20.0, 13.0, 10.0) + 6.0 * pair(x, y, 32.0, 20.0, 9.0, 5.5)
    z = z + 6.0 * pair(x, y, 30.0, 37.0, 17.0, 5.5)
    z = z + 5.0 * pair(x, y, 46.0, 2.0, 12.0, 10.0)
    z = z + 7.0 * gauss(x, y, 0.0, -52.0, 26.0, 16.0)
    lips = 3.5 * gauss(x, y, 0.0, -45.0, 15.0, 3.5) + 4.0 * gauss(x, y, 0.0, -56.0, 13.0, 4.0)
    z = z + lips - 2.5 * gauss(x, y, 0.0, -50.0, 40.0, 1.3) * lip_window(x)
    z = z + 6.0 * gauss(x, y, 0.0, -82.0, 14.0, 9.0) - 2.0 * gauss(x, y, 0.0, -66.0, 13.0, 3.0)
    return z


def mean_shape(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(M, 3) mean face at surface parameters (x, y): (x, y, z(x, y)), mm."""
    return np.stack([x, y, mean_depth(x, y)], axis=1)


def mean_albedo(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(M, 3) mean albedo in [0, 1]: skin, redder lips and cheeks, darker brows, eyes."""
    skin = np.array([0.80, 0.61, 0.50])
    out = np.broadcast_to(skin, (x.shape[0], 3)).copy()

    def blend(colour: tuple[float, float, float], w: np.ndarray) -> None:
        nonlocal out
        w = np.clip(w, 0.0, 1.0)[:, None]
        out = out * (1 - w) + np.asarray(colour) * w

    blend((0.86, 0.55, 0.48), 0.5 * pair(x, y, 40.0, -15.0, 13.0, 12.0))  # cheeks
    lip_w = np.maximum(gauss(x, y, 0.0, -45.5, 14.0, 3.0), gauss(x, y, 0.0, -55.5, 12.0, 3.6))
    blend((0.70, 0.34, 0.34), 1.3 * lip_w * lip_window(x, 24.0))  # lips
    ax = np.abs(x)
    brow_y = 38.0 + 4.0 * np.exp(-0.5 * ((ax - 32.0) / 12.0) ** 2)  # arched brow line
    brow = expit((17.0 - np.abs(ax - 34.0)) / 2.0) * np.exp(-0.5 * ((y - brow_y) / 2.3) ** 2)
    blend((0.33, 0.24, 0.19), 1.2 * brow)  # brows
    ex = (ax - 32.0) / 11.0
    ey = (y - 20.0) / 4.2
    eye = expit((1.0 - np.sqrt(ex * ex + ey * ey)) / 0.12)
    blend((0.93, 0.91, 0.88), eye)  # sclera
    iris = expit((4.6 - np.hypot(ax - 32.0, y - 20.0)) / 0.6)
    blend((0.33, 0.22, 0.14), iris * eye)  # iris
    pupil = expit((1.8 - np.hypot(ax - 32.0, y - 20.0)) / 0.4)
    blend((0.05, 0.04, 0.04), pupil * eye)
    return np.clip(out, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------------------
# raw fields


@dataclass
class RawField:
    """A named displacement (or colour) field at its physical 1-sigma size and its mirror parity."""

    name: str
    fn: Field
    parity: int  # +1 symmetric, -1 antisymmetric

    def evaluate(self, x: np.ndarray, y: np.ndarray, reflect: np.ndarray) -> np.ndarray:
        """(M, 3): the (anti)symmetric part ``(f(x, y) + parity * R f(-x, y)) / 2`` of ``fn``."""
        m = x.shape[0]
        both = self.fn(np.concatenate([x, -x]), np.concatenate([y, y]))
        return 0.5 * (both[:m] + self.parity * both[m:] * reflect)


def _vec(w: np.ndarray, d: tuple[float, float, float]) -> np.ndarray:
    return w[:, None] * np.asarray(d, dtype=np.float64)[None, :]


def _both(name: str, fn: Field) -> list[RawField]:
    return [RawField(name, fn, +1), RawField(name + "_asym", fn, -1)]


def jaw_weight(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """1 on the lower jaw (below the mouth line), 0 above; the split softens away from the mouth."""
    width = 2.5 + 0.25 * np.clip(np.abs(x) - 20.0, 0.0, None)
    return expit((-50.5 - y + 0.1 * np.clip(np.abs(x) - 25.0, 0.0, None)) / width)


def identity_feature_fields() -> list[RawField]:
    """Named identity fields (global proportions and facial features) at their 1-sigma size."""
    z0 = mean_depth
    f: list[RawField] = [
        RawField("face_width", lambda x, y: np.stack([0.05 * x, 0 * x, 0 * x], 1), +1),
        RawField("face_height", lambda x, y: np.stack([0 * x, 0.04 * y, 0 * x], 1), +1),
        RawField("face_depth", lambda x, y: _vec(0.06 * (z0(x, y) - 20.0), (0, 0, 1)), +1),
        RawField("lower_face_length", lambda x, y: _vec(4.0 * jaw_weight(x, y + 10), (0, -1, 0.2)), +1),
        RawField(
            "nose_height",
            lambda x, y: _vec(4.0 * nose_profile(y) * gauss(x, 0 * y, 0, 0, 9, 1), (0, 0, 1)),
            +1,
        ),
        RawField("nose_length", lambda x, y: _vec(3.0 * gauss(x, y, 0, -26, 10, 9), (0, -1, 0)), +1),
        RawField("nose_width", lambda x, y: _vec(2.5 * gauss(x, y, 13, -27, 7, 7), (1, 0, 0)), +1),
        RawField("eye_depth", lambda x, y: _vec(3.0 * gauss(x, y, 32, 20, 12, 9), (0, 0, -1)), +1),
        RawField("eye_distance", lambda x, y: _vec(3.0 * gauss(x, y, 32, 20, 12, 9), (1, 0, 0)), +1),
        RawField("eye_height", lambda x, y: _vec(2.5 * gauss(x, y, 32, 20, 14, 10), (0, 1, 0)), +1),
        RawField("brow_ridge", lambda x, y: _vec(2.5 * gauss(x, y, 30, 37, 17, 6), (0, 0, 1)), +1),
        RawField("brow_height", lambda x, y: _vec(3.0 * gauss(x, y, 30, 38, 18, 7), (0, 1, 0)), +1),
        RawField("cheekbones", lambda x, y: _vec(3.0 * gauss(x, y, 46, 2, 12, 10), (0.3, 0, 1)), +1),
        RawField("cheek_fullness", lambda x, y: _vec(3.5 * gauss(x, y, 40, -35, 15, 15), (0.2, 0, 1)), +1),
        RawField("jaw_width", lambda x, y: _vec(4.0 * gauss(x, y, 60, -60, 15, 22), (1, 0, 0)), +1),
        RawField("upper_lip", lambda x, y: _vec(1.8 * gauss(x, y, 0, -45, 15, 4), (0, 0.3, 1)), +1),
        RawField("lower_lip", lambda x, y: _vec(2.0 * gauss(x, y, 0, -56, 13, 5), (0, -0.3, 1)), +1),
        RawField("mouth_width", lambda x, y: _vec(2.5 * gauss(x, y, 25, -50, 9, 8), (1, 0, 0)), +1),
        RawField("mouth_height", lambda x, y: _vec(3.0 * gauss(x, y, 0, -50, 24, 10), (0, 1, 0)), +1),
        RawField("chin_protrusion", lambda x, y: _vec(4.0 * gauss(x, y, 0, -80, 15, 10), (0, 0, 1)), +1),
        RawField("chin_length", lambda x, y: _vec(3.0 * gauss(x, y, 0, -88, 25, 12), (0, -1, 0)), +1),
        RawField("forehead_slope", lambda x, y: _vec(4.0 * expit((y - 45.0) / 10.0), (0, 0, -1)), +1),
        RawField("nasion_depth", lambda x, y: _vec(2.0 * gauss(x, y, 0, 30, 9, 7), (0, 0, -1)), +1),
        RawField("nose_deviation", lambda x, y: _vec(1.5 * gauss(x, y, 0, -10, 10, 25), (1, 0, 0)), -1),
        RawField("chin_deviation", lambda x, y: _vec(2.0 * gauss(x, y, 0, -80, 20, 15), (1, 0, 0)), -1),
    ]
    f += [RawField(r.name + "_asym", r.fn, -1) for r in f[7:21] if r.name not in ("upper_lip", "lower_lip")]
    return [r for r in f if r.name not in ("mouth_height_asym", "chin_protrusion_asym", "chin_length_asym")]


class _Legendre:
    """A random smooth field: 3 components, Legendre series in (x / 75, y / 100) of total degree <= d."""

    def __init__(self, rng: np.random.Generator, degree: int, scale: float, decay: float = 1.0) -> None:
        self.degree = degree
        p, q = np.meshgrid(np.arange(degree + 1), np.arange(degree + 1), indexing="ij")
        mask = (p + q) <= degree
        self.coef = rng.standard_normal((3, degree + 1, degree + 1)) * mask * (1.0 + p + q) ** (-decay)
        norm = math.sqrt(float((self.coef**2).sum()))
        self.coef *= scale / max(norm, 1e-12)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        lx = np.polynomial.legendre.legvander(np.clip(x / FACE_A, -1.2, 1.2), self.degree)
        ly = np.polynomial.legendre.legvander(np.clip(y / FACE_B, -1.2, 1.2), self.degree)
        return np.einsum("mp,mq,cpq->mc", lx, ly, self.coef)  # no BLAS: robust on a busy machine


class _TintedLegendre(_Legendre):
    """A random smooth colour field: one scalar Legendre series times a skin-like RGB direction."""

    def __init__(self, rng: np.random.Generator, degree: int, scale: float) -> None:
        super().__init__(rng, degree, 1.0)
        self.coef = self.coef[:1] / max(float(np.sqrt((self.coef[:1] ** 2).sum())), 1e-12)
        tint = np.array([1.0, 0.8, 0.65]) + 0.25 * rng.standard_normal(3)
        self.tint = scale * tint / np.linalg.norm(tint)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return super().__call__(x, y)[:, :1] * self.tint[None, :]


class _Bumps:
    """A random local field: a few Gaussian bumps with random directions (mostly along z)."""

    def __init__(
        self,
        rng: np.random.Generator,
        count: int,
        sigma: tuple[float, float],
        amp: float,
        tint: tuple[float, float, float] | None = None,
    ) -> None:
        rad = np.sqrt(rng.uniform(0.0, 0.8, count))
        ang = rng.uniform(0.0, 2 * math.pi, count)
        self.cx, self.cy = FACE_A * rad * np.cos(ang), FACE_B * rad * np.sin(ang)
        self.sx = rng.uniform(*sigma, count)
        self.sy = self.sx * rng.uniform(0.7, 1.4, count)
        if tint is None:  # a displacement: mostly along z
            d = rng.standard_normal((count, 3)) * np.array([0.35, 0.35, 1.0])
            self.d = amp * d * rng.choice([-1.0, 1.0], (count, 1))
        else:  # a colour: one tint, mostly darker (freckles, moles, blotches)
            self.d = amp * np.asarray(tint)[None, :] * rng.choice([-1.0, 0.4], (count, 1))

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.zeros((x.shape[0], 3))
        for k in range(self.cx.shape[0]):
            out += gauss(x, y, self.cx[k], self.cy[k], self.sx[k], self.sy[k])[:, None] * self.d[k]
        return out


def expression_fields() -> list[RawField]:
    """Named expression fields (FACS-like) at their 1-sigma size, in a fixed semantic order."""
    jw = jaw_weight

    def jaw_open(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        # small rotation of the lower face about a hinge behind the face (y = 5, z = -70), 6 degrees
        z = mean_depth(x, y)
        dy, dz = y - 5.0, z + 70.0
        th = math.radians(3.5)
        return np.stack([0 * x, -th * dz, th * dy], 1) * jw(x, y)[:, None]

    f = [
        RawField("jaw_open", jaw_open, +1),
        *_both(
            "smile",
            lambda x, y: (
                _vec(4.0 * gauss(x, y, 25, -50, 9, 7), (0.4, 1, -0.4))
                + _vec(2.0 * gauss(x, y, 35, -32, 12, 10), (0, 0.6, 0.5))
            ),
        ),
        RawField("pout", lambda x, y: _vec(4.0 * gauss(x, y, 0, -50, 16, 8), (0, 0, 1)), +1),
        *_both("brow_raise", lambda x, y: _vec(4.0 * gauss(x, y, 30, 40, 18, 9), (0, 1, 0.1))),
        *_both(
            "eye_close",
            lambda x, y: _vec(3.0 * gauss(x, y, 32, 23, 9, 3), (0, -1, 0.2)),
        ),
        RawField("mouth_stretch", lambda x, y: _vec(3.0 * gauss(x, y, 25, -50, 8, 6), (1, -0.2, -0.3)), +1),
        *_both("frown", lambda x, y: _vec(3.0 * gauss(x, y, 25, -52, 8, 6), (0, -1, -0.2))),
        RawField("brow_frown", lambda x, y: _vec(3.0 * gauss(x, y, 15, 36, 10, 6), (-0.5, -1, 0.2)), +1),
        *_both("cheek_puff", lambda x, y: _vec(4.0 * gauss(x, y, 42, -42, 14, 14), (0.3, 0, 1))),
        RawField("jaw_sideways", lambda x, y: _vec(4.0 * jw(x, y), (1, 0, 0)), -1),
        RawField("lip_funnel", lambda x, y: _vec(3.0 * gauss(x, y, 0, -50, 10, 6), (0, 0, 1)), +1),
        RawField("upper_lip_raise", lambda x, y: _vec(2.5 * gauss(x, y, 0, -45, 18, 3.5), (0, 1, 0.2)), +1),
        RawField("lower_lip_depress", lambda x, y: _vec(2.5 * gauss(x, y, 0, -57, 16, 4), (0, -1, 0.2)), +1),
        RawField("mouth_sideways", lambda x, y: _vec(3.0 * gauss(x, y, 0, -50, 25, 10), (1, 0, 0)), -1),
        *_both("nose_wrinkle", lambda x, y: _vec(2.0 * gauss(x, y, 12, -20, 8, 8), (0, 1, 0.3))),
        *_both("eye_squint", lambda x, y: _vec(2.0 * gauss(x, y, 32, 15, 10, 3), (0, 1, 0.3))),
        RawField("nostril_flare", lambda x, y: _vec(1.5 * gauss(x, y, 14, -28, 5, 5), (1, 0, 0.3)), +1),
        RawField("cheek_suck", lambda x, y: _vec(3.0 * gauss(x, y, 45, -40, 10, 12), (0, 0, -1)), +1),
        RawField("chin_raise", lambda x, y: _vec(2.5 * gauss(x, y, 0, -75, 15, 10), (0, 0.5, 1)), +1),
        RawField(
            "lips_press",
            lambda x, y: _vec(2.0 * gauss(x, y, 0, -50, 20, 6) * np.tanh((y + 50.0) / 4.0), (0, -1, 0)),
            +1,
        ),
        RawField("jaw_forward", lambda x, y: _vec(3.0 * jw(x, y), (0, 0, 1)), +1),
        RawField("dimple", lambda x, y: _vec(1.5 * gauss(x, y, 32, -52, 4, 4), (0, 0, -1)), +1),
    ]
    return f


def albedo_fields() -> list[RawField]:
    """Named albedo fields (skin tone and regional colour) at their 1-sigma size (RGB offsets)."""

    def const(c: tuple[float, float, float]) -> Field:
        return lambda x, y: _vec(np.ones_like(x), c)

    lips = lambda x, y: np.maximum(gauss(x, y, 0, -45.5, 14, 3), gauss(x, y, 0, -55.5, 12, 3.6))  # noqa: E731
    return [
        RawField("tone", const((0.07, 0.06, 0.05)), +1),
        RawField("redness", const((0.03, -0.015, -0.02)), +1),
        RawField("yellowness", const((0.015, 0.01, -0.03)), +1),
        RawField("lip_colour", lambda x, y: _vec(lips(x, y), (0.05, -0.03, -0.01)), +1),
        RawField("cheek_redness", lambda x, y: _vec(gauss(x, y, 40, -15, 14, 14), (0.04, -0.02, -0.015)), +1),
        RawField("brow_darkness", lambda x, y: _vec(gauss(x, y, 33, 40, 16, 3), (-0.08, -0.06, -0.05)), +1),
        RawField("under_eye", lambda x, y: _vec(gauss(x, y, 30, 10, 12, 4), (-0.03, -0.035, -0.02)), +1),
        RawField("beard_shadow", lambda x, y: _vec(jaw_weight(x, y + 5), (-0.03, -0.025, -0.015)), +1),
        RawField("nose_redness", lambda x, y: _vec(gauss(x, y, 0, -22, 9, 10), (0.03, -0.01, -0.01)), +1),
        RawField("forehead_tone", lambda x, y: _vec(expit((y - 45) / 8), (0.02, 0.02, 0.02)), +1),
        RawField("tone_asym", lambda x, y: _vec(x / FACE_A, (0.015, 0.012, 0.01)), -1),
    ]


# ----------------------------------------------------------------------------------------------------------
# orthonormalisation


def _gram_schmidt(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """QR of raw fields sampled at the reference points.

    Args:
        values: (K, M, C) fields.

    Returns:
        (coef (K, K) lower triangular with ``q = coef @ raw`` orthonormal in the mean-over-points inner
        product, norms (K,) = RMS of each raw field's new part).
    """
    k, m, c = values.shape
    x = values.reshape(k, m * c).T / math.sqrt(m)
    # Cholesky of the Gram matrix = the R of a QR with a positive diagonal (well conditioned here)
    xt = torch.from_numpy(np.ascontiguousarray(x.T))
    r = np.linalg.cholesky((xt @ xt.T).numpy()).T  # torch's GEMM: much faster than numpy's here
    norms = np.diag(r).copy()
    if (norms < 1e-9 * max(float(norms.max()), 1e-30)).any():
        raise ValueError("procedural face fields are linearly dependent")  # pragma: no cover
    coef = np.linalg.inv(r).T  # q_k = sum_j coef[k, j] raw_j
    return coef, norms


@dataclass
class _Basis:
    raw: list[RawField]
    coef: np.ndarray  # (K, len(raw))
    std: np.ndarray  # (K,)
    parity: np.ndarray  # (K,)
    names: list[str]


class ProceduralFace:
    """The continuous procedural face model of one seed (see the module docstring).

    Args:
        seed: random seed of the random smooth fields, the residual fields and the residual mixing.
        n_id, n_exp, n_tex: number of identity, expression and albedo components.
        residual_mm: RMS (over the identity prior) of the nonlinear shape residual, mm.
        n_res: number of residual fields.
        albedo_residual: RMS of the nonlinear albedo detail (albedo units).
    """

    def __init__(
        self,
        seed: int = 0,
        n_id: int = 80,
        n_exp: int = 29,
        n_tex: int = 40,
        residual_mm: float = 2.0,
        n_res: int = 24,
        albedo_residual: float = 0.02,
    ) -> None:
        if min(n_id, n_exp, n_tex) < 1:
            raise ValueError(f"component counts must be >= 1, got id={n_id} exp={n_exp} tex={n_tex}")
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xFACE]))
        self.seed, self.residual_mm = int(seed), float(residual_mm)
        ref = face_lattice(REFERENCE_VERTICES)
        rx, ry = ref.xy[:, 0], ref.xy[:, 1]

        # identity: named features, then random smooth fields with falling size
        id_raw = identity_feature_fields()[:n_id]
        j = 0
        while len(id_raw) < n_id:
            parity = +1 if j % 3 != 2 else -1
            size = 2.0 * (j + 1) ** -0.5
            id_raw.append(RawField(f"id_random_{j:02d}", _Legendre(rng, 6, size), parity))
            j += 1
        # expression: named fields, then random local fields
        exp_raw = expression_fields()[:n_exp]
        j = 0
        while len(exp_raw) < n_exp:
            exp_raw.append(
                RawField(f"exp_random_{j:02d}", _Bumps(rng, 2, (8.0, 14.0), 2.0), +1 - 2 * (j % 2))
            )
            j += 1
        # albedo: named, then random smooth colour fields
        tex_raw = albedo_fields()[:n_tex]
        j = 0
        while len(tex_raw) < n_tex:
            tex_raw.append(
                RawField(
                    f"tex_random_{j:02d}",
                    _TintedLegendre(rng, 6, 0.03 * (j + 1) ** -0.4),
                    1 - 2 * (j % 3 == 2),
                )
            )
            j += 1
        res_raw = [
            RawField(f"res_{k:02d}", _Bumps(rng, 8, (10.0, 20.0), 1.0), +1 if k % 4 != 3 else -1)
            for k in range(n_res)
        ]
        tex_res_raw = [
            RawField(
                f"tex_res_{k:02d}",
                _Bumps(rng, 4, (2.0, 6.0), 1.0, tint=(0.3, 0.42, 0.48)),
                +1 if k % 2 == 0 else -1,
            )
            for k in range(12)
        ]

        def sample(fields: list[RawField], reflect: np.ndarray) -> np.ndarray:
            return np.stack([f.evaluate(rx, ry, reflect) for f in fields])

        g_id, g_exp, g_res = (sample(f, REFLECT_GEOMETRY) for f in (id_raw, exp_raw, res_raw))
        c_tex, c_tres = (sample(f, REFLECT_COLOUR) for f in (tex_raw, tex_res_raw))

        self.identity = self._basis(id_raw, g_id, sort=True)
        self.expression = self._basis(exp_raw, g_exp, sort=True)
        self.albedo = self._basis(tex_raw, c_tex, sort=True)
        self.residual = self._residual_basis(id_raw + exp_raw, res_raw, np.concatenate([g_id, g_exp, g_res]))
        self.albedo_res = self._residual_basis(tex_raw, tex_res_raw, np.concatenate([c_tex, c_tres]))

        # nonlinear mixing: r(a) = sum_r c_r tanh(W a / std)_r res_r, RMS over the prior = residual_mm
        self.res_mix = rng.standard_normal((n_res, n_id)) / math.sqrt(n_id)
        self.res_mix /= np.linalg.norm(self.res_mix, axis=1, keepdims=True)
        e_tanh2 = 0.3943  # E[tanh(u)^2], u ~ N(0, 1)
        c = np.ones(n_res)
        self.res_scale = c * self.residual_mm / math.sqrt(e_tanh2 * float((c**2).sum()))
        self.tex_res_mix = rng.standard_normal((len(tex_res_raw), n_id))
        self.tex_res_mix /= np.linalg.norm(self.tex_res_mix, axis=1, keepdims=True)
        ct = np.ones(len(tex_res_raw))
        self.tex_res_scale = ct * albedo_residual / math.sqrt(e_tanh2 * float((ct**2).sum()))

    @staticmethod
    def _basis(raw: list[RawField], values: np.ndarray, sort: bool) -> _Basis:
        coef, norms = _gram_schmidt(values)
        parity = np.array([f.parity for f in raw])
        coef = coef * (parity[:, None] == parity[None, :])  # exact parity (cross terms are round-off)
        names = [f.name for f in raw]
        order = np.argsort(-norms, kind="stable") if sort else np.arange(len(raw))
        return _Basis(raw, coef[order], norms[order], parity[order], [names[i] for i in order])

    @staticmethod
    def _residual_basis(span: list[RawField], res: list[RawField], values: np.ndarray) -> _Basis:
        coef, norms = _gram_schmidt(values)
        k = len(span)
        raw = span + res
        parity = np.array([f.parity for f in raw])
        coef = coef[k:] * (parity[k:, None] == parity[None, :])
        return _Basis(raw, coef, norms[k:], parity[k:], [f.name for f in res])

    # ------------------------------------------------------------------------------------------------------

    @staticmethod
    def _evaluate_basis(b: _Basis, x: np.ndarray, y: np.ndarray, reflect: np.ndarray) -> np.ndarray:
        raw = np.stack([f.evaluate(x, y, reflect) for f in b.raw])  # (R, M, 3)
        out = torch.from_numpy(b.coef) @ torch.from_numpy(raw.reshape(raw.shape[0], -1))
        return out.numpy().reshape(b.coef.shape[0], *raw.shape[1:])

    def evaluate(self, xy: np.ndarray, mirror: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """All fields at surface parameters ``xy`` (M, 2), float64.

        With ``mirror`` (the exact mirror map of ``xy``), results are made exactly (anti)symmetric by
        copying the x >= 0 half onto the x < 0 half.

        Returns a dict: ``mean`` (M, 3); ``id_basis`` (K_id, M, 3), ``exp_basis``, ``res_basis`` (R, M, 3)
        at unit RMS; ``albedo_mean`` (M, 3); ``albedo_basis`` (K_tex, M, 3); ``albedo_res_basis``.
        """
        x, y = np.asarray(xy[:, 0], dtype=np.float64), np.asarray(xy[:, 1], dtype=np.float64)
        # with a mirror map only the x >= 0 half is evaluated; the other half is copied below
        half = np.flatnonzero(x >= 0) if mirror is not None else np.arange(x.shape[0])
        hx, hy = x[half], y[half]
        parts = {
            "mean": mean_shape(hx, hy),
            "id_basis": self._evaluate_basis(self.identity, hx, hy, REFLECT_GEOMETRY),
            "exp_basis": self._evaluate_basis(self.expression, hx, hy, REFLECT_GEOMETRY),
            "res_basis": self._evaluate_basis(self.residual, hx, hy, REFLECT_GEOMETRY),
            "albedo_mean": mean_albedo(hx, hy),
            "albedo_basis": self._evaluate_basis(self.albedo, hx, hy, REFLECT_COLOUR),
            "albedo_res_basis": self._evaluate_basis(self.albedo_res, hx, hy, REFLECT_COLOUR),
        }
        if mirror is None:
            return parts
        out: dict[str, np.ndarray] = {}
        for key, val in parts.items():
            full = np.zeros((*val.shape[:-2], x.shape[0], 3), dtype=val.dtype)
            full[..., half, :] = val
            out[key] = full
        if mirror is not None:
            neg = x < 0
            src = mirror[neg]
            mid = x == 0
            out["mean"][neg] = out["mean"][src] * REFLECT_GEOMETRY
            out["mean"][mid, 0] = 0.0
            out["albedo_mean"][neg] = out["albedo_mean"][src]
            for key, basis, reflect in (
                ("id_basis", self.identity, REFLECT_GEOMETRY),
                ("exp_basis", self.expression, REFLECT_GEOMETRY),
                ("res_basis", self.residual, REFLECT_GEOMETRY),
                ("albedo_basis", self.albedo, REFLECT_COLOUR),
                ("albedo_res_basis", self.albedo_res, REFLECT_COLOUR),
            ):
                arr = out[key]
                arr[:, neg] = arr[:, src] * reflect * basis.parity[:, None, None]
                # on the midline an antisymmetric field has only x, a symmetric one no x (geometry);
                # an antisymmetric colour field vanishes there
                if reflect[0] < 0:
                    sym, anti = basis.parity > 0, basis.parity < 0
                    sub = arr[sym]
                    sub[:, mid, 0] = 0.0
                    arr[sym] = sub
                    sub = arr[anti]
                    sub[:, mid, 1:] = 0.0
                    arr[anti] = sub
                else:
                    anti = basis.parity < 0
                    sub = arr[anti]
                    sub[:, mid, :] = 0.0
                    arr[anti] = sub
        return out


__all__ = [
    "FACE_A",
    "FACE_B",
    "NOSE_TIP_Y",
    "FaceLattice",
    "ProceduralFace",
    "RawField",
    "face_lattice",
    "mean_albedo",
    "mean_depth",
    "mean_shape",
]
