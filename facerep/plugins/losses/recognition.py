"""Face recognition loss (paper eq. 4): softmax identity classification + lambda_center x centre loss.

L_recog = L_soft + lambda_center L_center, on every row of a hybrid batch (identity labels of the
photo collections and of the 3DMM-labelled source live in one label space, the sources offset so they
stay disjoint). The classifier is a linear head over the identity code; the centre loss (Wen et al.
2016, "A discriminative feature learning approach for deep face recognition") pulls each identity code
towards its class centre.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from facerep.common.errors import FacerepError
from facerep.core.interfaces import Loss, LossContext
from facerep.core.registry import Component, hookimpl
from facerep.core.types import Batch, CodeSizes, Reconstruction
from facerep.nn.loss_utils import check_finite, full_precision, process_mean, zero_like_graph

NAME = "recognition"


class RecognitionLoss(Loss):
    """Softmax cross-entropy over identities + ``center_weight`` x centre loss (Wen et al. 2016).

    Inputs: ``recon.codes.identity`` (B, D_id) and ``batch.identity`` (B,) long class labels in
    [0, num_identities); rows with a negative label (unknown identity) are ignored.

    - L_soft = mean over rows of -log softmax(W c + b)[y] (the head ``classifier`` is an
      ``nn.Linear(D_id, num_identities)``, trained with the model: the engine must optimise this
      loss's parameters).
    - L_center = mean over rows of 1/2 ||c - centre[y]||^2 (Wen et al. eq. 2, averaged over the batch
      instead of summed, so the value does not grow with the batch size).
    - Centres: with ``learn_centers=False`` (default) they are a buffer updated after each forward pass
      in training mode as in Wen et al. (eq. 4): centre_j <- centre_j - alpha * sum_i [y_i = j]
      (centre_j - c_i) / (1 + sum_i [y_i = j]), with the codes detached; the loss sees the centres of
      before the update (under torch.distributed the update uses the sums over all processes). With
      ``learn_centers=True`` they are a parameter trained by gradient descent.
      Centres start at 0.

    Returns the unweighted scalar L_soft + center_weight * L_center.
    """

    applies_to = "all"

    def __init__(
        self,
        weight: float = 1.0,
        *,
        num_identities: int,
        code_sizes: CodeSizes,
        center_weight: float = 0.01,
        center_alpha: float = 0.5,
        learn_centers: bool = False,
    ) -> None:
        super().__init__()
        num_identities = int(num_identities)
        if num_identities < 1:
            raise FacerepError(f"loss {NAME!r} needs at least one identity class, got {num_identities}")
        if not 0.0 <= float(center_alpha) <= 1.0:
            raise FacerepError(f"loss {NAME!r}: center_alpha must lie in [0, 1], got {center_alpha}")
        self.weight = float(weight)
        self.num_identities = num_identities
        self.code_dim = CodeSizes.of(code_sizes).identity
        self.center_weight = float(center_weight)
        self.center_alpha = float(center_alpha)
        self.learn_centers = bool(learn_centers)
        self.classifier = nn.Linear(self.code_dim, num_identities)
        centers = torch.zeros(num_identities, self.code_dim)
        if self.learn_centers:
            self.centers = nn.Parameter(centers)
        else:
            self.register_buffer("centers", centers)

    def forward(self, batch: Batch, recon: Reconstruction, context: LossContext) -> Tensor:
        """(B, D_id) identity codes, (B,) labels -> scalar (unweighted)."""
        codes = full_precision(recon.codes.identity)
        labels = batch.identity.to(device=codes.device, dtype=torch.long)
        if labels.shape[0] != codes.shape[0]:
            raise FacerepError(
                f"loss {NAME!r}: {labels.shape[0]} identity labels for {codes.shape[0]} identity codes"
            )
        known = labels >= 0
        if not bool(known.any()):
            process_mean(codes.new_zeros(()))  # other processes all-reduce their row counts
            if self._updates_centers() and dist.is_available() and dist.is_initialized():
                self._update_centers(codes.detach()[:0], labels[:0])  # and their centre updates
            return zero_like_graph(codes, self.classifier.weight)
        x = codes[known]
        y = labels[known]
        top = int(y.max())
        if top >= self.num_identities:
            raise FacerepError(
                f"loss {NAME!r}: identity label {top} is out of range for {self.num_identities} identity "
                "classes (num_identities comes from the training sources)"
            )
        rows = process_mean(x.new_tensor(float(x.shape[0])))  # a mean over the global batch's rows
        soft = F.cross_entropy(self.classifier(x), y, reduction="sum") / rows
        centers = self.centers[y]
        center = 0.5 * (x - centers).pow(2).sum() / rows
        value = soft + self.center_weight * center
        value = check_finite(NAME, value, {"identity code": codes, "centres": self.centers}, batch.sample_ids)
        if self._updates_centers():
            self._update_centers(x.detach(), y)
        return value

    def _updates_centers(self) -> bool:
        return self.training and not self.learn_centers and self.center_alpha > 0

    @torch.no_grad()
    def _update_centers(self, x: Tensor, y: Tensor) -> None:
        """Wen et al. eq. 4: move the centres of the classes present in the batch towards their codes.

        Under torch.distributed the per-class sums and counts are all-reduced first, so every process
        applies the same update computed from the global batch and the centres stay identical.
        """
        diff = self.centers[y] - x  # (m, D)
        if dist.is_available() and dist.is_initialized():
            delta = torch.zeros_like(self.centers, dtype=x.dtype)
            delta.index_add_(0, y, diff)
            count = torch.bincount(y, minlength=self.num_identities).to(x.dtype)
            dist.all_reduce(delta)
            dist.all_reduce(count)
            present = torch.nonzero(count).reshape(-1)
            step = delta[present] / (1.0 + count[present])[:, None]
            self.centers.index_add_(0, present, (-self.center_alpha * step).to(self.centers.dtype))
            return
        classes, inverse = torch.unique(y, return_inverse=True)
        delta = torch.zeros(classes.shape[0], x.shape[1], dtype=x.dtype, device=x.device)
        delta.index_add_(0, inverse, diff)
        count = torch.bincount(inverse, minlength=classes.shape[0]).to(x.dtype)
        step = delta / (1.0 + count)[:, None]
        self.centers.index_add_(0, classes, (-self.center_alpha * step).to(self.centers.dtype))


@hookimpl
def facerep_components() -> list[Component]:
    return [
        Component(
            "loss",
            NAME,
            RecognitionLoss,
            "identity softmax + centre loss (eq. 4, Wen et al. 2016), all rows",
        )
    ]
