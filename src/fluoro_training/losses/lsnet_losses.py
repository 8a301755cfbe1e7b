"""L-SNet losses: focal + 0.2 Dice (S-Net), DIoU box loss (L-Net), gradient decay.

Implements ``seeds/004_7d43b31c679c71c5.txt`` Sec. 2.5 Eqs. 5-6:

* S-Net: "a sum of the FocalLoss [15] and the DiceLoss weighted by 0.2" - here
  ``monai.losses.FocalLoss`` (Lin et al., matches ref. [15] exactly) + 0.2 *
  ``monai.losses.DiceLoss``.
* L-Net: keypoint heatmap loss (penalty-reduced focal, see
  :mod:`fluoro_training.losses.tip_heatmap`) averaged over the positives, plus the DIoU
  loss [16] of the boxes regressed at positive samples, i.e. pixels whose ground-truth
  heatmap value exceeds ``tau`` (0.5 by default, "indicator function ... 0.5").
* Gradient decay (S-Net gradients flowing back into L-Net multiplied by a factor) lives
  in the model, where the RoI parameters are: ``fluoro_training.models.lsnet.GradientScale``.

DIoU (Zheng et al., AAAI 2020) is written here: MONAI's box utilities have IoU/GIoU but
no DIoU, and torchvision (which has one) is not available for CPU here::

    L_DIoU = 1 - IoU + rho^2(b, b_gt) / c^2

with ``rho`` the distance between the box centres and ``c`` the diagonal of the
smallest box enclosing both.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.losses import FocalLoss
from torch import nn

from fluoro_training.losses._common import (
    check_activation,
    check_non_negative,
    check_prediction,
    reduce_pixelwise,
    resolve_activation,
    resolve_class_weights,
    target_as_one_hot,
    validate_class_weights,
    weighted_channel_mean,
)
from fluoro_training.losses.hybrid import per_channel_dice_loss
from fluoro_training.losses.tip_heatmap import penalty_reduced_focal_loss


def _check_boxes(name: str, boxes: torch.Tensor) -> None:
    if not isinstance(boxes, torch.Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(
            f"{name} has shape {tuple(getattr(boxes, 'shape', ()))}; expected (N, 4) boxes "
            "(x_min, y_min, x_max, y_max) [px]"
        )


def diou_loss(
    prediction: torch.Tensor, target: torch.Tensor, reduction: str = "mean", eps: float = 1e-7
) -> torch.Tensor:
    """DIoU loss between paired boxes ``(N, 4)`` ``(x_min, y_min, x_max, y_max)`` [px].

    Returns ``1 - IoU + rho^2 / c^2`` per pair (``reduction="none"``, shape ``(N,)``), or
    its mean / sum. Identical boxes give 0; an empty batch gives 0 (mean and sum).
    """
    _check_boxes("prediction", prediction)
    _check_boxes("target", target)
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must pair boxes one to one"
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"reduction={reduction!r} is not supported; expected 'mean', 'sum' or 'none'"
        )
    px1, py1, px2, py2 = prediction.unbind(dim=1)
    tx1, ty1, tx2, ty2 = target.unbind(dim=1)
    inter_w = (torch.minimum(px2, tx2) - torch.maximum(px1, tx1)).clamp_min(0)
    inter_h = (torch.minimum(py2, ty2) - torch.maximum(py1, ty1)).clamp_min(0)
    intersection = inter_w * inter_h
    area_p = (px2 - px1).clamp_min(0) * (py2 - py1).clamp_min(0)
    area_t = (tx2 - tx1).clamp_min(0) * (ty2 - ty1).clamp_min(0)
    iou = intersection / (area_p + area_t - intersection + eps)
    centre_distance_sq = ((px1 + px2 - tx1 - tx2) ** 2 + (py1 + py2 - ty1 - ty2) ** 2) / 4.0
    enclose_w = torch.maximum(px2, tx2) - torch.minimum(px1, tx1)
    enclose_h = torch.maximum(py2, ty2) - torch.minimum(py1, ty1)
    diagonal_sq = enclose_w**2 + enclose_h**2 + eps
    loss = 1.0 - iou + centre_distance_sq / diagonal_sq  # (N,)
    if reduction == "none":
        return loss
    if loss.numel() == 0:
        return prediction.sum() * 0.0
    return loss.mean() if reduction == "mean" else loss.sum()


def distances_to_boxes(keypoints_px: torch.Tensor, distances_ltrb_px: torch.Tensor) -> torch.Tensor:
    """Boxes ``(N, 4)`` from keypoints ``(N, 2)`` ``(x, y)`` and distances ``(N, 4)``
    ``(left, top, right, bottom)`` [px] to the box edges (L-Net BBR head, seed 004 Sec. 2.1).
    """
    if keypoints_px.ndim != 2 or keypoints_px.shape[1] != 2:
        raise ValueError(f"keypoints_px has shape {tuple(keypoints_px.shape)}; expected (N, 2)")
    if distances_ltrb_px.shape != (keypoints_px.shape[0], 4):
        raise ValueError(
            f"distances_ltrb_px has shape {tuple(distances_ltrb_px.shape)}; expected ({keypoints_px.shape[0]}, 4)"
        )
    x, y = keypoints_px.unbind(dim=1)
    left, top, right, bottom = distances_ltrb_px.unbind(dim=1)
    return torch.stack([x - left, y - top, x + right, y + bottom], dim=1)


class FocalDiceLoss(nn.Module):
    """S-Net loss: ``Focal + dice_weight * Dice`` (seed 004 Eq. 6, dice_weight 0.2).

    Parameters
    ----------
    dice_weight : float
        Weight of the Dice term (paper: 0.2), >= 0.
    gamma : float
        Focal modulating exponent (Lin et al.: 2), >= 0.
    focal_alpha : float, optional
        Lin et al. alpha-balancing in ``[0, 1]`` (positives ``alpha``, negatives
        ``1 - alpha``); ``None`` (default) disables it because the paper does not set it.
    activation : {"auto", "sigmoid", "softmax"}
        Applied once inside each MONAI term (``auto``: softmax if ``C >= 2``).
        ``sigmoid``: one-vs-rest focal per channel, averaged with the channel weights.
        ``softmax``: Lin et al.'s categorical focal loss (each pixel's true-class term;
        all classes weight 1 unless ``class_weights``).
    class_weights : sequence of float, optional
        Per-channel weights for both terms (Dice default excludes softmax background).
    batch_dice : bool
        Dice over the whole batch instead of per image (MONAI ``DiceLoss(batch=True)``;
        not in the paper). Per-image Dice is a constant ~1 with almost no gradient for
        every crop that lacks a class (most crops lack a stent), which slowed training
        from scratch here; the batch form keeps a useful gradient for rare classes.

    Notes
    -----
    ``forward(prediction, target)``: logits ``(B, C, H, W)``; target label map or one-hot.
    """

    def __init__(
        self,
        dice_weight: float = 0.2,
        gamma: float = 2.0,
        focal_alpha: float | None = None,
        activation: str = "auto",
        class_weights: Sequence[float] | None = None,
        batch_dice: bool = False,
    ) -> None:
        super().__init__()
        self.dice_weight = check_non_negative("dice_weight", dice_weight)
        self.batch_dice = bool(batch_dice)
        if focal_alpha is not None and not 0.0 <= float(focal_alpha) <= 1.0:
            raise ValueError(f"focal_alpha={focal_alpha} must be None or in [0, 1]")
        self.activation = check_activation(activation)
        self.class_weights = validate_class_weights(class_weights)
        gamma = check_non_negative("gamma", gamma)
        # Both variants are built because "auto" resolves per call from the channel count.
        self.focal_by_activation = nn.ModuleDict(
            {
                name: FocalLoss(
                    gamma=gamma,
                    alpha=focal_alpha,
                    use_softmax=name == "softmax",
                    reduction="none",
                )
                for name in ("sigmoid", "softmax")
            }
        )

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return ``focal + dice_weight * dice`` for logits ``prediction``."""
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
        # (B, C, H, W) -> (B, C, H, W) per-pixel focal terms
        focal_map = self.focal_by_activation[activation](prediction, target_one_hot)
        if activation == "sigmoid":
            focal = reduce_pixelwise(focal_map, weights, "mean")
        else:
            # Categorical (softmax) focal loss: each pixel has one non-zero channel, its true
            # class, so channels are summed (not averaged) and background is kept unless the
            # caller's class_weights drop it; otherwise background pixels would add nothing.
            focal_weights = torch.ones_like(weights) if self.class_weights is None else weights
            focal = (focal_map * focal_weights.view(1, -1, 1, 1)).sum(dim=1).mean()
        dice = per_channel_dice_loss(
            prediction, target_one_hot, activation, batch=self.batch_dice
        ).mean(dim=0)
        return focal + self.dice_weight * weighted_channel_mean(dice, weights)


class LSNetLoss(nn.Module):
    """Combined L-SNet objective (seed 004 Eqs. 5-6): ``L_L + L_S``.

    ``L_L = heatmap_focal + box_weight * mean DIoU over positives`` and
    ``L_S = Focal + 0.2 Dice`` on the S-Net output.

    Parameters
    ----------
    dice_weight : float
        S-Net Dice weight (paper: 0.2).
    box_weight : float
        Weight of the DIoU term in ``L_L`` (paper: 1), >= 0.
    positive_threshold : float
        ``tau`` in ``[0, 1)``: heatmap-target value above which a pixel's box is
        supervised (paper: 0.5).
    segmentation_activation : {"auto", "sigmoid", "softmax"}
        Activation of the S-Net logits.

    Notes
    -----
    ``forward(heatmap_logits, box_distances, segmentation_logits, heatmap_target,
    box_distances_target, segmentation_target)`` with heatmaps ``(B, K, h, w)``, box
    distances ``(B, 4, h, w)`` ``(left, top, right, bottom)`` [px] regressed at every
    heatmap cell, segmentation ``(B, C, H, W)``. Returns a dict of scalar tensors
    ``heatmap``, ``box``, ``segmentation``, ``total``. Gradient decay is applied to
    the RoI parameters in the model, not here.
    """

    def __init__(
        self,
        dice_weight: float = 0.2,
        box_weight: float = 1.0,
        positive_threshold: float = 0.5,
        segmentation_activation: str = "auto",
    ) -> None:
        super().__init__()
        if not 0.0 <= float(positive_threshold) < 1.0:
            raise ValueError(f"positive_threshold={positive_threshold} must be in [0, 1)")
        self.positive_threshold = float(positive_threshold)
        self.box_weight = check_non_negative("box_weight", box_weight)
        self.segmentation_loss = FocalDiceLoss(
            dice_weight=dice_weight, activation=segmentation_activation
        )

    def forward(
        self,
        heatmap_logits: torch.Tensor,
        box_distances: torch.Tensor,
        segmentation_logits: torch.Tensor,
        heatmap_target: torch.Tensor,
        box_distances_target: torch.Tensor,
        segmentation_target: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Return the loss terms and their sum (see class Notes for shapes)."""
        heatmap = penalty_reduced_focal_loss(heatmap_logits, heatmap_target)
        expected = (heatmap_logits.shape[0], 4, *heatmap_logits.shape[2:])
        if (
            tuple(box_distances.shape) != expected
            or box_distances_target.shape != box_distances.shape
        ):
            raise ValueError(
                f"box_distances {tuple(box_distances.shape)} and box_distances_target "
                f"{tuple(box_distances_target.shape)} must both be {expected}"
            )
        # A cell is positive for boxes when any keypoint channel's target exceeds tau.
        positive = heatmap_target.amax(dim=1) > self.positive_threshold  # (B, h, w)
        rows, cols = torch.meshgrid(
            torch.arange(expected[2], device=box_distances.device, dtype=box_distances.dtype),
            torch.arange(expected[3], device=box_distances.device, dtype=box_distances.dtype),
            indexing="ij",
        )
        cell_xy = torch.stack([cols, rows], dim=-1).expand(expected[0], -1, -1, -1)  # (B, h, w, 2)
        keypoints = cell_xy[positive]  # (P, 2); boxes are relative to the cell, so any origin works
        predicted_boxes = distances_to_boxes(keypoints, box_distances.permute(0, 2, 3, 1)[positive])
        target_boxes = distances_to_boxes(
            keypoints, box_distances_target.permute(0, 2, 3, 1)[positive]
        )
        box = diou_loss(predicted_boxes, target_boxes)
        segmentation = self.segmentation_loss(segmentation_logits, segmentation_target)
        total = heatmap + self.box_weight * box + segmentation
        return {"heatmap": heatmap, "box": box, "segmentation": segmentation, "total": total}
