"""LDA-Net: Lightweight Double Attention-fused Network (seed ``000_a7406d7b89063154.txt``).

Architecture (seed 000 Sec. 2.1, Fig. 1-2):

* encoder: MobileNetV2 (:class:`~fluoro_training.models.mobilenet.MobileNetV2Encoder`),
  feature maps at strides 2, 4, 8, 16, 32 (16x16 at a 512x512 input). The paper starts
  from ImageNet weights; none can be downloaded here, so the encoder trains from scratch;
* Feature Attention Module (FAM, Fig. 2a) on the stride-32 features: a U-shaped
  3x3 / 5x5 / 7x7 convolution pyramid whose output multiplies a 1x1-convolved copy of the
  features pixel-wise, plus an adaptive-average-pooled global branch;
* decoder: per level a transposed convolution + BN doubles the resolution
  ("16x16 -> 512x512"); the skip features are filtered by a Relevance Attention Module
  (RAM, Eq. 1, :class:`~fluoro_training.models.attention.AdditiveAttentionGate`) gated by
  the coarser decoder features, concatenated and fused by a 3x3 conv-BN-ReLU;
* heads: 1x1 convolution to ``num_classes`` logits at full resolution and an optional
  tip-heatmap head.

Tensor layout: input ``(B, 1, H, W)`` with ``H, W`` multiples of 32; outputs as described
in :mod:`fluoro_training.models.base`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fluoro_training.models.attention import (
    AdditiveAttentionGate,
    ConvBNReLU,
    TipHeatmapHead,
    TransposedConvBN,
    build_outputs,
)
from fluoro_training.models.base import SegmentationNet
from fluoro_training.models.mobilenet import MobileNetV2Encoder, make_divisible


class FeatureAttentionModule(nn.Module):
    """Feature Attention Module of LDA-Net (seed 000 Sec. 2.1 "Feature Attention Module", Fig. 2a).

    ``out = conv1x1(x) * pyramid(x) + global(x)`` where

    * ``pyramid``: three stride-2 levels with 7x7, 5x5 and 3x3 kernels (large kernels are
      cheap at the low resolution of the deepest features), merged U-shape from coarse to
      fine by up-sampling and addition, then up-sampled to the size of ``x``;
    * ``global``: adaptive average pooling to 1x1 and a 1x1 convolution, broadcast over
      the map.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the encoder features and of the module output.
    pyramid_channels : int, optional
        Channels inside the pyramid; default ``max(out_channels // 4, 8)``.

    Shapes
    ------
    ``(B, in_channels, h, w) -> (B, out_channels, h, w)``; any ``h, w >= 1``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, pyramid_channels: int | None = None
    ) -> None:
        super().__init__()
        mid = max(out_channels // 4, 8) if pyramid_channels is None else pyramid_channels
        self.main_branch = ConvBNReLU(in_channels, out_channels, 1)
        self.down_7x7 = ConvBNReLU(in_channels, mid, 7, stride=2)
        self.conv_7x7 = ConvBNReLU(mid, mid, 7)
        self.down_5x5 = ConvBNReLU(mid, mid, 5, stride=2)
        self.conv_5x5 = ConvBNReLU(mid, mid, 5)
        self.down_3x3 = ConvBNReLU(mid, mid, 3, stride=2)
        self.conv_3x3 = ConvBNReLU(mid, mid, 3)
        self.pyramid_out = ConvBNReLU(mid, out_channels, 1)
        # No BN on the pooled branch: a 1x1 map with batch 1 has a single value per
        # channel, on which training-mode BatchNorm is undefined.
        self.global_branch = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=True),
            nn.ReLU(inplace=True),
        )

    def pyramid_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Pyramid levels ``[7x7 at h/2, 5x5 at h/4, 3x3 at h/8]``, each ``(B, mid, ., .)``."""
        level_7 = self.conv_7x7(self.down_7x7(x))  # (B, mid, ceil(h/2), ceil(w/2))
        level_5 = self.conv_5x5(self.down_5x5(level_7))  # (B, mid, ~h/4, ~w/4)
        level_3 = self.conv_3x3(self.down_3x3(level_5))  # (B, mid, ~h/8, ~w/8)
        return [level_7, level_5, level_3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level_7, level_5, level_3 = self.pyramid_features(x)
        merged = level_5 + _resize_to(level_3, level_5)  # coarse-to-fine U-shape merge
        merged = level_7 + _resize_to(merged, level_7)
        attention = self.pyramid_out(_resize_to(merged, x))  # (B, out, h, w)
        return self.main_branch(x) * attention + self.global_branch(x)


def _resize_to(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Bilinearly resize ``x`` to the spatial size of ``reference`` (odd sizes allowed)."""
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=False)


class _AttentionDecoderLevel(nn.Module):
    """One decoder level: transposed conv + BN up, RAM-gated skip, concat, 3x3 fuse.

    ``(B, in_channels, h, w), skip (B, skip_channels, 2h, 2w) -> (B, skip_channels, 2h, 2w)``
    """

    def __init__(self, in_channels: int, skip_channels: int) -> None:
        super().__init__()
        self.up = TransposedConvBN(in_channels, skip_channels)
        self.relevance_attention = AdditiveAttentionGate(skip_channels, in_channels, gate_stride=2)
        self.fuse = ConvBNReLU(2 * skip_channels, skip_channels, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        gated_skip = self.relevance_attention(skip, x)  # gate = coarser decoder features
        return self.fuse(torch.cat([self.up(x), gated_skip], dim=1))


class LDANet(SegmentationNet):
    """LDA-Net for multi-class fluoroscopy segmentation (seed 000 Sec. 2.1).

    Parameters
    ----------
    in_channels, num_classes, tip_head
        See :class:`~fluoro_training.models.base.SegmentationNet`.
    width_mult : float
        MobileNetV2 width multiplier; decoder widths follow the encoder's.
    depth_mult : float
        Multiplies the number of inverted residual blocks per encoder stage.
    fam_channels : int, optional
        FAM output channels; default the deepest encoder width.
    final_channels : int, optional
        Channels of the full-resolution features before the heads; default
        ``make_divisible(16 * width_mult)``.

    Shapes
    ------
    ``(B, 1, H, W)`` with ``H, W`` multiples of 32 -> ``{"logits": (B, num_classes, H, W),
    "tip_heatmap": (B, 1, H, W)}``.
    """

    stride = 32

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        tip_head: bool = True,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        fam_channels: int | None = None,
        final_channels: int | None = None,
    ) -> None:
        super().__init__(in_channels, num_classes, tip_head)
        self.encoder = MobileNetV2Encoder(in_channels, width_mult=width_mult, depth_mult=depth_mult)
        if self.encoder.strides != (2, 4, 8, 16, 32):
            raise ValueError(f"encoder strides {self.encoder.strides}; LDANet needs 2..32")
        channels = self.encoder.out_channels  # fine to coarse, strides 2, 4, 8, 16, 32
        fam_out = channels[-1] if fam_channels is None else fam_channels
        final = make_divisible(16 * width_mult) if final_channels is None else final_channels
        self.fam = FeatureAttentionModule(channels[-1], fam_out)
        decoder_in = [fam_out, *channels[-2:0:-1]]  # width entering each level, coarse to fine
        self.decoder = nn.ModuleList(
            _AttentionDecoderLevel(coarse, skip)
            for coarse, skip in zip(decoder_in, channels[-2::-1], strict=True)
        )
        self.final_up = TransposedConvBN(channels[0], final)  # stride 2 -> full resolution
        self.classifier = nn.Conv2d(final, num_classes, 1)
        self.tip = TipHeatmapHead(final, hidden_channels=final) if tip_head else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        self.check_input(x)
        skips = self.encoder(x)  # [(B, c1, H/2, W/2), ..., (B, c5, H/32, W/32)]
        features = self.fam(skips[-1])  # (B, fam_out, H/32, W/32)
        for level, skip in zip(self.decoder, skips[-2::-1], strict=True):
            features = level(features, skip)  # resolution doubles: H/16 ... H/2
        features = self.final_up(features)  # (B, final, H, W)
        return build_outputs(features, self.classifier, self.tip, training=self.training)
