"""Shared layers: conv-BN-activation, the additive attention gate, up-sampling and heads.

The additive attention gate is the Relevance Attention Module of LDA-Net (seed
``000_a7406d7b89063154.txt`` Sec. 2.1, Eq. 1) and the Attention Module of FRA-Net (seed
``001_d0d03ac8067c31fe.txt`` Sec. 2.2, Eq. 3); both papers use the same equation

    alpha_i = sigmoid(psi^T relu(W_x^T x_i + W_g^T g_i + b_g) + b_psi),   x_hat_i = x_i * alpha_i

Tensor layout: ``(B, C, H, W)`` everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = ("relu", "relu6", None)


class ConvBNReLU(nn.Sequential):
    """``Conv2d (no bias) -> BatchNorm2d -> activation`` with "same" padding.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of input and output.
    kernel_size : int
        Odd square kernel size; padding keeps ``H / stride``.
    stride : int
        Convolution stride.
    groups : int
        ``groups == in_channels == out_channels`` gives a depthwise convolution.
    dilation : int
        Dilation of the kernel (padding grows with it).
    activation : {"relu", "relu6", None}
        Non-linearity after BN; ``None`` for a linear layer.

    Shapes
    ------
    ``(B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride)``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        activation: str | None = "relu",
    ) -> None:
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size={kernel_size}; expected an odd size for 'same' padding")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation={activation!r}; expected one of {_ACTIVATIONS}")
        padding = dilation * (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if activation == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif activation == "relu6":
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class TransposedConvBN(nn.Sequential):
    """2x up-sampling decoder step: ``ConvTranspose2d(k=2, s=2) -> BN -> ReLU``.

    The LDA-Net / FRA-Net decoder blocks are "transposed convolution and batch
    normalization" (seed 000 Sec. 2.1; seed 001 Sec. 2, Fig. 3 right). A 2x2 kernel with
    stride 2 has no overlapping taps, so it cannot produce checkerboard artefacts.

    Shapes
    ------
    ``(B, in_channels, H, W) -> (B, out_channels, 2 H, 2 W)``
    """

    def __init__(self, in_channels: int, out_channels: int, activation: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if activation:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class AdditiveAttentionGate(nn.Module):
    """Additive attention gate on a skip connection (seed 000 Eq. 1 = seed 001 Eq. 3).

    ``W_x`` and ``W_g`` are linear maps without spatial support (1x1 convolutions, each
    followed by BN); the skip features ``x`` are sub-sampled to the resolution of the
    coarser gating signal ``g`` by the stride of ``W_x`` ("the input feature map is
    down-sampled to the resolution of the gating signal"); ``psi`` maps the
    ``inter_channels`` ReLU response to one scalar per pixel, a sigmoid gives
    ``alpha in [0, 1]``, which is resampled bilinearly (the 2-D case of the papers'
    trilinear resampling) to the skip resolution and multiplies every channel of ``x``.

    Parameters
    ----------
    skip_channels : int
        Channels ``F_l`` of the skip features ``x``.
    gate_channels : int
        Channels of the gating signal ``g`` (the coarser decoder features).
    inter_channels : int, optional
        Channels of the additive-attention space; default ``max(skip_channels // 2, 8)``.
    gate_stride : int
        Resolution ratio skip / gate (1 when the gate was already up-sampled, 2 when the
        gate comes from the next coarser level).

    Shapes
    ------
    ``forward(x, g)``: ``x (B, skip_channels, H, W)``, ``g (B, gate_channels, H / gate_stride,
    W / gate_stride)`` -> ``(B, skip_channels, H, W)``.
    """

    def __init__(
        self,
        skip_channels: int,
        gate_channels: int,
        inter_channels: int | None = None,
        gate_stride: int = 2,
    ) -> None:
        super().__init__()
        if gate_stride < 1:
            raise ValueError(f"gate_stride={gate_stride}; expected an integer >= 1")
        inter_channels = max(skip_channels // 2, 8) if inter_channels is None else inter_channels
        self.gate_stride = gate_stride
        self.skip_transform = nn.Sequential(  # W_x (b_g is carried by W_g's BN shift)
            nn.Conv2d(skip_channels, inter_channels, 1, stride=gate_stride, bias=False),
            nn.BatchNorm2d(inter_channels),
        )
        self.gate_transform = nn.Sequential(  # W_g, b_g
            nn.Conv2d(gate_channels, inter_channels, 1, bias=False),
            nn.BatchNorm2d(inter_channels),
        )
        self.psi = nn.Conv2d(inter_channels, 1, 1, bias=True)  # psi, b_psi

    def attention_coefficients(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """``alpha`` of Eq. 1 / Eq. 3 at the skip resolution, ``(B, 1, H, W)`` in ``[0, 1]``."""
        if x.shape[-2] != g.shape[-2] * self.gate_stride or (
            x.shape[-1] != g.shape[-1] * self.gate_stride
        ):
            raise ValueError(
                f"skip {tuple(x.shape[-2:])} and gate {tuple(g.shape[-2:])} do not differ by "
                f"gate_stride={self.gate_stride}; pass features whose sizes match that ratio"
            )
        additive = F.relu(self.skip_transform(x) + self.gate_transform(g))  # (B, F_int, h, w)
        alpha = torch.sigmoid(self.psi(additive))  # (B, 1, h, w)
        if self.gate_stride != 1:
            alpha = F.interpolate(
                alpha, scale_factor=float(self.gate_stride), mode="bilinear", align_corners=False
            )  # (B, 1, H, W)
        return alpha

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return x * self.attention_coefficients(x, g)


#: Initial tip-heatmap logit: sigmoid(-2.19) = 0.1.
TIP_PRIOR_LOGIT = -2.19


class TipHeatmapHead(nn.Sequential):
    """Guidewire-tip heatmap head on the last decoder features: ``ConvBNReLU 3x3 -> 1x1``.

    Outputs pre-sigmoid logits of a Gaussian tip heatmap (see
    ``fluoro_training.models.base``).

    Parameters
    ----------
    in_channels : int
        Channels of the (full-resolution) decoder features.
    hidden_channels : int
        Channels of the 3x3 layer.
    separable : bool
        Depthwise 3x3 + pointwise 1x1 instead of a dense 3x3: at full resolution the dense
        3x3 can cost as much as a whole encoder stage on a CPU.
    upsample : int
        ``1``: the last layer is a 1x1 convolution. ``k > 1``: the head runs on features at
        ``1/k`` of the output resolution and its last layer is a ``k x k`` stride-``k``
        transposed convolution, which avoids full-resolution hidden features.

    Shapes
    ------
    ``(B, in_channels, H / upsample, W / upsample) -> (B, 1, H, W)``
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 16,
        separable: bool = False,
        upsample: int = 1,
    ) -> None:
        if upsample < 1:
            raise ValueError(f"upsample={upsample}; expected an integer >= 1")
        hidden = (
            SeparableConvBNReLU(in_channels, hidden_channels)
            if separable
            else ConvBNReLU(in_channels, hidden_channels, 3)
        )
        super().__init__(hidden, tip_output_layer(hidden_channels, upsample))


def tip_output_layer(hidden_channels: int, upsample: int) -> nn.Module:
    """The last layer of a tip head: a 1x1 convolution (``upsample`` 1) or a ``k x k``
    stride-``k`` transposed convolution to full resolution, one logit channel, its bias
    at :data:`TIP_PRIOR_LOGIT`.

    The bias starts every pixel at a tip probability of ~0.1 (CenterNet's prior): with a
    zero bias the penalty-reduced focal loss of an all-0.5 heatmap is thousands of times
    the segmentation loss and drowns it for the first few hundred steps.
    """
    last = (
        nn.Conv2d(hidden_channels, 1, 1, bias=True)
        if upsample == 1
        else nn.ConvTranspose2d(hidden_channels, 1, upsample, stride=upsample, bias=True)
    )
    nn.init.constant_(last.bias, TIP_PRIOR_LOGIT)
    return last


class ContextTipHead(nn.Module):
    """Tip heatmap head with its own spatial context: ``1x1 -> dilated residual blocks ->
    k x k / k transposed conv``.

    A guidewire tip is where the wire *ends*: one side of the curve holds wire, the other
    does not. Segmentation features say "wire here" but not "wire ends here", and the
    3x3 :class:`TipHeatmapHead` on them sees only a few pixels of the curve (issue 12:
    its heatmap stayed below 0.07 everywhere). Each block here is a depthwise 3x3 at
    dilation ``d`` and a pointwise 1x1 with a residual connection (the dilated context
    module of Yu & Koltun 2016, made depthwise-separable for the CPU), so dilations
    ``(2, 4, 8)`` see ``1 + 2 (2 + 4 + 8) = 29`` feature pixels across (58 px of a
    stride-2 input) at the cost of a few 1x1 convolutions.

    Parameters
    ----------
    in_channels : int
        Channels of the decoder features.
    hidden_channels : int
        Channels of the head.
    dilations : tuple of int
        One residual block per dilation, each >= 1.
    upsample : int
        Output resolution / feature resolution (``1``: a 1x1 last layer).

    Shapes
    ------
    ``(B, in_channels, H / upsample, W / upsample) -> (B, 1, H, W)``
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 16,
        dilations: tuple[int, ...] = (2, 4, 8),
        upsample: int = 1,
    ) -> None:
        super().__init__()
        if upsample < 1 or not dilations or min(dilations) < 1:
            raise ValueError(
                f"upsample={upsample}, dilations={dilations}; expected upsample >= 1 and at "
                "least one dilation, each >= 1"
            )
        self.entry = ConvBNReLU(in_channels, hidden_channels, 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(
                    hidden_channels,
                    hidden_channels,
                    3,
                    padding=d,
                    dilation=d,
                    groups=hidden_channels,
                    bias=False,
                ),
                nn.BatchNorm2d(hidden_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(hidden_channels, hidden_channels, 1, bias=False),
                nn.BatchNorm2d(hidden_channels),
            )
            for d in dilations
        )
        self.last = tip_output_layer(hidden_channels, upsample)
        # Near-zero output weights make the prior bias the whole logit at the start (a
        # default-initialized last layer gave logits of O(1) on most pixels and a first
        # loss ~1e5, hundreds of steps to unlearn).
        nn.init.normal_(self.last.weight, std=1e-3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.entry(features)
        for block in self.blocks:
            x = F.relu(x + block(x))
        return self.last(x)


class SeparableConvBNReLU(nn.Sequential):
    """Depthwise-separable 3x3: ``depthwise 3x3 conv-BN-ReLU -> pointwise 1x1 conv-BN-ReLU``.

    Shapes
    ------
    ``(B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride)``
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(
            ConvBNReLU(in_channels, in_channels, 3, stride=stride, groups=in_channels),
            ConvBNReLU(in_channels, out_channels, 1),
        )


def build_outputs(
    features: torch.Tensor,
    classifier: nn.Module,
    tip_head: nn.Module | None,
    aux_logits: list[torch.Tensor] | None = None,
    training: bool = False,
) -> dict[str, torch.Tensor | list[torch.Tensor]]:
    """Assemble the forward dict of ``fluoro_training.models.base``.

    ``features (B, C, H, W)`` at full resolution -> ``{"logits": (B, num_classes, H, W),
    "tip_heatmap": (B, 1, H, W) if tip_head, "aux_logits": [...] only when training}``.
    """
    outputs: dict[str, torch.Tensor | list[torch.Tensor]] = {"logits": classifier(features)}
    if tip_head is not None:
        outputs["tip_heatmap"] = tip_head(features)
    if training and aux_logits:
        outputs["aux_logits"] = aux_logits
    return outputs
