"""Tip-heatmap targets and the penalty-reduced pixel-wise focal loss.

Keypoint heatmaps with Gaussian targets as in L-Net's keypoint head
(``seeds/004_7d43b31c679c71c5.txt`` Sec. 2.1 Eq. 1, "similar to [12, 13]", i.e.
CornerNet / CenterNet). Here the keypoints are guidewire tips. Loss (CornerNet Eq. 1)::

    L = -1/N sum_xy { (1 - p)^a log(p)                    if y = 1
                    { (1 - y)^b p^a log(1 - p)            otherwise

with ``N`` the number of tips (positives), a = 2, b = 4. Written here because MONAI has no
penalty-reduced focal loss; ``monai.losses.FocalLoss`` has no ``(1 - y)^b`` term.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fluoro_training.losses._common import check_non_negative, check_prediction


def render_tip_heatmap(
    tip_positions_px: np.ndarray | Sequence[Sequence[float]],
    height: int,
    width: int,
    sigma_px: float = 2.0,
) -> np.ndarray:
    """Render Gaussian tip targets ``(H, W)`` float32 in ``[0, 1]``.

    Each tip ``(x, y)`` [px] contributes ``exp(-((u - x)^2 + (v - y)^2) / (2 sigma^2))``
    centred at its sub-pixel position; overlapping tips take the maximum (CenterNet). The
    pixel nearest to each tip inside the image is then set to exactly 1 so that every
    tip has exactly one positive pixel for :class:`TipHeatmapFocalLoss`.

    Parameters
    ----------
    tip_positions_px : array_like
        ``(N, 2)`` tip positions ``(x, y)`` [px]; ``N`` may be 0. Tips outside the image
        still spread their Gaussian tail into it but get no positive pixel.
    height, width : int
        Output size [px], both >= 1.
    sigma_px : float
        Gaussian standard deviation [px], > 0.

    Returns
    -------
    np.ndarray
        ``(H, W)`` float32 heatmap.
    """
    tips = np.asarray(tip_positions_px, dtype=np.float64).reshape(-1, 2)  # (N, 2), N may be 0
    if not np.all(np.isfinite(tips)):
        raise ValueError(f"tip_positions_px contains non-finite values: {tips.tolist()}")
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"heatmap size {height}x{width} must be at least 1x1 px")
    if not float(sigma_px) > 0.0:
        raise ValueError(f"sigma_px={sigma_px} must be > 0")
    heatmap = np.zeros((int(height), int(width)), dtype=np.float64)
    rows = np.arange(int(height), dtype=np.float64)[:, None]  # (H, 1) pixel-centre y
    cols = np.arange(int(width), dtype=np.float64)[None, :]  # (1, W) pixel-centre x
    for tip_x, tip_y in tips:
        gaussian = np.exp(-((cols - tip_x) ** 2 + (rows - tip_y) ** 2) / (2.0 * sigma_px**2))
        np.maximum(heatmap, gaussian, out=heatmap)
    for tip_x, tip_y in tips:
        col, row = int(np.rint(tip_x)), int(np.rint(tip_y))
        if 0 <= row < height and 0 <= col < width:
            heatmap[row, col] = 1.0
    return heatmap.astype(np.float32)


def gaussian_tip_targets(
    tip_positions_px: np.ndarray | Sequence[Sequence[float]],
    shape: tuple[int, int],
    sigma_px: float = 2.0,
) -> np.ndarray:
    """:func:`render_tip_heatmap` with the output size given as ``shape = (H, W)`` [px]."""
    if len(shape) != 2:
        raise ValueError(f"shape={shape}; expected (height, width) [px]")
    return render_tip_heatmap(tip_positions_px, int(shape[0]), int(shape[1]), sigma_px)


def penalty_reduced_focal_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 2.0,
    beta: float = 4.0,
) -> torch.Tensor:
    """CornerNet Eq. 1 on logits ``prediction`` and heatmap ``target``, both ``(B, C, H, W)``.

    A sigmoid is applied here, once. Positives are pixels with ``target == 1``; the sum
    is divided by ``max(number of positives, 1)``.
    """
    check_prediction(prediction)
    if not isinstance(target, torch.Tensor) or target.shape != prediction.shape:
        raise ValueError(
            f"target shape {tuple(getattr(target, 'shape', ()))} must equal prediction shape "
            f"{tuple(prediction.shape)} (render targets with render_tip_heatmap)"
        )
    target = target.to(prediction.dtype)
    log_p = F.logsigmoid(prediction)
    log_not_p = F.logsigmoid(-prediction)
    probability = log_p.exp()
    positive_mask = target >= 1.0
    positive = -((1.0 - probability) ** alpha) * log_p
    negative = -((1.0 - target) ** beta) * probability**alpha * log_not_p
    pixel_loss = torch.where(positive_mask, positive, negative)
    num_positive = positive_mask.sum().clamp_min(1).to(prediction.dtype)
    return pixel_loss.sum() / num_positive


class TipHeatmapFocalLoss(nn.Module):
    """Penalty-reduced focal loss for tip heatmaps (CornerNet/CenterNet; seed 004 Eq. 1).

    Parameters
    ----------
    alpha : float
        Focusing exponent on the prediction (CornerNet: 2), >= 0.
    beta : float
        Exponent of the penalty reduction ``(1 - y)^beta`` near tips (CornerNet: 4), >= 0.

    Notes
    -----
    ``forward(prediction, target)``: logits ``(B, C, H, W)`` (sigmoid applied inside) and
    a Gaussian heatmap of the same shape from :func:`render_tip_heatmap`.
    """

    def __init__(self, alpha: float = 2.0, beta: float = 4.0) -> None:
        super().__init__()
        self.alpha = check_non_negative("alpha", alpha)
        self.beta = check_non_negative("beta", beta)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the loss, normalised by the number of positive pixels."""
        return penalty_reduced_focal_loss(prediction, target, self.alpha, self.beta)


#: Short name used by the trainer.
TipHeatmapLoss = TipHeatmapFocalLoss
