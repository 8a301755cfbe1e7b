"""Tests of the deformable convolution, FGA-Net, DDR-SAPC-U and L-SNet building blocks."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from fluoro_training.models.ddr_sapc_u import (
    DDRSAPCU,
    DualAttentionModule,
    ParallelBasicBlock,
    dual_attention_gating,
)
from fluoro_training.models.deform_conv import DeformConv2d, deform_conv2d
from fluoro_training.models.fga_net import BGAFusion, FGANet, SDABlock, spatial_shift
from fluoro_training.models.lsnet import (
    LSNet,
    axis_aligned_grid,
    recalibrate_roi,
    restore_full_frame,
    roi_affine_from_box,
    scale_gradient,
    select_keypoint,
)

# ----------------------------------------------------------------------------------------
# Deformable convolution
# ----------------------------------------------------------------------------------------


def _bilinear_zero_padded(image: np.ndarray, y: float, x: float) -> float:
    """Value of ``image (H, W)`` at ``(y, x)`` [px]; corners outside the image count as 0."""
    height, width = image.shape
    y0, x0 = math.floor(y), math.floor(x)
    value = 0.0
    for corner_y, weight_y in ((y0, 1.0 - (y - y0)), (y0 + 1, y - y0)):
        for corner_x, weight_x in ((x0, 1.0 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= corner_y < height and 0 <= corner_x < width:
                value += weight_y * weight_x * image[corner_y, corner_x]
    return value


def _reference_deform_conv(x, offset, weight, bias, mask, stride, padding, dilation):
    """Slow per-pixel deformable convolution in numpy (DCNv2 definition, seed 002 Eq. 1)."""
    batch, in_channels, _, _ = x.shape
    out_channels, _, kernel, _ = weight.shape
    out_h, out_w = offset.shape[-2:]
    out = np.zeros((batch, out_channels, out_h, out_w))
    for b in range(batch):
        for i in range(out_h):
            for j in range(out_w):
                for ki in range(kernel):
                    for kj in range(kernel):
                        k = ki * kernel + kj
                        y = i * stride - padding + ki * dilation + offset[b, 2 * k, i, j]
                        xx = j * stride - padding + kj * dilation + offset[b, 2 * k + 1, i, j]
                        modulation = 1.0 if mask is None else mask[b, k, i, j]
                        for c in range(in_channels):
                            sample = _bilinear_zero_padded(x[b, c], y, xx) * modulation
                            out[b, :, i, j] += weight[:, c, ki, kj] * sample
    return out + bias.reshape(1, -1, 1, 1)


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "modulated"),
    [(1, 1, 1, True), (2, 1, 1, True), (1, 2, 2, False), (2, 0, 1, False)],
)
def test_deform_conv_matches_per_pixel_reference(stride, padding, dilation, modulated):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 2, 5, 6))
    weight = rng.normal(size=(3, 2, 3, 3))
    bias = rng.normal(size=3)
    out_h = (5 + 2 * padding - 2 * dilation - 1) // stride + 1
    out_w = (6 + 2 * padding - 2 * dilation - 1) // stride + 1
    # Offsets up to +-2.5 px: fractional positions and taps that leave the image.
    offset = rng.uniform(-2.5, 2.5, size=(2, 18, out_h, out_w))
    mask = rng.uniform(0.0, 2.0, size=(2, 9, out_h, out_w)) if modulated else None
    expected = _reference_deform_conv(x, offset, weight, bias, mask, stride, padding, dilation)

    def as_tensor(array):
        return None if array is None else torch.from_numpy(array).float()

    actual = deform_conv2d(
        as_tensor(x),
        as_tensor(offset),
        as_tensor(weight),
        as_tensor(bias),
        as_tensor(mask),
        stride=stride,
        padding=padding,
        dilation=dilation,
    )
    np.testing.assert_allclose(actual.numpy(), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"),
    [(3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 2, 2), (5, 1, 2, 1), (1, 1, 0, 1)],
)
def test_deform_conv_with_zero_offsets_is_plain_conv(kernel, stride, padding, dilation):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 7)
    weight = torch.randn(4, 3, kernel, kernel)
    bias = torch.randn(4)
    expected = F.conv2d(x, weight, bias, stride, padding, dilation)
    zero_offset = torch.zeros(2, 2 * kernel * kernel, *expected.shape[-2:])
    unit_mask = torch.ones(2, kernel * kernel, *expected.shape[-2:])
    actual = deform_conv2d(x, zero_offset, weight, bias, unit_mask, stride, padding, dilation)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def test_fresh_deform_conv_layer_equals_its_plain_conv():
    torch.manual_seed(1)
    layer = DeformConv2d(3, 5, kernel_size=3, stride=2)
    x = torch.randn(1, 3, 8, 8)
    expected = F.conv2d(x, layer.weight, layer.bias, stride=2, padding=1)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_deform_conv_integer_offset_shifts_the_kernel():
    # One 1x1 tap with offset (dy, dx) = (1, -1) reads x[i + 1, j - 1] (0 outside).
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    offset = torch.zeros(1, 2, 3, 4)
    offset[:, 0], offset[:, 1] = 1.0, -1.0
    out = deform_conv2d(x, offset, torch.ones(1, 1, 1, 1))
    expected = torch.tensor([[0.0, 4, 5, 6], [0, 8, 9, 10], [0, 0, 0, 0]])
    torch.testing.assert_close(out[0, 0], expected)


@pytest.mark.parametrize(
    ("offset_shape", "mask_shape"),
    [((1, 17, 4, 4), None), ((1, 18, 3, 4), None), ((1, 18, 4, 4), (1, 8, 4, 4))],
)
def test_deform_conv_rejects_bad_offset_or_mask(offset_shape, mask_shape):
    x = torch.zeros(1, 2, 4, 4)
    mask = None if mask_shape is None else torch.ones(mask_shape)
    with pytest.raises(ValueError, match="expected"):
        deform_conv2d(x, torch.zeros(offset_shape), torch.zeros(1, 2, 3, 3), None, mask, padding=1)


# ----------------------------------------------------------------------------------------
# FGA-Net blocks
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "expected_row0", "expected_col0"),
    [
        # output (y, x) holds input (y - dh, x - dw); input value = 10 y + x
        ((0, 0), [0.0, 1, 2], [0.0, 10, 20]),
        ((1, 0), [0.0, 0, 0], [0.0, 0, 10]),
        ((-1, 0), [10.0, 11, 12], [10.0, 20, 0]),
        ((0, 1), [0.0, 0, 1], [0.0, 0, 0]),
        ((0, -1), [1.0, 2, 0], [1.0, 11, 21]),
    ],
)
def test_spatial_shift_moves_each_group(step, expected_row0, expected_col0):
    ys, xs = torch.meshgrid(torch.arange(3.0), torch.arange(3.0), indexing="ij")
    image = (10 * ys + xs).view(1, 1, 3, 3)
    out = spatial_shift(image, (step,))
    torch.testing.assert_close(out[0, 0, 0], torch.tensor(expected_row0))
    torch.testing.assert_close(out[0, 0, :, 0], torch.tensor(expected_col0))


def test_spatial_shift_splits_channels_into_groups():
    x = torch.ones(1, 4, 3, 3)
    out = spatial_shift(x, ((0, 0), (1, 0)))  # channels 0-1 still, 2-3 moved down
    assert out[0, :2].sum() == 18
    assert out[0, 2:, 0].sum() == 0 and out[0, 2:, 1:].sum() == 12
    with pytest.raises(ValueError, match="shift groups"):
        spatial_shift(torch.ones(1, 2, 3, 3), ((0, 0), (1, 0), (0, 1)))


def test_sda_block_shape_and_gate_range():
    torch.manual_seed(0)
    block = SDABlock(10)
    x = torch.randn(2, 10, 8, 6)
    assert block(x).shape == (2, 10, 8, 6)
    gate = block.attention(torch.randn(2, 10, 8, 6))
    assert gate.shape == (2, 10, 8, 6) and gate.min() > 0 and gate.max() < 1


@pytest.mark.parametrize(("low", "high", "out"), [(8, 16, 12), (16, 8, 8)])
def test_bga_fusion_shapes(low, high, out):
    fusion = BGAFusion(low, high, out)
    result = fusion(torch.randn(2, low, 8, 12), torch.randn(2, high, 4, 6))
    assert result.shape == (2, out, 8, 12)
    with pytest.raises(ValueError, match="twice"):
        fusion(torch.randn(2, low, 8, 12), torch.randn(2, high, 8, 12))


def test_fga_net_outputs_and_deep_supervision():
    torch.manual_seed(0)
    model = FGANet(width_mult=0.25, num_classes=3)
    assert model.widths == (8, 16, 32, 64, 128, 256)
    model.train()
    outputs = model(torch.randn(2, 1, 64, 96))
    assert outputs["logits"].shape == (2, 3, 64, 96)
    assert outputs["tip_heatmap"].shape == (2, 1, 64, 96)
    assert [tuple(a.shape[-2:]) for a in outputs["aux_logits"]] == [
        (4, 6),
        (8, 12),
        (16, 24),
        (32, 48),
    ]
    model.eval()
    assert set(model(torch.randn(1, 1, 32, 32))) == {"logits", "tip_heatmap"}


# ----------------------------------------------------------------------------------------
# DDR-SAPC-U blocks
# ----------------------------------------------------------------------------------------


def test_dual_attention_gating_formula_by_hand():
    high = torch.full((1, 2, 4, 4), 2.0)
    low = torch.full((1, 3, 2, 2), 5.0)
    attention_high = torch.zeros(1, 1, 4, 4)
    attention_high[..., :2, :2] = 1.0  # top-left 2x2 block attended, pooled to 1.0 there
    attention_high[..., 2:, 2:] = 0.5  # bottom-right block pooled to 0.5
    attention_low = torch.full((1, 1, 2, 2), 0.25)  # constant: up-sampling keeps 0.25
    gated_high, gated_low = dual_attention_gating(high, low, attention_high, attention_low)
    # high side: 2 * (A_H + 1 - 0.25)
    expected_high = 2.0 * (attention_high + 0.75)
    torch.testing.assert_close(gated_high, expected_high.expand(1, 2, 4, 4))
    # low side: 5 * (0.25 + 1 - AvgPool(A_H)); pooled A_H = [[1, 0], [0, 0.5]]
    expected_low = 5.0 * (0.25 + 1.0 - torch.tensor([[1.0, 0.0], [0.0, 0.5]]))
    torch.testing.assert_close(gated_low[0, 1], expected_low)
    with pytest.raises(ValueError, match="integer multiple"):
        dual_attention_gating(high, torch.zeros(1, 3, 3, 3), attention_high, attention_low)


def test_dual_attention_module_and_parallel_block_shapes():
    dam = DualAttentionModule(8, 16, ratio=4)
    high, low = dam(torch.randn(2, 8, 16, 16), torch.randn(2, 16, 4, 4))
    assert high.shape == (2, 8, 16, 16) and low.shape == (2, 16, 4, 4)
    block = ParallelBasicBlock(8, 12, stride=2)
    assert len(block.branches) == 3
    assert block(torch.randn(2, 8, 16, 24)).shape == (2, 12, 8, 12)


def test_ddr_sapc_u_outputs_and_stride():
    torch.manual_seed(0)
    model = DDRSAPCU(width_mult=0.25)
    outputs = model.train()(torch.randn(2, 1, 64, 128))
    assert outputs["logits"].shape == (2, 3, 64, 128)
    assert outputs["tip_heatmap"].shape == (2, 1, 64, 128)
    assert [tuple(a.shape) for a in outputs["aux_logits"]] == [(2, 3, 16, 32)]
    with pytest.raises(ValueError, match="pad to 128x128"):
        model(torch.randn(1, 1, 96, 96))


# ----------------------------------------------------------------------------------------
# L-SNet RoI recalibration and gradient decay
# ----------------------------------------------------------------------------------------


def _smooth_function(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    return torch.sin(xs / 7.0) + torch.cos(ys / 9.0) + 0.0002 * xs * ys


def _smooth_image(height: int, width: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    return _smooth_function(xs, ys).view(1, 1, height, width)


@pytest.mark.parametrize("margin_px", [15.0, 0.0])
def test_roi_affine_maps_snet_frame_onto_box_with_margin(margin_px):
    keypoint = torch.tensor([[20.0, 30.0]])
    distances = torch.tensor([[5.0, 6.0, 7.0, 8.0]])  # l, t, r, b
    theta = roi_affine_from_box(keypoint, distances, 64, 64, margin_px)
    x0, x1 = 20.0 - 5.0 - margin_px, 20.0 + 7.0 + margin_px
    y0, y1 = 30.0 - 6.0 - margin_px, 30.0 + 8.0 + margin_px
    grid = axis_aligned_grid(theta, 64, 64)  # (1, H, W, 2) normalised image coordinates
    sampled_x_px = ((grid[0, 0, :, 0] + 1.0) * 64 - 1.0) / 2.0
    sampled_y_px = ((grid[0, :, 0, 1] + 1.0) * 64 - 1.0) / 2.0
    # S-Net pixel j covers [j - 0.5, j + 0.5] of [-0.5, 63.5], mapped linearly onto [x0, x1].
    columns = torch.arange(64.0)
    torch.testing.assert_close(sampled_x_px, x0 + (columns + 0.5) * (x1 - x0) / 64)
    torch.testing.assert_close(sampled_y_px, y0 + (columns + 0.5) * (y1 - y0) / 64)
    reference = F.affine_grid(theta, (1, 1, 64, 64), align_corners=False)
    torch.testing.assert_close(grid, reference)


def test_roi_forward_then_inverse_reproduces_input_inside_roi():
    image = _smooth_image(64, 64)
    keypoint = torch.tensor([[30.0, 28.0]])
    distances = torch.tensor([[4.0, 3.0, 6.0, 5.0]])
    theta = roi_affine_from_box(keypoint, distances, 64, 64, 15.0)  # box x 11..51, y 10..48
    roi = recalibrate_roi(image, theta)
    # S-Net pixel (i, j) shows image point (11 + (j + 0.5) * 40 / 64, 10 + (i + 0.5) * 38 / 64).
    columns = torch.arange(64.0)
    expected_row = _smooth_function(
        11.0 + (columns + 0.5) * 40 / 64, torch.tensor(10.0 + 20.5 * 38 / 64)
    )
    torch.testing.assert_close(roi[0, 0, 20], expected_row, atol=5e-3, rtol=0)
    restored, inside = restore_full_frame(roi, theta)
    interior = (slice(None), slice(None), slice(12, 47), slice(13, 50))
    # Two bilinear resamplings, each off by at most (|f_xx| + |f_yy|) / 8 px^2 on this image,
    # i.e. 2 * (1/49 + 1/81) / 8 < 1e-2; the image itself spans about 4.
    torch.testing.assert_close(restored[interior], image[interior], atol=1e-2, rtol=0)
    torch.testing.assert_close(inside[interior], torch.ones_like(inside[interior]))
    assert inside[..., :, :10].abs().max() == 0 and inside[..., :9, :].abs().max() == 0
    assert restored[..., 50:, :].abs().max() == 0


def test_scale_gradient_multiplies_gradient_only():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = scale_gradient(x, 0.1)
    torch.testing.assert_close(y, x.detach())
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([0.1, 0.2, 0.3]))


def test_lsnet_gradient_decay_scales_snet_gradient_into_lnet():
    torch.manual_seed(0)
    full = LSNet(width_mult=0.125, gradient_decay=1.0, train_top_k=1)
    decayed = LSNet(width_mult=0.125, gradient_decay=0.1, train_top_k=1)
    decayed.load_state_dict(full.state_dict())
    x = _smooth_image(64, 64).repeat(2, 1, 1, 1)
    gradients = []
    for model in (full, decayed):
        model.train()
        model(x)["logits"].square().mean().backward()  # S-Net path only, not the L-Net losses
        gradients.append(model.localization_net.box_head[-1].weight.grad.clone())
    assert gradients[0].abs().max() > 0
    torch.testing.assert_close(gradients[1], 0.1 * gradients[0], rtol=1e-3, atol=1e-7)
    assert decayed.segmentation_head.weight.grad is not None


def test_select_keypoint_finds_peak_with_subcell_refinement():
    logits = torch.full((1, 1, 4, 6), -10.0)
    logits[0, 0, 2, 3] = 5.0
    logits[0, 0, 2, 4] = 5.0  # equal neighbour: soft-argmax half way between columns 3 and 4
    distances = torch.zeros(1, 4, 4, 6)
    distances[:, :, 2, 3], distances[:, :, 2, 4] = 8.0, 12.0
    keypoint, box = select_keypoint(logits, distances)
    # cell (x=3.5, y=2) -> pixel 4 * 3.5 + 1.5, 4 * 2 + 1.5
    torch.testing.assert_close(keypoint, torch.tensor([[15.5, 9.5]]), atol=1e-3, rtol=0)
    torch.testing.assert_close(box, torch.full((1, 4), 10.0), atol=1e-3, rtol=0)


def test_lsnet_outputs_and_background_outside_roi():
    torch.manual_seed(0)
    model = LSNet(width_mult=0.125).train()
    outputs = model(_smooth_image(64, 96).repeat(2, 1, 1, 1))
    assert outputs["logits"].shape == (2, 3, 64, 96)
    assert outputs["tip_heatmap"].shape == (2, 1, 64, 96)
    assert outputs["box_distances"].shape == (2, 4, 16, 24)
    assert outputs["box_distances"].min() >= 0
    assert outputs["roi_affine"].shape == (2, 2, 3)
    assert outputs["roi_logits"].shape == (2, 3, 64, 96)
    model.eval()
    with torch.no_grad():
        # Force a tiny RoI so most of the frame is outside it.
        model.localization_net.box_head[-1].bias.fill_(-30.0)
        eval_outputs = model(_smooth_image(64, 96))
    assert set(eval_outputs) == {"logits", "tip_heatmap"}
    probabilities = eval_outputs["logits"].softmax(dim=1)
    background_share = (probabilities[:, 0] > 0.99).float().mean()
    assert background_share > 0.5


# ----------------------------------------------------------------------------------------
# ONNX export and ONNX Runtime parity
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "size"),
    [
        (lambda: FGANet(width_mult=0.125), 64),
        (lambda: DDRSAPCU(width_mult=0.25), 64),
        (lambda: LSNet(width_mult=0.125), 64),
    ],
    ids=["fga_net", "ddr_sapc_u", "lsnet"],
)
def test_model_exports_to_onnx_with_runtime_parity(factory, size, tmp_path):
    torch.manual_seed(0)
    model = factory().eval()
    path = tmp_path / "model.onnx"
    torch.onnx.export(
        model,
        (torch.randn(1, 1, size, size),),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=["logits", "tip_heatmap"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "tip_heatmap": {0: "batch"}},
    )
    model.eval()  # export restores the module's previous mode
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 1, size, size)
    logits, tip_heatmap = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        expected = model(x)
    assert logits.shape == (2, 3, size, size)
    np.testing.assert_allclose(logits, expected["logits"].numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(tip_heatmap, expected["tip_heatmap"].numpy(), atol=1e-4, rtol=0)
