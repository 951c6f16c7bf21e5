"""facerep.testing: the contract kit catches deliberately broken components, and its pytest side works."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from facerep.core.interfaces import Critic, Encoder, Loss, ShapeDecoder
from facerep.core.registry import Component, Registry, hookimpl
from facerep.core.types import Batch, Codes
from facerep.testing import (
    CheckResult,
    ContractError,
    assert_component,
    check_component,
    parametrize_with_checks,
    tiny_face_model,
)


class _Decoder(ShapeDecoder):
    """A small correct decoder: mean + linear(code); subclasses break one rule each."""

    def __init__(self, face_model, code_sizes=None) -> None:  # noqa: ANN001
        super().__init__()
        sizes = code_sizes or {"identity": 128, "expression": 64}
        self.n = face_model.num_vertices
        self.fc = nn.Linear(sizes["identity"] + sizes["expression"], self.n * 3)
        self.register_buffer("mean", torch.as_tensor(np.asarray(face_model.mean), dtype=torch.float32))

    def offsets(self, identity: Tensor, expression: Tensor) -> Tensor:
        return self.fc(torch.cat([identity, expression], 1)).view(-1, self.n, 3)

    def forward(self, identity: Tensor, expression: Tensor) -> Tensor:
        return self.mean + self.offsets(identity, expression)


class WrongShape(_Decoder):
    def forward(self, identity: Tensor, expression: Tensor) -> Tensor:
        return super().forward(identity, expression)[:, :-1]


class NaNGradient(_Decoder):
    def forward(self, identity: Tensor, expression: Tensor) -> Tensor:
        y = self.offsets(identity, expression)
        return self.mean + y + 0.0 * torch.sqrt(y - y)  # finite output, NaN gradient (0 * inf)


class MutatesInput(_Decoder):
    def forward(self, identity: Tensor, expression: Tensor) -> Tensor:
        with torch.no_grad():
            identity.clamp_(-1.0, 1.0)
        return super().forward(identity, expression)


class UnseededInit(_Decoder):
    def __init__(self, face_model, code_sizes=None) -> None:  # noqa: ANN001
        super().__init__(face_model, code_sizes)
        rng = np.random.default_rng()  # ignores torch's seed
        with torch.no_grad():
            self.fc.bias.copy_(torch.as_tensor(rng.normal(size=self.fc.bias.shape), dtype=torch.float32))


class HiddenState(_Decoder):
    def __init__(self, face_model, code_sizes=None) -> None:  # noqa: ANN001
        super().__init__(face_model, code_sizes)
        self.secret = torch.randn(self.n, 3)  # neither parameter nor buffer: lost by state dicts

    def forward(self, identity: Tensor, expression: Tensor) -> Tensor:
        return super().forward(identity, expression) + self.secret


class UnusedParameter(_Decoder):
    def __init__(self, face_model, code_sizes=None) -> None:  # noqa: ANN001
        super().__init__(face_model, code_sizes)
        self.forgotten = nn.Parameter(torch.zeros(3))


class BatchNormCritic(Critic):
    def __init__(self, face_model) -> None:  # noqa: ANN001
        super().__init__()
        self.fc = nn.Linear(face_model.num_vertices * 3, 4)
        self.norm = nn.BatchNorm1d(4)
        self.out = nn.Linear(4, 1)

    def forward(self, vertices: Tensor) -> Tensor:
        return self.out(self.norm(self.fc(vertices.flatten(1)))).squeeze(1)


class VectorLoss(Loss):
    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)

    def forward(self, batch: Batch, recon, context) -> Tensor:  # noqa: ANN001
        return (recon.vertices**2).mean(dim=(1, 2))  # (B,), not a scalar


class NoSkipsEncoder(Encoder):
    """Declares skip channels it never returns."""

    def __init__(self) -> None:
        super().__init__()
        self.code_sizes = {"identity": 8, "expression": 4, "pose": 6, "light": 27}
        self.skip_channels = [3]
        self.fc = nn.Linear(3, 8 + 4 + 6 + 27)

    def forward(self, images: Tensor, landmarks: Tensor | None = None) -> Codes:
        h = self.fc(images.mean(dim=(2, 3)))
        return Codes(h[:, :8], h[:, 8:12], h[:, 12:18], h[:, 18:])


class _BrokenPlugin:
    @hookimpl
    def facerep_components(self) -> list[Component]:
        decoders = {
            "good": _Decoder,
            "wrong_shape": WrongShape,
            "nan_gradient": NaNGradient,
            "mutates_input": MutatesInput,
            "unseeded": UnseededInit,
            "hidden_state": HiddenState,
            "unused_parameter": UnusedParameter,
        }
        return [
            *(Component("shape_decoder", name, cls, "test") for name, cls in decoders.items()),
            Component("critic", "batchnorm", BatchNormCritic, "test"),
            Component("loss", "vector", VectorLoss, "test"),
            Component("encoder", "no_skips", NoSkipsEncoder, "test"),
        ]


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = Registry(entry_points=False)
    reg.register(_BrokenPlugin(), name="broken", package="broken-test-plugins", version="0.0")
    return reg


def _run(registry: Registry, kind: str, name: str) -> dict[str, CheckResult]:
    context = {"face_model": tiny_face_model()}
    return {r.check: r for r in check_component(kind, name, registry=registry, context=context)}


def _failed(results: dict[str, CheckResult]) -> set[str]:
    return {name for name, r in results.items() if r.failed}


def test_a_correct_component_passes_every_check(registry: Registry) -> None:
    results = _run(registry, "shape_decoder", "good")
    assert _failed(results) == set(), [str(r) for r in results.values()]
    assert {"build", "outputs", "gradients", "state_roundtrip", "determinism", "no_input_mutation"} <= {
        n for n, r in results.items() if r.passed
    }
    assert results["cuda"].status == ("skipped" if not torch.cuda.is_available() else "passed")


def test_wrong_output_shape_fails_the_output_check(registry: Registry) -> None:
    results = _run(registry, "shape_decoder", "wrong_shape")
    assert "outputs" in _failed(results)
    n = tiny_face_model().num_vertices
    assert (
        f"({2}, {n - 1}, 3)" in results["outputs"].message
        and f"expected (2, {n}, 3)" in results["outputs"].message
    )
    assert "shape_decoder:wrong_shape" in results["outputs"].message


def test_nan_gradient_fails_the_gradient_check_only(registry: Registry) -> None:
    results = _run(registry, "shape_decoder", "nan_gradient")
    assert results["outputs"].passed  # the output itself is finite
    assert results["gradients"].failed
    assert "not finite" in results["gradients"].message and "fc.weight.grad" in results["gradients"].message


def test_in_place_input_change_is_caught(registry: Registry) -> None:
    results = _run(registry, "shape_decoder", "mutates_input")
    assert _failed(results) == {"no_input_mutation"}
    assert "input[0]" in results["no_input_mutation"].message


def test_seed_independent_initialisation_is_caught(registry: Registry) -> None:
    results = _run(registry, "shape_decoder", "unseeded")
    assert "determinism" in _failed(results)
    assert "fc.bias" in results["determinism"].message


def test_state_outside_the_state_dict_is_caught(registry: Registry) -> None:
    results = _run(registry, "shape_decoder", "hidden_state")
    assert "state_roundtrip" in _failed(results)
    assert "round trip" in results["state_roundtrip"].message


def test_parameters_without_gradient_are_named(registry: Registry) -> None:
    results = _run(registry, "shape_decoder", "unused_parameter")
    assert _failed(results) == {"gradients"}
    assert "forgotten" in results["gradients"].message


def test_batch_statistics_in_a_critic_are_caught(registry: Registry) -> None:
    results = _run(registry, "critic", "batchnorm")
    assert "outputs" in _failed(results)
    assert "batch statistics" in results["outputs"].message


def test_non_scalar_loss_and_missing_skips_fail(registry: Registry) -> None:
    loss = _run(registry, "loss", "vector")
    assert "outputs" in _failed(loss) and "loss value has shape (4,)" in loss["outputs"].message
    encoder = _run(registry, "encoder", "no_skips")
    assert "outputs" in _failed(encoder) and "skip_channels" in encoder["outputs"].message


def test_assert_component_raises_listing_failures(registry: Registry) -> None:
    with pytest.raises(ContractError, match="gradients: failed"):
        assert_component(
            "shape_decoder", "nan_gradient", registry=registry, context={"face_model": tiny_face_model()}
        )


def test_unknown_check_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown check"):
        check_component("optimizer", "adam", checks=["bogus"])


def test_build_errors_are_reported_not_raised(registry: Registry) -> None:
    results = check_component("optimizer", {"type": "adam", "lr": "fast"}, checks=["descent"])
    assert results[0].failed


@parametrize_with_checks([("optimizer", "sgd"), ("loss", {"type": "light_regularizer", "weight": 0.5})])
def test_parametrize_with_checks(subject, check) -> None:  # noqa: ANN001 - the kit's objects
    check(subject)


def test_parametrize_ids_name_component_and_check() -> None:
    mark = parametrize_with_checks([("optimizer", "adam")], checks=["descent", "determinism"])
    assert mark.kwargs["ids"] == ["optimizer:adam-descent", "optimizer:adam-determinism"]


def test_pytest_plugin_fixtures(tiny_face_batch, tiny_face_model, tiny_reconstruction, facerep_check) -> None:  # noqa: ANN001
    assert tiny_face_batch.images.shape == (4, 3, 32, 32)
    assert tiny_face_batch.labelled.tolist() == [False, False, True, True]
    assert tiny_face_batch.pair_index.tolist() == [-1, -1, 3, 2]
    assert 500 <= tiny_face_model.num_vertices <= 700
    assert tiny_reconstruction.vertices.shape == (4, tiny_face_model.num_vertices, 3)
    assert tiny_reconstruction.vertices.requires_grad
    # landmarks are the face model's projected landmark vertices: inside the image
    assert bool((tiny_face_batch.landmarks > 0).all() and (tiny_face_batch.landmarks < 32).all())
    results = facerep_check("optimizer", "adamw")
    assert all(r.passed for r in results)


def test_pytest_option_adds_contract_tests(tmp_path) -> None:  # noqa: ANN001 - pytest's tmp_path
    import subprocess
    import sys

    (tmp_path / "test_nothing.py").write_text("def test_placeholder():\n    pass\n")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    command += ["--facerep-component", "optimizer:sgd", "-rA"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "optimizer:sgd-descent" in done.stdout and "5 passed" in done.stdout


def test_plugins_check_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from facerep.cli.app import main

    monkeypatch.setenv("COLUMNS", "200")
    main(["plugins", "check", "sgd", "--kind", "optimizer"])
    out = capsys.readouterr().out
    assert "optimizer sgd (facerep" in out and "state_roundtrip" in out and "all checks passed" in out
    with pytest.raises(SystemExit) as info:
        main(["plugins", "check", "sgd", "--set", "lr=-1.0", "--check", "descent"])
    assert info.value.code == 1
    assert "1 check(s) failed" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["plugins", "check", "sgdd"])
    assert info.value.code == 2
