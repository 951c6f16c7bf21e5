"""Random scene parts of synthetic photos: poses, SH lights, backgrounds, occluders, detector noise.

Everything draws from a `numpy.random.Generator`, so a world is a pure function of its seed. Units follow
facerep's conventions: pose (pitch, yaw, roll rad, tx, ty fractions of the image, log_scale), light
(27,) channel-major SH (the renderer adds its ambient 0.8 to each DC term), images (H, W, 3) float in
[0, 1], landmarks (68, 2) pixels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from facerep.geometry.sh import LIGHT_SIZE, NUM_SH

DEG = math.pi / 180.0


def sample_poses(
    rng: np.random.Generator,
    n: int,
    *,
    max_yaw: float = 60.0,
    yaw_std: float = 30.0,
    pitch_std: float = 8.0,
    roll_std: float = 6.0,
    scale: tuple[float, float] = (0.8, 1.0),
    shift_std: float = 0.02,
) -> np.ndarray:
    """(n, 6) poses: yaw ~ N(0, yaw_std) clipped to +-max_yaw deg, small pitch/roll/shift, scale uniform."""
    yaw = np.clip(rng.normal(0.0, yaw_std, n), -max_yaw, max_yaw) * DEG
    pitch = np.clip(rng.normal(0.0, pitch_std, n), -25, 25) * DEG
    roll = np.clip(rng.normal(0.0, roll_std, n), -20, 20) * DEG
    tx, ty = rng.normal(0.0, shift_std, (2, n))
    log_scale = np.log(rng.uniform(scale[0], scale[1], n))
    return np.stack([pitch, yaw, roll, tx, ty, log_scale], axis=1).astype(np.float32)


def sample_lights(
    rng: np.random.Generator, n: int, strength: float = 1.0, colour: float = 0.05
) -> np.ndarray:
    """(n, 27) SH lights: a brightening DC term, a mostly white directional band 1, a weak band 2.

    `strength` scales the directional part (0: flat light); `colour` the per-channel deviations. The DC
    term shrinks as the directional part grows, so strong lights add contrast rather than overexposure.
    """
    gamma = np.zeros((n, 3, NUM_SH), dtype=np.float64)
    dc = 0.3 - 0.15 * max(0.0, strength - 1.0)
    gamma[:, :, 0] = dc + rng.normal(0.0, 0.08, (n, 1)) + rng.normal(0.0, colour, (n, 3))
    direction = rng.normal(0.0, 0.22 * strength, (n, 1, 3))
    gamma[:, :, 1:4] = direction + rng.normal(0.0, colour * strength * 0.5, (n, 3, 3))
    gamma[:, :, 4:] = rng.normal(0.0, 0.05 * strength, (n, 1, 5)) + rng.normal(0.0, 0.01, (n, 3, 5))
    return gamma.reshape(n, LIGHT_SIZE).astype(np.float32)


def sample_backgrounds(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """(n, size, size, 3) float backgrounds: smooth random colour fields with some texture and stripes."""
    colours = rng.uniform(0.05, 0.95, (n, 3, 4, 4))
    grey = colours.mean(axis=1, keepdims=True)
    saturation = rng.uniform(0.15, 0.6, (n, 1, 1, 1))
    coarse = torch.from_numpy((grey + saturation * (colours - grey)).astype(np.float32))
    field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    fine = torch.from_numpy(
        rng.normal(0.0, 1.0, (n, 3, max(2, size // 8), max(2, size // 8))).astype(np.float32)
    )
    field = field + 0.06 * F.interpolate(fine, size=(size, size), mode="bilinear", align_corners=False)
    out = field.permute(0, 2, 3, 1).numpy()
    stripes = rng.random(n) < 0.3
    if stripes.any():
        yy, xx = np.mgrid[0:size, 0:size] / size
        for i in np.flatnonzero(stripes):
            angle, freq = rng.uniform(0, math.pi), rng.uniform(3, 10)
            wave = 0.5 + 0.5 * np.sin(2 * math.pi * freq * (xx * math.cos(angle) + yy * math.sin(angle)))
            out[i] = out[i] * (0.8 + 0.2 * wave[..., None])
    return np.clip(out, 0.0, 1.0)


def detector_noise(rng: np.random.Generator, landmarks: np.ndarray, sigma: float) -> np.ndarray:
    """Landmarks with detector-like noise: a shared offset plus per-point jitter, both ~N(0, sigma) px."""
    lm = np.asarray(landmarks, dtype=np.float64)
    shared = rng.normal(0.0, sigma * 0.5, lm.shape[:-2] + (1, 2))
    return (lm + shared + rng.normal(0.0, sigma, lm.shape)).astype(np.float32)


HAIR_COLOURS = np.array([[0.08, 0.06, 0.05], [0.25, 0.16, 0.08], [0.45, 0.32, 0.18], [0.7, 0.58, 0.35],
                         [0.35, 0.1, 0.05], [0.5, 0.5, 0.5]])  # fmt: skip


def draw_occluders(
    rng: np.random.Generator,
    image: np.ndarray,
    mask: np.ndarray,
    landmarks: np.ndarray,
    hair: bool,
    glasses: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Paint hair (fringe and side lock) and/or glasses (rims and bars) from the face's landmarks.

    Args:
        image: (H, W, 3) float in [0, 1]; mask: (H, W) face-skin mask in {0, 1}; landmarks (68, 2) px
            (noise-free). Returns the new image and the mask with occluded pixels removed.
    """
    h, w = mask.shape
    layer = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(layer)
    lm = np.asarray(landmarks, dtype=np.float64)
    face_w = max(float(lm[16, 0] - lm[0, 0]), 4.0)
    if hair:
        brow_y = float(lm[17:27, 1].min())
        drop = rng.uniform(-0.05, 0.12) * face_w
        xs = np.linspace(lm[0, 0] - 0.3 * face_w, lm[16, 0] + 0.3 * face_w, 12)
        wave = rng.normal(0.0, 0.03 * face_w, xs.size)
        line = [(float(x), brow_y - 0.1 * face_w + drop + float(d)) for x, d in zip(xs, wave, strict=True)]
        draw.polygon([(float(xs[0]), -1.0), *line, (float(xs[-1]), -1.0)], fill=255)
        if rng.random() < 0.4:  # a side lock over one cheek
            side = 0 if rng.random() < 0.5 else 16
            x = float(lm[side, 0])
            reach = rng.uniform(0.1, 0.25) * face_w * (1 if side == 0 else -1)
            cheek_y = float(lm[side + (4 if side == 0 else -4), 1])
            lock = [(x - reach, -1.0), (x + reach, -1.0), (x + reach, cheek_y), (x - reach, float(lm[8, 1]))]
            draw.polygon(lock, fill=255)
        hair_layer = np.asarray(layer, dtype=np.float32) / 255.0
        colour = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.8, 1.2)
        texture = 1.0 + 0.15 * rng.standard_normal((h, w, 1))
        image = image * (1 - hair_layer[..., None]) + np.clip(colour * texture, 0, 1) * hair_layer[..., None]
    occluded = np.asarray(layer, dtype=np.uint8) > 127
    if glasses:
        g_layer = Image.new("L", (w, h), 0)
        g_draw = ImageDraw.Draw(g_layer)
        width = max(1, round(face_w / 40))
        left, right = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
        rx, ry = 0.16 * face_w, 0.1 * face_w
        for c in (left, right):
            g_draw.ellipse([c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry], outline=255, width=width)
        g_draw.line([(left[0] + rx, left[1]), (right[0] - rx, right[1])], fill=255, width=width)  # bridge
        g_draw.line([(left[0] - rx, left[1]), (float(lm[0, 0]), float(lm[0, 1]))], fill=255, width=width)
        g_draw.line([(right[0] + rx, right[1]), (float(lm[16, 0]), float(lm[16, 1]))], fill=255, width=width)
        g = np.asarray(g_layer, dtype=np.float32)[..., None] / 255.0
        colour = np.array([0.05, 0.05, 0.05]) if rng.random() < 0.7 else rng.uniform(0.2, 0.8, 3)
        image = image * (1 - g) + colour * g
        occluded |= g[..., 0] > 0.5
    mask = mask * (~occluded)
    return np.clip(image, 0.0, 1.0), mask.astype(np.float32)
