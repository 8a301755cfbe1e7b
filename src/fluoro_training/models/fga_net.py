"""FGA-Net: focused gated attention network (seed ``002_736d2e60a7c10fcc.txt``).

Architecture (seed 002, section "Model architecture", Fig. 4):

* encoder of six stages with ``{32, 64, 128, 256, 512, 1024} * width_mult`` channels; each
  stage is two 3x3 convolutions, stages 2-6 start with a 2x2 max-pool (five halvings, so
  the input must be a multiple of 32); the SDA module sits before the two convolutions of
  the last four stages (3-6);
* decoder of five stages with ``{512, 256, 128, 64, 32} * width_mult`` channels; each
  stage fuses the coarser decoder features with the encoder skip by a BGA module
  (instead of U-Net concatenation), then SDA (first three stages only), then two 3x3
  convolutions;
* deep supervision: a 1x1 classifier on every decoder stage ("aux_logits", training only,
  coarse to fine, each at its own resolution ``H / 16 .. H / 2``; the loss up-samples
  them, seed 002 Eq. 8-9) and the final full-resolution classifier ("logits"). Eq. 9
  sums six terms (``i = 0..5``) while the decoder has five stages; we supervise the five
  decoder outputs.

Choices where the paper is not explicit (documented so users can compare):

* conv blocks: ``Conv3x3 -> BatchNorm -> ReLU`` (the paper's "conventional convolutions");
* SDA gating (Eq. 3) multiplies the output of the feature-extraction part (1x1 conv ->
  spatial shift -> InstanceNorm -> GELU) by the gate ``A``; "LayerNorm" of Eq. 2
  normalises the channel vector of every pixel (the ConvNeXt / DCNv3 convention);
* BGA follows the bilateral guided aggregation of BiSeNetV2, after which it is named:
  the semantic (coarse) pathways are sigmoid gates; the detail "conventional 3x3
  convolution" has stride 2 so that it meets the coarse pathway at its resolution.

Tensor layout: ``(B, C, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fluoro_training.models.attention import ConvBNReLU, TipHeatmapHead
from fluoro_training.models.base import SegmentationNet
from fluoro_training.models.deform_conv import DeformConv2d

#: Encoder stage widths at ``width_mult = 1`` (seed 002, "Model architecture").
ENCODER_WIDTHS: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
#: Encoder stages (0-based) that start with an SDA module: the last four.
ENCODER_SDA_STAGES: tuple[int, ...] = (2, 3, 4, 5)
#: Decoder stages (0-based, coarse to fine) that start with an SDA module: the first three.
DECODER_SDA_STAGES: tuple[int, ...] = (0, 1, 2)
#: Shift steps ``(dh, dw)`` [px] of the spatial-shift operation: identity plus the four
#: neighbours, the 3x3 cross coverage of the shift-conv in seed 002 ref. 32.
DEFAULT_SHIFT_STEPS: tuple[tuple[int, int], ...] = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


def spatial_shift(x: torch.Tensor, steps: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """Zero-filled spatial shift of channel groups (seed 002, "SDA module", part one).

    The channels are split into ``len(steps)`` contiguous groups (the last group takes
    the remainder); group ``i`` is moved by ``steps[i] = (dh, dw)`` [px], so that output
    pixel ``(y, x)`` holds input pixel ``(y - dh, x - dw)`` and pixels shifted in from
    outside are 0. No parameters and no multiply-adds.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)`` with ``C >= len(steps)``.
    steps : tuple of (int, int)
        Shift of each group in rows and columns [px].

    Returns
    -------
    torch.Tensor
        ``(B, C, H, W)``.
    """
    channels = x.shape[1]
    num_groups = len(steps)
    if channels < num_groups:
        raise ValueError(
            f"spatial_shift got {channels} channels for {num_groups} shift groups; "
            "use at least one channel per group (raise width_mult)"
        )
    group_size = channels // num_groups
    height, width = x.shape[-2], x.shape[-1]
    shifted = []
    for index, (shift_h, shift_w) in enumerate(steps):
        start = index * group_size
        stop = channels if index == num_groups - 1 else start + group_size
        group = x[:, start:stop]
        if abs(shift_h) >= height or abs(shift_w) >= width:
            shifted.append(torch.zeros_like(group))
            continue
        # Pad on the side the content moves away from, then crop back to H x W.
        padded = F.pad(
            group, (max(shift_w, 0), max(-shift_w, 0), max(shift_h, 0), max(-shift_h, 0))
        )
        top, left = max(-shift_h, 0), max(-shift_w, 0)
        shifted.append(padded[:, :, top : top + height, left : left + width])
    return torch.cat(shifted, dim=1)


class InstanceNorm2d(nn.Module):
    """Per-sample, per-channel normalisation over ``(H, W)`` with an affine map.

    Written out because the torch modules raise on a 1x1 map; here such a map normalises
    to 0 and the output is the affine shift, which is the mathematical limit.
    Exports to ONNX as ``ReduceMean`` / ``Sub`` / ``Div`` nodes.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        variance = (x - mean).square().mean(dim=(2, 3), keepdim=True)
        return (x - mean) / torch.sqrt(variance + self.eps) * self.weight + self.bias


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel vector of each pixel of a ``(B, C, H, W)`` tensor."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, C, H, W)


class SDABlock(nn.Module):
    """Spatial-shift + deformable-attention gate (seed 002, "SDA module", Eq. 1-3).

    ``F = GELU(InstanceNorm(shift(Conv1x1(X))))`` (feature extraction);
    ``A = sigmoid(LayerNorm(DCNv2_3x3(F)))`` (Eq. 1-2, attention gate);
    ``X_out = F * A`` (Eq. 3).

    Instance normalisation is :class:`InstanceNorm2d` below rather than ``nn.InstanceNorm2d``
    / ``nn.GroupNorm``, which refuse a 1x1 map (the deepest stage at the smallest legal
    input, 32 x 32).

    Parameters
    ----------
    channels : int
        Input and output channels.
    shift_steps : tuple of (int, int)
        Spatial shift steps [px]; see :func:`spatial_shift`.

    Shapes
    ------
    ``(B, channels, H, W) -> (B, channels, H, W)``
    """

    def __init__(
        self, channels: int, shift_steps: tuple[tuple[int, int], ...] = DEFAULT_SHIFT_STEPS
    ) -> None:
        super().__init__()
        if channels < len(shift_steps):
            raise ValueError(
                f"SDABlock channels={channels} < {len(shift_steps)} shift groups; "
                "raise width_mult so every group has a channel"
            )
        self.shift_steps = tuple(tuple(step) for step in shift_steps)
        self.pointwise = nn.Conv2d(channels, channels, 1)
        self.instance_norm = InstanceNorm2d(channels)
        self.gate_conv = DeformConv2d(channels, channels, 3, modulated=True)
        self.gate_norm = ChannelLayerNorm(channels)

    def attention(self, features: torch.Tensor) -> torch.Tensor:
        """Gate ``A`` of Eq. 2 in ``(0, 1)`` computed from the extracted features."""
        return torch.sigmoid(self.gate_norm(self.gate_conv(features)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = spatial_shift(self.pointwise(x), self.shift_steps)
        features = F.gelu(self.instance_norm(features))
        return features * self.attention(features)


class BGAFusion(nn.Module):
    """Bilateral guided aggregation of an encoder skip and coarser decoder features.

    Seed 002, "BGA module" (Fig. 5), in the BiSeNetV2 form:

    * detail (low-level, ``H x W``) pathways: ``d1 = Conv1x1(DWConv3x3(low))`` and
      ``d2 = Conv3x3_stride2(low)`` (down to ``H/2``);
    * semantic (high-level, ``H/2 x W/2``) pathways: ``s1 = Conv1x1(DWConv3x3(high))`` and
      ``s2 = Up2(Conv3x3(high))``;
    * cross multiplication and addition, then a 1x1 fusion convolution:
      ``out = Conv1x1(d1 * sigmoid(s2) + Up2(d2 * sigmoid(s1)))``.

    Parameters
    ----------
    low_channels, high_channels, out_channels : int
        Channels of the skip features, of the coarser features and of the output.

    Shapes
    ------
    ``forward(low, high)``: ``low (B, low_channels, H, W)``, ``high (B, high_channels, H/2,
    W/2)`` -> ``(B, out_channels, H, W)``.
    """

    def __init__(self, low_channels: int, high_channels: int, out_channels: int) -> None:
        super().__init__()
        self.detail_separable = nn.Sequential(
            ConvBNReLU(low_channels, low_channels, 3, groups=low_channels, activation=None),
            nn.Conv2d(low_channels, out_channels, 1, bias=False),
        )
        self.detail_down = ConvBNReLU(low_channels, out_channels, 3, stride=2, activation=None)
        self.semantic_separable = nn.Sequential(
            ConvBNReLU(high_channels, high_channels, 3, groups=high_channels, activation=None),
            nn.Conv2d(high_channels, out_channels, 1, bias=False),
        )
        self.semantic_conv = ConvBNReLU(high_channels, out_channels, 3, activation=None)
        self.fuse = ConvBNReLU(out_channels, out_channels, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        if low.shape[-2] != 2 * high.shape[-2] or low.shape[-1] != 2 * high.shape[-1]:
            raise ValueError(
                f"BGA low {tuple(low.shape[-2:])} must be twice high {tuple(high.shape[-2:])}; "
                "pass the skip of the next finer stage"
            )
        detail_full = self.detail_separable(low)  # (B, C, H, W)
        detail_half = self.detail_down(low)  # (B, C, H/2, W/2)
        semantic_half = self.semantic_separable(high)  # (B, C, H/2, W/2)
        semantic_full = F.interpolate(
            self.semantic_conv(high), scale_factor=2.0, mode="bilinear", align_corners=False
        )  # (B, C, H, W)
        guided_detail = detail_full * torch.sigmoid(semantic_full)
        guided_semantic = F.interpolate(
            detail_half * torch.sigmoid(semantic_half),
            scale_factor=2.0,
            mode="bilinear",
            align_corners=False,
        )  # (B, C, H, W)
        return self.fuse(guided_detail + guided_semantic)


class _DoubleConv(nn.Sequential):
    """Two ``Conv3x3 -> BN -> ReLU`` layers, optionally preceded by an SDA block."""

    def __init__(self, in_channels: int, out_channels: int, with_sda: bool) -> None:
        layers: list[nn.Module] = [SDABlock(in_channels)] if with_sda else []
        layers += [
            ConvBNReLU(in_channels, out_channels, 3),
            ConvBNReLU(out_channels, out_channels, 3),
        ]
        super().__init__(*layers)


class FGANet(SegmentationNet):
    """FGA-Net guidewire segmentation network (seed 002, Fig. 4).

    Parameters
    ----------
    in_channels : int
        Must be 1 (fluoroscopy).
    num_classes : int
        Output classes including background.
    tip_head : bool
        Add the guidewire-tip heatmap head on the last decoder features.
    width_mult : float
        Multiplies the stage widths ``{32, ..., 1024}``; ``1.0`` is the paper's network.

    Shapes
    ------
    ``(B, 1, H, W)`` with ``H, W`` multiples of 32 -> ``{"logits": (B, num_classes, H, W),
    "tip_heatmap": (B, 1, H, W), "aux_logits": [(B, num_classes, H/16, W/16), ...,
    (B, num_classes, H/2, W/2)] (training only)}``.
    """

    stride = 32

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        tip_head: bool = True,
        width_mult: float = 1.0,
    ) -> None:
        super().__init__(in_channels, num_classes, tip_head)
        if width_mult <= 0:
            raise ValueError(f"width_mult={width_mult}; expected a positive factor such as 0.25")
        widths = [max(int(round(w * width_mult)), len(DEFAULT_SHIFT_STEPS)) for w in ENCODER_WIDTHS]
        self.widths = tuple(widths)
        self.encoder = nn.ModuleList()
        previous = in_channels
        for stage, width in enumerate(widths):
            self.encoder.append(_DoubleConv(previous, width, stage in ENCODER_SDA_STAGES))
            previous = width
        self.fusions = nn.ModuleList()
        self.decoder = nn.ModuleList()
        self.stage_classifiers = nn.ModuleList()
        decoder_widths = widths[-2::-1]  # {512, 256, 128, 64, 32} * width_mult
        for stage, width in enumerate(decoder_widths):
            skip_width = widths[len(widths) - 2 - stage]
            self.fusions.append(BGAFusion(skip_width, previous, width))
            self.decoder.append(_DoubleConv(width, width, stage in DECODER_SDA_STAGES))
            self.stage_classifiers.append(nn.Conv2d(width, num_classes, 1))
            previous = width
        self.tip_heatmap_head = TipHeatmapHead(previous) if tip_head else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        self.check_input(x)
        skips = []
        features = x
        for stage, block in enumerate(self.encoder):
            if stage > 0:
                features = F.max_pool2d(features, 2)  # (B, C, H/2^s, W/2^s)
            features = block(features)
            skips.append(features)
        stage_logits = []
        for stage, (fusion, block, classifier) in enumerate(
            zip(self.fusions, self.decoder, self.stage_classifiers, strict=True)
        ):
            skip = skips[len(skips) - 2 - stage]
            features = block(fusion(skip, features))  # (B, C_stage, 2h, 2w)
            stage_logits.append(classifier(features))
        outputs: dict[str, torch.Tensor | list[torch.Tensor]] = {"logits": stage_logits[-1]}
        if self.tip_heatmap_head is not None:
            outputs["tip_heatmap"] = self.tip_heatmap_head(features)
        if self.training:
            outputs["aux_logits"] = stage_logits[:-1]
        return outputs
