"""Online hard example mining (OHEM) cross-entropy of DDR-SAPC-U.

``seeds/003_fd74fd3af07e65b1.txt`` Sec. III-B trains with "OHEM CE loss" without giving
its parameters. This follows the DDRNet/HRNet formulation the paper builds on: a pixel is
*hard* when the softmax probability of its true class is below ``probability_threshold``
(equivalently its cross-entropy is above ``-log(probability_threshold)``); the loss is the
mean cross-entropy over the hard pixels, and if fewer than ``min_kept`` pixels are hard
the ``min_kept`` pixels with the highest loss are kept instead. Written here because
neither MONAI nor torch ships an OHEM loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fluoro_training.losses._common import check_prediction, validate_class_weights


class OhemCrossEntropyLoss(nn.Module):
    """OHEM softmax cross-entropy over a batch (seed 003 Sec. III-B).

    Parameters
    ----------
    probability_threshold : float
        In ``(0, 1]``; pixels whose true-class probability is below it are hard.
        DDRNet default: 0.7.
    min_kept : int
        Minimum number of pixels kept per batch (>= 0), hardest first.
    ignore_index : int
        Label value excluded from the loss (e.g. outside the collimated field).
    class_weights : sequence of float, optional
        One cross-entropy weight per channel; the kept pixels are averaged with these
        weights (``sum w_y * ce / sum w_y``).

    Notes
    -----
    ``forward(prediction, target)``: ``prediction`` logits ``(B, C, H, W)`` with ``C >= 2``
    (softmax applied inside, once); ``target`` integer labels ``(B, H, W)`` or
    ``(B, 1, H, W)``.
    """

    def __init__(
        self,
        probability_threshold: float = 0.7,
        min_kept: int = 100_000,
        ignore_index: int = 255,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 < float(probability_threshold) <= 1.0:
            raise ValueError(f"probability_threshold={probability_threshold} must be in (0, 1]")
        if not isinstance(min_kept, int) or min_kept < 0:
            raise ValueError(f"min_kept={min_kept} must be an int >= 0")
        self.probability_threshold = float(probability_threshold)
        self.min_kept = min_kept
        self.ignore_index = int(ignore_index)
        self.class_weights = validate_class_weights(class_weights)

    def _labels(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_prediction(prediction, "softmax")
        if not isinstance(target, torch.Tensor):
            raise TypeError(
                f"target is a {type(target).__name__}; expected a torch.Tensor label map"
            )
        labels = target[:, 0] if target.ndim == 4 and target.shape[1] == 1 else target
        expected = (prediction.shape[0], *prediction.shape[2:])
        if tuple(labels.shape) != expected:
            raise ValueError(
                f"target has shape {tuple(target.shape)}; expected a label map {expected} or (B, 1, H, W)"
            )
        labels = labels.long()
        valid = labels != self.ignore_index
        if bool(valid.any()):
            low, high = int(labels[valid].min()), int(labels[valid].max())
            if low < 0 or high >= prediction.shape[1]:
                raise ValueError(
                    f"target labels span [{low}, {high}] but prediction has {prediction.shape[1]} "
                    f"channels; use labels 0..{prediction.shape[1] - 1} or ignore_index={self.ignore_index}"
                )
        return labels

    def _pixel_losses(
        self, prediction: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return unweighted cross-entropy ``(B, H, W)`` and the valid-pixel mask."""
        valid = labels != self.ignore_index
        safe_labels = labels.masked_fill(~valid, 0)
        ce = F.cross_entropy(prediction, safe_labels, reduction="none")  # (B, H, W)
        return ce, valid

    def hard_pixel_mask(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Boolean ``(B, H, W)`` mask of the pixels the loss keeps (no gradient)."""
        labels = self._labels(prediction, target)
        with torch.no_grad():
            ce, valid = self._pixel_losses(prediction, labels)
            return self._select(ce, valid)

    def _select(self, ce: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        loss_threshold = -torch.log(torch.tensor(self.probability_threshold, dtype=ce.dtype))
        keep = valid & (ce > loss_threshold)
        num_valid = int(valid.sum())
        num_wanted = min(self.min_kept, num_valid)
        if int(keep.sum()) >= num_wanted:
            return keep
        # Too few hard pixels: keep exactly the num_wanted highest-loss valid pixels.
        flat_loss = ce.detach().masked_fill(~valid, float("-inf")).flatten()
        top = torch.topk(flat_loss, num_wanted).indices
        keep = torch.zeros_like(flat_loss, dtype=torch.bool)
        keep[top] = True
        return keep.view_as(valid)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the mean cross-entropy of the kept (hard) pixels."""
        labels = self._labels(prediction, target)
        ce, valid = self._pixel_losses(prediction, labels)
        keep = self._select(ce.detach(), valid)
        if not bool(keep.any()):
            return prediction.sum() * 0.0  # keeps the graph; nothing to learn from this batch
        if self.class_weights is None:
            return ce[keep].mean()
        if len(self.class_weights) != prediction.shape[1]:
            raise ValueError(
                f"class_weights has {len(self.class_weights)} values but prediction has "
                f"{prediction.shape[1]} channels; give one weight per channel"
            )
        weights = torch.as_tensor(self.class_weights, dtype=ce.dtype, device=ce.device)
        pixel_weights = weights[labels.masked_fill(~valid, 0)][keep]
        return (pixel_weights * ce[keep]).sum() / pixel_weights.sum().clamp_min(1e-12)
