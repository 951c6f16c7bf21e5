"""The contract checks, kind by kind.

Network kinds (encoder, shape_decoder, albedo_decoder, renderer, critic, loss) share one set of checks,
driven by a small per-kind adapter that makes tiny inputs and knows the output contract:

- ``build``: the node builds through the registry with a tiny context into an instance of the kind's
  interface (`facerep.core.interfaces`);
- ``outputs``: output types, shapes, dtypes (float32 in, float32 out), value ranges, finiteness;
- ``gradients``: a backward pass through a random projection of the outputs reaches every trainable
  parameter with a finite gradient (at least one non-zero) and gives finite input gradients;
- ``state_roundtrip``: the state dict (perturbed away from its initialisation) survives safetensors
  serialisation into a freshly built instance, which then gives identical outputs;
- ``determinism``: two builds under one seed have equal state and equal outputs; a repeated call
  (eval mode) repeats its output;
- ``no_input_mutation``: forward and backward leave every input tensor unchanged;
- ``cuda``: built on CPU and moved to CUDA it gives the CPU outputs (skipped without a GPU).

Encoders are called with images and (B, 68, 2) landmarks (`facerep.core.interfaces.Encoder`); their own
``landmarks`` check: an encoder with ``reads_landmarks`` False gives the same codes whatever landmarks it
gets (or none); one with ``reads_landmarks`` True raises `facerep.common.errors.DataError` without
landmarks or with landmarks of the wrong shape, and its codes change with the landmarks (after a small
nudge of its parameters when its landmark heads start at zero); when it offers ``encode_landmarks``,
that gives finite identity and expression codes of its declared sizes.

Face models, datasets, optimizers, benchmarks, face detectors and shaders have their own checks (see
`KIND_CHECKS`); a face detector's ``faces`` check needs a photo with a face, given as the context entry
``face_image``; a shader's ``renders`` check runs it inside `facerep.geometry.render.render`.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from facerep.core import interfaces as iface
from facerep.core.types import Codes, Rendering, map_tensors
from facerep.geometry.render import Shader, render
from facerep.testing import fixtures
from facerep.testing.subject import (
    CheckSkipped,
    Subject,
    differences,
    float_tensors,
    named_tensors,
    snapshot,
)

#: Rows in the inputs of network checks (losses use `fixtures.TINY_BATCH_SIZE`).
BATCH = 2
#: Tolerances of CPU-vs-CUDA comparisons.
CUDA_RTOL, CUDA_ATOL = 1e-3, 1e-3


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _to(value: Any, device: str | torch.device) -> Any:
    return map_tensors(value, lambda t: t.to(device))


def _finite(subject: Subject, tensors: dict[str, Tensor], what: str) -> None:
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise subject.fail(f"{what} not finite (NaN or Inf): {', '.join(bad)}")


def _shape(subject: Subject, name: str, tensor: Any, shape: tuple[int, ...], dtype: Any = None) -> None:
    if not isinstance(tensor, Tensor):
        raise subject.fail(f"{name} should be a tensor of shape {shape}, got {type(tensor).__name__}")
    if tuple(tensor.shape) != tuple(shape):
        raise subject.fail(f"{name} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")
    if dtype is not None and tensor.dtype != dtype:
        raise subject.fail(f"{name} has dtype {tensor.dtype}, expected {dtype}")


def _range(subject: Subject, name: str, tensor: Tensor, lo: float, hi: float, slack: float = 1e-5) -> None:
    if tensor.numel() and (float(tensor.min()) < lo - slack or float(tensor.max()) > hi + slack):
        raise subject.fail(
            f"{name} should lie in [{lo}, {hi}], got [{float(tensor.min()):.4g}, {float(tensor.max()):.4g}]"
        )


# -- per-kind adapters of the network checks ----------------------------------------------------------


@dataclass
class Call:
    """The inputs of one call of a network component.

    Attributes:
        args: positional arguments.
        leaves: input tensors that require gradients, by name (the gradient check looks at them).
        extra: adapter-specific objects (a loss context, ...), not compared for mutation.
    """

    args: tuple[Any, ...]
    leaves: dict[str, Tensor]
    extra: dict[str, Any]


class NetworkKind:
    """How to feed one kind and what its output must look like."""

    interface: type = nn.Module

    def make_call(self, subject: Subject, seed: int, device: str) -> Call:
        raise NotImplementedError

    def run(self, module: Any, call: Call) -> Any:
        return module(*call.args)

    def check_output(self, subject: Subject, module: Any, call: Call, output: Any) -> None:
        raise NotImplementedError

    def to_device(self, subject: Subject, call: Call, device: str, seed: int) -> Call:
        """The same call on another device (default: rebuild the inputs there from the same seed)."""
        return self.make_call(subject, seed, device)


def _leaf(t: Tensor, device: str) -> Tensor:
    return t.to(device).detach().requires_grad_(True)


def _tiny_landmarks(size: int, generator: torch.Generator, batch: int = BATCH) -> Tensor:
    """(batch, 68, 2) random points in the middle of (size, size) images, pixels (no gradient)."""
    return size * (0.25 + 0.5 * torch.rand(batch, 68, 2, generator=generator))


class EncoderKind(NetworkKind):
    interface = iface.Encoder

    def make_call(self, subject: Subject, seed: int, device: str) -> Call:
        size = int(subject.context()["image_size"])
        g = _gen(seed)
        images = _leaf(torch.rand(BATCH, 3, size, size, generator=g), device)
        landmarks = _tiny_landmarks(size, g).to(device)
        return Call((images, landmarks), {"images": images}, {})

    def check_output(self, subject: Subject, module: Any, call: Call, output: Any) -> None:
        if not isinstance(output, Codes):
            raise subject.fail(f"forward must return facerep.core.types.Codes, got {type(output).__name__}")
        sizes = getattr(module, "code_sizes", None)
        if not isinstance(sizes, Mapping) or not {"identity", "expression", "pose", "light"} <= set(sizes):
            raise subject.fail(
                f"code_sizes must map identity, expression, pose, light to ints, got {sizes!r}"
            )
        for name in ("identity", "expression", "pose", "light"):
            _shape(subject, f"codes.{name}", getattr(output, name), (BATCH, int(sizes[name])), torch.float32)
        channels = list(getattr(module, "skip_channels", []))
        if len(output.skips) != len(channels):
            raise subject.fail(f"{len(output.skips)} skips returned but skip_channels lists {len(channels)}")
        for i, (skip, c) in enumerate(zip(output.skips, channels, strict=True)):
            if skip.dim() != 4 or skip.shape[0] != BATCH or skip.shape[1] != c:
                raise subject.fail(f"skip {i} has shape {tuple(skip.shape)}, expected ({BATCH}, {c}, H, W)")
        _finite(subject, float_tensors(output), "outputs")


class ShapeDecoderKind(NetworkKind):
    interface = iface.ShapeDecoder

    def make_call(self, subject: Subject, seed: int, device: str) -> Call:
        sizes = subject.context()["code_sizes"]
        g = _gen(seed)
        identity = _leaf(torch.randn(BATCH, int(sizes["identity"]), generator=g), device)
        expression = _leaf(torch.randn(BATCH, int(sizes["expression"]), generator=g), device)
        return Call((identity, expression), {"identity": identity, "expression": expression}, {})

    def check_output(self, subject: Subject, module: Any, call: Call, output: Any) -> None:
        n = subject.face_model.num_vertices
        _shape(subject, "vertices", output, (BATCH, n, 3), torch.float32)
        _finite(subject, {"vertices": output}, "outputs")


class AlbedoDecoderKind(NetworkKind):
    interface = iface.AlbedoDecoder

    def make_call(self, subject: Subject, seed: int, device: str) -> Call:
        context = subject.context()
        g = _gen(seed)
        identity = _leaf(torch.randn(BATCH, int(context["code_sizes"]["identity"]), generator=g), device)
        leaves = {"identity": identity}
        skips = None
        component = subject.component.factory
        if getattr(component, "uses_skips", False):
            size = int(context["image_size"])
            images = torch.rand(BATCH, 3, size, size, generator=g)
            with torch.no_grad():
                codes = context["encoder"](images)
            skips = [_leaf(s, device) for s in codes.skips]
            leaves.update({f"skips[{i}]": s for i, s in enumerate(skips)})
        return Call((identity, skips), leaves, {})

    def check_output(self, subject: Subject, module: Any, call: Call, output: Any) -> None:
        n = subject.face_model.num_vertices
        _shape(subject, "albedo", output, (BATCH, n, 3), torch.float32)
        _finite(subject, {"albedo": output}, "outputs")
        _range(subject, "albedo", output.detach(), 0.0, 1.0)


class RendererKind(NetworkKind):
    interface = iface.Renderer

    def make_call(self, subject: Subject, seed: int, device: str) -> Call:
        fm = subject.face_model
        g = _gen(seed)
        mean = torch.as_tensor(np.asarray(fm.mean), dtype=torch.float32)
        vertices = _leaf(mean + 0.5 * torch.randn(BATCH, fm.num_vertices, 3, generator=g), device)
        albedo = _leaf(
            torch.as_tensor(np.asarray(fm.albedo_mean), dtype=torch.float32).expand(BATCH, -1, -1), device
        )
        sizes = subject.context()["code_sizes"]
        pose = torch.zeros(BATCH, int(sizes["pose"]))
        pose[:, 1] = torch.tensor([0.15, -0.1])[:BATCH]  # a little yaw
        pose = _leaf(pose, device)
        light = _leaf(0.05 * torch.randn(BATCH, int(sizes["light"]), generator=g), device)
        leaves = {"vertices": vertices, "albedo": albedo, "pose": pose, "light": light}
        return Call((vertices, albedo, pose, light), leaves, {})

    def check_output(self, subject: Subject, module: Any, call: Call, output: Any) -> None:
        if not isinstance(output, Rendering):
            raise subject.fail(
                f"forward must return facerep.core.types.Rendering, got {type(output).__name__}"
            )
        size = int(subject.context()["image_size"])
        if int(getattr(module, "image_size", -1)) != size:
            raise subject.fail(
                f"image_size is {getattr(module, 'image_size', None)}, the context's is {size}"
            )
        fm = subject.face_model
        n, f = fm.num_vertices, int(np.asarray(fm.triangles).shape[0])
        _shape(subject, "rendering.image", output.image, (BATCH, 3, size, size), torch.float32)
        _shape(subject, "rendering.mask", output.mask, (BATCH, 1, size, size))
        _shape(subject, "rendering.depth", output.depth, (BATCH, 1, size, size))
        _shape(subject, "rendering.triangle_ids", output.triangle_ids, (BATCH, size, size), torch.long)
        _shape(subject, "rendering.vertices_2d", output.vertices_2d, (BATCH, n, 2), torch.float32)
        _shape(subject, "rendering.landmarks_2d", output.landmarks_2d, (BATCH, 68, 2), torch.float32)
        _shape(subject, "rendering.visibility", output.visibility, (BATCH, n), torch.bool)
        _finite(subject, float_tensors(output), "outputs")
        _range(subject, "rendering.image", output.image.detach(), 0.0, 1.0)
        _range(subject, "rendering.mask", output.mask.detach().float(), 0.0, 1.0)
        _range(subject, "rendering.triangle_ids", output.triangle_ids.float(), -1, f - 1)
        if float(output.mask.detach().float().mean()) <= 0.0:
            raise subject.fail("a frontal face at the default scale covers no pixel (mask all zero)")


class CriticKind(NetworkKind):
    interface = iface.Critic

    def make_call(self, subject: Subject, seed: int, device: str) -> Call:
        vertices = _leaf(subject.face_model.sample(BATCH, generator=_gen(seed)).float(), device)
        return Call((vertices,), {"vertices": vertices}, {})

    def check_output(self, subject: Subject, module: Any, call: Call, output: Any) -> None:
        _shape(subject, "scores", output, (BATCH,), torch.float32)
        _finite(subject, {"scores": output}, "outputs")
        (vertices,) = call.args
        others = subject.face_model.sample(1, generator=_gen(99)).float().to(vertices.device)
        with torch.no_grad():
            first = module(vertices.detach())[:1]
            second = module(torch.cat([vertices[:1].detach(), others]))[:1]
        if not torch.allclose(first, second, rtol=1e-4, atol=1e-5):
            raise subject.fail(
                "a row's score depends on the other rows of the batch (critics must not use batch "
                f"statistics): {float(first[0]):.6g} vs {float(second[0]):.6g} beside another shape"
            )


class LossKind(NetworkKind):
    interface = iface.Loss

    def __init__(self) -> None:
        self._helpers: dict[tuple[int, str], dict[str, Any]] = {}

    def helpers(self, subject: Subject, device: str) -> dict[str, Any]:
        """A shape decoder (``linear``) and critic (``gcn``, tiny) for the loss context, when registered."""
        key = (id(subject), str(device))
        if key not in self._helpers:
            found: dict[str, Any] = {}
            state = torch.get_rng_state()
            try:
                for role, kind, node in (
                    ("shape_decoder", "shape_decoder", {"type": "linear"}),
                    ("critic", "critic", {"type": "gcn", "channels": [8, 8, 8, 8], "K": 3}),
                ):
                    torch.manual_seed(0)
                    if node["type"] in subject.registry.names(kind):
                        module = subject.registry.build(kind, node, subject.context())
                        if role == "shape_decoder":  # a non-trivial decoder: its outputs depend on the codes
                            with torch.no_grad():
                                for p in module.parameters():
                                    p.normal_(0.0, 0.01)  # on the CPU: the same values on every device
                        found[role] = module.to(device)
            finally:
                torch.set_rng_state(state)
            self._helpers[key] = found
        return self._helpers[key]

    def make_call(self, subject: Subject, seed: int, device: str, labelled_rows: int = 2) -> Call:
        context = subject.context()
        fm = context["face_model"]
        batch = fixtures.tiny_batch(
            fm, image_size=int(context["image_size"]), labelled_rows=labelled_rows, seed=seed
        )
        recon = fixtures.tiny_reconstruction(fm, batch, code_sizes=context["code_sizes"], seed=seed)
        batch, recon = _to(batch, device), _to(recon, device)
        recon = map_tensors(recon, lambda t: t.detach().requires_grad_(t.is_floating_point()))
        leaves = {k: t for k, t in named_tensors(recon, "recon").items() if t.requires_grad}
        loss_context = iface.LossContext(face_model=fm, step=0, **self.helpers(subject, device))
        return Call((batch, recon, loss_context), leaves, {})

    def check_output(self, subject: Subject, module: Any, call: Call, output: Any) -> None:
        _shape(subject, "loss value", output, (), torch.float32)
        _finite(subject, {"loss value": output}, "outputs")
        weight = getattr(module, "weight", None)
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not math.isfinite(weight):
            raise subject.fail(f"a loss needs a finite float attribute 'weight', got {weight!r}")
        if getattr(module, "applies_to", None) not in ("all", "labelled", "unlabelled"):
            raise subject.fail(f"applies_to must be all, labelled or unlabelled, got {module.applies_to!r}")
        if getattr(module, "has_critic", False):
            critic = call.args[2].get("critic") if "critic" in call.args[2] else None
            if critic is None:
                return
            real = subject.face_model.sample(3, generator=_gen(5)).float().to(output.device)
            fake = call.args[1].vertices.detach()
            value = module.critic_loss(real, fake, critic)
            _shape(subject, "critic_loss value", value, (), torch.float32)
            _finite(subject, {"critic_loss value": value}, "outputs")
            critic.zero_grad(set_to_none=True)
            value.backward()
            grads = {n: p.grad for n, p in critic.named_parameters() if p.requires_grad}
            if any(g is None for g in grads.values()):
                raise subject.fail("critic_loss does not reach every parameter of the critic")
            _finite(subject, {f"critic.{n}.grad": g for n, g in grads.items()}, "critic gradients")
            critic.zero_grad(set_to_none=True)


NETWORK_KINDS: dict[str, NetworkKind] = {
    "encoder": EncoderKind(),
    "shape_decoder": ShapeDecoderKind(),
    "albedo_decoder": AlbedoDecoderKind(),
    "renderer": RendererKind(),
    "critic": CriticKind(),
    "loss": LossKind(),
}


def _adapter(subject: Subject) -> NetworkKind:
    return NETWORK_KINDS[subject.kind]


def _built(subject: Subject, seed: int = 0, device: str = "cpu") -> Any:
    try:
        return subject.build(seed=seed, device=device)
    except Exception as exc:
        raise subject.fail(f"building from {subject.node!r} failed: {type(exc).__name__}: {exc}") from exc


# -- shaders -------------------------------------------------------------------------------------------


def check_shader_renders(subject: Subject) -> None:
    """Inside `facerep.geometry.render.render` on the tiny face: finite (B, 3, H, W) colours, values per
    vertex and colours per covered pixel of the documented shapes, and finite gradients."""
    shader = _built(subject)
    light_size = getattr(shader, "light_size", None)
    if isinstance(light_size, bool) or not isinstance(light_size, int) or light_size <= 0:
        raise subject.fail(f"a shader needs a positive int attribute 'light_size', got {light_size!r}")
    fm = subject.face_model
    size = int(subject.context()["image_size"])
    g = _gen(0)
    mean = torch.as_tensor(np.asarray(fm.mean), dtype=torch.float32)
    vertices = (mean + 0.5 * torch.randn(BATCH, fm.num_vertices, 3, generator=g)).requires_grad_(True)
    albedo = torch.as_tensor(np.asarray(fm.albedo_mean), dtype=torch.float32).expand(BATCH, -1, -1)
    albedo = albedo.clone().requires_grad_(True)
    pose = torch.zeros(BATCH, 6)
    pose[:, 1] = torch.tensor([0.15, -0.1])[:BATCH]  # a little yaw
    light = (0.05 * torch.randn(BATCH, light_size, generator=g)).requires_grad_(True)
    seen: dict[str, Tensor] = {}

    class Recording:  # the subject's shader, with its outputs kept for the shape checks
        def __init__(self) -> None:
            self.light_size = light_size

        def vertex_attributes(self, mesh: Any, light: Tensor) -> Tensor:
            seen["vertex_attributes"] = shader.vertex_attributes(mesh, light)
            return seen["vertex_attributes"]

        def shade(self, attributes: Tensor, surface: Tensor, mesh: Any, light: Tensor) -> Tensor:
            seen["shade"] = shader.shade(attributes, surface, mesh, light)
            seen["pixels"] = mesh.fragments.pixels
            return seen["shade"]

    triangles = torch.as_tensor(np.asarray(fm.triangles), dtype=torch.long)
    out = render(vertices, albedo, pose, light, triangles, size, Recording(), who=subject.label)
    values = seen["vertex_attributes"]
    if not isinstance(values, Tensor) or values.dim() != 3 or values.shape[:2] != (BATCH, fm.num_vertices):
        got = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise subject.fail(f"vertex_attributes must be ({BATCH}, {fm.num_vertices}, C), got {got}")
    _shape(subject, "shade(...)", seen["shade"], (int(seen["pixels"].shape[0]), 3))
    _shape(subject, "rendered image", out.image, (BATCH, 3, size, size), torch.float32)
    _finite(subject, {"image": out.image}, "outputs")
    out.image.square().sum().backward()
    grads = {n: t.grad for n, t in (("vertices", vertices), ("albedo", albedo), ("light", light))}
    _finite(subject, {n: t for n, t in grads.items() if t is not None}, "gradients")


# -- the network checks --------------------------------------------------------------------------------


def check_build(subject: Subject) -> None:
    """The node builds through the registry into an instance of the kind's interface."""
    obj = _built(subject)
    expected = {
        **{k: a.interface for k, a in NETWORK_KINDS.items()},
        "facemodel": iface.FaceModel,
        "dataset": iface.FaceDataset,
        "benchmark": iface.Benchmark,
        "optimizer": torch.optim.Optimizer,
        "face_detector": iface.FaceDetector,
        "shader": Shader,
    }.get(subject.kind)
    if expected is not None and not isinstance(obj, expected):
        raise subject.fail(
            f"built a {type(obj).__name__}, which is not a {expected.__module__}.{expected.__name__}"
        )


def check_benchmark_run(subject: Subject) -> None:
    """``run`` takes the contract's ``console`` and ``data_root`` keywords; ``world_part`` is a string or
    None (`facerep.core.interfaces.Benchmark`)."""
    import inspect

    obj = _built(subject)
    params = inspect.signature(obj.run).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        missing = [n for n in ("console", "data_root") if n not in params]
        if missing:
            raise subject.fail(f"run() has no keyword(s) {', '.join(missing)} (Benchmark.run's contract)")
    part = getattr(obj, "world_part", None)
    if part is not None and not isinstance(part, str):
        raise subject.fail(f"world_part must be a world folder name or None, got {part!r}")


def check_outputs(subject: Subject) -> None:
    """Output types, shapes, dtypes, ranges and finiteness on a tiny input (train mode)."""
    adapter = _adapter(subject)
    module = _built(subject).train()
    call = adapter.make_call(subject, 0, "cpu")
    output = adapter.run(module, call)
    adapter.check_output(subject, module, call, output)


def _projection(output: Any, seed: int) -> Tensor:
    """A random linear functional of every float output (so every output element matters)."""
    total = None
    g = _gen(seed)
    for _, t in sorted(float_tensors(output).items()):
        if not t.requires_grad:
            continue
        w = torch.randn(t.shape, generator=g).to(t.device)
        term = (w * t).sum()
        total = term if total is None else total + term
    if total is None:
        raise CheckSkipped("no output requires a gradient")
    return total


def check_gradients(subject: Subject) -> None:
    """A backward pass reaches every trainable parameter; all gradients are finite, one is non-zero."""
    adapter = _adapter(subject)
    module = _built(subject).train()
    call = adapter.make_call(subject, 0, "cpu")
    output = adapter.run(module, call)
    scalar = output if subject.kind == "loss" else _projection(output, 1)
    if not scalar.requires_grad:
        raise subject.fail("the output does not depend differentiably on the inputs or parameters")
    module.zero_grad(set_to_none=True)
    scalar.backward()
    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    unreached = [n for n, p in params.items() if p.grad is None]
    if unreached:
        head = ", ".join(unreached[:5]) + (" ..." if len(unreached) > 5 else "")
        raise subject.fail(f"{len(unreached)} trainable parameter(s) get no gradient: {head}")
    grads = {f"{n}.grad": p.grad for n, p in params.items()}
    grads.update({f"input {k}.grad": t.grad for k, t in call.leaves.items() if t.grad is not None})
    _finite(subject, grads, "gradients")
    if grads and not any(bool((g != 0).any()) for g in grads.values()):
        raise subject.fail("every gradient is zero (nothing would train)")
    if not grads:
        raise subject.fail("no parameter and no input receives a gradient")


def _perturb(module: nn.Module, seed: int) -> None:
    g = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.is_floating_point():
                p.add_(0.05 * torch.randn(p.shape, generator=g).to(p))


def state_to_bytes(subject: Subject, module: nn.Module) -> bytes:
    """The module's state dict as safetensors bytes (what checkpoints store)."""
    from safetensors.torch import save

    state = module.state_dict()
    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise subject.fail(f"state dict entries that safetensors cannot store (not tensors): {bad[:5]}")
    return save({k: v.detach().cpu().contiguous().clone() for k, v in state.items()})


def check_state_roundtrip(subject: Subject) -> None:
    """A perturbed state dict saved with safetensors and loaded into a fresh build gives equal outputs."""
    from safetensors.torch import load

    adapter = _adapter(subject)
    source = _built(subject, seed=0)
    _perturb(source, 123)
    data = state_to_bytes(subject, source)
    target = _built(subject, seed=1)
    try:
        target.load_state_dict(load(data), strict=True)
    except RuntimeError as exc:
        raise subject.fail(f"loading the saved state into a fresh build failed: {exc}") from exc
    source.eval()
    target.eval()
    with torch.no_grad():
        a = adapter.run(source, adapter.make_call(subject, 2, "cpu"))
        b = adapter.run(target, adapter.make_call(subject, 2, "cpu"))
    problems = differences(named_tensors(a), named_tensors(b))
    if problems:
        raise subject.fail("outputs differ after a safetensors state round trip: " + "; ".join(problems[:4]))


def check_determinism(subject: Subject) -> None:
    """Two builds under one seed hold equal state and give equal outputs; calls repeat exactly."""
    adapter = _adapter(subject)
    a, b = _built(subject, seed=7), _built(subject, seed=7)
    state_a, state_b = a.state_dict(), b.state_dict()
    problems = differences(
        {k: v for k, v in state_a.items() if isinstance(v, Tensor)},
        {k: v for k, v in state_b.items() if isinstance(v, Tensor)},
    )
    if problems:
        raise subject.fail("two builds under the same seed differ: " + "; ".join(problems[:4]))
    a.eval()
    b.eval()
    outputs = []
    for module in (a, b, a):
        torch.manual_seed(11)
        with torch.no_grad():
            outputs.append(named_tensors(adapter.run(module, adapter.make_call(subject, 3, "cpu"))))
    for label, other in (("a second build", outputs[1]), ("a repeated call", outputs[2])):
        problems = differences(outputs[0], other)
        if problems:
            raise subject.fail(f"outputs of {label} differ under the same seed: " + "; ".join(problems[:4]))


def check_no_input_mutation(subject: Subject) -> None:
    """Forward and backward leave every input tensor as it was."""
    adapter = _adapter(subject)
    module = _built(subject).train()
    call = adapter.make_call(subject, 4, "cpu")
    before = snapshot(call.args[:2] if subject.kind == "loss" else call.args)
    output = adapter.run(module, call)
    scalar = output if subject.kind == "loss" else _projection(output, 1)
    if scalar.requires_grad:
        scalar.backward()
    after = snapshot(call.args[:2] if subject.kind == "loss" else call.args)
    problems = differences(before, after)
    if problems:
        raise subject.fail("inputs were modified in place: " + "; ".join(problems[:4]))


def _follows_when_perturbed(module: nn.Module, images: Tensor, first: Tensor, second: Tensor) -> bool:
    """Whether a copy of `module` with every parameter nudged (N(0, 0.01)) gives codes that differ between
    two sets of landmarks: an encoder whose landmark heads start at zero reads them once trained."""
    nudged = copy.deepcopy(module)
    g = _gen(11)
    with torch.no_grad():
        for p in nudged.parameters():
            p.add_(torch.randn(p.shape, generator=g).to(p) * 0.01)
        return bool(differences(named_tensors(nudged(images, first)), named_tensors(nudged(images, second))))


def check_encoder_landmarks(subject: Subject) -> None:
    """The encoder keeps the landmark contract: ignores landmarks unless ``reads_landmarks``; if it reads
    them, a `DataError` without them (or of the wrong shape) and codes that depend on them."""
    from facerep.common.errors import DataError

    module = _built(subject).eval()
    size = int(subject.context()["image_size"])
    g = _gen(7)
    images = torch.rand(BATCH, 3, size, size, generator=g)
    first, second = _tiny_landmarks(size, g), _tiny_landmarks(size, g)
    with torch.no_grad():
        with_first = named_tensors(module(images, first))
        with_second = named_tensors(module(images, second))
        if not getattr(module, "reads_landmarks", False):
            problems = differences(with_first, with_second) or differences(
                with_first, named_tensors(module(images))
            )
            if problems:
                raise subject.fail(
                    "reads_landmarks is False but the codes change with the landmarks: "
                    + "; ".join(problems[:4])
                )
            return
        reads = differences(with_first, with_second)
        if not reads and not _follows_when_perturbed(module, images, first, second):
            raise subject.fail(
                "reads_landmarks is True but the codes do not change with the landmarks "
                "(not even with its parameters perturbed, as training would move zero-started heads)"
            )
        for label, call in (
            ("without landmarks", lambda: module(images)),
            ("with landmarks None", lambda: module(images, None)),
            ("with (B, 5, 2) landmarks", lambda: module(images, first[:, :5])),
        ):
            try:
                call()
            except DataError:
                continue
            except Exception as exc:
                raise subject.fail(
                    f"called {label} it raised {type(exc).__name__}: {exc}; the contract's error is "
                    "facerep.common.errors.DataError (call facerep.core.interfaces.encoder_landmarks)"
                ) from exc
            raise subject.fail(
                f"reads_landmarks is True but it runs {label}; it must raise DataError "
                "(call facerep.core.interfaces.encoder_landmarks first thing in forward)"
            )
        _check_encode_landmarks(subject, module, first)


def _check_encode_landmarks(subject: Subject, module: nn.Module, landmarks: Tensor) -> None:
    """An encoder that offers ``encode_landmarks`` (landmark pre-training) returns finite (B, D)
    identity and expression codes of its declared sizes from the landmarks alone."""
    from facerep.core.interfaces import offers_encode_landmarks
    from facerep.core.types import CodeSizes

    if not offers_encode_landmarks(module):
        return
    sizes = CodeSizes.of(module.code_sizes)
    with torch.no_grad():
        codes = module.encode_landmarks(landmarks)
    if not isinstance(codes, dict):
        raise subject.fail(f"encode_landmarks returned {type(codes).__name__}, not a dict of codes")
    for name, size in (("identity", sizes.identity), ("expression", sizes.expression)):
        if name not in codes:
            raise subject.fail(f"encode_landmarks gave no {name!r} code (it gave {sorted(codes)})")
        _shape(subject, f"encode_landmarks()[{name!r}]", codes[name], (BATCH, size), torch.float32)
        _finite(subject, {name: codes[name]}, "encode_landmarks()")


def _cuda_device() -> str:
    if not torch.cuda.is_available():
        raise CheckSkipped("CUDA is not available on this machine")
    return "cuda"


def check_cuda(subject: Subject) -> None:
    """Built on CPU and moved to CUDA, the component gives the CPU outputs, on the GPU."""
    device = _cuda_device()
    adapter = _adapter(subject)
    module = _built(subject, seed=5).eval()
    with torch.no_grad():
        expected = named_tensors(adapter.run(module, adapter.make_call(subject, 6, "cpu")))
        module.to(device)
        output = adapter.run(module, adapter.make_call(subject, 6, device))
    got = named_tensors(output)
    wrong = [k for k, t in got.items() if t.device.type != "cuda"]
    if wrong:
        raise subject.fail(f"outputs left on the CPU when running on CUDA: {', '.join(wrong[:5])}")
    problems = differences(expected, got, rtol=CUDA_RTOL, atol=CUDA_ATOL)
    if problems:
        raise subject.fail("CUDA outputs differ from CPU outputs: " + "; ".join(problems[:4]))


def check_loss_without_rows(subject: Subject) -> None:
    """A loss for labelled (unlabelled) rows returns a finite 0 on a batch without such rows."""
    module = _built(subject).train()
    applies = getattr(module, "applies_to", "all")
    if applies == "all":
        raise CheckSkipped("the loss applies to every row")
    adapter = _adapter(subject)
    assert isinstance(adapter, LossKind)
    labelled_rows = 0 if applies == "labelled" else fixtures.TINY_BATCH_SIZE
    call = adapter.make_call(subject, 8, "cpu", labelled_rows=labelled_rows)
    value = adapter.run(module, call)
    _shape(subject, "loss value", value, (), torch.float32)
    value = value.detach()
    if not bool(torch.isfinite(value)) or float(value) != 0.0:
        raise subject.fail(
            f"applies to {applies} rows, a batch without any gives {float(value)!r}, expected 0"
        )


# -- face models ---------------------------------------------------------------------------------------


def _facemodel(subject: Subject) -> Any:
    return _built(subject)


def check_facemodel_arrays(subject: Subject) -> None:
    """Arrays have consistent shapes, dtypes and ranges; triangles face +z; mirror maps x to -x."""
    fm = _facemodel(subject)
    n = fm.num_vertices

    def arr(name: str, shape: tuple[int | None, ...]) -> np.ndarray:
        value = np.asarray(getattr(fm, name, None))
        if value.ndim != len(shape) or any(
            s is not None and s != v for s, v in zip(shape, value.shape, strict=True)
        ):
            raise subject.fail(f"{name} has shape {value.shape}, expected {shape} (None = any)")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise subject.fail(f"{name} holds NaN or Inf")
        return value

    template = arr("template", (n, 3))
    tris = arr("triangles", (None, 3))
    if tris.dtype.kind not in "iu" or tris.min() < 0 or tris.max() >= n:
        raise subject.fail(
            f"triangles must be integer indices in [0, {n}), got {tris.dtype} in [{tris.min()}, {tris.max()}]"
        )
    arr("mean", (n, 3))
    id_basis, id_std = arr("id_basis", (None, n, 3)), arr("id_std", (None,))
    exp_basis, exp_std = arr("exp_basis", (None, n, 3)), arr("exp_std", (None,))
    tex_basis, tex_std = arr("albedo_basis", (None, n, 3)), arr("albedo_std", (None,))
    for basis, std, name in (
        (id_basis, id_std, "id"),
        (exp_basis, exp_std, "exp"),
        (tex_basis, tex_std, "albedo"),
    ):
        if basis.shape[0] != std.shape[0]:
            raise subject.fail(f"{name} basis has {basis.shape[0]} components but {std.shape[0]} std values")
        if (std < 0).any():
            raise subject.fail(f"{name}_std has negative values")
    _range(subject, "albedo_mean", torch.as_tensor(arr("albedo_mean", (n, 3))), 0.0, 1.0)
    landmarks = arr("landmarks", (68,))
    if landmarks.min() < 0 or landmarks.max() >= n:
        raise subject.fail("landmarks must be vertex indices")
    mirror = arr("mirror", (n,))
    if mirror.min() < 0 or mirror.max() >= n:
        raise subject.fail("mirror must hold vertex indices")
    if not 0 <= int(fm.nose_tip) < n:
        raise subject.fail(f"nose_tip {fm.nose_tip} is not a vertex index")
    _range(subject, "uv", torch.as_tensor(arr("uv", (n, 2))), 0.0, 1.0)
    extent = float(np.ptp(template[:, 0])) or 1.0
    mirrored = template[mirror] * np.array([-1.0, 1.0, 1.0])
    gap = float(np.median(np.linalg.norm(mirrored - template, axis=1)))
    if gap > 0.05 * extent:
        raise subject.fail(
            f"mirror does not map x to -x: median gap {gap:.3g} mm (face width {extent:.3g} mm)"
        )
    a, b, c = (template[tris[:, i]] for i in range(3))
    normals = np.cross(b - a, c - a)
    if normals[:, 2].sum() <= 0:
        raise subject.fail(
            "triangles are not counter-clockwise seen from +z (the face points away from the camera)"
        )


def check_facemodel_linear(subject: Subject) -> None:
    """shape(0, 0) is the mean, shape is linear in the coefficients, and fit inverts it."""
    fm = _facemodel(subject)
    g = _gen(0)
    zid, zexp = torch.zeros(2, fm.num_id), torch.zeros(2, fm.num_exp)
    mean = torch.as_tensor(np.asarray(fm.mean), dtype=torch.float32)
    base = fm.shape(zid, zexp)
    _shape(subject, "shape(0, 0)", base, (2, fm.num_vertices, 3))
    if not torch.allclose(base.float(), mean.expand_as(base), atol=1e-3):
        raise subject.fail("shape(0, 0) is not the mean shape")
    a_id = torch.randn(2, fm.num_id, generator=g) * torch.as_tensor(
        np.asarray(fm.id_std), dtype=torch.float32
    )
    a_exp = torch.randn(2, fm.num_exp, generator=g) * torch.as_tensor(
        np.asarray(fm.exp_std), dtype=torch.float32
    )
    s = fm.shape(a_id, a_exp).float()
    expected = (
        mean
        + torch.einsum("bk,knc->bnc", a_id, torch.as_tensor(np.asarray(fm.id_basis), dtype=torch.float32))
        + torch.einsum("bk,knc->bnc", a_exp, torch.as_tensor(np.asarray(fm.exp_basis), dtype=torch.float32))
    )
    scale = float((expected - mean).abs().max()) + 1e-6
    if float((s - expected).abs().max()) > 1e-3 * scale + 1e-4:
        raise subject.fail(
            "shape(alpha_id, alpha_exp) is not mean + id_basis . alpha_id + exp_basis . alpha_exp"
        )
    f_id, f_exp = fm.fit(s)
    _shape(subject, "fit identity", f_id, (2, fm.num_id))
    _shape(subject, "fit expression", f_exp, (2, fm.num_exp))
    refit = fm.shape(f_id.float(), f_exp.float()).float()
    if float((refit - s).abs().max()) > 1e-2 * scale + 1e-3:
        raise subject.fail(
            f"fit does not reproduce a model shape: max error {float((refit - s).abs().max()):.3g} mm"
        )
    samples = fm.sample(3, generator=_gen(1))
    _shape(subject, "sample(3)", samples, (3, fm.num_vertices, 3))
    if not torch.equal(samples, fm.sample(3, generator=_gen(1))):
        raise subject.fail("sample is not reproducible with a seeded generator")
    _finite(subject, {"sample": samples}, "samples")


def check_facemodel_gradients(subject: Subject) -> None:
    """shape() is differentiable in the coefficients with finite, non-zero gradients."""
    fm = _facemodel(subject)
    a_id = torch.randn(2, fm.num_id, generator=_gen(2)).requires_grad_(True)
    a_exp = torch.randn(2, fm.num_exp, generator=_gen(3)).requires_grad_(True)
    before = snapshot((a_id, a_exp))
    out = fm.shape(a_id, a_exp)
    (out * torch.randn(out.shape, generator=_gen(4))).sum().backward()
    grads = {"alpha_id.grad": a_id.grad, "alpha_exp.grad": a_exp.grad}
    if any(g is None for g in grads.values()):
        raise subject.fail("shape() does not propagate gradients to its coefficients")
    _finite(subject, grads, "gradients")
    problems = differences(before, snapshot((a_id, a_exp)))
    if problems:
        raise subject.fail("shape() modified its inputs: " + "; ".join(problems))


def check_facemodel_determinism(subject: Subject) -> None:
    """Two builds of one node are the same model (fingerprint and arrays)."""
    a, b = _built(subject, seed=1), _built(subject, seed=2)
    if a.fingerprint() != b.fingerprint():
        raise subject.fail("two builds of the same node have different fingerprints")
    for name in ("mean", "id_basis", "exp_basis", "albedo_mean", "landmarks", "mirror", "uv"):
        if not np.array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name))):
            raise subject.fail(f"two builds of the same node differ in {name}")


def check_facemodel_cuda(subject: Subject) -> None:
    """shape() on CUDA coefficients gives the CPU result, on the GPU."""
    device = _cuda_device()
    fm = _facemodel(subject)
    a_id, a_exp = torch.randn(2, fm.num_id, generator=_gen(2)), torch.randn(2, fm.num_exp, generator=_gen(3))
    cpu = fm.shape(a_id, a_exp)
    gpu = fm.shape(a_id.to(device), a_exp.to(device))
    if gpu.device.type != "cuda":
        raise subject.fail("shape() of CUDA coefficients returned a CPU tensor")
    if not torch.allclose(cpu, gpu.cpu(), rtol=CUDA_RTOL, atol=CUDA_ATOL):
        raise subject.fail("shape() on CUDA differs from the CPU result")


# -- datasets ------------------------------------------------------------------------------------------


def _dataset(subject: Subject) -> Any:
    node = dict(subject.node)
    if node.get("root") == "builtin":
        from facerep.world.cache import ensure_world, source_root

        try:
            node["root"] = str(
                source_root(ensure_world("tiny", 0, progress=False), node["type"].split(":")[-1])
            )
        except KeyError as exc:
            raise CheckSkipped(f"the synthetic world has no data for this dataset ({exc})") from None
    elif "root" in subject.component.recipe_parameters() and "root" not in node:
        raise CheckSkipped("dataset checks need a 'root' in the node (or 'root: builtin')")
    sub = Subject(subject.kind, node, subject.registry, subject.context_overrides)
    sub._context = subject.context()
    return _built(sub)


def _check_sample(subject: Subject, dataset: Any, index: int, size: int) -> dict[str, Any]:
    sample = dataset[index]
    if not isinstance(sample, dict):
        raise subject.fail(f"dataset[{index}] should be a dict, got {type(sample).__name__}")
    missing = [k for k in ("image", "mask", "landmarks", "identity", "sample_id") if k not in sample]
    if missing:
        raise subject.fail(f"dataset[{index}] lacks {missing}")
    _shape(subject, f"dataset[{index}]['image']", sample["image"], (3, size, size), torch.float32)
    _range(subject, f"dataset[{index}]['image']", sample["image"], 0.0, 1.0)
    _shape(subject, f"dataset[{index}]['mask']", sample["mask"], (1, size, size))
    _shape(subject, f"dataset[{index}]['landmarks']", sample["landmarks"], (68, 2))
    _finite(subject, {"landmarks": sample["landmarks"], "image": sample["image"]}, f"dataset[{index}]")
    if not isinstance(sample["sample_id"], str):
        raise subject.fail(f"dataset[{index}]['sample_id'] should be a str")
    if int(sample["identity"]) != int(dataset.identities[index]):
        raise subject.fail(f"dataset[{index}]['identity'] disagrees with identities[{index}]")
    if getattr(dataset, "labelled", False):
        for key in ("id_params", "exp_params"):
            value = torch.as_tensor(sample.get(key)) if sample.get(key) is not None else None
            if value is None or value.dim() != 1:
                raise subject.fail(f"a labelled dataset's samples need a 1-D {key!r}")
    return sample


def check_dataset_samples(subject: Subject) -> None:
    """Samples have the documented keys, shapes and ranges; identities cover every sample."""
    dataset = _dataset(subject)
    size = int(subject.context()["image_size"])
    if len(dataset) == 0:
        raise subject.fail("the dataset is empty")
    if len(dataset.identities) != len(dataset):
        raise subject.fail(f"identities has {len(dataset.identities)} entries for {len(dataset)} samples")
    for index in sorted({0, len(dataset) - 1}):
        _check_sample(subject, dataset, index, size)


def check_dataset_determinism(subject: Subject) -> None:
    """Reading a sample twice (and from a second build) gives the same tensors."""
    a, b = _dataset(subject), _dataset(subject)
    if len(a) != len(b) or list(a.identities) != list(b.identities):
        raise subject.fail("two builds of the same node index different samples")
    first = named_tensors(a[0])
    for label, other in (("a repeated read", named_tensors(a[0])), ("a second build", named_tensors(b[0]))):
        problems = differences(first, other)
        if problems:
            raise subject.fail(f"{label} of sample 0 differs: " + "; ".join(problems[:4]))


# -- optimizers ----------------------------------------------------------------------------------------


def _problem(seed: int = 0) -> tuple[nn.Module, Callable[[], Tensor]]:
    g = _gen(seed)
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.randn(3, 4, generator=g))
        model.bias.copy_(torch.randn(3, generator=g))
    x, y = torch.randn(16, 4, generator=g), torch.randn(16, 3, generator=g)
    return model, lambda: ((model(x) - y) ** 2).mean()


def _optimizer(subject: Subject, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    try:
        return subject.registry.build(subject.kind, subject.node, {"params": params})
    except Exception as exc:
        raise subject.fail(f"building from {subject.node!r} failed: {type(exc).__name__}: {exc}") from exc


def _steps(opt: torch.optim.Optimizer, loss_fn: Callable[[], Tensor], n: int) -> float:
    value = float("nan")
    for _ in range(n):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        value = float(loss.detach())
    return value


def check_optimizer_build(subject: Subject) -> None:
    """The node builds, given parameters, into a torch.optim.Optimizer over exactly those parameters."""
    model, _ = _problem()
    opt = _optimizer(subject, list(model.parameters()))
    if not isinstance(opt, torch.optim.Optimizer):
        raise subject.fail(f"built a {type(opt).__name__}, not a torch.optim.Optimizer")
    held = {id(p) for group in opt.param_groups for p in group["params"]}
    if held != {id(p) for p in model.parameters()}:
        raise subject.fail("the optimizer does not hold exactly the parameters it was given")


def check_optimizer_descent(subject: Subject) -> None:
    """Steps on a least-squares problem lower the loss and keep parameters finite."""
    model, loss_fn = _problem()
    opt = _optimizer(subject, list(model.parameters()))
    with torch.no_grad():
        start = float(loss_fn())
    _steps(opt, loss_fn, 30)
    with torch.no_grad():
        end = float(loss_fn())
    _finite(subject, dict(model.named_parameters()), "parameters after 30 steps")
    if not end < start:
        raise subject.fail(f"30 steps did not lower a least-squares loss ({start:.6g} -> {end:.6g})")


def check_optimizer_state_roundtrip(subject: Subject) -> None:
    """Optimizer state saved as checkpoints do (safetensors + JSON) resumes to identical parameters."""
    from safetensors.torch import load, save

    from facerep.train.checkpoint import CheckpointData, optimizer_from_tensors, optimizer_to_tensors

    model, loss_fn = _problem()
    opt = _optimizer(subject, list(model.parameters()))
    _steps(opt, loss_fn, 3)
    tensors, meta = optimizer_to_tensors(opt, "optim")
    tensors = load(save(tensors))
    meta = json.loads(json.dumps(meta))
    twin, twin_loss = _problem()
    twin.load_state_dict(model.state_dict())
    twin_opt = _optimizer(subject, list(twin.parameters()))
    try:
        optimizer_from_tensors(twin_opt, CheckpointData(tensors), "optim", meta)
    except Exception as exc:
        raise subject.fail(
            f"restoring the saved optimizer state failed: {type(exc).__name__}: {exc}"
        ) from exc
    _steps(opt, loss_fn, 2)
    _steps(twin_opt, twin_loss, 2)
    problems = differences(dict(model.named_parameters()), dict(twin.named_parameters()))
    if problems:
        raise subject.fail("a resumed optimizer takes different steps: " + "; ".join(problems))


def check_optimizer_determinism(subject: Subject) -> None:
    """Two optimizers from one node take identical steps on identical problems."""
    results = []
    for _ in range(2):
        model, loss_fn = _problem()
        _steps(_optimizer(subject, list(model.parameters())), loss_fn, 5)
        results.append(dict(model.named_parameters()))
    problems = differences(*results)
    if problems:
        raise subject.fail("two runs differ: " + "; ".join(problems))


# -- face detectors ------------------------------------------------------------------------------------

#: The context entry that gives face-detector checks a photo with at least one face ((H, W, 3) uint8 RGB).
FACE_IMAGE = "face_image"


def _blank_images() -> dict[str, np.ndarray]:
    ramp = np.linspace(0, 255, 160, dtype=np.float64)
    gradient = np.broadcast_to(ramp[None, :, None], (120, 160, 3)).round().astype(np.uint8)
    return {"a flat grey image": np.full((120, 160, 3), 128, np.uint8), "a smooth gradient": gradient}


def check_detector_no_face(subject: Subject) -> None:
    """Images without a face (flat grey, a smooth gradient) give an empty list."""
    detector = _built(subject)
    for what, image in _blank_images().items():
        found = detector.detect(image)
        if not isinstance(found, list):
            raise subject.fail(f"detect() should return a list, got {type(found).__name__}")
        if found:
            raise subject.fail(f"found {len(found)} face(s) in {what}")


def check_detector_bad_input(subject: Subject) -> None:
    """Anything but an (H, W, 3) uint8 array is a ValueError (a float image, greyscale, RGBA)."""
    detector = _built(subject)
    bad = {
        "a float image": np.full((64, 64, 3), 0.5, np.float32),
        "a greyscale image": np.full((64, 64), 128, np.uint8),
        "an RGBA image": np.full((64, 64, 4), 128, np.uint8),
    }
    for what, image in bad.items():
        try:
            detector.detect(image)
        except ValueError:
            continue
        raise subject.fail(f"detect() accepted {what}; it should raise ValueError")


def _check_face(subject: Subject, k: int, face: Any, height: int, width: int) -> None:
    if not isinstance(face, iface.DetectedFace):
        raise subject.fail(f"detection {k} is a {type(face).__name__}, not a DetectedFace")
    box = np.asarray(face.box)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise subject.fail(f"detection {k}: box should be 4 finite numbers, got {box!r}")
    if not (box[0] < box[2] and box[1] < box[3]):
        raise subject.fail(f"detection {k}: box {box.tolist()} is not [x0, y0, x1, y1] with x0 < x1, y0 < y1")
    if box[2] <= 0 or box[3] <= 0 or box[0] >= width or box[1] >= height:
        raise subject.fail(f"detection {k}: box {box.tolist()} lies outside the {width}x{height} image")
    marks = face.landmarks
    if not isinstance(marks, np.ndarray) or marks.shape != (68, 2) or marks.dtype != np.float32:
        got = getattr(marks, "shape", None), getattr(marks, "dtype", type(marks).__name__)
        raise subject.fail(f"detection {k}: landmarks should be a (68, 2) float32 array, got {got}")
    if not np.isfinite(marks).all():
        raise subject.fail(f"detection {k}: landmarks are not finite")
    side = max(box[2] - box[0], box[3] - box[1])
    centre = marks.mean(axis=0)
    if not (
        box[0] - side / 2 <= centre[0] <= box[2] + side / 2
        and box[1] - side / 2 <= centre[1] <= box[3] + side / 2
    ):
        raise subject.fail(
            f"detection {k}: the landmarks' centre {centre.tolist()} is far from its box {box.tolist()}"
        )
    if not math.isfinite(float(face.score)):
        raise subject.fail(f"detection {k}: score {face.score!r} is not finite")


def check_detector_faces(subject: Subject) -> None:
    """On a photo with a face (context ``face_image``): DetectedFace records with a box, 68 float32
    landmarks near it and a finite score, largest first; the input is left unchanged; a repeat is equal."""
    image = subject.context_overrides.get(FACE_IMAGE)
    if image is None:
        raise CheckSkipped(f"give a photo with a face as context {FACE_IMAGE!r} ((H, W, 3) uint8 RGB)")
    image = np.asarray(image)
    before = image.copy()
    detector = _built(subject)
    found = detector.detect(image)
    if not isinstance(found, list) or not found:
        raise subject.fail(f"found no face in the {FACE_IMAGE!r} photo")
    for k, face in enumerate(found):
        _check_face(subject, k, face, image.shape[0], image.shape[1])
    areas = [face.area for face in found]
    if areas != sorted(areas, reverse=True):
        raise subject.fail(f"detections are not largest first (box areas {areas})")
    if not np.array_equal(image, before):
        raise subject.fail("detect() changed its input image")
    again = detector.detect(image)
    same = len(again) == len(found) and all(
        np.array_equal(a.box, b.box) and np.array_equal(a.landmarks, b.landmarks)
        for a, b in zip(found, again, strict=False)
    )
    if not same:
        raise subject.fail("a repeated detect() on the same image gave different faces")


# -- the table of checks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A named contract check: ``fn(subject)`` raises `ContractError` or `CheckSkipped`."""

    name: str
    fn: Callable[[Subject], None]

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0] if self.fn.__doc__ else ""

    def __call__(self, subject: Subject) -> None:
        """Run the check; the caller's torch RNG state is restored afterwards (checks seed torch)."""
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            self.fn(subject)


_NETWORK_CHECKS = [
    Check("build", check_build),
    Check("outputs", check_outputs),
    Check("gradients", check_gradients),
    Check("state_roundtrip", check_state_roundtrip),
    Check("determinism", check_determinism),
    Check("no_input_mutation", check_no_input_mutation),
    Check("cuda", check_cuda),
]

#: The checks each kind runs, in order. Kinds not listed (third-party kinds) run ``build`` only.
KIND_CHECKS: dict[str, list[Check]] = {
    **{kind: list(_NETWORK_CHECKS) for kind in NETWORK_KINDS},
    "facemodel": [
        Check("build", check_build),
        Check("arrays", check_facemodel_arrays),
        Check("linear_model", check_facemodel_linear),
        Check("gradients", check_facemodel_gradients),
        Check("determinism", check_facemodel_determinism),
        Check("cuda", check_facemodel_cuda),
    ],
    "dataset": [
        Check("samples", check_dataset_samples),
        Check("determinism", check_dataset_determinism),
    ],
    "optimizer": [
        Check("build", check_optimizer_build),
        Check("descent", check_optimizer_descent),
        Check("state_roundtrip", check_optimizer_state_roundtrip),
        Check("determinism", check_optimizer_determinism),
    ],
    "benchmark": [Check("build", check_build), Check("run_signature", check_benchmark_run)],
    "shader": [Check("build", check_build), Check("renders", check_shader_renders)],
    "face_detector": [
        Check("build", check_build),
        Check("bad_input", check_detector_bad_input),
        Check("no_face", check_detector_no_face),
        Check("faces", check_detector_faces),
    ],
}
KIND_CHECKS["loss"].insert(3, Check("without_rows", check_loss_without_rows))
KIND_CHECKS["encoder"].insert(2, Check("landmarks", check_encoder_landmarks))


def checks_for(kind: str) -> list[Check]:
    """The checks a component of `kind` runs."""
    return list(KIND_CHECKS.get(kind, [Check("build", check_build)]))


__all__ = [
    "KIND_CHECKS",
    "NETWORK_KINDS",
    "Call",
    "Check",
    "NetworkKind",
    "checks_for",
    "state_to_bytes",
]
