"""DDR-SAPC-U: dual-resolution network with spatial attention and parallel convolution.

Seed ``003_fd74fd3af07e65b1.txt`` (Sec. III, Fig. 1-2) modifies DDRNet-23-slim (seed 003
ref. [3]) in three ways, all implemented here:

* **Dual Attention Module (DAM)** (Sec. III-A-1, Fig. 2) replaces DDRNet's bilateral
  fusion: two 3x3 convolutions make a spatial attention map per branch, ``A_H`` (high
  resolution) and ``A_L`` (low resolution); the high-resolution features are multiplied by
  ``A_H + (1 - A_L)``, the low-resolution ones by ``A_L + (1 - A_H)``, and each gated map
  passes through DDRNet's fusion convolutions and is added to the other resolution;
* **Parallel Basic Block (PBB)** (Sec. III-A-2) replaces the ResNet basic block: the
  two-convolution residual branch runs in parallel at 1/1, 1/2 and 1/4 of the block's
  resolution and the three results are summed;
* **U-shaped full-resolution output** (Sec. III-A, "DDR-SAPC-U"): the stem stride is
  reduced (first convolution at full resolution) and a decoder up-samples the
  high-resolution branch back to the input size with skip connections from the stem.

DDRNet-23-slim layout kept (at ``width_mult = 1``, ``c = 32``): stem -> 2 blocks (c) ->
2 blocks (2c) -> split: high branch 2c at 1/4, low branch 4c (1/8) -> 8c (1/16) -> bottleneck
16c (1/32) -> DAPPM (4c) added to the high branch. Compared with DDRNet every resolution is
one octave finer (the stride reduction of Fig. 1). Resolutions are relative to the input.

Choices where the paper is not explicit: attention maps have one channel (spatial
attention after Tao et al., seed 003 ref. [21]); ``A_L`` is up-sampled bilinearly and
``A_H`` average-pooled to meet the other branch; DAPPM's global-pool branch has no
BatchNorm (BN of a 1x1 map is undefined for batch 1). In training mode DDRNet's auxiliary
head on the high-resolution branch (after the first fusion) is returned as
``aux_logits`` at 1/4 resolution.

Tensor layout: ``(B, C, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fluoro_training.models.attention import ConvBNReLU, TipHeatmapHead
from fluoro_training.models.base import SegmentationNet

#: Resolution divisors of the parallel branches of a PBB (seed 003 Sec. III-A-2).
PBB_SCALES: tuple[int, ...] = (1, 2, 4)


def _upsample_to(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=False)


class ParallelBasicBlock(nn.Module):
    """Residual block whose two-convolution branch runs at 1/1, 1/2 and 1/4 resolution.

    ``out = ReLU(shortcut(x) + sum_r Up_r(BN(Conv3x3(ReLU(BN(Conv3x3_stride(AvgPool_r(x))))))))``
    for ``r`` in ``scales`` (seed 003 Sec. III-A-2; ``scales = (1,)`` is the ResNet basic
    block of DDRNet).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of input and output.
    stride : int
        1 or 2; the shortcut is ``Conv1x1_stride -> BN`` when shape changes.
    scales : tuple of int
        Pooling factors of the parallel branches.

    Shapes
    ------
    ``(B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride)``; ``H / stride``
    and ``W / stride`` must be divisible by ``max(scales)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        scales: tuple[int, ...] = PBB_SCALES,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride={stride}; ParallelBasicBlock supports 1 or 2")
        self.scales = tuple(scales)
        self.branches = nn.ModuleList(
            nn.Sequential(
                ConvBNReLU(in_channels, out_channels, 3, stride=stride),
                ConvBNReLU(out_channels, out_channels, 3, activation=None),
            )
            for _ in self.scales
        )
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = ConvBNReLU(
                in_channels, out_channels, 1, stride=stride, activation=None
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shortcut(x)  # (B, C_out, H/s, W/s)
        for scale, branch in zip(self.scales, self.branches, strict=True):
            pooled = F.avg_pool2d(x, scale) if scale > 1 else x  # (B, C_in, H/r, W/r)
            response = branch(pooled)  # (B, C_out, H/(r s), W/(r s))
            out = out + (_upsample_to(response, out) if scale > 1 else response)
        return F.relu(out)


class Bottleneck(nn.Module):
    """DDRNet bottleneck (expansion 2): ``1x1 -> 3x3 stride -> 1x1`` with a residual."""

    expansion = 2

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.body = nn.Sequential(
            ConvBNReLU(in_channels, planes, 1),
            ConvBNReLU(planes, planes, 3, stride=stride),
            ConvBNReLU(planes, out_channels, 1, activation=None),
        )
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = ConvBNReLU(
                in_channels, out_channels, 1, stride=stride, activation=None
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


def dual_attention_gating(
    high: torch.Tensor,
    low: torch.Tensor,
    attention_high: torch.Tensor,
    attention_low: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross gating of the DAM (seed 003 Sec. III-A-1, Fig. 2(a)).

    ``high * (A_H + (1 - Up(A_L)))`` and ``low * (A_L + (1 - AvgPool(A_H)))``.

    Parameters
    ----------
    high : torch.Tensor
        High-resolution features ``(B, C_H, H, W)``.
    low : torch.Tensor
        Low-resolution features ``(B, C_L, H / r, W / r)``, ``r`` an integer.
    attention_high, attention_low : torch.Tensor
        Attention maps in ``[0, 1]``, ``(B, 1, H, W)`` and ``(B, 1, H / r, W / r)``.

    Returns
    -------
    tuple of torch.Tensor
        Gated ``(high, low)`` with the input shapes.
    """
    ratio = high.shape[-1] // low.shape[-1]
    if (
        ratio < 1
        or low.shape[-1] * ratio != high.shape[-1]
        or low.shape[-2] * ratio != high.shape[-2]
    ):
        raise ValueError(
            f"high {tuple(high.shape[-2:])} must be an integer multiple of low "
            f"{tuple(low.shape[-2:])}; pass the two branches of one fusion point"
        )
    attention_low_up = _upsample_to(attention_low, high)  # (B, 1, H, W)
    attention_high_down = F.avg_pool2d(attention_high, ratio) if ratio > 1 else attention_high
    gated_high = high * (attention_high + (1.0 - attention_low_up))
    gated_low = low * (attention_low + (1.0 - attention_high_down))
    return gated_high, gated_low


class DualAttentionModule(nn.Module):
    """DAM: spatial attention per branch, cross gating, DDRNet bilateral fusion.

    ``A_X = sigmoid(Conv3x3(ReLU(BN(Conv3x3(X)))))`` for each branch, gating by
    :func:`dual_attention_gating`, then
    ``low_out = ReLU(low + Down(gated_high))`` (3x3 stride-2 conv-BN layers, one per
    halving) and ``high_out = ReLU(high + Up(BN(Conv1x1(gated_low))))``.

    Parameters
    ----------
    high_channels, low_channels : int
        Channels of the two branches.
    ratio : int
        Resolution ratio high / low, a power of two.

    Shapes
    ------
    ``forward(high, low)``: ``(B, C_H, H, W), (B, C_L, H/r, W/r)`` -> same shapes.
    """

    def __init__(self, high_channels: int, low_channels: int, ratio: int) -> None:
        super().__init__()
        if ratio < 2 or ratio & (ratio - 1):
            raise ValueError(f"ratio={ratio}; expected a power of two >= 2")
        self.attention_high = self._attention_generator(high_channels)
        self.attention_low = self._attention_generator(low_channels)
        halvings = ratio.bit_length() - 1
        down: list[nn.Module] = []
        channels = high_channels
        for index in range(halvings):
            last = index == halvings - 1
            next_channels = low_channels if last else channels * 2
            down.append(
                ConvBNReLU(
                    channels, next_channels, 3, stride=2, activation=None if last else "relu"
                )
            )
            channels = next_channels
        self.down = nn.Sequential(*down)
        self.compress = ConvBNReLU(low_channels, high_channels, 1, activation=None)

    @staticmethod
    def _attention_generator(channels: int) -> nn.Sequential:
        hidden = max(channels // 4, 4)
        return nn.Sequential(
            ConvBNReLU(channels, hidden, 3), nn.Conv2d(hidden, 1, 3, padding=1), nn.Sigmoid()
        )

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gated_high, gated_low = dual_attention_gating(
            high, low, self.attention_high(high), self.attention_low(low)
        )
        low_out = F.relu(low + self.down(gated_high))
        high_out = F.relu(high + _upsample_to(self.compress(gated_low), high))
        return high_out, low_out


class DAPPM(nn.Module):
    """DDRNet's Deep Aggregation Pyramid Pooling Module on the lowest-resolution features.

    Branches: identity, average pools (kernel 5/9/17, stride 2/4/8) and global pooling, each
    ``BN -> ReLU -> Conv1x1``; coarser branches are up-sampled, added to the previous one
    and refined by ``BN -> ReLU -> Conv3x3``; the concatenation is compressed and added to
    a 1x1 shortcut.

    Shapes
    ------
    ``(B, in_channels, h, w) -> (B, out_channels, h, w)``
    """

    def __init__(self, in_channels: int, branch_channels: int, out_channels: int) -> None:
        super().__init__()

        def bn_relu_conv(channels_in: int, channels_out: int, kernel: int) -> nn.Sequential:
            return nn.Sequential(
                nn.BatchNorm2d(channels_in),
                nn.ReLU(),
                nn.Conv2d(channels_in, channels_out, kernel, padding=kernel // 2, bias=False),
            )

        self.pools = nn.ModuleList(
            nn.AvgPool2d(kernel, stride=stride, padding=stride)
            for kernel, stride in ((5, 2), (9, 4), (17, 8))
        )
        self.scales = nn.ModuleList(bn_relu_conv(in_channels, branch_channels, 1) for _ in range(4))
        self.global_scale = nn.Sequential(
            nn.ReLU(), nn.Conv2d(in_channels, branch_channels, 1, bias=True)
        )
        self.process = nn.ModuleList(
            bn_relu_conv(branch_channels, branch_channels, 3) for _ in range(4)
        )
        self.compression = bn_relu_conv(5 * branch_channels, out_channels, 1)
        self.shortcut = bn_relu_conv(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.scales[0](x)]
        pooled_inputs = [pool(x) for pool in self.pools]
        pooled_features = [
            scale(p) for scale, p in zip(self.scales[1:], pooled_inputs, strict=True)
        ]
        pooled_features.append(self.global_scale(F.adaptive_avg_pool2d(x, 1)))
        for process, features in zip(self.process, pooled_features, strict=True):
            branches.append(process(_upsample_to(features, x) + branches[-1]))
        return self.compression(torch.cat(branches, dim=1)) + self.shortcut(x)


def _stage(in_channels: int, out_channels: int, stride: int, num_blocks: int = 2) -> nn.Sequential:
    blocks = [ParallelBasicBlock(in_channels, out_channels, stride)]
    blocks += [ParallelBasicBlock(out_channels, out_channels) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


class DDRSAPCU(SegmentationNet):
    """DDR-SAPC-U multi-class segmentation network (seed 003 Fig. 1).

    Parameters
    ----------
    in_channels : int
        Must be 1 (fluoroscopy).
    num_classes : int
        Output classes including background.
    tip_head : bool
        Add the guidewire-tip heatmap head on the full-resolution decoder features.
    width_mult : float
        Multiplies DDRNet-23-slim's base width 32 (high branch 2c, low branch up to 16c).

    Shapes
    ------
    ``(B, 1, H, W)``, ``H, W`` multiples of 64 (the 1/16 stage's PBB pools by 4) ->
    ``{"logits": (B, num_classes, H, W), "tip_heatmap": (B, 1, H, W),
    "aux_logits": [(B, num_classes, H/4, W/4)] (training only)}``.
    """

    stride = 64

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        tip_head: bool = True,
        width_mult: float = 1.0,
    ) -> None:
        super().__init__(in_channels, num_classes, tip_head)
        if width_mult <= 0:
            raise ValueError(f"width_mult={width_mult}; expected a positive factor such as 0.5")
        c = max(int(round(32 * width_mult)), 4)
        self.base_width = c
        high = 2 * c
        self.stem_full = ConvBNReLU(in_channels, c, 3)  # 1/1, skip
        self.stem_half = ConvBNReLU(c, c, 3, stride=2)  # 1/2
        self.layer1 = _stage(c, c, 1)  # 1/2, skip
        self.layer2 = _stage(c, high, 2)  # 1/4
        self.layer3_low = _stage(high, 4 * c, 2)  # 1/8
        self.layer3_high = _stage(high, high, 1)  # 1/4
        self.fusion3 = DualAttentionModule(high, 4 * c, ratio=2)
        self.layer4_low = _stage(4 * c, 8 * c, 2)  # 1/16
        self.layer4_high = _stage(high, high, 1)  # 1/4
        self.fusion4 = DualAttentionModule(high, 8 * c, ratio=4)
        self.layer5_low = Bottleneck(8 * c, 8 * c, stride=2)  # 16c at 1/32
        self.layer5_high = Bottleneck(high, high)  # 4c at 1/4
        self.spp = DAPPM(16 * c, 4 * c, 4 * c)
        # U-shaped decoder (seed 003 Sec. III-A): 1/4 -> 1/2 (+ layer1 skip) -> 1/1 (+ stem skip)
        self.decode_half = nn.Sequential(
            ConvBNReLU(4 * c + c, 2 * c, 3), ConvBNReLU(2 * c, 2 * c, 3)
        )
        self.decode_full = nn.Sequential(ConvBNReLU(2 * c + c, c, 3), ConvBNReLU(c, c, 3))
        self.classifier = nn.Conv2d(c, num_classes, 1)
        self.aux_classifier = nn.Sequential(
            ConvBNReLU(high, high, 3), nn.Conv2d(high, num_classes, 1)
        )
        self.tip_heatmap_head = TipHeatmapHead(c) if tip_head else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        self.check_input(x)
        skip_full = self.stem_full(x)  # (B, c, H, W)
        skip_half = self.layer1(self.stem_half(skip_full))  # (B, c, H/2, W/2)
        shared = self.layer2(skip_half)  # (B, 2c, H/4, W/4)
        high, low = self.fusion3(self.layer3_high(shared), self.layer3_low(shared))
        aux_source = high  # (B, 2c, H/4, W/4), DDRNet's extra head position
        high, low = self.fusion4(self.layer4_high(high), self.layer4_low(low))  # 1/4, 1/16
        high = self.layer5_high(high)  # (B, 4c, H/4, W/4)
        low = self.spp(self.layer5_low(low))  # (B, 4c, H/32, W/32)
        features = high + _upsample_to(low, high)  # (B, 4c, H/4, W/4)
        features = _upsample_to(features, skip_half)  # (B, 4c, H/2, W/2)
        features = self.decode_half(torch.cat([features, skip_half], dim=1))  # (B, 2c, H/2, W/2)
        features = _upsample_to(features, skip_full)  # (B, 2c, H, W)
        features = self.decode_full(torch.cat([features, skip_full], dim=1))  # (B, c, H, W)
        outputs: dict[str, torch.Tensor | list[torch.Tensor]] = {
            "logits": self.classifier(features)
        }
        if self.tip_heatmap_head is not None:
            outputs["tip_heatmap"] = self.tip_heatmap_head(features)
        if self.training:
            outputs["aux_logits"] = [self.aux_classifier(aux_source)]
        return outputs
