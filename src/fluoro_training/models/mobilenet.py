"""MobileNetV2 building blocks and a multi-scale MobileNetV2 encoder.

Both LDA-Net (seed ``000_a7406d7b89063154.txt`` Sec. 2.1) and FRA-Net (seed
``001_d0d03ac8067c31fe.txt`` Sec. 2, Fig. 3) build their encoders from the MobileNetV2
inverted residual block (Sandler et al., CVPR 2018, the papers' ref. [10] / [28]):
1x1 expansion -> depthwise 3x3 -> linear 1x1 bottleneck, with an identity shortcut when
the block keeps resolution and channel count.

The papers start from ImageNet-pretrained MobileNetV2 weights. No model hub is reachable
from our machines, so **no ImageNet weights can be downloaded here and every encoder in
this package trains from scratch** (single-channel input, our simulator's data).
torchvision is not installable on the CPU machines either, hence these blocks are written
here rather than imported.

Tensor layout: ``(B, C, H, W)`` everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from fluoro_training.models.attention import ConvBNReLU

#: MobileNetV2 body as ``(expand_ratio t, out_channels c, num_blocks n, first_stride s)``
#: (Sandler et al. 2018, Table 2), without the 1280-channel classifier conv.
MOBILENET_V2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a (width-multiplied) channel count to the nearest multiple of ``divisor``.

    Never rounds down by more than 10 %, as in the reference MobileNetV2, so that thin
    width multipliers do not lose too many channels.

    Parameters
    ----------
    value : float
        Requested number of channels, e.g. ``32 * width_mult``.
    divisor : int
        Channel counts are multiples of this (8 suits SIMD kernels).
    min_value : int, optional
        Lower bound; defaults to ``divisor``.

    Returns
    -------
    int
        Channel count, a positive multiple of ``divisor``.
    """
    if divisor <= 0:
        raise ValueError(f"divisor={divisor}; expected a positive integer")
    if value <= 0:
        raise ValueError(f"channel value={value}; expected > 0 (check width_mult)")
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class InvertedResidual(nn.Module):
    """MobileNetV2 inverted residual block with a linear bottleneck (seed 001 Fig. 3 left).

    ``x -> [1x1 conv, BN, ReLU6] (expansion, skipped when expand_ratio == 1)
    -> depthwise 3x3 conv (stride), BN, ReLU6 -> 1x1 conv, BN (linear, no activation)``,
    plus ``x`` when ``stride == 1`` and ``in_channels == out_channels``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of input and output.
    stride : int
        Stride of the depthwise convolution, 1 or 2.
    expand_ratio : int
        Hidden width = ``in_channels * expand_ratio`` (``t`` in MobileNetV2).

    Shapes
    ------
    ``(B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride)``
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, expand_ratio: int = 6
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride={stride}; InvertedResidual supports stride 1 or 2")
        if expand_ratio < 1:
            raise ValueError(f"expand_ratio={expand_ratio}; expected an integer >= 1")
        hidden_channels = int(round(in_channels * expand_ratio))
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(in_channels, hidden_channels, 1, activation="relu6"))
        layers += [
            ConvBNReLU(
                hidden_channels,
                hidden_channels,
                3,
                stride=stride,
                groups=hidden_channels,
                activation="relu6",
            ),
            # linear bottleneck: no non-linearity after the projection (MobileNetV2 Sec. 3.2)
            nn.Conv2d(hidden_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


def inverted_residual_stage(
    in_channels: int, out_channels: int, num_blocks: int, stride: int, expand_ratio: int = 6
) -> nn.Sequential:
    """A stage of ``num_blocks`` inverted residual blocks; only the first one strides.

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride)``.
    """
    if num_blocks < 1:
        raise ValueError(f"num_blocks={num_blocks}; a stage needs at least 1 block")
    blocks = [InvertedResidual(in_channels, out_channels, stride, expand_ratio)]
    blocks += [
        InvertedResidual(out_channels, out_channels, 1, expand_ratio) for _ in range(num_blocks - 1)
    ]
    return nn.Sequential(*blocks)


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 feature extractor returning one feature map per output stride.

    Trains from scratch: no ImageNet weights can be downloaded on our machines.

    Parameters
    ----------
    in_channels : int
        Input channels (1 for fluoroscopy).
    width_mult : float
        Multiplies every channel count (rounded by :func:`make_divisible`).
    depth_mult : float
        Multiplies the number of blocks per stage (rounded up, at least 1) to trade
        accuracy for speed.
    settings : sequence of (t, c, n, s), optional
        Stage table; defaults to :data:`MOBILENET_V2_SETTINGS`.
    stem_channels : int
        Channels of the 3x3 stride-2 stem before ``width_mult``.

    Attributes
    ----------
    out_channels : tuple[int, ...]
        Channels of each returned feature map, fine to coarse.
    strides : tuple[int, ...]
        Output stride of each returned feature map w.r.t. the input [px], e.g.
        ``(2, 4, 8, 16, 32)`` for the default table.

    Shapes
    ------
    ``forward(x)``: ``(B, in_channels, H, W)`` -> list of ``(B, out_channels[k], H / strides[k],
    W / strides[k])``; one entry per distinct stride, taken at the last stage of that stride.
    """

    def __init__(
        self,
        in_channels: int = 1,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        settings: Sequence[tuple[int, int, int, int]] | None = None,
        stem_channels: int = 32,
    ) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult={width_mult}; expected > 0 (e.g. 0.5, 1.0)")
        if depth_mult <= 0:
            raise ValueError(f"depth_mult={depth_mult}; expected > 0 (e.g. 0.5, 1.0)")
        settings = tuple(MOBILENET_V2_SETTINGS if settings is None else settings)
        stem_out = make_divisible(stem_channels * width_mult)
        self.stem = ConvBNReLU(in_channels, stem_out, 3, stride=2, activation="relu6")

        stages: list[nn.Module] = []
        stage_strides: list[int] = []
        stage_channels: list[int] = []
        current_stride = 2
        channels = stem_out
        for expand_ratio, base_out, num_blocks, stride in settings:
            out = make_divisible(base_out * width_mult)
            blocks = max(1, math.ceil(num_blocks * depth_mult))
            stages.append(inverted_residual_stage(channels, out, blocks, stride, expand_ratio))
            current_stride *= stride
            stage_strides.append(current_stride)
            stage_channels.append(out)
            channels = out
        self.stages = nn.ModuleList(stages)
        # A feature map is returned at the LAST stage of each stride (its richest features).
        self._tap_indices = tuple(
            i
            for i in range(len(stage_strides))
            if i == len(stage_strides) - 1 or stage_strides[i + 1] != stage_strides[i]
        )
        self.out_channels = tuple(stage_channels[i] for i in self._tap_indices)
        self.strides = tuple(stage_strides[i] for i in self._tap_indices)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features: list[torch.Tensor] = []
        x = self.stem(x)  # (B, C0, H/2, W/2)
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in self._tap_indices:
                features.append(x)
        return features
