"""U-Net and Attention U-Net baselines (MONAI), wrapped to the registry interface.

Both seed papers compare against these two networks (seed ``000_a7406d7b89063154.txt``
Table 2, seed ``001_d0d03ac8067c31fe.txt`` Sec. 4). We use MONAI's implementations
(``monai.networks.nets.BasicUNet`` and ``AttentionUnet``) rather than writing our own.

The tip heatmap is one extra output channel of the MONAI network: channels
``[0, num_classes)`` are the class logits, channel ``num_classes`` the pre-sigmoid tip
heatmap. Both networks down-sample four times, so ``H`` and ``W`` must be multiples of 16.

Tensor layout: input ``(B, 1, H, W)``; outputs as in :mod:`fluoro_training.models.base`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import AttentionUnet, BasicUNet

from fluoro_training.models.base import SegmentationNet
from fluoro_training.models.mobilenet import make_divisible

#: BasicUNet features (5 encoder levels + the last decoder level) at ``width_mult=1``:
#: MONAI's default, about 2.0 M parameters, the same size as the Attention U-Net below so
#: that the two baselines compare like for like.
UNET_FEATURES: tuple[int, ...] = (32, 32, 64, 128, 256, 32)

#: AttentionUnet channels per level at ``width_mult=1`` (about 2 M parameters).
ATTENTION_UNET_CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 256)


def _scaled(channels: Sequence[int], width_mult: float) -> tuple[int, ...]:
    if width_mult <= 0:
        raise ValueError(f"width_mult={width_mult}; expected > 0 (e.g. 0.5, 1.0)")
    return tuple(make_divisible(c * width_mult, divisor=4) for c in channels)


def _split_outputs(
    raw: torch.Tensor, num_classes: int, tip_head: bool
) -> dict[str, torch.Tensor | list[torch.Tensor]]:
    """``(B, num_classes [+1], H, W)`` -> ``{"logits", "tip_heatmap"}``."""
    outputs: dict[str, torch.Tensor | list[torch.Tensor]] = {"logits": raw[:, :num_classes]}
    if tip_head:
        outputs["tip_heatmap"] = raw[:, num_classes : num_classes + 1]
    return outputs


class UNetBaseline(SegmentationNet):
    """MONAI ``BasicUNet`` (2-D, instance norm, LeakyReLU, transposed-conv up-sampling).

    Parameters
    ----------
    in_channels, num_classes, tip_head
        See :class:`~fluoro_training.models.base.SegmentationNet`.
    width_mult : float
        Multiplies :data:`UNET_FEATURES`.
    features : sequence of 6 int, optional
        Explicit BasicUNet ``features``; overrides ``width_mult``.
    """

    stride = 16

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        tip_head: bool = True,
        width_mult: float = 1.0,
        features: Sequence[int] | None = None,
    ) -> None:
        super().__init__(in_channels, num_classes, tip_head)
        features = _scaled(UNET_FEATURES, width_mult) if features is None else tuple(features)
        if len(features) != 6:
            raise ValueError(f"features={features}; BasicUNet needs 6 values (5 levels + last)")
        self.features = features
        self.net = BasicUNet(
            spatial_dims=2,
            in_channels=in_channels,
            out_channels=num_classes + int(tip_head),
            features=features,
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        self.check_input(x)
        return _split_outputs(self.net(x), self.num_classes, self.tip_head)


class AttentionUNetBaseline(SegmentationNet):
    """MONAI ``AttentionUnet`` (Oktay et al. 2018; the papers' Attention U-Net baseline).

    Parameters
    ----------
    in_channels, num_classes, tip_head
        See :class:`~fluoro_training.models.base.SegmentationNet`.
    width_mult : float
        Multiplies :data:`ATTENTION_UNET_CHANNELS`.
    channels : sequence of 5 int, optional
        Explicit channels per level; overrides ``width_mult``.
    """

    stride = 16

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        tip_head: bool = True,
        width_mult: float = 1.0,
        channels: Sequence[int] | None = None,
    ) -> None:
        super().__init__(in_channels, num_classes, tip_head)
        channels = (
            _scaled(ATTENTION_UNET_CHANNELS, width_mult) if channels is None else tuple(channels)
        )
        if len(channels) != 5:
            raise ValueError(f"channels={channels}; expected 5 levels (4 down-samplings)")
        self.channels = channels
        self.net = AttentionUnet(
            spatial_dims=2,
            in_channels=in_channels,
            out_channels=num_classes + int(tip_head),
            channels=channels,
            strides=(2,) * (len(channels) - 1),
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        self.check_input(x)
        return _split_outputs(self.net(x), self.num_classes, self.tip_head)
