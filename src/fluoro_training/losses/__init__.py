"""Training losses, one file per loss, each citing its seed paper and equation.

All segmentation losses take ``(prediction, target)``: ``prediction`` are raw logits
``(B, C, H, W)`` (the activation is applied inside, once; default ``"auto"`` = softmax for
``C >= 2``, sigmoid for ``C == 1``), ``target`` an integer label map
``(B, H, W)`` / ``(B, 1, H, W)`` or a one-hot tensor ``(B, C, H, W)``. Multi-class models
use the binary papers' losses one-vs-rest per channel with configurable ``class_weights``
(see :mod:`fluoro_training.losses._common`).

Use :func:`build_loss` to create a loss by name from a config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from fluoro_training.losses.bce_dice_cldice import (
    BceDiceClDiceLoss,
    DeepSupervisionLoss,
    default_deep_supervision_weights,
)
from fluoro_training.losses.hybrid import HybridFocalDiceLoss
from fluoro_training.losses.lsnet_losses import (
    FocalDiceLoss,
    LSNetLoss,
    diou_loss,
    distances_to_boxes,
)
from fluoro_training.losses.ohem_ce import OhemCrossEntropyLoss
from fluoro_training.losses.reinforced_focal import ReinforcedFocalLoss
from fluoro_training.losses.tip_heatmap import (
    TipHeatmapFocalLoss,
    TipHeatmapLoss,
    gaussian_tip_targets,
    penalty_reduced_focal_loss,
    render_tip_heatmap,
)


class DIoULoss(nn.Module):
    """Module form of :func:`~fluoro_training.losses.lsnet_losses.diou_loss` (seed 004)."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(
                f"reduction={reduction!r} is not supported; expected 'mean', 'sum' or 'none'"
            )
        self.reduction = reduction

    def forward(self, prediction, target):
        """DIoU loss of paired ``(N, 4)`` boxes ``(x_min, y_min, x_max, y_max)`` [px]."""
        return diou_loss(prediction, target, reduction=self.reduction)


#: Loss name -> constructor. Names are what experiment configs use.
LOSSES: dict[str, Callable[..., nn.Module]] = {
    "reinforced_focal": ReinforcedFocalLoss,
    "hybrid_focal_dice": HybridFocalDiceLoss,
    "hybrid": HybridFocalDiceLoss,  # short alias (LDA-Net's "hybrid loss", seed 000 Eq. 2)
    "bce_dice_cldice": BceDiceClDiceLoss,
    "ohem_ce": OhemCrossEntropyLoss,
    "focal_dice": FocalDiceLoss,
    "diou": DIoULoss,
    "lsnet": LSNetLoss,
    "tip_heatmap_focal": TipHeatmapFocalLoss,
}


def build_loss(
    name: str, deep_supervision_weights: Sequence[float] | None = None, **kwargs
) -> nn.Module:
    """Create the loss called ``name`` with constructor keyword arguments ``kwargs``.

    Parameters
    ----------
    name : str
        One of :data:`LOSSES`.
    deep_supervision_weights : sequence of float, optional
        If given, the loss is wrapped in :class:`DeepSupervisionLoss` with these
        ``lambda_i`` (main output first; seed 002 Eq. [9]).
    **kwargs
        Passed to the loss constructor; unknown keywords raise ``TypeError``.

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the valid names).
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))}")
    loss = LOSSES[name](**kwargs)
    if deep_supervision_weights is not None:
        return DeepSupervisionLoss(loss, deep_supervision_weights)
    return loss


__all__ = [
    "LOSSES",
    "BceDiceClDiceLoss",
    "DIoULoss",
    "DeepSupervisionLoss",
    "FocalDiceLoss",
    "HybridFocalDiceLoss",
    "LSNetLoss",
    "OhemCrossEntropyLoss",
    "ReinforcedFocalLoss",
    "TipHeatmapFocalLoss",
    "TipHeatmapLoss",
    "build_loss",
    "default_deep_supervision_weights",
    "diou_loss",
    "distances_to_boxes",
    "gaussian_tip_targets",
    "penalty_reduced_focal_loss",
    "render_tip_heatmap",
]
