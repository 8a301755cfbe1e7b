"""L-SNet: localise a region of interest, then segment it (seed ``004_7d43b31c679c71c5.txt``).

Stages (seed 004 Sec. 2, Fig. 2):

1. **L-Net** (Sec. 2.1): an encoder-decoder, down-sampled five times and up-sampled three
   times to a feature map at 1/4 of the input, with two heads: a keypoint (KP) heatmap
   (Gaussian targets, Eq. 1) and a bounding-box regression (BBR) head that predicts, at
   every position, the distances ``(l, t, r, b)`` [px] to the left, top, right and bottom
   edges of the RoI box ("two convolutions with kernel size 3 followed by one convolution
   with kernel size 13"). For guidewires the keypoint is the guidewire **tip**, so the KP
   head is this model's ``"tip_heatmap"``; the box is the RoI that S-Net should segment
   (its target should enclose every foreground object to be segmented).
2. **RoI recalibration** (Sec. 2.2, Eq. 2-3): a differentiable affine resampling
   (``grid_sample``, bilinear) of the input image onto the RoI box enlarged by the margin
   ``m = 15`` px, at the input's own size ``H x W``.
3. **S-Net** (Sec. 2.3): a U-Net segmenting the recalibrated RoI.
4. **Inverse transform** (Sec. 2.4, Eq. 4): S-Net's logits are resampled back to the
   full frame with the inverse affine (``+ eps`` against division by zero); pixels
   outside the RoI get a fixed background-favouring logit vector, so ``"logits"`` are
   full-frame and pre-softmax.

Gradient decay (Sec. 2.5, Table 4): the keypoint and distances that build the affine pass
through :class:`GradientScale`, which multiplies the gradient flowing from S-Net back into
L-Net by ``gradient_decay`` (default 0.1, the best DSC in Table 4).

Choices where the paper is ambiguous or does not fit export (documented):

* Equations 2-4 are given for normalised grid coordinates; here with
  ``align_corners=False`` a box spanning ``[x0, x1] x [y0, y1]`` [px] (continuous, pixel
  centres at integers) is mapped onto the S-Net image extent ``[-0.5, W - 0.5]``:
  ``s_x = (x1 - x0) / W``, ``t_x = (x0 + x1 + 1) / W - 1`` and likewise for ``y``, with
  ``x0 = x_k - l - m``, ``x1 = x_k + r + m``.
* One RoI per image: the paper thresholds the heatmap and takes every connected
  component, which is data-dependent control flow. Here the keypoint is the heatmap peak
  (``argmax``/``topk``, exportable), refined to sub-cell precision by a soft-argmax over
  its 3x3 neighbourhood (differentiable w.r.t. the heatmap); in training mode the peak is
  drawn at random among the top three, as in Sec. 2.5. The distances are read with the
  same soft weights.
* The 1/4-resolution feature cell ``(i, j)`` maps to input pixel ``(4 j + 1.5, 4 i + 1.5)``
  (the centre of its 4x4 block, "center-aligned sampling"); distances are predicted as
  ``softplus(raw) * 4`` [px], i.e. in feature cells, to keep them positive.
* L-Net and S-Net are plain U-Nets (``Conv3x3-BN-ReLU`` x 2 per level), the basic
  structure of Fig. 3, without ImageNet pre-training (none is available here).

Tensor layout: ``(B, C, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fluoro_training.models.attention import ConvBNReLU
from fluoro_training.models.base import SegmentationNet

#: RoI border margin ``m`` [px] of seed 004 Eq. 3.
DEFAULT_MARGIN_PX = 15.0
#: Resolution divisor of L-Net's output feature map (five halvings, three doublings).
LNET_OUTPUT_STRIDE = 4
#: Smooth term of Eq. 4 against division by zero in the inverse scale.
INVERSE_EPS = 1e-6


class GradientScale(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by ``factor`` backwards.

    Seed 004 Sec. 2.5: "We decay gradients back-propagated from S-Net to L-Net by a
    factor". Exports to ONNX as ``Identity``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output * ctx.factor, None

    @staticmethod
    def symbolic(graph, x, factor):
        return graph.op("Identity", x)


def scale_gradient(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` unchanged, with its gradient multiplied by ``factor`` (see :class:`GradientScale`)."""
    return GradientScale.apply(x, factor)


def roi_affine_from_box(
    keypoint_px: torch.Tensor, distances_px: torch.Tensor, height: int, width: int, margin_px: float
) -> torch.Tensor:
    """Affine ``theta`` mapping S-Net grid coordinates to image grid coordinates (Eq. 2-3).

    Parameters
    ----------
    keypoint_px : torch.Tensor
        ``(B, 2)`` keypoint ``(x_k, y_k)`` [px] in the input image.
    distances_px : torch.Tensor
        ``(B, 4)`` distances ``(l, t, r, b)`` [px] from the keypoint to the box edges.
    height, width : int
        Input (and S-Net) image size [px].
    margin_px : float
        Border margin ``m`` [px] added on every side.

    Returns
    -------
    torch.Tensor
        ``(B, 2, 3)`` ``[[s_x, 0, t_x], [0, s_y, t_y]]`` in ``grid_sample``
        (``align_corners=False``) normalised coordinates: an S-Net pixel at normalised
        ``(u, v)`` samples the image at ``(s_x u + t_x, s_y v + t_y)``.
    """
    x_k, y_k = keypoint_px[:, 0], keypoint_px[:, 1]
    left, top, right, bottom = distances_px.unbind(dim=1)
    x0, x1 = x_k - left - margin_px, x_k + right + margin_px
    y0, y1 = y_k - top - margin_px, y_k + bottom + margin_px
    scale_x, scale_y = (x1 - x0) / width, (y1 - y0) / height
    shift_x, shift_y = (x0 + x1 + 1.0) / width - 1.0, (y0 + y1 + 1.0) / height - 1.0
    zeros = torch.zeros_like(scale_x)
    row_x = torch.stack([scale_x, zeros, shift_x], dim=1)
    row_y = torch.stack([zeros, scale_y, shift_y], dim=1)
    return torch.stack([row_x, row_y], dim=1)  # (B, 2, 3)


def invert_roi_affine(theta: torch.Tensor, eps: float = INVERSE_EPS) -> torch.Tensor:
    """Inverse of an axis-aligned ``theta`` (Eq. 4): ``s' = 1 / (s + eps)``, ``t' = -t s'``."""
    scale_x, scale_y = theta[:, 0, 0], theta[:, 1, 1]
    shift_x, shift_y = theta[:, 0, 2], theta[:, 1, 2]
    inverse_x, inverse_y = 1.0 / (scale_x + eps), 1.0 / (scale_y + eps)
    zeros = torch.zeros_like(scale_x)
    row_x = torch.stack([inverse_x, zeros, -shift_x * inverse_x], dim=1)
    row_y = torch.stack([zeros, inverse_y, -shift_y * inverse_y], dim=1)
    return torch.stack([row_x, row_y], dim=1)  # (B, 2, 3)


def axis_aligned_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Sampling grid ``(B, H, W, 2)`` of an axis-aligned ``theta`` (``align_corners=False``).

    Equivalent to ``F.affine_grid(theta, (B, C, H, W), align_corners=False)`` when the
    off-diagonal terms are 0, but built from elementwise ops so that it exports to
    ONNX opset 17 (``AffineGrid`` needs opset 20).
    """
    columns = torch.arange(width, dtype=theta.dtype, device=theta.device)
    rows = torch.arange(height, dtype=theta.dtype, device=theta.device)
    u = (2.0 * columns + 1.0) / width - 1.0  # (W,)
    v = (2.0 * rows + 1.0) / height - 1.0  # (H,)
    grid_x = theta[:, 0, 0].view(-1, 1, 1) * u.view(1, 1, -1) + theta[:, 0, 2].view(-1, 1, 1)
    grid_y = theta[:, 1, 1].view(-1, 1, 1) * v.view(1, -1, 1) + theta[:, 1, 2].view(-1, 1, 1)
    grid_x = grid_x.expand(-1, height, width)
    grid_y = grid_y.expand(-1, height, width)
    return torch.stack([grid_x, grid_y], dim=-1)  # (B, H, W, 2)


def recalibrate_roi(image: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """RoI recalibration (Eq. 2): resample ``image`` onto the RoI of ``theta`` at its own size.

    ``image (B, C, H, W)``, ``theta (B, 2, 3)`` -> ``(B, C, H, W)``; bilinear, zeros outside.
    Use the same call to warp targets (e.g. one-hot masks) into the RoI frame for the
    S-Net loss.
    """
    grid = axis_aligned_grid(theta, image.shape[-2], image.shape[-1]).to(image.dtype)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def restore_full_frame(
    roi_tensor: torch.Tensor, theta: torch.Tensor, eps: float = INVERSE_EPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse transform (Eq. 4) of an RoI-frame tensor back to the full frame.

    Returns ``(restored (B, C, H, W), inside (B, 1, H, W))`` where ``inside`` in ``[0, 1]``
    is the bilinear coverage of the RoI (1 inside, 0 outside, fractional on its border).
    """
    inverse = invert_roi_affine(theta, eps)
    grid = axis_aligned_grid(inverse, roi_tensor.shape[-2], roi_tensor.shape[-1])
    grid = grid.to(roi_tensor.dtype)
    restored = F.grid_sample(
        roi_tensor, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    ones = torch.ones_like(roi_tensor[:, :1])
    inside = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return restored, inside


class _DoubleConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            ConvBNReLU(in_channels, out_channels, 3), ConvBNReLU(out_channels, out_channels, 3)
        )


class _UNetBody(nn.Module):
    """U-Net features: ``len(widths) - 1`` halvings, then ``num_up`` doublings with skips.

    ``(B, in_channels, H, W) -> (B, widths[-1 - num_up], H / 2^(L-1-num_up), ...)``
    """

    def __init__(self, in_channels: int, widths: list[int], num_up: int) -> None:
        super().__init__()
        self.encoder = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.encoder.append(_DoubleConv(previous, width))
            previous = width
        self.decoder = nn.ModuleList()
        for level in range(num_up):
            skip_width = widths[-2 - level]
            self.decoder.append(_DoubleConv(previous + skip_width, skip_width))
            previous = skip_width
        self.out_channels = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for level, block in enumerate(self.decoder):
            skip = skips[-2 - level]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))  # (B, C_level, 2h, 2w)
        return x


class LocalizationNet(nn.Module):
    """L-Net (seed 004 Sec. 2.1, Fig. 3): U-Net to 1/4 resolution + KP and BBR heads.

    Shapes
    ------
    ``(B, 1, H, W) -> (keypoint_logits (B, 1, H/4, W/4), distances_px (B, 4, H/4, W/4))``
    """

    def __init__(self, in_channels: int, base_width: int) -> None:
        super().__init__()
        c = base_width
        self.body = _UNetBody(in_channels, [c, 2 * c, 4 * c, 8 * c, 16 * c, 16 * c], num_up=3)
        features = self.body.out_channels
        self.keypoint_head = nn.Sequential(
            ConvBNReLU(features, features, 3), nn.Conv2d(features, 1, 1)
        )
        # Prior probability 0.1 on every cell, the CenterNet initialisation for Gaussian
        # heatmaps, so that the early focal loss is not swamped by background.
        nn.init.constant_(self.keypoint_head[-1].bias, -2.19)
        self.box_head = nn.Sequential(
            ConvBNReLU(features, features, 3),
            ConvBNReLU(features, features, 3),
            nn.Conv2d(features, 4, 13, padding=6),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)  # (B, 4c, H/4, W/4)
        keypoint_logits = self.keypoint_head(features)  # (B, 1, H/4, W/4)
        distances_px = F.softplus(self.box_head(features)) * LNET_OUTPUT_STRIDE  # (B, 4, ...)
        return keypoint_logits, distances_px


def select_keypoint(
    keypoint_logits: torch.Tensor, distances_px: torch.Tensor, random_top_k: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Peak of the keypoint heatmap, soft-refined, and the box distances there.

    Parameters
    ----------
    keypoint_logits : torch.Tensor
        ``(B, 1, h, w)`` pre-sigmoid heatmap at 1/4 resolution.
    distances_px : torch.Tensor
        ``(B, 4, h, w)`` box distances [px].
    random_top_k : int
        1 takes the maximum; ``k > 1`` draws uniformly among the ``k`` highest cells
        (training, seed 004 Sec. 2.5).

    Returns
    -------
    tuple of torch.Tensor
        ``keypoint_px (B, 2)`` as ``(x, y)`` [px] of the input image and
        ``distances (B, 4)`` [px]; both differentiable (soft-argmax over the 3x3
        neighbourhood of the chosen cell).
    """
    batch, _, height, width = keypoint_logits.shape
    flat_logits = keypoint_logits.reshape(batch, height * width)  # (B, h*w)
    top_k = min(random_top_k, height * width)
    _, top_indices = torch.topk(flat_logits, top_k, dim=1)  # (B, k)
    if top_k > 1:
        pick = torch.randint(0, top_k, (batch, 1), device=flat_logits.device)
        peak_index = torch.gather(top_indices, 1, pick)  # (B, 1)
    else:
        peak_index = top_indices
    peak_row = torch.div(peak_index, width, rounding_mode="floor").to(keypoint_logits.dtype)
    peak_col = (peak_index % width).to(keypoint_logits.dtype)  # (B, 1)
    cols = torch.arange(width, dtype=keypoint_logits.dtype, device=keypoint_logits.device)
    rows = torch.arange(height, dtype=keypoint_logits.dtype, device=keypoint_logits.device)
    col_grid = cols.view(1, 1, -1).expand(1, height, width).reshape(1, height * width)
    row_grid = rows.view(1, -1, 1).expand(1, height, width).reshape(1, height * width)
    near_peak = ((col_grid - peak_col).abs() <= 1.0) & ((row_grid - peak_row).abs() <= 1.0)
    masked = torch.where(near_peak, flat_logits, torch.full_like(flat_logits, -1e4))
    weights = torch.softmax(masked, dim=1)  # (B, h*w), zero away from the peak
    cell_x = (weights * col_grid).sum(dim=1)
    cell_y = (weights * row_grid).sum(dim=1)
    # Centre of the 4x4 input block of a cell (pixel centres at integers).
    half_block = (LNET_OUTPUT_STRIDE - 1) / 2.0
    keypoint_px = torch.stack(
        [cell_x * LNET_OUTPUT_STRIDE + half_block, cell_y * LNET_OUTPUT_STRIDE + half_block], dim=1
    )  # (B, 2)
    distances = (distances_px.reshape(batch, 4, height * width) * weights.unsqueeze(1)).sum(dim=2)
    return keypoint_px, distances  # (B, 2), (B, 4)


class LSNet(SegmentationNet):
    """L-SNet: L-Net -> RoI recalibration -> S-Net -> inverse transform (seed 004 Fig. 2).

    Parameters
    ----------
    in_channels : int
        Must be 1 (fluoroscopy).
    num_classes : int
        Output classes including background.
    tip_head : bool
        Return the L-Net keypoint (guidewire tip) heatmap, up-sampled to ``H x W``, as
        ``"tip_heatmap"``. The keypoint head is always built: it places the RoI.
    width_mult : float
        Multiplies the base width 32 of both U-Nets.
    margin_px : float
        RoI border margin ``m`` [px] (Eq. 3; 15 in the paper).
    gradient_decay : float
        Factor on the gradient from S-Net into L-Net (Sec. 2.5; 0.1 best in Table 4).
    train_top_k : int
        In training the RoI keypoint is drawn among this many highest heatmap cells.
    outside_logit_gap : float
        Outside the RoI the logits are ``0`` for background and ``-outside_logit_gap``
        for the other classes (softmax background probability ``1 / (1 + (C-1) e^-gap)``).

    Shapes
    ------
    ``(B, 1, H, W)``, ``H, W`` multiples of 32 -> ``{"logits": (B, C, H, W),
    "tip_heatmap": (B, 1, H, W)}``. In training mode also:

    * ``"keypoint_logits"`` ``(B, 1, H/4, W/4)``: the KP head before up-sampling, on the
      grid of the distances (pair it with ``box_distances`` in ``LSNetLoss``);
    * ``"box_distances"`` ``(B, 4, H/4, W/4)`` [px] as ``(l, t, r, b)``;
    * ``"keypoint_px"`` ``(B, 2)`` and ``"roi_distances_px"`` ``(B, 4)`` [px]: the
      keypoint and distances that placed the RoI;
    * ``"roi_affine"`` ``(B, 2, 3)``: use with :func:`recalibrate_roi` to warp the targets
      into the RoI frame;
    * ``"roi_logits"`` ``(B, C, H, W)``: S-Net output in the RoI frame.
    """

    stride = 32

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        tip_head: bool = True,
        width_mult: float = 1.0,
        margin_px: float = DEFAULT_MARGIN_PX,
        gradient_decay: float = 0.1,
        train_top_k: int = 3,
        outside_logit_gap: float = 10.0,
    ) -> None:
        super().__init__(in_channels, num_classes, tip_head)
        if width_mult <= 0:
            raise ValueError(f"width_mult={width_mult}; expected a positive factor such as 0.5")
        if margin_px < 0:
            raise ValueError(f"margin_px={margin_px}; expected a margin >= 0 px (paper: 15)")
        if not 0.0 <= gradient_decay <= 1.0:
            raise ValueError(
                f"gradient_decay={gradient_decay}; expected a factor in [0, 1] (paper: 0.1)"
            )
        if train_top_k < 1:
            raise ValueError(f"train_top_k={train_top_k}; expected >= 1 (paper: 3)")
        c = max(int(round(32 * width_mult)), 4)
        self.base_width = c
        self.margin_px = float(margin_px)
        self.gradient_decay = float(gradient_decay)
        self.train_top_k = train_top_k
        self.localization_net = LocalizationNet(in_channels, c)
        self.segmentation_body = _UNetBody(in_channels, [c, 2 * c, 4 * c, 8 * c, 16 * c], 4)
        self.segmentation_head = nn.Conv2d(self.segmentation_body.out_channels, num_classes, 1)
        outside = torch.full((1, num_classes, 1, 1), -float(outside_logit_gap))
        outside[:, 0] = 0.0
        self.register_buffer("outside_logits", outside, persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_input(x)
        height, width = x.shape[-2], x.shape[-1]
        keypoint_logits, distances_map = self.localization_net(x)  # (B,1,h,w), (B,4,h,w)
        # The RoI geometry is computed in float64: the S-Net input is resampled at these
        # positions, so a one-ulp float32 difference between torch and ONNX Runtime in the
        # keypoint would move every sample and show up as a parity error on textured input.
        keypoint_px, distances = select_keypoint(
            keypoint_logits.double(),
            distances_map.double(),
            self.train_top_k if self.training else 1,
        )  # (B, 2), (B, 4) float64
        theta = roi_affine_from_box(
            scale_gradient(keypoint_px, self.gradient_decay),
            scale_gradient(distances, self.gradient_decay),
            height,
            width,
            self.margin_px,
        )  # (B, 2, 3) float64
        roi_image = recalibrate_roi(x, theta)  # (B, 1, H, W)
        roi_logits = self.segmentation_head(self.segmentation_body(roi_image))  # (B, C, H, W)
        restored, inside = restore_full_frame(roi_logits, theta)  # (B,C,H,W), (B,1,H,W)
        logits = restored + (1.0 - inside) * self.outside_logits
        outputs: dict[str, torch.Tensor] = {"logits": logits}
        if self.tip_head:
            outputs["tip_heatmap"] = F.interpolate(
                keypoint_logits, size=(height, width), mode="bilinear", align_corners=False
            )  # (B, 1, H, W)
        if self.training:
            outputs.update(
                keypoint_logits=keypoint_logits,
                box_distances=distances_map,
                keypoint_px=keypoint_px.to(x.dtype),
                roi_distances_px=distances.to(x.dtype),
                roi_affine=theta.to(x.dtype),
                roi_logits=roi_logits,
            )
        return outputs
