"""Reinforced (augmented) focal loss of LDA-Net and FRA-Net.

Implements ``seeds/000_a7406d7b89063154.txt`` Sec. 2.2 Eq. 3 ("reinforced focal loss"),
identical to ``seeds/001_d0d03ac8067c31fe.txt`` Sec. 2.3 Eq. 4 ("augmented focal loss")::

    L_i = -alpha * (1 - p_i)^gamma * log(p_i)     if y_i = 1
    L_i = -p_i^gamma * log(1 - p_i)               if y_i = 0

Written here rather than with ``monai.losses.FocalLoss`` because MONAI (like Lin et al.)
weights negatives by ``1 - alpha``; the papers weight positives by ``alpha`` (best 100,
seed 001 Table 2) and leave negatives at weight 1, which MONAI cannot express.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fluoro_training.losses._common import (
    check_activation,
    check_non_negative,
    check_prediction,
    check_reduction,
    log_probabilities,
    reduce_pixelwise,
    resolve_activation,
    resolve_class_weights,
    target_as_one_hot,
    validate_class_weights,
)


def reinforced_focal_pixel_loss(
    prediction: torch.Tensor,
    target_one_hot: torch.Tensor,
    alpha: float,
    gamma: float,
    activation: str,
) -> torch.Tensor:
    """Per-pixel, per-channel Eq. 3 of seed 000 (``(B, C, H, W)`` -> ``(B, C, H, W)``).

    ``prediction`` are logits; ``activation`` is applied here, once. Soft targets
    ``y`` in ``(0, 1)`` interpolate the two cases linearly.
    """
    probability, log_p, log_not_p = log_probabilities(prediction, activation)
    positive = -alpha * (1.0 - probability).pow(gamma) * log_p
    negative = -probability.pow(gamma) * log_not_p
    return target_one_hot * positive + (1.0 - target_one_hot) * negative


class ReinforcedFocalLoss(nn.Module):
    """Reinforced focal loss (seed 000 Eq. 3 = seed 001 Eq. 4).

    Parameters
    ----------
    alpha : float
        Weight of the positive (foreground) term, >= 0. Papers' best: 100.
    gamma : float
        Modulating exponent, >= 0. Papers' best: 2.5.
    activation : {"auto", "sigmoid", "softmax"}
        Applied to the logits inside the loss; ``auto``: softmax for ``C >= 2``, sigmoid
        for ``C == 1``. Multi-class: one-vs-rest per channel (see
        :mod:`fluoro_training.losses._common`).
    class_weights : sequence of float, optional
        One weight per channel; default 1 each (sigmoid) or ``[0, 1, ..., 1]`` (softmax).
    reduction : {"mean", "sum", "none"}
        ``"mean"``: mean over batch and pixels per channel, then weighted channel mean.

    Notes
    -----
    ``forward(prediction, target)``: ``prediction`` logits ``(B, C, H, W)``; ``target``
    a label map ``(B, H, W)`` / ``(B, 1, H, W)`` or one-hot ``(B, C, H, W)``.
    """

    def __init__(
        self,
        alpha: float = 100.0,
        gamma: float = 2.5,
        activation: str = "auto",
        class_weights: Sequence[float] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.alpha = check_non_negative("alpha", alpha)
        self.gamma = check_non_negative("gamma", gamma)
        self.activation = check_activation(activation)
        self.class_weights = validate_class_weights(class_weights)
        self.reduction = check_reduction(reduction)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the loss of logits ``prediction`` against ``target``."""
        check_prediction(prediction, self.activation)
        activation = resolve_activation(self.activation, prediction.shape[1])
        target_one_hot = target_as_one_hot(prediction, target)
        pixel_loss = reinforced_focal_pixel_loss(
            prediction, target_one_hot, self.alpha, self.gamma, activation
        )
        weights = resolve_class_weights(
            self.class_weights,
            prediction.shape[1],
            activation,
            prediction.device,
            prediction.dtype,
        )
        return reduce_pixelwise(pixel_loss, weights, self.reduction)
