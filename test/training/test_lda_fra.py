"""Model-specific checks of the MobileNetV2 blocks, shared attention layers, LDA-Net,
FRA-Net and the MONAI baselines (the shared tester in test_models.py covers the rest)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fluoro_training.models import available_models, create_model
from fluoro_training.models.attention import (
    AdditiveAttentionGate,
    ConvBNReLU,
    SeparableConvBNReLU,
    TipHeatmapHead,
    TransposedConvBN,
)
from fluoro_training.models.baselines import AttentionUNetBaseline, UNetBaseline
from fluoro_training.models.fra_net import (
    CPU_DEFAULT_KWARGS,
    FRANet,
    RecurrentConvLayer,
    RecurrentResidualBlock,
)
from fluoro_training.models.lda_net import FeatureAttentionModule, LDANet
from fluoro_training.models.mobilenet import (
    InvertedResidual,
    MobileNetV2Encoder,
    make_divisible,
)

# ---------------------------------------------------------------- mobilenet.py


@pytest.mark.parametrize(
    ("value", "divisor", "expected"),
    [
        (32.0, 8, 32),  # already a multiple
        (8.0, 8, 8),  # 32 * 0.25
        (12.0, 8, 16),  # 24 * 0.5: 12 + 4 = 16 -> 16
        (5.6, 8, 8),  # 16 * 0.35: below the minimum -> divisor
        (10.0, 8, 16),  # rounds to 8, but 8 < 0.9 * 10 -> + 8
        (37.0, 8, 40),  # 37 + 4 = 41 -> 40
        (30.0, 4, 32),  # 30 + 2 = 32 -> 32
    ],
)
def test_make_divisible_table(value, divisor, expected):
    assert make_divisible(value, divisor) == expected


@pytest.mark.parametrize(("value", "divisor"), [(0.0, 8), (-3.0, 8), (16.0, 0)])
def test_make_divisible_rejects_non_positive(value, divisor):
    with pytest.raises(ValueError, match="expected"):
        make_divisible(value, divisor)


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "stride", "expand", "residual", "out_size"),
    [
        (8, 8, 1, 6, True, 16),
        (8, 16, 1, 6, False, 16),
        (8, 8, 2, 6, False, 8),
        (16, 16, 1, 1, True, 16),
    ],
)
def test_inverted_residual_shape_and_shortcut(
    in_channels, out_channels, stride, expand, residual, out_size
):
    block = InvertedResidual(in_channels, out_channels, stride, expand).eval()
    assert block.use_residual is residual
    out = block(torch.randn(2, in_channels, 16, 16))
    assert out.shape == (2, out_channels, out_size, out_size)


def test_inverted_residual_parameter_count_by_hand():
    # expand 1x1 8->48: 384 + BN 96; depthwise 3x3 on 48: 432 + BN 96; project 48->8: 384 + BN 16
    block = InvertedResidual(8, 8, stride=1, expand_ratio=6)
    assert sum(p.numel() for p in block.parameters()) == 384 + 96 + 432 + 96 + 384 + 16


def test_inverted_residual_is_identity_when_projection_bn_is_zero():
    block = InvertedResidual(8, 8, stride=1, expand_ratio=6).eval()
    projection_bn = block.block[-1]
    nn.init.zeros_(projection_bn.weight)
    nn.init.zeros_(projection_bn.bias)
    x = torch.randn(1, 8, 6, 6)
    torch.testing.assert_close(block(x), x)  # linear bottleneck output 0 -> shortcut only


def test_inverted_residual_rejects_bad_stride():
    with pytest.raises(ValueError, match="stride=3"):
        InvertedResidual(8, 8, stride=3)


@pytest.mark.parametrize(
    ("width_mult", "channels"),
    [(1.0, (16, 24, 32, 96, 320)), (0.5, (8, 16, 16, 48, 160)), (0.25, (8, 8, 8, 24, 80))],
)
def test_mobilenet_encoder_strides_and_widths(width_mult, channels):
    encoder = MobileNetV2Encoder(width_mult=width_mult).eval()
    assert encoder.strides == (2, 4, 8, 16, 32)
    assert encoder.out_channels == channels
    features = encoder(torch.randn(1, 1, 64, 96))
    assert [tuple(f.shape) for f in features] == [
        (1, c, 64 // s, 96 // s) for c, s in zip(channels, encoder.strides, strict=True)
    ]


def test_mobilenet_encoder_depth_mult_reduces_blocks():
    full = MobileNetV2Encoder(width_mult=0.25)
    half = MobileNetV2Encoder(width_mult=0.25, depth_mult=0.5)
    # blocks per stage: (1, 2, 3, 4, 3, 3, 1) -> ceil(n / 2) = (1, 1, 2, 2, 2, 2, 1)
    assert [len(s) for s in full.stages] == [1, 2, 3, 4, 3, 3, 1]
    assert [len(s) for s in half.stages] == [1, 1, 2, 2, 2, 2, 1]


@pytest.mark.parametrize("kwargs", [{"width_mult": 0}, {"depth_mult": -1}])
def test_mobilenet_encoder_rejects_bad_multipliers(kwargs):
    with pytest.raises(ValueError, match="expected > 0"):
        MobileNetV2Encoder(**kwargs)


# ---------------------------------------------------------------- attention.py


def test_attention_gate_coefficients_lie_in_unit_interval():
    gate = AdditiveAttentionGate(skip_channels=8, gate_channels=16, gate_stride=2).eval()
    skip, coarse = torch.randn(2, 8, 12, 20) * 10, torch.randn(2, 16, 6, 10) * 10
    alpha = gate.attention_coefficients(skip, coarse)
    assert alpha.shape == (2, 1, 12, 20)
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    torch.testing.assert_close(gate(skip, coarse), skip * alpha)


def test_attention_gate_with_zero_psi_halves_the_skip():
    # psi = 0, b_psi = 0 -> alpha = sigmoid(0) = 0.5 everywhere (Eq. 1 / Eq. 3)
    gate = AdditiveAttentionGate(skip_channels=4, gate_channels=4, gate_stride=1).eval()
    nn.init.zeros_(gate.psi.weight)
    nn.init.zeros_(gate.psi.bias)
    skip = torch.randn(1, 4, 5, 7)
    torch.testing.assert_close(gate(skip, torch.randn(1, 4, 5, 7)), 0.5 * skip)


def test_attention_gate_rejects_mismatched_sizes():
    gate = AdditiveAttentionGate(skip_channels=4, gate_channels=4, gate_stride=2)
    with pytest.raises(ValueError, match="gate_stride=2"):
        gate(torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8))


@pytest.mark.parametrize(
    ("module", "in_shape", "out_shape"),
    [
        (ConvBNReLU(4, 8, 3, stride=2), (1, 4, 10, 10), (1, 8, 5, 5)),
        (ConvBNReLU(4, 8, 7, dilation=2), (1, 4, 9, 9), (1, 8, 9, 9)),
        (SeparableConvBNReLU(4, 8), (1, 4, 9, 9), (1, 8, 9, 9)),
        (TransposedConvBN(8, 4), (1, 8, 5, 7), (1, 4, 10, 14)),
        (TipHeatmapHead(8, 4), (1, 8, 6, 6), (1, 1, 6, 6)),
        (TipHeatmapHead(8, 4, separable=True, upsample=2), (1, 8, 6, 6), (1, 1, 12, 12)),
    ],
)
def test_shared_layer_shapes(module, in_shape, out_shape):
    assert module.eval()(torch.randn(in_shape)).shape == out_shape


def test_conv_bn_relu_rejects_even_kernel_and_unknown_activation():
    with pytest.raises(ValueError, match="kernel_size=4"):
        ConvBNReLU(4, 4, 4)
    with pytest.raises(ValueError, match="activation='gelu'"):
        ConvBNReLU(4, 4, 3, activation="gelu")


# ---------------------------------------------------------------- LDA-Net


@pytest.mark.parametrize(
    ("size", "pyramid_sizes"),
    [
        ((16, 16), [(8, 8), (4, 4), (2, 2)]),
        ((5, 3), [(3, 2), (2, 1), (1, 1)]),
        ((2, 2), [(1, 1)] * 3),
    ],
)
def test_fam_pyramid_branch_shapes(size, pyramid_sizes):
    fam = FeatureAttentionModule(in_channels=16, out_channels=24).eval()
    x = torch.randn(2, 16, *size)
    levels = fam.pyramid_features(x)
    mid = 8  # max(24 // 4, 8)
    assert [tuple(t.shape) for t in levels] == [(2, mid, h, w) for h, w in pyramid_sizes]
    assert fam(x).shape == (2, 24, *size)


def test_fam_with_zero_pyramid_reduces_to_global_branch():
    # pyramid output 0 -> main * 0 + global: a map constant over space (adaptive avg pool)
    fam = FeatureAttentionModule(in_channels=8, out_channels=8).eval()
    nn.init.zeros_(fam.pyramid_out[1].weight)
    nn.init.zeros_(fam.pyramid_out[1].bias)
    out = fam(torch.randn(1, 8, 6, 6))
    torch.testing.assert_close(out, out[:, :, :1, :1].expand_as(out))


def test_lda_net_structure_follows_seed_000():
    model = LDANet(width_mult=0.25)
    assert model.stride == 32
    assert isinstance(model.fam, FeatureAttentionModule)
    assert len(model.decoder) == 4  # strides 16, 8, 4, 2, then the final transposed conv
    assert all(
        isinstance(level.relevance_attention, AdditiveAttentionGate) for level in model.decoder
    )
    assert all(isinstance(level.up[0], nn.ConvTranspose2d) for level in model.decoder)


def test_lda_net_without_tip_head_and_small_input():
    model = LDANet(width_mult=0.25, tip_head=False).eval()
    outputs = model(torch.randn(1, 1, 32, 32))
    assert set(outputs) == {"logits"} and outputs["logits"].shape == (1, 3, 32, 32)


# ---------------------------------------------------------------- FRA-Net


def test_recurrent_layer_unrolls_t3_as_feature_accumulation():
    # 1 channel, identity kernels, fresh BN (eval: x / sqrt(1 + eps)); for x = c > 0:
    # O(0) = c, O(t) = c + O(t - 1) -> [c, 2c, 3c, 4c] (seed 001 Eq. 1, Fig. 4 right)
    layer = RecurrentConvLayer(channels=1, steps=3).eval()
    for conv in (layer.feedforward, layer.recurrent):
        nn.init.zeros_(conv.weight)
        with torch.no_grad():
            conv.weight[0, 0, 1, 1] = 1.0
    x = torch.full((1, 1, 4, 4), 0.5)
    states = layer.unroll(x)
    assert len(states) == 4
    for step, state in enumerate(states):
        torch.testing.assert_close(state, torch.full_like(x, 0.5 * (step + 1)), rtol=1e-4, atol=0)
    torch.testing.assert_close(layer(x), states[-1])


@pytest.mark.parametrize(("steps", "states"), [(0, 1), (1, 2), (3, 4)])
def test_recurrent_layer_number_of_states(steps, states):
    layer = RecurrentConvLayer(channels=4, steps=steps)
    assert len(layer.unroll(torch.randn(1, 4, 5, 5))) == states
    assert len(layer.norms) == states


def test_recurrent_layer_rejects_negative_steps():
    with pytest.raises(ValueError, match="steps=-1"):
        RecurrentConvLayer(channels=4, steps=-1)


@pytest.mark.parametrize("separable", [False, True])
def test_recurrent_residual_block_adds_relu_features_to_input(separable):
    # Eq. 2: x_{l+1} = x_l + max(0, O(t)) -> the residual part is non-negative
    block = RecurrentResidualBlock(8, 8, steps=3, separable=separable).eval()
    x = torch.randn(2, 8, 6, 6)
    residual = block(x) - x
    torch.testing.assert_close(residual, block.layers(x))
    assert residual.min() >= 0


def test_recurrent_residual_block_projects_channels():
    block = RecurrentResidualBlock(16, 8, steps=3).eval()
    assert block(torch.randn(1, 16, 6, 6)).shape == (1, 8, 6, 6)


def test_fra_net_stem_reaches_stride_4_before_the_encoder():
    model = FRANet(width_mult=0.25).eval()
    stem = model.stem(torch.randn(1, 1, 64, 64))
    assert stem.shape[-2:] == (32, 32)  # 7x7 stride-2 convolution
    assert model.pool(stem).shape[-2:] == (16, 16)  # 3x3 stride-2 max-pooling
    assert model.stem[0].kernel_size == (7, 7) and model.stem[0].stride == (2, 2)
    recurrent_blocks = [m for m in model.modules() if isinstance(m, RecurrentResidualBlock)]
    assert len(recurrent_blocks) == 4 + 3  # encoder strides 4..32, decoder strides 16..4
    assert all(layer.steps == 3 for m in recurrent_blocks for layer in m.layers)


@pytest.mark.parametrize(
    "kwargs",
    [
        CPU_DEFAULT_KWARGS,
        {"width_mult": 0.25, "full_res_head": False},
        {"width_mult": 0.25, "separable": True, "recurrent_steps": 1, "recurrent_layers": 2},
    ],
)
def test_fra_net_variants_keep_full_resolution_outputs(kwargs):
    model = FRANet(**kwargs).eval()
    outputs = model(torch.randn(1, 1, 64, 96))
    assert outputs["logits"].shape == (1, 3, 64, 96)
    assert outputs["tip_heatmap"].shape == (1, 1, 64, 96)


def test_fra_net_cpu_default_is_lighter_than_paper_default():
    def params(model):
        return sum(p.numel() for p in model.parameters())

    assert params(FRANet(**CPU_DEFAULT_KWARGS)) < params(FRANet()) / 4


# ---------------------------------------------------------------- baselines and registry


@pytest.mark.parametrize(
    ("cls", "attr", "width_mult", "expected"),
    [
        (UNetBaseline, "features", 1.0, (32, 32, 64, 128, 256, 32)),
        (UNetBaseline, "features", 0.25, (8, 8, 16, 32, 64, 8)),
        (AttentionUNetBaseline, "channels", 1.0, (16, 32, 64, 128, 256)),
        (AttentionUNetBaseline, "channels", 0.25, (4, 8, 16, 32, 64)),
    ],
)
def test_baseline_widths_scale(cls, attr, width_mult, expected):
    assert getattr(cls(width_mult=width_mult), attr) == expected


@pytest.mark.parametrize("cls", [UNetBaseline, AttentionUNetBaseline])
def test_baseline_tip_channel_is_split_off(cls):
    model = cls(width_mult=0.25).eval()
    x = torch.randn(1, 1, 32, 48)
    raw = model.net(x)
    assert raw.shape == (1, 4, 32, 48)  # 3 classes + 1 tip channel
    outputs = model(x)
    torch.testing.assert_close(outputs["logits"], raw[:, :3])
    torch.testing.assert_close(outputs["tip_heatmap"], raw[:, 3:])


def test_baseline_rejects_wrong_number_of_levels():
    with pytest.raises(ValueError, match="BasicUNet needs 6 values"):
        UNetBaseline(features=(8, 8, 8))


def test_registry_error_lists_valid_names():
    with pytest.raises(ValueError, match="unknown model 'fra-net'") as info:
        create_model("fra-net")
    for name in available_models():
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("lda_net", LDANet),
        ("fra_net", FRANet),
        ("unet", UNetBaseline),
        ("attention_unet", AttentionUNetBaseline),
    ],
)
def test_registry_builds_these_classes_with_kwargs(name, cls):
    model = create_model(name, width_mult=0.25, num_classes=2, tip_head=False)
    assert type(model) is cls
    assert model.num_classes == 2 and model.tip_head is False


# ---------------------------------------------------------------- FRA-Net refinement / tip branch

REFINED = {"width_mult": 0.25, "separable": True, "full_res_head": False, "refine_head": True}


def test_fra_net_refinement_outputs_full_resolution_classes():
    model = FRANet(num_classes=4, **REFINED).eval()
    outputs = model(torch.randn(1, 1, 64, 96))
    assert outputs["logits"].shape == (1, 4, 64, 96)
    assert outputs["tip_heatmap"].shape == (1, 1, 64, 96)


def test_fra_net_refinement_starts_as_no_correction_and_then_learns_one():
    torch.manual_seed(0)
    model = FRANet(**REFINED).eval()
    x = torch.randn(1, 1, 64, 64)
    coarse = FRANet(**REFINED).eval()
    coarse.load_state_dict(model.state_dict())
    coarse.refine = None  # the same weights without the refinement stage
    torch.testing.assert_close(model(x)["logits"], coarse(x)["logits"])
    with torch.no_grad():
        model.refine.classifier.weight.fill_(0.5)
    assert not torch.allclose(model(x)["logits"], coarse(x)["logits"])


def test_refinement_reads_a_three_by_three_input_window_per_pixel():
    # the correction at one pixel depends on the input only through the 3x3 convolution:
    # exactly the 3x3 window around it, at full resolution
    from fluoro_training.models.fra_net import FullResolutionRefinement

    torch.manual_seed(1)
    stage = FullResolutionRefinement(feature_channels=8, num_classes=3, hidden=4).eval()
    with torch.no_grad():
        stage.classifier.weight.normal_()
        stage.norm.bias.fill_(10.0)  # keep every ReLU open so no gradient is cut
    x = torch.randn(1, 1, 16, 16, requires_grad=True)
    features = torch.randn(1, 8, 8, 8, requires_grad=True)
    stage(x, features)[0, 1, 7, 9].backward()
    reached = x.grad[0, 0].abs() > 0
    expected = torch.zeros(16, 16, dtype=torch.bool)
    expected[6:9, 8:11] = True
    assert torch.equal(reached, expected)
    # and the stride-2 features only through the one cell above that pixel
    cells = features.grad[0].abs().sum(0) > 0
    assert cells.sum() == 1 and cells[3, 4]


def test_fra_net_refinement_needs_the_stride_two_head():
    with pytest.raises(ValueError, match="full_res_head=False"):
        FRANet(width_mult=0.25, full_res_head=True, refine_head=True)
    with pytest.raises(ValueError, match="refine_channels"):
        FRANet(**REFINED, refine_channels=0)


@pytest.mark.parametrize("detach", [False, True])
def test_fra_net_tip_detach_keeps_tip_gradients_out_of_the_decoder(detach):
    model = FRANet(width_mult=0.25, full_res_head=False, tip_detach=detach).train()
    outputs = model(torch.randn(2, 1, 64, 64))
    outputs["tip_heatmap"].sum().backward()
    decoder_grad = sum(
        float(p.grad.abs().sum()) for p in model.decoder.parameters() if p.grad is not None
    )
    tip_grad = sum(float(p.grad.abs().sum()) for p in model.tip.parameters())
    assert tip_grad > 0
    assert (decoder_grad == 0) == detach


def test_fra_net_context_tip_head_sees_far_enough_to_find_a_wire_end():
    from fluoro_training.models.attention import ContextTipHead

    torch.manual_seed(0)
    head = ContextTipHead(4, hidden_channels=8, dilations=(2, 4, 8), upsample=2).eval()
    for module in head.modules():  # every ReLU active: the head is linear, its reach exact
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.constant_(module.bias, 10.0)
    features = torch.zeros(1, 4, 64, 64, requires_grad=True)
    head(features)[0, 0, 64, 64].backward()  # full-resolution pixel (64, 64) = feature (32, 32)
    reached = (features.grad[0].abs().sum(0) > 0).nonzero()
    # receptive field 1 + 2 (2 + 4 + 8) = 29 feature pixels across, centred on (32, 32)
    assert int(reached[:, 0].min()) == 32 - 14 and int(reached[:, 0].max()) == 32 + 14
    assert int(reached[:, 1].min()) == 32 - 14 and int(reached[:, 1].max()) == 32 + 14
    # the head starts at CenterNet's prior everywhere only through its bias
    assert float(head.last.bias) == pytest.approx(-2.19)


@pytest.mark.parametrize("context", [1, 3])
def test_fra_net_tip_context_output_shapes(context):
    model = FRANet(width_mult=0.25, full_res_head=False, tip_context=context).eval()
    outputs = model(torch.randn(1, 1, 64, 96))
    assert outputs["tip_heatmap"].shape == (1, 1, 64, 96)
    assert outputs["logits"].shape == (1, 3, 64, 96)
    assert len(model.tip.blocks) == context


def test_fra_net_tip_context_out_of_range():
    with pytest.raises(ValueError, match="tip_context"):
        FRANet(width_mult=0.25, tip_context=5)
