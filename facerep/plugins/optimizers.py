"""Optimizer plugins: thin, documented wrappers of torch.optim so recipes can name them."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from facerep.core.registry import Component, hookimpl


def adam(
    params: Iterable[torch.nn.Parameter],
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    foreach: bool = True,
) -> torch.optim.Optimizer:
    """Adam (the paper's model optimiser, lr 1e-4). ``foreach`` batches the update (faster on CPU too)."""
    return torch.optim.Adam(
        params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach
    )


def adamw(
    params: Iterable[torch.nn.Parameter],
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    foreach: bool = True,
) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay)."""
    return torch.optim.AdamW(
        params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach
    )


def rmsprop(
    params: Iterable[torch.nn.Parameter],
    lr: float = 5e-5,
    alpha: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    foreach: bool = True,
) -> torch.optim.Optimizer:
    """RMSprop (the paper's critic optimiser, lr 5e-5)."""
    return torch.optim.RMSprop(
        params, lr=lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay, foreach=foreach
    )


def sgd(
    params: Iterable[torch.nn.Parameter],
    lr: float = 1e-3,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    foreach: bool = True,
) -> torch.optim.Optimizer:
    """Stochastic gradient descent with momentum."""
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, foreach=foreach
    )


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component("optimizer", "adam", adam, "Adam (paper: model, lr 1e-4)"),
        Component("optimizer", "adamw", adamw, "AdamW, decoupled weight decay"),
        Component("optimizer", "rmsprop", rmsprop, "RMSprop (paper: critic, lr 5e-5)"),
        Component("optimizer", "sgd", sgd, "SGD with momentum"),
    ]
