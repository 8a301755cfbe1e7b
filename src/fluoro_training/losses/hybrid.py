"""Hybrid loss of LDA-Net: reinforced focal loss + lambda * Dice loss.

Implements ``seeds/000_a7406d7b89063154.txt`` Sec. 2.2 Eq. 2, ``L = L_R-Focal + lambda *
L_Dice`` with lambda = 0.75, alpha = 100, gamma = 2.5 (Sec. 3, Table 1). The focal part is
:class:`~fluoro_training.losses.reinforced_focal.ReinforcedFocalLoss`; the Dice part is
``monai.losses.DiceLoss`` (plain soft Dice ``1 - (2 sum(p g) + s) / (sum p + sum g + s)``
per image and channel, which is what the paper cites, ref. [9]).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.losses import DiceLoss
from torch import nn

from fluoro_training.losses._common import (
    check_activation,
    check_non_negative,
    check_prediction,
    resolve_activation,
    resolve_class_weights,
    target_as_one_hot,
    validate_class_weights,
    weighted_channel_mean,
)
from fluoro_training.losses.reinforced_focal import ReinforcedFocalLoss


def per_channel_dice_loss(
    prediction: torch.Tensor,
    target_one_hot: torch.Tensor,
    activation: str,
    squared_denominator: bool = False,
    smooth: float = 1e-5,
    batch: bool = False,
) -> torch.Tensor:
    """MONAI soft Dice loss per image and channel: logits ``(B, C, H, W)`` -> ``(B, C)``.

    The activation (``sigmoid`` or ``softmax``) is applied inside MONAI, once.
    ``squared_denominator`` selects ``sum p^2 + sum g^2`` (seed 002's softDice).
    ``batch=True`` sums intersection and cardinality over the whole batch first (MONAI's
    ``batch`` option) and returns ``(1, C)``: a crop without any pixel of a class then no
    longer contributes a constant ~1 with almost no gradient for that class.
    """
    dice = DiceLoss(
        sigmoid=activation == "sigmoid",
        softmax=activation == "softmax",
        squared_pred=squared_denominator,
        reduction="none",
        smooth_nr=smooth,
        smooth_dr=smooth,
        batch=batch,
    )
    loss = dice(prediction, target_one_hot)  # (B, C, 1, 1); batch=True: (C, 1, 1)
    return loss.reshape(1 if batch else prediction.shape[0], prediction.shape[1])


class HybridFocalDiceLoss(nn.Module):
    """``L = ReinforcedFocal + dice_weight * Dice`` (seed 000 Eq. 2).

    Parameters
    ----------
    dice_weight : float
        lambda of Eq. 2, >= 0. Paper: 0.75.
    alpha, gamma : float
        Reinforced focal parameters (paper: 100, 2.5).
    activation : {"auto", "sigmoid", "softmax"}
        Applied once inside each term to the logits (``auto``: softmax if ``C >= 2``).
    class_weights : sequence of float, optional
        Per-channel weights used by both terms (see :mod:`fluoro_training.losses._common`).
    smooth : float
        Dice smoothing added to numerator and denominator.

    Notes
    -----
    ``forward(prediction, target)``: logits ``(B, C, H, W)``; target label map or one-hot.
    The Dice term is averaged over the batch, then weighted over channels.
    """

    def __init__(
        self,
        dice_weight: float = 0.75,
        alpha: float = 100.0,
        gamma: float = 2.5,
        activation: str = "auto",
        class_weights: Sequence[float] | None = None,
        smooth: float = 1e-5,
    ) -> None:
        super().__init__()
        self.dice_weight = check_non_negative("dice_weight", dice_weight)
        self.activation = check_activation(activation)
        self.class_weights = validate_class_weights(class_weights)
        self.smooth = check_non_negative("smooth", smooth)
        self.focal = ReinforcedFocalLoss(
            alpha=alpha, gamma=gamma, activation=activation, class_weights=class_weights
        )

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the hybrid loss of logits ``prediction`` against ``target``."""
        check_prediction(prediction, self.activation)
        activation = resolve_activation(self.activation, prediction.shape[1])
        target_one_hot = target_as_one_hot(prediction, target)
        weights = resolve_class_weights(
            self.class_weights,
            prediction.shape[1],
            activation,
            prediction.device,
            prediction.dtype,
        )
        focal = self.focal(prediction, target_one_hot)
        dice = per_channel_dice_loss(
            prediction, target_one_hot, activation, smooth=self.smooth
        ).mean(dim=0)  # (B, C) -> (C,)
        return focal + self.dice_weight * weighted_channel_mean(dice, weights)
