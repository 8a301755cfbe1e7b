"""Trainer variants: small :class:`~fluoro_training.trainer.Trainer` subclasses that each
override one hook, selected from the config by model name (nnU-Net's variant pattern).

* :class:`LSNetTrainer` (``model.name: lsnet``): the L-SNet objective of
  ``seeds/004_7d43b31c679c71c5.txt`` Sec. 2.5 Eqs. 5-6 (:class:`LSNetLoss`) with
  keypoint-heatmap and box-distance targets on L-Net's 1/4-resolution grid, and the S-Net
  loss in the RoI frame.

Use :func:`create_trainer` (the CLI and ``compare`` do) rather than ``Trainer`` directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fluoro_training.config import TrainConfig
from fluoro_training.losses import LSNetLoss, render_tip_heatmap
from fluoro_training.models.lsnet import LNET_OUTPUT_STRIDE, recalibrate_roi
from fluoro_training.trainer import Trainer


def lnet_cell_centres_px(height: int, width: int, stride: int = LNET_OUTPUT_STRIDE):
    """Input-pixel centres ``(x, y)`` of the cells of a ``(height, width)`` L-Net grid [px].

    Cell ``(i, j)`` covers the ``stride x stride`` input block starting at
    ``(stride j, stride i)``; its centre is ``(stride j + (stride - 1) / 2, ...)``, i.e.
    ``(4 j + 1.5, 4 i + 1.5)`` for stride 4 (the convention of ``models/lsnet.py``).

    Returns
    -------
    tuple of np.ndarray
        ``x (width,)`` and ``y (height,)`` float32 [px].
    """
    offset = (stride - 1) / 2.0
    x = np.arange(width, dtype=np.float32) * stride + offset
    y = np.arange(height, dtype=np.float32) * stride + offset
    return x, y


def lsnet_targets(
    tips: torch.Tensor,
    boxes: torch.Tensor,
    grid_size: tuple[int, int],
    *,
    stride: int = LNET_OUTPUT_STRIDE,
    sigma_cells: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoint-heatmap and box-distance targets on L-Net's grid (seed 004 Sec. 2.1).

    Parameters
    ----------
    tips : torch.Tensor
        ``(B, T, 3)`` rows ``(x, y, valid)`` [px] on the input grid (the example's ``tips``).
    boxes : torch.Tensor
        ``(B, 5)`` ``(x_min, y_min, x_max, y_max, valid)`` [px] (the example's ``box``).
    grid_size : (int, int)
        ``(h, w)`` of the L-Net grid (input size / ``stride``).
    stride : int
        Input pixels per grid cell.
    sigma_cells : float
        Gaussian standard deviation of the keypoint targets [cells].

    Returns
    -------
    heatmap : torch.Tensor
        ``(B, 1, h, w)`` float32 in ``[0, 1]``, exactly 1 at the cell nearest each tip.
    distances : torch.Tensor
        ``(B, 4, h, w)`` float32 ``(l, t, r, b)`` [px] from each cell centre to the box
        edges (``l = x_c - x_min``, ``t = y_c - y_min``, ``r = x_max - x_c``,
        ``b = y_max - y_c``); zero for samples without a valid box.
    """
    height, width = int(grid_size[0]), int(grid_size[1])
    if tips.ndim != 3 or tips.shape[-1] != 3 or boxes.shape != (tips.shape[0], 5):
        raise ValueError(
            f"tips {tuple(tips.shape)} and boxes {tuple(boxes.shape)}; expected (B, T, 3) and (B, 5)"
        )
    offset = (stride - 1) / 2.0
    tips_np = tips.detach().cpu().numpy()
    heatmaps = np.zeros((tips.shape[0], 1, height, width), np.float32)
    for index, rows in enumerate(tips_np):
        valid = rows[rows[:, 2] > 0, :2]  # (N, 2) input px
        if len(valid):
            heatmaps[index, 0] = render_tip_heatmap(
                (valid - offset) / stride, height, width, sigma_cells
            )
    centre_x, centre_y = lnet_cell_centres_px(height, width, stride)
    cx = torch.from_numpy(centre_x).to(boxes.device).view(1, 1, width)  # (1, 1, w)
    cy = torch.from_numpy(centre_y).to(boxes.device).view(1, height, 1)  # (1, h, 1)
    x0, y0, x1, y1, box_valid = (boxes[:, k].view(-1, 1, 1).float() for k in range(5))
    distances = torch.stack(
        [
            (cx - x0).expand(-1, height, width),
            (cy - y0).expand(-1, height, width),
            (x1 - cx).expand(-1, height, width),
            (y1 - cy).expand(-1, height, width),
        ],
        dim=1,
    )  # (B, 4, h, w)
    distances = distances * box_valid.view(-1, 1, 1, 1)
    return torch.from_numpy(heatmaps).to(boxes.device), distances


class LSNetTrainer(Trainer):
    """L-SNet: overrides the loss hooks only (seed 004 Sec. 2.5).

    ``L = L_L + L_S`` (:class:`~fluoro_training.losses.LSNetLoss`): the keypoint heatmap
    (penalty-reduced focal on the 1/4 grid; the keypoint is the guidewire tip) and the
    DIoU of the boxes regressed at cells whose target exceeds ``tau``, where the target
    box is the bounding box of all foreground in the (cropped) frame; plus focal + 0.2
    Dice of S-Net's RoI-frame logits against the labels warped into the RoI with the
    model's own affine (nearest class after bilinear warping of the one-hot labels). The
    RoI affine is detached for the targets: targets are data, not a path for gradients.
    """

    #: Keypoint Gaussian width on the 1/4 grid [cells]; CenterNet-style targets need a
    #: few cells above ``tau`` = 0.5 around each tip for the box head to learn from.
    sigma_cells = 1.0

    def build_loss(self) -> nn.Module:
        if self.config.loss.name != "lsnet":
            raise ValueError(
                f"loss.name={self.config.loss.name!r} with model.name='lsnet'; set loss.name: "
                "lsnet (the L-SNet objective needs the box and keypoint outputs)"
            )
        return LSNetLoss(**self.config.loss.kwargs)

    def compute_loss(
        self, outputs: dict[str, Any], batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        keypoint_logits = outputs["keypoint_logits"]  # (B, 1, H/4, W/4)
        heatmap_target, distance_target = lsnet_targets(
            batch["tips"],
            batch["box"],
            tuple(keypoint_logits.shape[-2:]),
            sigma_cells=self.sigma_cells,
        )
        labels = batch["labels"]  # (B, H, W)
        roi_logits = outputs["roi_logits"]  # (B, C, H, W) in the RoI frame
        one_hot = F.one_hot(labels, roi_logits.shape[1]).permute(0, 3, 1, 2).float()
        roi_labels = recalibrate_roi(one_hot, outputs["roi_affine"].detach()).argmax(1)
        terms = self.loss_fn(
            keypoint_logits,
            outputs["box_distances"],
            roi_logits,
            heatmap_target,
            distance_target,
            roi_labels,
        )
        return dict(terms)


#: ``model.name`` -> trainer class; models not listed use :class:`Trainer`.
TRAINER_VARIANTS: dict[str, type[Trainer]] = {"lsnet": LSNetTrainer}


def trainer_class(config: TrainConfig) -> type[Trainer]:
    """The trainer class for ``config.model.name``."""
    return TRAINER_VARIANTS.get(config.model.name, Trainer)


def create_trainer(
    config: TrainConfig, output_dir: str | Path | None = None, **kwargs: Any
) -> Trainer:
    """Build the right trainer for ``config`` (``kwargs`` as for :class:`Trainer`)."""
    return trainer_class(config)(config, output_dir, **kwargs)
