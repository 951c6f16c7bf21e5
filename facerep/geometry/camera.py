"""Rotations and the weak-perspective camera of the paper (equation 3).

Conventions (shared by every facerep component):

- Canonical frame: vertices (B, N, 3) in millimetres, x to the subject's left, y up, z towards the
  camera.
- Pose code (B, 6) = (pitch, yaw, roll, tx, ty, log_scale): angles in radians, tx and ty as fractions
  of the image width / height, log_scale dimensionless.
- Rotation ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``: standard right-handed axis rotations applied to
  column vectors (``v_r = R v``). Positive yaw rotates about +y, turning the face towards the subject's
  left, which is the image's right; positive pitch rotates about +x (the forehead comes forward, the face
  looks down); positive roll rotates about +z (counter-clockwise as seen from the camera and in the
  image: the subject's left side, on the image's right, goes up).
- Weak perspective: with ``f = exp(log_scale) * W / 200`` pixels per millimetre (a zero code makes
  200 mm span the image width),

      u = W / 2 + tx * W + f * x_r,    v = H / 2 + ty * H - f * y_r,    depth = z_r

  in pixels (x right, y down, origin at the top-left corner of the image, pixel centres at i + 0.5);
  depth is in millimetres, larger = nearer the camera.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: Millimetres spanned by the image width when log_scale = 0.
REFERENCE_SPAN_MM = 200.0
#: Numbers in a pose code: (pitch, yaw, roll, tx, ty, log_scale).
POSE_SIZE = 6


def _size_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = image_size
    return int(height), int(width)


def euler_to_rotation(angles: Tensor) -> Tensor:
    """Rotation matrices ``Rz(roll) @ Ry(yaw) @ Rx(pitch)``.

    Args:
        angles: (B, 3) (pitch, yaw, roll) in radians.

    Returns:
        (B, 3, 3) rotation matrices acting on column vectors.
    """
    if angles.shape[-1] != 3:
        raise ValueError(f"euler_to_rotation expects (..., 3) angles, got shape {tuple(angles.shape)}")
    pitch, yaw, roll = angles.unbind(-1)
    cx, sx = torch.cos(pitch), torch.sin(pitch)
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cz, sz = torch.cos(roll), torch.sin(roll)
    one, zero = torch.ones_like(pitch), torch.zeros_like(pitch)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(*angles.shape[:-1], 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(*angles.shape[:-1], 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).reshape(*angles.shape[:-1], 3, 3)
    return rz @ ry @ rx


def rotation_to_euler(rotation: Tensor) -> Tensor:
    """Inverse of `euler_to_rotation` for |yaw| < pi/2.

    Args:
        rotation: (B, 3, 3) rotation matrices.

    Returns:
        (B, 3) (pitch, yaw, roll) in radians.
    """
    r = rotation
    yaw = torch.asin((-r[..., 2, 0]).clamp(-1.0, 1.0))
    pitch = torch.atan2(r[..., 2, 1], r[..., 2, 2])
    roll = torch.atan2(r[..., 1, 0], r[..., 0, 0])
    return torch.stack([pitch, yaw, roll], -1)


def rotate(vertices: Tensor, pose: Tensor) -> Tensor:
    """Rotate canonical vertices by the pose's rotation (no translation or scale).

    Args:
        vertices: (B, N, 3) in mm, canonical frame (also usable for normals).
        pose: (B, 6) pose code (only the three angles are used).

    Returns:
        (B, N, 3) rotated vectors ``v_r = R v``.
    """
    rotation = euler_to_rotation(pose[..., :3])
    return vertices @ rotation.transpose(-1, -2)


def focal(pose: Tensor, image_size: int | tuple[int, int]) -> Tensor:
    """Pixels per millimetre ``f = exp(log_scale) * W / 200``: (B, 6) pose -> (B,)."""
    _, width = _size_hw(image_size)
    return torch.exp(pose[..., 5]) * (width / REFERENCE_SPAN_MM)


def project_rotated(
    rotated: Tensor, pose: Tensor, image_size: int | tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Weak perspective of already-rotated vertices.

    Args:
        rotated: (B, N, 3) vertices after `rotate`, mm.
        pose: (B, 6) pose code (tx, ty and log_scale are used).
        image_size: side of the square image in pixels, or (H, W).

    Returns:
        points (B, N, 2) in pixels (x right, y down) and depth (B, N) in mm (larger = nearer).
    """
    height, width = _size_hw(image_size)
    f = focal(pose, (height, width))[..., None]
    u = width / 2 + pose[..., 3:4] * width + f * rotated[..., 0]
    v = height / 2 + pose[..., 4:5] * height - f * rotated[..., 1]
    return torch.stack([u, v], -1), rotated[..., 2]


def project(vertices: Tensor, pose: Tensor, image_size: int | tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Weak-perspective projection (paper eq. 3) of canonical vertices.

    Args:
        vertices: (B, N, 3) in mm, canonical frame.
        pose: (B, 6) (pitch, yaw, roll, tx, ty, log_scale).
        image_size: side of the square image in pixels, or (H, W).

    Returns:
        points (B, N, 2) in pixels (x right, y down, origin top-left corner) and depth (B, N) in mm
        (the rotated z, larger = nearer the camera).
    """
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"project expects vertices (B, N, 3), got shape {tuple(vertices.shape)}")
    if pose.ndim != 2 or pose.shape[-1] != 6:
        raise ValueError(f"project expects a pose code (B, 6), got shape {tuple(pose.shape)}")
    return project_rotated(rotate(vertices, pose), pose, image_size)


def pose_from_similarity(
    rotation: Tensor, scale: Tensor, translation: Tensor, image_size: int | tuple[int, int]
) -> Tensor:
    """Pose code of the similarity ``p = scale * (R v)[:2] * (1, -1) + translation`` in pixels.

    Args:
        rotation: (B, 3, 3) rotation (``Rz @ Ry @ Rx`` form; |yaw| < pi/2).
        scale: (B,) pixels per millimetre.
        translation: (B, 2) pixel position of the canonical origin (u, v).
        image_size: side of the square image in pixels, or (H, W).

    Returns:
        (B, 6) pose code that `project` maps to the same pixels.
    """
    height, width = _size_hw(image_size)
    angles = rotation_to_euler(rotation)
    tx = (translation[..., 0] - width / 2) / width
    ty = (translation[..., 1] - height / 2) / height
    log_scale = torch.log(scale / (width / REFERENCE_SPAN_MM))
    return torch.cat([angles, tx[..., None], ty[..., None], log_scale[..., None]], -1)


def pose_code(
    pitch: float = 0.0,
    yaw: float = 0.0,
    roll: float = 0.0,
    tx: float = 0.0,
    ty: float = 0.0,
    log_scale: float = 0.0,
    *,
    degrees: bool = False,
    batch: int = 1,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Convenience: a (batch, 6) pose code from scalars (angles in degrees when ``degrees``)."""
    k = math.pi / 180.0 if degrees else 1.0
    row = torch.tensor([pitch * k, yaw * k, roll * k, tx, ty, log_scale], dtype=dtype)
    return row.expand(batch, 6).clone()


__all__ = [
    "REFERENCE_SPAN_MM",
    "euler_to_rotation",
    "focal",
    "pose_code",
    "pose_from_similarity",
    "project",
    "project_rotated",
    "rotate",
    "rotation_to_euler",
]
