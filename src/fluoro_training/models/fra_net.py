"""FRA-Net: fast recurrent attention network for guidewire segmentation (seed ``001_d0d03ac8067c31fe.txt``).

Architecture (seed 001 Sec. 2, Fig. 2-5):

* stem: 7x7 stride-2 convolution and 3x3 stride-2 max-pooling, so all later work runs
  at stride 4 or coarser (this is what makes the network fast on a CPU);
* encoder: MobileNetV2 inverted residual stages (Fig. 3 left; trained from scratch, no
  ImageNet weights can be downloaded here), each followed by a recurrent residual
  convolutional block (Sec. 2.1, Eq. 1-2, ``t = 3``) at strides 4, 8, 16 and 32;
* decoder: per level a transposed convolution + BN (Fig. 3 right) doubles the
  resolution, the skip features are filtered by an attention module (Sec. 2.2, Eq. 3,
  :class:`~fluoro_training.models.attention.AdditiveAttentionGate`) gated by the coarser
  decoder features, concatenated, and fused by a recurrent residual block
  ("recurrent up-convolutional block") down to stride 4; the stride-2 level fuses the stem
  features with a plain 3x3 conv-BN-ReLU and a last transposed convolution restores the
  full resolution, where a 1x1 convolution gives the logits (Sec. 2, last paragraph).

CPU budget: ``width_mult``, ``depth_mult``, ``recurrent_steps`` and ``separable``
(depthwise-separable 3x3 convolutions in the recurrent blocks, the stride-2 fusion and the
tip head) trade accuracy for speed; see :data:`CPU_DEFAULT_KWARGS` for the configuration recommended as the real-time
CPU default.

Tensor layout: input ``(B, 1, H, W)`` with ``H, W`` multiples of 32; outputs as described
in :mod:`fluoro_training.models.base`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fluoro_training.models.attention import (
    AdditiveAttentionGate,
    ContextTipHead,
    ConvBNReLU,
    SeparableConvBNReLU,
    TipHeatmapHead,
    TransposedConvBN,
    build_outputs,
)
from fluoro_training.models.base import SegmentationNet
from fluoro_training.models.mobilenet import inverted_residual_stage, make_divisible

#: Encoder stages after the stem, ``(expand_ratio, out_channels, num_blocks, first_stride)``:
#: the MobileNetV2 table from its 24-channel stage on, grouped by output stride
#: (stride 4 is reached by the stem, so the first stage keeps resolution).
FRA_ENCODER_SETTINGS: tuple[tuple[tuple[int, int, int, int], ...], ...] = (
    ((6, 24, 2, 1),),  # stride 4
    ((6, 32, 3, 2),),  # stride 8
    ((6, 64, 4, 2), (6, 96, 3, 1)),  # stride 16
    ((6, 160, 3, 2), (6, 320, 1, 1)),  # stride 32
)

#: Dilations of the :class:`ContextTipHead` blocks (``tip_context`` = how many are used).
TIP_CONTEXT_DILATIONS: tuple[int, ...] = (2, 4, 8, 16)
#: Least hidden channels of the :class:`ContextTipHead` (at stride 2 with 3 blocks: ~0.1
#: GFLOPs at 512x512).
TIP_CONTEXT_CHANNELS = 16

#: Recommended keyword arguments of :class:`FRANet` for the real-time CPU default: about
#: 0.95 M parameters and 3.1 GFLOPs at 512x512, 36-38 ms of single-core ONNX Runtime
#: compute, an estimated ~20 ms per frame with 2 threads on an idle 2-core machine (2-thread
#: time was 0.52x single-core for the paper configurations). The paper's dense recurrent
#: convolutions are kept; ``separable=True`` roughly halves the time (1.1 GFLOPs).
CPU_DEFAULT_KWARGS: dict[str, object] = {
    "width_mult": 0.5,
    "depth_mult": 0.5,
    "recurrent_steps": 3,
    "separable": False,
    "full_res_head": False,
}


class RecurrentConvLayer(nn.Module):
    """Recurrent convolutional layer unrolled over ``steps`` time steps (seed 001 Eq. 1).

    ``O(0) = relu(BN_0(w_c * x))`` and, for ``t = 1 .. steps``,
    ``O(t) = relu(BN_t(w_c * x + w_r * O(t - 1)))``: the feed-forward weights ``w_c`` see the
    (constant) block input, the recurrent weights ``w_r`` the previous state; both are
    shared across time, so ``t = 3`` is one convolution followed by three recurrent
    convolutions (Fig. 4 right). The bias ``b_k`` of Eq. 1 is carried by the BN shift; a
    BN per time step keeps the statistics of each unrolled step separate.

    Parameters
    ----------
    channels : int
        Input and output channels.
    steps : int
        Number of recurrent steps ``t`` (0 gives a plain conv-BN-ReLU).
    separable : bool
        Use depthwise 3x3 + pointwise 1x1 convolutions for ``w_c`` and ``w_r`` (cheaper on a
        CPU) instead of dense 3x3 convolutions.

    Shapes
    ------
    ``(B, channels, H, W) -> (B, channels, H, W)``
    """

    def __init__(self, channels: int, steps: int = 3, separable: bool = False) -> None:
        super().__init__()
        if steps < 0:
            raise ValueError(f"recurrent steps={steps}; expected an integer >= 0 (paper: 3)")
        self.steps = steps
        self.feedforward = _recurrent_conv(channels, separable)  # w_c
        self.recurrent = _recurrent_conv(channels, separable) if steps > 0 else None  # w_r
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(steps + 1))

    def unroll(self, x: torch.Tensor) -> list[torch.Tensor]:
        """States ``[O(0), ..., O(steps)]`` after ReLU, each ``(B, channels, H, W)``."""
        feedforward = self.feedforward(x)  # computed once: x(t) is the block input for all t
        states = [torch.relu(self.norms[0](feedforward))]
        for step in range(1, self.steps + 1):
            states.append(torch.relu(self.norms[step](feedforward + self.recurrent(states[-1]))))
        return states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unroll(x)[-1]


def _recurrent_conv(channels: int, separable: bool) -> nn.Module:
    """3x3 convolution without BN or bias, dense or depthwise-separable."""
    if not separable:
        return nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        nn.Conv2d(channels, channels, 1, bias=False),
    )


class RecurrentResidualBlock(nn.Module):
    """Recurrent residual convolutional block (seed 001 Sec. 2.1, Eq. 2, Fig. 4 left).

    ``x_l = proj(x)`` (1x1 conv-BN when the channel count changes, else identity) and
    ``x_{l+1} = x_l + F(x_l)`` where ``F`` is ``num_layers`` stacked
    :class:`RecurrentConvLayer` (each already ends in ReLU, the ``max(0, O(t))`` of Eq. 2).

    Shapes
    ------
    ``(B, in_channels, H, W) -> (B, out_channels, H, W)``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        steps: int = 3,
        num_layers: int = 1,
        separable: bool = False,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers={num_layers}; a recurrent block needs >= 1 layer")
        self.project = (
            nn.Identity()
            if in_channels == out_channels
            else ConvBNReLU(in_channels, out_channels, 1, activation=None)
        )
        self.layers = nn.Sequential(
            *(RecurrentConvLayer(out_channels, steps, separable) for _ in range(num_layers))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(x)
        return x + self.layers(x)


class _RecurrentDecoderLevel(nn.Module):
    """Transposed conv + BN up, attention-gated skip, concat, recurrent residual fuse.

    ``(B, in_channels, h, w), skip (B, skip_channels, 2h, 2w) -> (B, skip_channels, 2h, 2w)``
    """

    def __init__(self, in_channels: int, skip_channels: int, fuse: nn.Module) -> None:
        super().__init__()
        self.up = TransposedConvBN(in_channels, skip_channels)
        self.attention = AdditiveAttentionGate(skip_channels, in_channels, gate_stride=2)
        self.fuse = fuse

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        gated_skip = self.attention(skip, x)  # gate = coarser decoder features (Eq. 3)
        return self.fuse(torch.cat([self.up(x), gated_skip], dim=1))


class FullResolutionRefinement(nn.Module):
    """Light full-resolution correction of the stride-2 logits (issue 12, "Resolution").

    The CPU variant of :class:`FRANet` predicts from stride-2 features through a 2x2
    transposed convolution, so a 1-2 px wire is drawn from features that never saw it at
    its own scale. This stage adds a residual correction computed at full resolution from
    the network INPUT (one 3x3 convolution) and the stride-2 features (a 2x2 stride-2
    transposed convolution to the same ``hidden`` channels), summed, normalized and
    rectified, then a 1x1 convolution to the class scores:

    ``logits = coarse_logits + C(relu(BN(conv3x3(x) + up2x2(f))))``

    No full-resolution tensor is wider than ``hidden`` channels. Measured with ONNX
    Runtime, one thread, 512x512, this 2-core CPU (``docs/results.md``): +8 ms at 4 hidden
    channels, +14 ms at 8, and +31 ms at 8 with a further depthwise-separable 3x3 at full
    resolution, which is why there is none. Not in seed 001 (its full-resolution head is
    a transposed conv + BN + ReLU and a 1x1, ``full_res_head=True``); written here because
    no library has it.

    Shapes
    ------
    ``x (B, 1, H, W), features (B, C, H/2, W/2) -> (B, num_classes, H, W)``
    """

    def __init__(self, feature_channels: int, num_classes: int, hidden: int = 4) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"refine_channels={hidden}; expected an integer >= 1")
        self.image = nn.Conv2d(1, hidden, 3, padding=1, bias=False)
        self.up = nn.ConvTranspose2d(feature_channels, hidden, 2, stride=2, bias=False)
        self.norm = nn.BatchNorm2d(hidden)
        self.classifier = nn.Conv2d(hidden, num_classes, 1)
        # start as "no correction": the coarse logits alone, the stage learns the residual
        nn.init.zeros_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.relu(self.norm(self.image(x) + self.up(features))))


class FRANet(SegmentationNet):
    """FRA-Net for multi-class fluoroscopy segmentation (seed 001 Sec. 2).

    Parameters
    ----------
    in_channels, num_classes, tip_head
        See :class:`~fluoro_training.models.base.SegmentationNet`.
    width_mult : float
        Multiplies every channel count (stem, encoder, decoder).
    depth_mult : float
        Multiplies the number of inverted residual blocks per encoder stage (rounded up).
    recurrent_steps : int
        ``t`` of the recurrent convolutional layers (paper: 3).
    recurrent_layers : int
        Recurrent convolutional layers per recurrent residual block.
    separable : bool
        Depthwise-separable instead of dense 3x3 convolutions in the recurrent blocks, the
        stride-2 fusion and the tip head (the CPU variant; the paper uses dense ones).
    stem_channels : int
        Channels of the 7x7 stem before ``width_mult``.
    final_channels : int, optional
        Channels of the full-resolution features before the heads (and hidden channels
        of the tip head); default ``make_divisible(16 * width_mult)``.
    full_res_head : bool
        ``True`` (paper): a last transposed conv + BN + ReLU makes full-resolution
        features, then a 1x1 convolution gives the logits. ``False`` (CPU variant): the
        logits come from a 2x2 stride-2 transposed convolution of the stride-2 decoder
        features and the tip head also runs at stride 2, so no full-resolution hidden
        features are computed (on a 2-core CPU these cost about a third of the run time).
    refine_head : bool
        With ``full_res_head=False``: add :class:`FullResolutionRefinement`, a cheap
        full-resolution residual correction fed by the input and the stride-2 features.
    refine_channels : int
        Hidden channels of the refinement (its only full-resolution tensors).
    tip_detach : bool
        The tip head reads the decoder features through ``detach()``: its own branch,
        whose loss trains only the head and can never pull the shared decoder away from
        segmentation (with shared gradients the tip loss had to be weighted 0.01 and the
        head never fired, issue 12).
    tip_context : int
        ``0``: the 3x3 :class:`TipHeatmapHead`. ``n`` in 1-4: :class:`ContextTipHead` with
        dilations ``(2, 4, 8, 16)[:n]`` and at least 16 channels, a head that sees enough
        of the curve to tell a wire end from a wire middle.

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
        recurrent_steps: int = 3,
        recurrent_layers: int = 1,
        separable: bool = False,
        stem_channels: int = 32,
        final_channels: int | None = None,
        full_res_head: bool = True,
        refine_head: bool = False,
        refine_channels: int = 4,
        tip_detach: bool = False,
        tip_context: int = 0,
    ) -> None:
        super().__init__(in_channels, num_classes, tip_head)
        if refine_head and full_res_head:
            raise ValueError(
                "refine_head=True needs full_res_head=False (the refinement replaces the "
                "full-resolution head)"
            )
        if width_mult <= 0 or depth_mult <= 0:
            raise ValueError(
                f"width_mult={width_mult}, depth_mult={depth_mult}; both must be > 0 (e.g. 0.5)"
            )
        stem_out = make_divisible(stem_channels * width_mult)
        final = make_divisible(16 * width_mult) if final_channels is None else final_channels

        def recurrent_block(cin: int, cout: int) -> RecurrentResidualBlock:
            return RecurrentResidualBlock(cin, cout, recurrent_steps, recurrent_layers, separable)

        # stride 2 -> stride 4: 7x7/2 convolution, 3x3/2 max-pooling (Sec. 2)
        self.stem = ConvBNReLU(in_channels, stem_out, 7, stride=2)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

        levels: list[nn.Module] = []
        level_channels: list[int] = []
        channels = stem_out
        for level_settings in FRA_ENCODER_SETTINGS:
            blocks: list[nn.Module] = []
            for expand_ratio, base_out, num_blocks, stride in level_settings:
                out = make_divisible(base_out * width_mult)
                repeats = max(1, math.ceil(num_blocks * depth_mult))
                blocks.append(inverted_residual_stage(channels, out, repeats, stride, expand_ratio))
                channels = out
            blocks.append(recurrent_block(channels, channels))
            levels.append(nn.Sequential(*blocks))
            level_channels.append(channels)
        self.encoder = nn.ModuleList(levels)  # outputs at strides 4, 8, 16, 32

        decoder: list[nn.Module] = []
        coarse = level_channels[-1]
        for skip in level_channels[-2::-1]:  # strides 16, 8, 4
            decoder.append(_RecurrentDecoderLevel(coarse, skip, recurrent_block(2 * skip, skip)))
            coarse = skip
        # Stride 2 uses the stem features; a plain conv keeps this high-resolution level cheap.
        high_res_fuse = (
            SeparableConvBNReLU(2 * stem_out, stem_out)
            if separable
            else ConvBNReLU(2 * stem_out, stem_out, 3)
        )
        decoder.append(_RecurrentDecoderLevel(coarse, stem_out, high_res_fuse))
        self.decoder = nn.ModuleList(decoder)
        self.full_res_head = full_res_head
        if full_res_head:
            self.final_up: nn.Module = TransposedConvBN(stem_out, final)  # stride 2 -> 1
            self.classifier: nn.Module = nn.Conv2d(final, num_classes, 1)
            head_in, head_upsample = final, 1
        else:
            # Heads read the stride-2 features; their transposed convs emit full resolution.
            self.final_up = nn.Identity()
            self.classifier = nn.ConvTranspose2d(stem_out, num_classes, 2, stride=2)
            head_in, head_upsample = stem_out, 2
        self.refine = (
            FullResolutionRefinement(stem_out, num_classes, refine_channels)
            if refine_head
            else None
        )
        self.tip_detach = tip_detach
        if not 0 <= tip_context <= len(TIP_CONTEXT_DILATIONS):
            raise ValueError(
                f"tip_context={tip_context}; expected 0 (3x3 head) to "
                f"{len(TIP_CONTEXT_DILATIONS)} dilated blocks"
            )
        self.tip: nn.Module | None = None
        if tip_head and tip_context:
            self.tip = ContextTipHead(
                head_in,
                max(final, TIP_CONTEXT_CHANNELS),
                TIP_CONTEXT_DILATIONS[:tip_context],
                upsample=head_upsample,
            )
        elif tip_head:
            self.tip = TipHeatmapHead(head_in, final, separable=separable, upsample=head_upsample)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        self.check_input(x)
        stem = self.stem(x)  # (B, c_stem, H/2, W/2)
        features = self.pool(stem)  # (B, c_stem, H/4, W/4)
        skips = [stem]
        for level in self.encoder:
            features = level(features)  # strides 4, 8, 16, 32
            skips.append(features)
        features = skips.pop()  # (B, c_32, H/32, W/32)
        for level, skip in zip(self.decoder, reversed(skips), strict=True):
            features = level(features, skip)  # resolution doubles: H/16 ... H/2
        features = self.final_up(features)  # (B, final, H, W), or (B, c_stem, H/2, W/2)
        if self.refine is None and not self.tip_detach:
            return build_outputs(features, self.classifier, self.tip, training=self.training)
        logits = self.classifier(features)
        if self.refine is not None:
            logits = logits + self.refine(x, features)
        outputs: dict[str, torch.Tensor | list[torch.Tensor]] = {"logits": logits}
        if self.tip is not None:
            outputs["tip_heatmap"] = self.tip(features.detach() if self.tip_detach else features)
        return outputs
