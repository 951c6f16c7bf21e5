"""The synthetic face world written in the real datasets' on-disk formats (DESIGN.md section 5).

`generate_world(out, preset, seed)` renders, with the ``synthetic`` face model and the ``sh_rasterizer``
renderer, five folders laid out like the real datasets (readable by the dataset plugins and benchmarks):

- ``celeba/``: ``img_align_celeba/NNNNNN.jpg``, ``identity_CelebA.txt``, ``list_eval_partition.txt``
  (identity-disjoint train / val / test) and the sidecars of `facerep.data.sidecars` (68 landmarks with
  detector-like noise, face-skin masks without the occluders). The photos of one identity vary
  expression, pose (yaw up to 60 degrees), SH light, background, scale (0.8-1.0) and occluders (hair,
  glasses).
- ``300w_lp/``: ``{AFW,HELEN,IBUG,LFPW}/NAME.jpg`` + ``NAME.mat`` (``Shape_Para``, ``Exp_Para``,
  ``Tex_Para`` as column vectors, ``Pose_Para`` (1, 7) = pitch, yaw, roll (rad), tx, ty (image fractions),
  0, scale (px per mm), ``Illum_Para`` (1, 27) SH light, ``Color_Para`` (1, 7) neutral, ``pt2d`` (2, 68)
  1-based, ``roi`` (1, 4)). Parameters are the least-squares fit (``face_model.fit``) of the true,
  nonlinear face, as 300W-LP's are fits. Each source identity has several views, the first within 25
  degrees of yaw, the others profiled at random yaws up to 90 degrees, named ``SUBSET_NNNNNN_1_V``.
  Frames are 1.5 times the input size with the face filling 0.45-0.95 of them (loaders crop around the
  landmarks), so crops carry varied face resolutions and no frame edge, as the MICC videos' do.
- ``micc/``: ``subject_XX/Model/frontal1/obj/NAME.obj`` neutral ground-truth scans in mm (the true face
  evaluated by a denser synthetic model of the same seed, plus scanner-like noise; its 68 landmarks in
  ``NAME.landmarks68.csv``) and ``subject_XX/Video/{Indoor-Cooperative,PTZ-Indoor,PTZ-Outdoor}.mjpg``
  (uncropped frames of rising difficulty) with ``VIDEO.landmarks68.csv``. Subjects are new identities.
- ``aflw2000/``: AFLW2000-3D's layout (``imageNNNNN.jpg`` + ``.mat`` with ``pt3d_68``), new identities at
  yaws spread evenly over [0, 90) degrees (`write_aflw2000`).
- ``verification/``: LFW's layout (``lfw/NAME/NAME_000K.jpg`` + ``pairs.txt``) of new identities, for
  the face-verification benchmark (`write_verification`).

Every folder draws from its own random stream (numpy ``default_rng([seed, k])``), so adding a folder
leaves the others' bytes unchanged; an older cached world gets the two evaluation folders written into
it on demand (`facerep.world.cache.ensure_world_part`).

Each folder has a ``meta.json`` naming the face model its parameters belong to
(``{"type": "synthetic", "vertices": V, "seed": S}``). The same (preset, seed) gives the same bytes on
the same kind of device (rendering runs on CUDA when available).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facerep.core.interfaces import FaceModel
from facerep.data.matfile import save_mat
from facerep.data.meta import write_meta
from facerep.data.mjpeg import encode_jpeg
from facerep.data.objfile import write_obj
from facerep.data.sidecars import (
    landmark_sidecar,
    mask_sidecar,
    video_landmarks_path,
    write_mask,
    write_pts,
    write_video_landmarks,
)
from facerep.world.scene import (
    DEG,
    detector_noise,
    draw_occluders,
    sample_backgrounds,
    sample_lights,
    sample_poses,
)

WORLD_FORMAT = 4
#: 300W-LP-layout images: frame side relative to the input size, and the face's share of the frame.
LABELLED_FRAME = 1.5
LABELLED_FACE_SHARE = (0.45, 0.95)
#: Expression strength of the photos and labelled images: coefficients ~ N(0, std^2) times U(0, this).
EXPRESSION_SCALE = 1.3
SUBSETS = ("AFW", "HELEN", "IBUG", "LFPW")
CONDITIONS = ("Indoor-Cooperative", "PTZ-Indoor", "PTZ-Outdoor")


@dataclass(frozen=True)
class WorldPreset:
    """Sizes of a synthetic world.

    Attributes:
        name: preset name.
        image_size: side of the CelebA images and of the input (px); 300W-LP and MICC frames are 1.5x.
        vertices: template size of the face model the parameters belong to.
        scan_vertices: template size of the denser model the MICC scans are drawn from.
        identities: CelebA identities; photos_per_identity: photos each.
        labelled_sources: 300W-LP source identities; views_per_source: profiled views each.
        micc_subjects: MICC subjects; frames_per_video: frames in each of their three videos.
        supersample: render at this multiple of the size and average down (anti-aliasing).
    """

    name: str
    image_size: int
    vertices: int
    scan_vertices: int
    identities: int
    photos_per_identity: int
    labelled_sources: int
    views_per_source: int
    micc_subjects: int
    frames_per_video: int
    supersample: int = 1

    @property
    def total_images(self) -> int:
        return (
            self.identities * self.photos_per_identity
            + self.labelled_sources * self.views_per_source
            + self.micc_subjects * len(CONDITIONS) * self.frames_per_video
            + aflw2000_images(self)
            + verification_identities(self) * VERIFICATION_PHOTOS
        )


PRESETS: dict[str, WorldPreset] = {
    "tiny": WorldPreset("tiny", 32, 600, 1500, 6, 4, 4, 3, 3, 4),
    "demo": WorldPreset("demo", 64, 2000, 8000, 150, 8, 250, 4, 12, 12),
    "standard": WorldPreset("standard", 128, 5000, 20000, 3000, 12, 1500, 8, 30, 40, supersample=2),
    "paper": WorldPreset("paper", 224, 37202, 60000, 10176, 20, 3837, 16, 53, 60, supersample=2),
}


#: The evaluation sets added beside MICC, sized from the preset's MICC subject count: AFLW2000-3D-layout
#: images per subject, and held-out verification identities per subject with their photos each.
AFLW2000_PER_SUBJECT = 10
VERIFICATION_PER_SUBJECT = 4
VERIFICATION_PHOTOS = 4


def aflw2000_images(preset: WorldPreset) -> int:
    """Images of the world's AFLW2000-3D-layout set."""
    return AFLW2000_PER_SUBJECT * preset.micc_subjects


def verification_identities(preset: WorldPreset) -> int:
    """Identities of the world's verification set (each with `VERIFICATION_PHOTOS` photos)."""
    return VERIFICATION_PER_SUBJECT * preset.micc_subjects


def get_preset(preset: str | WorldPreset) -> WorldPreset:
    """A preset by name (`PRESETS`) or as given."""
    if isinstance(preset, WorldPreset):
        return preset
    if preset not in PRESETS:
        from facerep.common.errors import DataError

        raise DataError(f"unknown synthetic world preset {preset!r}; choose from {sorted(PRESETS)}")
    return PRESETS[preset]


def _face_model(vertices: int, seed: int) -> Any:
    """The ``synthetic`` face model of `vertices` template vertices and `seed`, built by the registry."""
    from facerep.core.registry import get_registry

    return get_registry().build(
        "facemodel", {"type": "facerep:synthetic", "vertices": vertices, "seed": seed}
    )


def _coefficients(rng: np.random.Generator, std: np.ndarray, n: int, scale: float = 1.0) -> np.ndarray:
    std = np.asarray(std, dtype=np.float64)
    return (rng.standard_normal((n, std.size)) * std * scale).astype(np.float32)


class _Studio:
    """Renders true faces with the sh_rasterizer and composes photos (backgrounds, occluders, noise)."""

    def __init__(
        self, face_model: FaceModel, supersample: int = 1, batch: int = 48, device: str | torch.device = "cpu"
    ) -> None:
        self.fm = face_model
        self.supersample = int(supersample)
        self.device = torch.device(device)
        self.batch = int(batch) * (4 if self.device.type == "cuda" else 1)
        self._renderers: dict[int, Any] = {}

    def renderer(self, size: int) -> Any:
        if size not in self._renderers:
            from facerep.core.registry import get_registry

            renderer = get_registry().build(
                "renderer",
                {"type": "facerep:sh_rasterizer", "shading": "vertex"},
                {"face_model": self.fm, "image_size": size},
            )
            self._renderers[size] = renderer.to(self.device)
        return self._renderers[size]

    @torch.no_grad()
    def render(
        self,
        alpha_id: np.ndarray,
        alpha_exp: np.ndarray,
        alpha_tex: np.ndarray,
        pose: np.ndarray,
        light: np.ndarray,
        size: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> colour (B, S, S, 3) float, coverage (B, S, S) {0, 1}, landmarks (B, 68, 2) px (at `size`)."""
        ss = self.supersample
        big = size * ss
        t = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)).to(self.device) for k, v in
             dict(i=alpha_id, e=alpha_exp, x=alpha_tex, p=pose, l=light).items()}  # fmt: skip
        vertices = self.fm.true_shape(t["i"], t["e"]).float()
        albedo = self.fm.true_albedo(t["x"], t["i"]).float().clamp(0.0, 1.0)
        out = self.renderer(big)(vertices, albedo, t["p"], t["l"])
        image, cover = out.image, out.mask
        if ss > 1:
            image = torch.nn.functional.avg_pool2d(image, ss)
            cover = torch.nn.functional.avg_pool2d(cover, ss)
            image = image / cover.clamp_min(1e-6)
        lm = out.landmarks_2d / ss
        return (
            image.permute(0, 2, 3, 1).cpu().numpy(),
            (cover[:, 0] > 0.5).float().cpu().numpy(),
            lm.cpu().numpy(),
        )

    def photos(
        self,
        rng: np.random.Generator,
        alpha_id: np.ndarray,
        alpha_exp: np.ndarray,
        alpha_tex: np.ndarray,
        pose: np.ndarray,
        light: np.ndarray,
        size: int,
        *,
        hair: np.ndarray,
        glasses: np.ndarray,
        noise: float | np.ndarray = 0.01,
        occluder_seeds: np.ndarray | None = None,
        background_seeds: np.ndarray | None = None,
    ):  # noqa: ANN201 - generator of tuples, see below
        """Yield, per row, (rgb uint8 (S, S, 3), mask (S, S), landmarks (68, 2) exact) in batches."""
        n = len(pose)
        noise = np.broadcast_to(np.asarray(noise, dtype=np.float64), (n,))
        for lo in range(0, n, self.batch):
            hi = min(n, lo + self.batch)
            colour, cover, lms = self.render(
                alpha_id[lo:hi], alpha_exp[lo:hi], alpha_tex[lo:hi], pose[lo:hi], light[lo:hi], size
            )
            if background_seeds is None:
                backgrounds = sample_backgrounds(rng, hi - lo, size)
            else:  # one background per seed (a static camera: the same for every frame of a video)
                seeds = background_seeds[lo:hi]
                cache = {
                    int(q): sample_backgrounds(np.random.default_rng(int(q)), 1, size)[0] for q in set(seeds)
                }
                backgrounds = np.stack([cache[int(q)] for q in seeds])
            for j in range(hi - lo):
                k = lo + j
                img = colour[j] * cover[j][..., None] + backgrounds[j] * (1 - cover[j][..., None])
                mask = cover[j]
                if hair[k] or glasses[k]:
                    occ_rng = rng if occluder_seeds is None else np.random.default_rng(int(occluder_seeds[k]))
                    img, mask = draw_occluders(occ_rng, img, mask, lms[j], bool(hair[k]), bool(glasses[k]))
                img = img + rng.normal(0.0, noise[k], img.shape)
                rgb = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
                yield rgb, mask, lms[j]


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int = 92) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_jpeg(rgb, quality))


def _model_meta(preset: WorldPreset, seed: int) -> dict[str, Any]:
    return {
        "face_model": {"type": "synthetic", "vertices": preset.vertices, "seed": seed},
        "generator": {"preset": preset.name, "seed": seed, "format": WORLD_FORMAT},
    }


def write_celeba(
    out: Path, studio: _Studio, preset: WorldPreset, seed: int, advance: Callable[[int], None],
    record: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """The CelebA-layout photo collection (see the module docstring)."""
    fm, rng = studio.fm, np.random.default_rng([seed, 1])
    n_id, per = preset.identities, preset.photos_per_identity
    a_id = _coefficients(rng, fm.id_std, n_id)
    a_tex = _coefficients(rng, fm.albedo_std, n_id)
    owner = np.repeat(np.arange(n_id), per)
    n = owner.size
    expr_scale = rng.uniform(0.0, EXPRESSION_SCALE, (n, 1)) * (rng.random((n, 1)) > 0.2)
    a_exp = _coefficients(rng, fm.exp_std, n) * expr_scale.astype(np.float32)
    pose = sample_poses(rng, n, max_yaw=60.0)
    light = sample_lights(rng, n)
    hair = rng.random(n) < 0.35
    glasses = (rng.random(n_id) < 0.3)[owner] & (rng.random(n) < 0.8)
    order = rng.permutation(n)  # file numbers do not group identities (as in CelebA)
    numbers = np.empty(n, dtype=np.int64)
    numbers[order] = np.arange(1, n + 1)
    labels = rng.permutation(n_id) + 1  # CelebA identity numbers
    held = max(1, round(0.05 * n_id)) if n_id >= 20 else 0
    split_of = np.zeros(n_id, dtype=int)
    split_ids = rng.permutation(n_id)
    split_of[split_ids[:held]] = 1
    split_of[split_ids[held : 2 * held]] = 2
    root = out / "celeba"
    rows_id, rows_split = [], []
    photos = studio.photos(
        rng, a_id[owner], a_exp, a_tex[owner], pose, light, preset.image_size, hair=hair, glasses=glasses
    )
    sigma = 0.008 * preset.image_size
    for k, (rgb, mask, lm) in enumerate(photos):
        name = f"{numbers[k]:06d}.jpg"
        rel = f"img_align_celeba/{name}"
        _write_jpeg(root / rel, rgb)
        noisy = detector_noise(rng, lm, sigma)
        write_pts(landmark_sidecar(root, rel), noisy)
        write_mask(mask_sidecar(root, rel), mask)
        rows_id.append((numbers[k], f"{name} {labels[owner[k]]}"))
        rows_split.append((numbers[k], f"{name} {split_of[owner[k]]}"))
        if record is not None:
            record[rel] = {"identity": int(labels[owner[k]]), "landmarks": noisy, "mask": mask,
                           "split": int(split_of[owner[k]])}  # fmt: skip
        advance(1)
    (root / "identity_CelebA.txt").write_text("\n".join(r for _, r in sorted(rows_id)) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(r for _, r in sorted(rows_split)) + "\n")
    write_meta(root, _model_meta(preset, seed))


def write_300w_lp(
    out: Path, studio: _Studio, preset: WorldPreset, seed: int, advance: Callable[[int], None],
    record: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """The 300W-LP-layout labelled set (see the module docstring)."""
    fm, rng = studio.fm, np.random.default_rng([seed, 2])
    n_src, views = preset.labelled_sources, preset.views_per_source
    a_id = _coefficients(rng, fm.id_std, n_src)
    a_tex = _coefficients(rng, fm.albedo_std, n_src)
    a_exp_src = _coefficients(rng, fm.exp_std, n_src)  # drawn before the strengths, as always
    a_exp_src = a_exp_src * rng.uniform(0.0, EXPRESSION_SCALE, (n_src, 1)).astype(np.float32)
    with torch.no_grad():
        truth = fm.true_shape(torch.from_numpy(a_id), torch.from_numpy(a_exp_src))
        fit_id, fit_exp = (t.float().numpy() for t in fm.fit(truth))
    base = sample_poses(rng, n_src, max_yaw=25.0, yaw_std=12.0)
    src = np.repeat(np.arange(n_src), views)
    view = np.tile(np.arange(views), n_src)
    pose = base[src].copy()
    sign = np.where(rng.random(n_src) < 0.5, -1.0, 1.0)[src]
    start = np.abs(base[src, 1])
    # profiled views: the yaw grows from the source's towards 90 degrees, each later view drawn between
    # (300W-LP profiles every few degrees; a few views must not leave out the half-profiles)
    reach = np.sort(rng.uniform(0.0, 1.0, (n_src, max(1, views - 1))), axis=1)
    reach = np.concatenate([np.zeros((n_src, 1)), reach], axis=1)[:, :views].reshape(-1)
    pose[:, 1] = sign * (start + (90.0 * DEG - start) * reach)
    # the face fills 0.45-0.95 of a frame 1.5 times the input size (as in the MICC videos), so the
    # landmark crops neither reach the frame's edge nor all share one face resolution
    pose[:, 5] = np.log(rng.uniform(*LABELLED_FACE_SHARE, src.size))
    light_src = sample_lights(rng, n_src)
    hair = (rng.random(n_src) < 0.25)[src]
    glasses = (rng.random(n_src) < 0.15)[src]
    occ_seeds = rng.integers(0, 2**62, n_src)[src]
    root = out / "300w_lp"
    size = round(LABELLED_FRAME * preset.image_size)
    photos = studio.photos(rng, a_id[src], a_exp_src[src], a_tex[src], pose, light_src[src], size,
                           hair=hair, glasses=glasses, occluder_seeds=occ_seeds)  # fmt: skip
    for k, (rgb, mask, lm) in enumerate(photos):
        s = src[k]
        subset = SUBSETS[s % len(SUBSETS)]
        name = f"{subset}_{s:06d}_1_{view[k]}"
        rel = f"{subset}/{name}.jpg"
        _write_jpeg(root / rel, rgb)
        write_mask(mask_sidecar(root, rel), mask)
        f = math.exp(float(pose[k, 5])) * size / 200.0
        lo, hi = lm.min(axis=0), lm.max(axis=0)
        save_mat(root / subset / f"{name}.mat", {
            "Shape_Para": fit_id[s].astype(np.float64).reshape(-1, 1),
            "Exp_Para": fit_exp[s].astype(np.float64).reshape(-1, 1),
            "Tex_Para": a_tex[s].astype(np.float64).reshape(-1, 1),
            "Pose_Para": np.array([[*pose[k, :5], 0.0, f]], dtype=np.float32),
            "Illum_Para": light_src[s].astype(np.float64).reshape(1, -1),
            "Color_Para": np.array([[1, 1, 1, 0, 0, 0, 1]], dtype=np.float32),
            "pt2d": (lm.T + 0.5).astype(np.float64),
            "roi": np.array([[lo[0], lo[1], hi[0], hi[1]]]).round().astype(np.int16),
        })  # fmt: skip
        if record is not None:
            record[rel] = {"source": f"{subset}/{subset}_{s:06d}_1", "id_params": fit_id[s],
                           "exp_params": fit_exp[s], "landmarks": lm, "mask": mask}  # fmt: skip
        advance(1)
    write_meta(root, _model_meta(preset, seed))


#: Per video condition: yaw range (deg), expression scale, light strength / colour, face scale in the
#: frame, landmark noise (fraction of the frame), glasses / hair probability, JPEG quality, sensor noise.
VIDEO_STYLES: dict[str, dict[str, float]] = {
    "Indoor-Cooperative": dict(yaw=45, expr=0.1, light=0.4, colour=0.02, scale=0.7, lm=0.004,
                               glasses=0.0, hair=0.0, quality=92, noise=0.008),
    "PTZ-Indoor": dict(yaw=30, expr=0.5, light=0.9, colour=0.05, scale=0.55, lm=0.006,
                       glasses=0.3, hair=0.2, quality=85, noise=0.015),
    "PTZ-Outdoor": dict(yaw=40, expr=0.7, light=1.3, colour=0.1, scale=0.5, lm=0.008,
                        glasses=0.3, hair=0.4, quality=75, noise=0.025),
}  # fmt: skip


def _video_plan(
    rng: np.random.Generator, fm: Any, condition: str, frames: int, a_id: np.ndarray, a_tex: np.ndarray,
    wears_glasses: bool,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Per-frame parameters of one MICC-like video (pose path, talking expression, light, occluders)."""
    st = VIDEO_STYLES[condition]
    t = np.linspace(0.0, 1.0, frames)
    pose = np.zeros((frames, 6), dtype=np.float32)
    if condition == "Indoor-Cooperative":  # a slow turn: one profile, frontal, the other profile
        pose[:, 1] = np.sin(2 * math.pi * t - math.pi / 2) * -st["yaw"] * DEG
    else:
        walk = np.cumsum(rng.normal(0.0, 1.0, (frames, 3)), axis=0)
        walk = walk / max(1.0, np.abs(walk).max())
        pose[:, 0] = walk[:, 0] * 10 * DEG
        pose[:, 1] = walk[:, 1] * st["yaw"] * DEG
        pose[:, 2] = walk[:, 2] * 6 * DEG
    pose[:, 3:5] = rng.normal(0.0, 0.06, 2) + rng.normal(0.0, 0.01, (frames, 2))
    pose[:, 5] = math.log(st["scale"]) + rng.normal(0.0, 0.03, frames)
    exp_keys = _coefficients(rng, fm.exp_std, 3, st["expr"])
    w = np.stack([np.clip(1 - np.abs(t * 2 - c), 0, 1) for c in (0.0, 1.0, 2.0)], axis=1)
    return {
        "id": np.repeat(a_id[None], frames, 0),
        "tex": np.repeat(a_tex[None], frames, 0),
        "exp": (w @ exp_keys).astype(np.float32),
        "pose": pose,
        "light": np.repeat(sample_lights(rng, 1, st["light"], st["colour"]), frames, axis=0),
        "glasses": np.full(frames, wears_glasses and rng.random() < st["glasses"] * 2),
        "hair": np.full(frames, rng.random() < st["hair"]),
        "occ": np.full(frames, rng.integers(0, 2**62)),
        "background": np.full(frames, rng.integers(0, 2**62)),
        "noise": np.full(frames, st["noise"]),
    }


def write_micc(
    out: Path, studio: _Studio, preset: WorldPreset, seed: int, advance: Callable[[int], None],
    record: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """The MICC-layout evaluation set (see the module docstring)."""
    fm, rng = studio.fm, np.random.default_rng([seed, 3])
    n_sub, frames = preset.micc_subjects, preset.frames_per_video
    a_id = _coefficients(rng, fm.id_std, n_sub)
    a_tex = _coefficients(rng, fm.albedo_std, n_sub)
    dense = _face_model(preset.scan_vertices, seed)
    root = out / "micc"
    canvas = (3 * preset.image_size) // 2
    plans: list[dict[str, np.ndarray]] = []
    videos: list[tuple[Path, dict[str, float]]] = []
    for s in range(n_sub):
        subject = root / f"subject_{s + 1:02d}"
        with torch.no_grad():
            scan = dense.true_shape(
                torch.from_numpy(a_id[s : s + 1]), torch.zeros(1, dense.exp_basis.shape[0])
            )
        scan = scan[0].double().numpy()
        marks = scan[np.asarray(dense.landmarks)]
        noisy = scan + rng.normal(0.0, 0.08, scan.shape)  # scanner noise, mm
        noisy[:, 2] += 0.15 * np.sin(scan[:, 0] / 3.0 + rng.uniform(0, 6.3)) * rng.uniform(0.5, 1.0)
        scan_name = f"{s + 1:02d}0920150452"
        obj_dir = subject / "Model" / "frontal1" / "obj"
        write_obj(obj_dir / f"{scan_name}.obj", noisy, np.asarray(dense.triangles))
        lines = ["x,y,z"] + [f"{x:.4f},{y:.4f},{z:.4f}" for x, y, z in marks]
        (obj_dir / f"{scan_name}.landmarks68.csv").write_text("\n".join(lines) + "\n")
        if record is not None:
            record[f"subject_{s + 1:02d}"] = {"id_params": a_id[s], "scan": noisy}
        wears_glasses = rng.random() < 0.5
        for condition in CONDITIONS:
            plans.append(_video_plan(rng, fm, condition, frames, a_id[s], a_tex[s], wears_glasses))
            videos.append((subject / "Video" / f"{condition}.mjpg", VIDEO_STYLES[condition]))
    # all frames in one rendering pass (large batches), then split back into the videos in order
    cat = {k: np.concatenate([p[k] for p in plans]) for k in plans[0]}
    photos = studio.photos(rng, cat["id"], cat["exp"], cat["tex"], cat["pose"], cat["light"], canvas,
                           hair=cat["hair"], glasses=cat["glasses"], noise=cat["noise"],
                           occluder_seeds=cat["occ"], background_seeds=cat["background"])  # fmt: skip
    for video, st in videos:
        video.parent.mkdir(parents=True, exist_ok=True)
        landmarks = {}
        with open(video, "wb") as fh:
            for k in range(frames):
                rgb, _mask, lm = next(photos)
                fh.write(encode_jpeg(rgb, int(st["quality"])))
                landmarks[k] = detector_noise(rng, lm, st["lm"] * canvas)
                advance(1)
        write_video_landmarks(video_landmarks_path(video), landmarks)
    write_meta(root, {**_model_meta(preset, seed), "scan_model": {"type": "synthetic",
               "vertices": preset.scan_vertices, "seed": seed}})  # fmt: skip


def write_aflw2000(
    out: Path, studio: _Studio, preset: WorldPreset, seed: int, advance: Callable[[int], None],
    record: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """The AFLW2000-3D-layout landmark test set: new identities, one image each, yaws spread evenly over the
    benchmark's bins [0, 30), [30, 60), [60, 90) degrees (either side).

    ``aflw2000/imageNNNNN.jpg`` (frames 1.5 times the input size, the face at 0.45-0.95 of them, as in
    ``300w_lp/``) + ``imageNNNNN.mat``: ``pt3d_68`` (3, 68) = the exact landmarks' x, y (1-based pixels)
    and depth z (pixels, larger = nearer), ``Pose_Para`` (1, 7), ``Shape_Para`` / ``Exp_Para`` (the linear
    fit of the true face), ``Tex_Para``, ``Illum_Para``, ``Color_Para``, ``roi``. Its own random stream
    (seed, 4): the other folders' bytes do not depend on it.
    """
    from facerep.geometry.camera import project

    fm, rng = studio.fm, np.random.default_rng([seed, 4])
    n = aflw2000_images(preset)
    a_id = _coefficients(rng, fm.id_std, n)
    a_tex = _coefficients(rng, fm.albedo_std, n)
    a_exp = _coefficients(rng, fm.exp_std, n) * rng.uniform(0.0, 1.0, (n, 1)).astype(np.float32)
    with torch.no_grad():
        truth = fm.true_shape(torch.from_numpy(a_id), torch.from_numpy(a_exp)).float()
        fit_id, fit_exp = (t.float().numpy() for t in fm.fit(truth))
    pose = sample_poses(rng, n, max_yaw=90.0)
    low = (np.arange(n) % 3) * 30.0  # even thirds over the yaw bins
    pose[:, 1] = np.where(rng.random(n) < 0.5, -1.0, 1.0) * (low + rng.uniform(0.0, 30.0, n)) * DEG
    pose[:, 5] = np.log(rng.uniform(*LABELLED_FACE_SHARE, n))
    light = sample_lights(rng, n)
    hair = rng.random(n) < 0.2
    glasses = rng.random(n) < 0.15
    size = round(LABELLED_FRAME * preset.image_size)
    with torch.no_grad():
        index = torch.as_tensor(np.asarray(fm.landmarks))
        _, depth = project(truth[:, index], torch.from_numpy(pose), size)
        focal = np.exp(pose[:, 5].astype(np.float64)) * size / 200.0
    root = out / "aflw2000"
    photos = studio.photos(rng, a_id, a_exp, a_tex, pose, light, size, hair=hair, glasses=glasses)
    for k, (rgb, _mask, lm) in enumerate(photos):
        name = f"image{k + 1:05d}"
        _write_jpeg(root / f"{name}.jpg", rgb)
        lo, hi = lm.min(axis=0), lm.max(axis=0)
        z = depth[k].double().numpy() * focal[k]
        save_mat(root / f"{name}.mat", {
            "pt3d_68": np.concatenate([lm.T + 0.5, z[None]], axis=0).astype(np.float64),
            "Pose_Para": np.array([[*pose[k, :5], 0.0, focal[k]]], dtype=np.float32),
            "Shape_Para": fit_id[k].astype(np.float64).reshape(-1, 1),
            "Exp_Para": fit_exp[k].astype(np.float64).reshape(-1, 1),
            "Tex_Para": a_tex[k].astype(np.float64).reshape(-1, 1),
            "Illum_Para": light[k].astype(np.float64).reshape(1, -1),
            "Color_Para": np.array([[1, 1, 1, 0, 0, 0, 1]], dtype=np.float32),
            "roi": np.array([[lo[0], lo[1], hi[0], hi[1]]]).round().astype(np.int16),
        })  # fmt: skip
        if record is not None:
            record[f"{name}.jpg"] = {"landmarks": lm, "yaw": float(pose[k, 1]), "id_params": fit_id[k]}
        advance(1)
    write_meta(root, _model_meta(preset, seed))


def write_verification(
    out: Path, studio: _Studio, preset: WorldPreset, seed: int, advance: Callable[[int], None],
    record: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """The face-verification set in LFW's layout: new identities (in no training set), a fixed pair list.

    ``verification/lfw/person_NNNN/person_NNNN_000K.jpg`` (frames twice the input size, the face at
    0.45-0.7 of them; photos vary as the CelebA set's do: expression, yaw up to 60 degrees, light,
    occluders), their landmark sidecars under ``verification/landmarks68/`` and ``verification/pairs.txt``
    (header ``1<TAB>N``; every same-identity pair, then as many different-identity pairs drawn at random).
    Its own random stream (seed, 5): the other folders' bytes do not depend on it.
    """
    fm, rng = studio.fm, np.random.default_rng([seed, 5])
    n_id, per = verification_identities(preset), VERIFICATION_PHOTOS
    a_id = _coefficients(rng, fm.id_std, n_id)
    a_tex = _coefficients(rng, fm.albedo_std, n_id)
    owner = np.repeat(np.arange(n_id), per)
    n = owner.size
    a_exp = _coefficients(rng, fm.exp_std, n)  # drawn before the strengths, as always
    a_exp = a_exp * (rng.uniform(0.0, EXPRESSION_SCALE, (n, 1)) * (rng.random((n, 1)) > 0.2))
    pose = sample_poses(rng, n, max_yaw=60.0, scale=(0.45, 0.7))
    light = sample_lights(rng, n)
    hair = rng.random(n) < 0.35
    glasses = (rng.random(n_id) < 0.3)[owner] & (rng.random(n) < 0.8)
    size = 2 * preset.image_size
    root = out / "verification"
    names = [f"person_{i + 1:04d}" for i in range(n_id)]
    photos = studio.photos(rng, a_id[owner], a_exp.astype(np.float32), a_tex[owner], pose, light, size,
                           hair=hair, glasses=glasses)  # fmt: skip
    sigma = 0.008 * preset.image_size
    for k, (rgb, _mask, lm) in enumerate(photos):
        name = names[owner[k]]
        rel = f"lfw/{name}/{name}_{k % per + 1:04d}.jpg"
        _write_jpeg(root / rel, rgb)
        noisy = detector_noise(rng, lm, sigma)
        write_pts(landmark_sidecar(root, rel), noisy)
        if record is not None:
            record[rel] = {"identity": int(owner[k]), "landmarks": noisy}
        advance(1)
    same = [(names[i], a + 1, b + 1) for i in range(n_id) for a in range(per) for b in range(a + 1, per)]
    different: set[tuple[str, int, str, int]] = set()
    while len(different) < len(same):
        i, j = rng.choice(n_id, 2, replace=False)
        i, j = sorted((int(i), int(j)))
        different.add((names[i], int(rng.integers(per)) + 1, names[j], int(rng.integers(per)) + 1))
    lines = [f"1\t{len(same)}"] + ["\t".join(map(str, row)) for row in [*same, *sorted(different)]]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_meta(root, _model_meta(preset, seed))


#: The world's folders and their writers, in the order `generate_world` writes them.
WORLD_PARTS: dict[str, Callable[..., None]] = {
    "celeba": write_celeba,
    "300w_lp": write_300w_lp,
    "micc": write_micc,
    "aflw2000": write_aflw2000,
    "verification": write_verification,
}


def generate_world(
    out: str | Path,
    preset: str | WorldPreset = "demo",
    seed: int = 0,
    *,
    progress: Callable[[int], None] | None = None,
    record: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    parts: tuple[str, ...] | None = None,
) -> Path:
    """Write the synthetic world into `out` (created; should be empty). Returns `out`.

    Args:
        out: destination folder (use `facerep.world.cache.write_world` for an atomic write).
        preset: a `PRESETS` name or a `WorldPreset`.
        seed: world seed; also the seed of the face model the parameters belong to.
        progress: called with the number of images written since the last call.
        record: when given, filled with what was generated, per folder (the `WORLD_PARTS` keys),
            keyed by relative file path (tests compare the readers' output with it).
        device: where to render (default: CUDA when available, else CPU); the bytes written do not depend
            on it beyond floating-point rounding.
        parts: write only these folders (`WORLD_PARTS` keys) and no ``world.json``; None: the whole world.
            Each folder draws from its own random stream, so a part written alone has the same bytes.
    """
    unknown = sorted(set(parts or ()) - set(WORLD_PARTS))
    if unknown:
        raise ValueError(f"unknown world part(s) {unknown}; the world has {list(WORLD_PARTS)}")
    preset = get_preset(preset)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    advance = progress or (lambda n: None)
    fm = _face_model(preset.vertices, seed)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    studio = _Studio(fm, supersample=preset.supersample, device=device)
    threads = torch.get_num_threads()
    try:
        for key, writer in WORLD_PARTS.items():
            if parts is not None and key not in parts:
                continue
            sub = record.setdefault(key, {}) if record is not None else None
            writer(out, studio, preset, seed, advance, sub)
    finally:
        torch.set_num_threads(threads)
    if parts is not None:
        return out
    summary = {**_model_meta(preset, seed), "preset": asdict(preset)}
    (out / "world.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return out
