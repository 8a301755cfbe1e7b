"""Deformable convolution (DCNv1 / modulated DCNv2) built from ``grid_sample`` + a 1x1 conv.

FGA-Net's SDA gate (seed ``002_736d2e60a7c10fcc.txt``, section "SDA module", Eq. 1) is

    y(p) = sum_k  w_k * x(p + p_k + dp_k) * dm_k ,   k = 1..K (K = 9 for a 3x3 kernel)

with learned offsets ``dp_k`` and modulation scalars ``dm_k`` predicted per output pixel by
a plain convolution (Dai et al. 2017; Zhu et al. 2019, seed refs. 33-34).

Why written here: torchvision's ``deform_conv2d`` is the usual implementation, but there
is no CPU torchvision for our torch pin and its ONNX export is not supported. Sampling
all ``K`` shifted copies with ``torch.nn.functional.grid_sample`` (ONNX ``GridSample``,
opset >= 16) and contracting them with the kernel as one 1x1 convolution over
``C * K`` channels exports to ONNX and runs in ONNX Runtime.

Conventions
-----------
* Pixel centres at integer coordinates ``(x, y)``, ``x`` right, ``y`` down (as in
  ``fluoro_perception.core.types``).
* Offsets are ordered ``[dy_0, dx_0, dy_1, dx_1, ...]`` (the torchvision / mmcv layout)
  with kernel taps ``k = ki * kw + kj`` in row-major order; units [px] of the input.
* Bilinear sampling with zeros outside the image (a corner outside contributes 0, exactly
  as in the reference DCN kernels); ``grid_sample(align_corners=False)`` is used
  everywhere, whose normalised coordinate of pixel ``x`` is ``(2 x + 1) / W - 1``; this
  mapping stays valid for ``W = 1`` (``align_corners=True`` would divide by ``W - 1``).

Tensor layout: ``(B, C, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def kernel_tap_offsets(kernel_size: int, dilation: int) -> torch.Tensor:
    """Regular-grid tap positions ``p_k`` of Eq. 1, ``(K, 2)`` as ``(dy, dx)`` [px].

    Taps are relative to the top-left tap (padding is applied by the caller) and listed
    row-major, ``k = ki * kernel_size + kj``.
    """
    rows = torch.arange(kernel_size, dtype=torch.float32) * dilation
    grid_y, grid_x = torch.meshgrid(rows, rows, indexing="ij")
    return torch.stack([grid_y.reshape(-1), grid_x.reshape(-1)], dim=1)  # (K, 2)


def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> torch.Tensor:
    """Functional modulated deformable convolution (seed 002 Eq. 1).

    Parameters
    ----------
    x : torch.Tensor
        Input ``(B, C, H, W)``.
    offset : torch.Tensor
        ``(B, 2 K, H_out, W_out)`` sampling offsets ``dp_k`` [px], ``[dy_0, dx_0, dy_1, ...]``.
    weight : torch.Tensor
        Kernel ``(C_out, C, kh, kw)`` with ``kh == kw`` and ``K = kh * kw``.
    bias : torch.Tensor, optional
        ``(C_out,)``.
    mask : torch.Tensor, optional
        ``(B, K, H_out, W_out)`` modulation ``dm_k`` (DCNv2); ``None`` for DCNv1 (all ones).
    stride, padding, dilation : int
        As for ``torch.nn.functional.conv2d`` (square, same in both axes).

    Returns
    -------
    torch.Tensor
        ``(B, C_out, H_out, W_out)``; with zero offsets and unit mask it equals
        ``F.conv2d(x, weight, bias, stride, padding, dilation)``.
    """
    if x.ndim != 4:
        raise ValueError(f"x has shape {tuple(x.shape)}; expected (B, C, H, W)")
    out_channels, in_channels, kernel_h, kernel_w = weight.shape
    if kernel_h != kernel_w:
        raise ValueError(f"kernel {kernel_h}x{kernel_w}; expected a square kernel")
    if in_channels != x.shape[1]:
        raise ValueError(
            f"weight expects {in_channels} input channels, x has {x.shape[1]}; "
            "build the layer with in_channels matching the input"
        )
    num_taps = kernel_h * kernel_w
    height, width = x.shape[-2], x.shape[-1]
    out_h = (height + 2 * padding - dilation * (kernel_h - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kernel_w - 1) - 1) // stride + 1
    if offset.shape[1] != 2 * num_taps or offset.shape[-2:] != (out_h, out_w):
        raise ValueError(
            f"offset has shape {tuple(offset.shape)}; expected (B, {2 * num_taps}, {out_h}, "
            f"{out_w}) for a {kernel_h}x{kernel_w} kernel"
        )
    if mask is not None and (mask.shape[1] != num_taps or mask.shape[-2:] != (out_h, out_w)):
        raise ValueError(
            f"mask has shape {tuple(mask.shape)}; expected (B, {num_taps}, {out_h}, {out_w})"
        )

    batch = x.shape[0]
    taps = kernel_tap_offsets(kernel_h, dilation).to(dtype=x.dtype, device=x.device)  # (K, 2)
    # Top-left tap of every output pixel in input coordinates [px].
    base_y = torch.arange(out_h, dtype=x.dtype, device=x.device) * stride - padding  # (Ho,)
    base_x = torch.arange(out_w, dtype=x.dtype, device=x.device) * stride - padding  # (Wo,)
    offset = offset.reshape(batch, num_taps, 2, out_h, out_w)
    # Sample positions p + p_k + dp_k: (B, K, Ho, Wo) for y and for x.
    sample_y = base_y.view(1, 1, -1, 1) + taps[:, 0].view(1, -1, 1, 1) + offset[:, :, 0]
    sample_x = base_x.view(1, 1, 1, -1) + taps[:, 1].view(1, -1, 1, 1) + offset[:, :, 1]
    # Pixel -> grid_sample normalised coordinates (align_corners=False).
    grid_x = (2.0 * sample_x + 1.0) / width - 1.0
    grid_y = (2.0 * sample_y + 1.0) / height - 1.0
    grid = torch.stack([grid_x, grid_y], dim=-1)  # (B, K, Ho, Wo, 2)
    grid = grid.reshape(batch, num_taps * out_h, out_w, 2)  # (B, K*Ho, Wo, 2)
    sampled = F.grid_sample(
        x, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # (B, C, K*Ho, Wo)
    sampled = sampled.reshape(batch, in_channels, num_taps, out_h, out_w)  # (B, C, K, Ho, Wo)
    if mask is not None:
        sampled = sampled * mask.unsqueeze(1)  # dm_k broadcast over channels
    sampled = sampled.reshape(batch, in_channels * num_taps, out_h, out_w)  # (B, C*K, Ho, Wo)
    # weight[o, c, ki, kj] flattened to index c * K + k matches the sampled channel order.
    return F.conv2d(sampled, weight.reshape(out_channels, in_channels * num_taps, 1, 1), bias)


class DeformConv2d(nn.Module):
    """Deformable convolution layer whose offsets (and modulation) a plain conv predicts.

    The offset/modulation predictor is a ``kernel_size`` convolution with the same stride,
    padding and dilation as the deformable kernel, zero-initialised so that a freshly
    built layer is exactly a regular convolution (offsets 0, modulation
    ``2 * sigmoid(0) = 1``), the initialisation of DCNv2 (seed 002 refs. 33-34).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of input and output.
    kernel_size : int
        Square kernel size (``K = kernel_size ** 2`` taps); 3 in seed 002 Eq. 1.
    stride, dilation : int
        As for ``nn.Conv2d``.
    padding : int, optional
        Default ``dilation * (kernel_size - 1) // 2`` ("same" for stride 1).
    modulated : bool
        ``True`` predicts the modulation ``dm_k`` of Eq. 1 (DCNv2), ``False`` is DCNv1.
    bias : bool
        Learnable bias of the deformable kernel.

    Shapes
    ------
    ``(B, in_channels, H, W) -> (B, out_channels, H_out, W_out)``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        modulated: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or stride < 1 or dilation < 1:
            raise ValueError(
                f"kernel_size={kernel_size}, stride={stride}, dilation={dilation}; "
                "expected positive integers"
            )
        padding = dilation * (kernel_size - 1) // 2 if padding is None else padding
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.modulated = modulated
        self.num_taps = kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # the nn.Conv2d default
        if bias:
            fan_in = in_channels * self.num_taps
            bound = 1.0 / fan_in**0.5
            self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)
        predictor_channels = (3 if modulated else 2) * self.num_taps
        self.offset_predictor = nn.Conv2d(
            in_channels,
            predictor_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
        )
        nn.init.zeros_(self.offset_predictor.weight)
        nn.init.zeros_(self.offset_predictor.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prediction = self.offset_predictor(x)  # (B, 2K [+ K], Ho, Wo)
        offset = prediction[:, : 2 * self.num_taps]  # (B, 2K, Ho, Wo) [px]
        mask = None
        if self.modulated:
            # 2 * sigmoid keeps dm_k in (0, 2) with 1 at initialisation (plain conv).
            mask = 2.0 * torch.sigmoid(prediction[:, 2 * self.num_taps :])  # (B, K, Ho, Wo)
        return deform_conv2d(
            x,
            offset,
            self.weight,
            self.bias,
            mask,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
        )
