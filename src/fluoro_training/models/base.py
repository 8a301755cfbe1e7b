"""Common interface of every segmentation network in the registry.

Tensor layout (all models):

* input ``x``: ``(B, 1, H, W)`` float32, preprocessed by
  ``fluoro_perception.core.preprocess``; ``H`` and ``W`` multiples of ``stride``.
* ``forward`` returns a dict:

  - ``"logits"``: ``(B, num_classes, H, W)`` pre-softmax class scores (always);
  - ``"tip_heatmap"``: ``(B, 1, H, W)`` pre-sigmoid guidewire-tip heatmap
    (when built with ``tip_head=True``);
  - ``"aux_logits"``: list of ``(B, num_classes, h, w)`` deep-supervision outputs,
    coarse to fine, only in training mode and only for models that have them;
  - model-specific extras in training mode (e.g. L-SNet's ``"box_distances"``).

In ``eval()`` mode only ``logits`` and ``tip_heatmap`` are returned, which is what
``fluoro-train export`` writes to ONNX.
"""

from __future__ import annotations

import torch
from torch import nn


class SegmentationNet(nn.Module):
    """Base class: holds the options shared by all architectures and checks inputs."""

    #: Input height and width must be multiples of this (set by each subclass).
    stride: int = 32

    def __init__(self, in_channels: int = 1, num_classes: int = 3, tip_head: bool = True) -> None:
        super().__init__()
        if in_channels != 1:
            raise ValueError(f"in_channels={in_channels}; fluoroscopy models take 1-channel input")
        if num_classes < 2:
            raise ValueError(f"num_classes={num_classes}; expected >= 2 (background + classes)")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.tip_head = tip_head

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` naming the padded size to use when ``x`` does not fit."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects input (B, {self.in_channels}, H, W); got {tuple(x.shape)}"
            )
        height, width = int(x.shape[-2]), int(x.shape[-1])
        if height % self.stride or width % self.stride:
            pad_h = -(-height // self.stride) * self.stride
            pad_w = -(-width // self.stride) * self.stride
            raise ValueError(
                f"{type(self).__name__} needs H and W divisible by {self.stride}; got {height}x{width}, "
                f"pad to {pad_h}x{pad_w}"
            )


def padded_size(height: int, width: int, stride: int) -> tuple[int, int]:
    """Smallest ``(H, W)`` >= the given size with both divisible by ``stride``."""
    return -(-height // stride) * stride, -(-width // stride) * stride
