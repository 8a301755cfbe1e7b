"""FGA-Net loss: BCE + (1 - a)(1 - softDice) + a(1 - softclDice), with deep supervision.

Implements ``seeds/002_736d2e60a7c10fcc.txt`` section "Loss" (Eqs. [5]-[9]):

* ``L_BCE = -1/N sum[y log p + (1 - y) log(1 - p)]``
* ``softDice = 2 sum(p g) / (sum p^2 + sum g^2)`` (squared denominator, as written there)
* ``softclDice`` of Shit et al. (CVPR 2021, seed 002 ref. 35): harmonic mean of the
  topology precision ``Tprec(S_P, V_L)`` and sensitivity ``Tsens(S_L, V_P)`` on soft
  skeletons.
* ``l_i = L_BCE + (1 - a)(1 - softDice) + a(1 - softclDice)`` and ``L = sum_i lambda_i l_i``
  over the deep-supervision stages ``i``.

Library use: softDice is ``monai.losses.DiceLoss(squared_pred=True)``; softclDice is
``monai.losses.SoftclDiceLoss`` (in MONAI 1.6.1 its ``forward(input, target)`` takes the
prediction first, like every other loss; older MONAI releases took ``(y_true, y_pred)``).
``monai.losses.SoftDiceclDiceLoss`` is not used because its Dice term has the plain, not
the squared, denominator of the paper. SoftclDiceLoss pools all channels it is given, so it
is called once per channel to keep the one-vs-rest class weighting of this package.

The paper does not give the stage weights lambda_i; the default halves the weight per
stage (1, 1/2, 1/4, ...), normalised to sum 1, as nnU-Net does. Auxiliary outputs are
bilinearly upsampled to the target resolution before the loss ("performing upsampling on
the output of each stage of the decoder", seed 002 Fig. 4 text).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.losses import SoftclDiceLoss
from torch import nn

from fluoro_training.losses._common import (
    check_activation,
    check_prediction,
    log_probabilities,
    resolve_activation,
    resolve_class_weights,
    target_as_one_hot,
    validate_class_weights,
    weighted_channel_mean,
)
from fluoro_training.losses.hybrid import per_channel_dice_loss


def default_deep_supervision_weights(num_outputs: int) -> tuple[float, ...]:
    """Return ``(1, 1/2, 1/4, ...)`` normalised to sum 1, for ``num_outputs`` >= 1 outputs."""
    if num_outputs < 1:
        raise ValueError(f"num_outputs={num_outputs} must be >= 1")
    raw = [0.5**stage for stage in range(num_outputs)]
    total = sum(raw)
    return tuple(weight / total for weight in raw)


class DeepSupervisionLoss(nn.Module):
    """Weighted sum of one loss over a main output and auxiliary (deep-supervision) outputs.

    Seed 002 Eq. [9]: ``L = sum_i lambda_i * l_i``.

    Parameters
    ----------
    loss : nn.Module
        Called as ``loss(prediction_i, target)`` for every output ``i``.
    weights : sequence of float, optional
        ``lambda_i`` (main output first), each >= 0 with a positive sum. ``None`` uses
        :func:`default_deep_supervision_weights` for however many outputs are given.

    Notes
    -----
    ``forward(prediction, target)``: ``prediction`` is one logits tensor ``(B, C, H, W)``
    or a sequence ``[main, aux_1, ...]`` of ``(B, C, h_i, w_i)`` logits; an output smaller
    than the target is bilinearly upsampled to ``(H, W)`` first.
    """

    def __init__(self, loss: nn.Module, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not isinstance(loss, nn.Module):
            raise TypeError(f"loss is a {type(loss).__name__}; expected a torch.nn.Module loss")
        self.loss = loss
        if weights is not None:
            weights = tuple(float(w) for w in weights)
            if not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError(
                    f"deep supervision weights={weights} must be non-empty, >= 0, with a positive sum"
                )
        self.weights = weights

    def forward(
        self, prediction: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor
    ) -> torch.Tensor:
        """Return ``sum_i lambda_i * loss(upsampled prediction_i, target)``."""
        outputs = [prediction] if isinstance(prediction, torch.Tensor) else list(prediction)
        if not outputs:
            raise ValueError("prediction is an empty sequence; expected at least the main output")
        weights = self.weights or default_deep_supervision_weights(len(outputs))
        if len(weights) != len(outputs):
            raise ValueError(
                f"got {len(outputs)} outputs but {len(weights)} deep supervision weights; "
                "give one weight per output (main first)"
            )
        target_hw = tuple(target.shape[-2:])
        total = outputs[0].new_zeros(())
        for weight, output in zip(weights, outputs, strict=True):
            check_prediction(output)
            if tuple(output.shape[-2:]) != target_hw:
                # (B, C, h_i, w_i) -> (B, C, H, W)
                output = F.interpolate(output, size=target_hw, mode="bilinear", align_corners=False)
            total = total + weight * self.loss(output, target)
        return total


class BceDiceClDiceLoss(nn.Module):
    """Per-stage FGA-Net loss ``l = BCE + (1 - a)(1 - softDice) + a(1 - softclDice)``.

    Parameters
    ----------
    cldice_alpha : float
        ``a`` in ``[0, 1]`` (the paper does not state its value; MONAI's default 0.5).
    activation : {"auto", "sigmoid", "softmax"}
        Applied once to the logits (``auto``: softmax if ``C >= 2``); every term sees the
        same probabilities. Multi-class: one-vs-rest per channel, weighted by
        ``class_weights``.
    class_weights : sequence of float, optional
        Per-channel weights (see :mod:`fluoro_training.losses._common`).
    skeleton_iterations : int
        Soft-skeleton iterations of softclDice (>= 0), about the half-width in px of the
        thickest structure; 3 covers wires up to ~7 px wide.
    smooth : float
        softDice smoothing (numerator and denominator).

    Notes
    -----
    ``forward(prediction, target)``: logits ``(B, C, H, W)``; target label map or one-hot.
    Wrap in :class:`DeepSupervisionLoss` (or use :func:`build_loss` with
    ``deep_supervision_weights``) for auxiliary outputs.
    """

    def __init__(
        self,
        cldice_alpha: float = 0.5,
        activation: str = "auto",
        class_weights: Sequence[float] | None = None,
        skeleton_iterations: int = 3,
        smooth: float = 1e-5,
    ) -> None:
        super().__init__()
        if not 0.0 <= float(cldice_alpha) <= 1.0:
            raise ValueError(f"cldice_alpha={cldice_alpha} must be in [0, 1]")
        if not isinstance(skeleton_iterations, int) or skeleton_iterations < 0:
            raise ValueError(f"skeleton_iterations={skeleton_iterations} must be an int >= 0")
        self.cldice_alpha = float(cldice_alpha)
        self.activation = check_activation(activation)
        self.class_weights = validate_class_weights(class_weights)
        self.smooth = float(smooth)
        self.cldice = SoftclDiceLoss(iter_=skeleton_iterations, reduction="none")

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the stage loss of logits ``prediction`` against ``target``."""
        check_prediction(prediction, self.activation)
        activation = resolve_activation(self.activation, prediction.shape[1])
        target_one_hot = target_as_one_hot(prediction, target)
        num_channels = prediction.shape[1]
        weights = resolve_class_weights(
            self.class_weights, num_channels, activation, prediction.device, prediction.dtype
        )
        probability, log_p, log_not_p = log_probabilities(prediction, activation)
        # (B, C, H, W) -> (C,): one-vs-rest BCE per channel, mean over batch and pixels.
        bce = -(target_one_hot * log_p + (1.0 - target_one_hot) * log_not_p).mean(dim=(0, 2, 3))
        soft_dice = per_channel_dice_loss(
            prediction,
            target_one_hot,
            activation,
            squared_denominator=True,
            smooth=self.smooth,
        ).mean(dim=0)  # (B, C) -> (C,)
        # softclDice on the already-activated probabilities (no activation inside MONAI).
        soft_cldice = torch.stack(
            [
                self.cldice(probability[:, c : c + 1], target_one_hot[:, c : c + 1]).mean()
                for c in range(num_channels)
            ]
        )  # (C,)
        per_channel = bce + (1.0 - self.cldice_alpha) * soft_dice + self.cldice_alpha * soft_cldice
        return weighted_channel_mean(per_channel, weights)
