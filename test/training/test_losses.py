"""Tests of fluoro_training.losses on tiny tensors with hand-computed expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fluoro_training.losses import (
    LOSSES,
    BceDiceClDiceLoss,
    DeepSupervisionLoss,
    FocalDiceLoss,
    HybridFocalDiceLoss,
    LSNetLoss,
    OhemCrossEntropyLoss,
    ReinforcedFocalLoss,
    TipHeatmapFocalLoss,
    build_loss,
    default_deep_supervision_weights,
    diou_loss,
    distances_to_boxes,
    penalty_reduced_focal_loss,
    render_tip_heatmap,
)

LN2 = math.log(2.0)  # -log(0.5)
LN4_3 = math.log(4.0 / 3.0)  # -log(0.75)

# The shared 2x2 binary example. Logits [[0, ln 3], [0, -ln 3]] give sigmoid
# probabilities p = [[0.5, 0.75], [0.5, 0.25]]; the target is [[1, 1], [0, 0]].
LOGITS_2X2 = torch.tensor([[[[0.0, math.log(3.0)], [0.0, -math.log(3.0)]]]])  # (1, 1, 2, 2)
TARGET_2X2 = torch.tensor([[[1, 1], [0, 0]]])  # (1, 2, 2) label map

# Reinforced focal, alpha = 100, gamma = 2 (seed 000 Eq. 3):
#   y=1, p=0.5 : 100 * 0.5^2  * ln 2     = 17.328680
#   y=1, p=0.75: 100 * 0.25^2 * ln(4/3)  =  1.798016
#   y=0, p=0.5 : 0.5^2  * ln 2           =  0.173287
#   y=0, p=0.25: 0.25^2 * ln(4/3)        =  0.017980
#   mean                                 =  4.829491
RF_ALPHA100_GAMMA2 = (100 * 0.25 * LN2 + 100 * 0.0625 * LN4_3 + 0.25 * LN2 + 0.0625 * LN4_3) / 4
# Plain soft Dice: 1 - 2 * (0.5 + 0.75) / ((0.5 + 0.75 + 0.5 + 0.25) + 2) = 1 - 2.5/4 = 0.375
DICE_2X2 = 0.375


def _binary_to_two_channel(logits: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) logits x -> (B, 2, H, W) [0, x]: softmax channel 1 = sigmoid(x)."""
    return torch.cat([torch.zeros_like(logits), logits], dim=1)


# ----------------------------------------------------------------------- reinforced focal


@pytest.mark.parametrize(
    ("alpha", "gamma", "expected"),
    [
        (100.0, 2.0, RF_ALPHA100_GAMMA2),
        (1.0, 0.0, (LN2 + LN4_3 + LN2 + LN4_3) / 4),  # gamma 0, alpha 1: plain BCE
        # Paper setting alpha 100, gamma 2.5 on the p = 0.5 positive pixel alone:
        # 100 * 0.5^2.5 * ln 2 = 12.253233 (checked with the (0,0) pixel below).
    ],
)
def test_reinforced_focal_hand_computed(alpha, gamma, expected):
    loss = ReinforcedFocalLoss(alpha=alpha, gamma=gamma)(LOGITS_2X2, TARGET_2X2)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_reinforced_focal_paper_defaults_single_pixel():
    loss = ReinforcedFocalLoss()(torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1))
    assert loss.item() == pytest.approx(100 * 0.5**2.5 * LN2, rel=1e-6)  # 12.253233


def test_reinforced_focal_reduction_none_and_sum():
    pixel = ReinforcedFocalLoss(gamma=2.0, reduction="none")(LOGITS_2X2, TARGET_2X2)
    expected = torch.tensor(
        [[[[100 * 0.25 * LN2, 100 * 0.0625 * LN4_3], [0.25 * LN2, 0.0625 * LN4_3]]]]
    )
    torch.testing.assert_close(pixel, expected.float(), rtol=1e-6, atol=1e-6)
    total = ReinforcedFocalLoss(gamma=2.0, reduction="sum")(LOGITS_2X2, TARGET_2X2)
    assert total.item() == pytest.approx(4 * RF_ALPHA100_GAMMA2, rel=1e-6)


def test_reinforced_focal_softmax_two_channels_equals_sigmoid_binary():
    sigmoid_loss = ReinforcedFocalLoss(gamma=2.0)(LOGITS_2X2, TARGET_2X2)
    softmax_loss = ReinforcedFocalLoss(gamma=2.0, activation="softmax")(
        _binary_to_two_channel(LOGITS_2X2), TARGET_2X2
    )
    assert softmax_loss.item() == pytest.approx(sigmoid_loss.item(), rel=1e-5)


@pytest.mark.parametrize(
    "loss_class", [ReinforcedFocalLoss, HybridFocalDiceLoss, BceDiceClDiceLoss, FocalDiceLoss]
)
def test_auto_activation_is_softmax_for_multichannel_and_sigmoid_for_one(loss_class):
    two_channel = _binary_to_two_channel(LOGITS_2X2)
    assert loss_class()(two_channel, TARGET_2X2).item() == pytest.approx(
        loss_class(activation="softmax")(two_channel, TARGET_2X2).item()
    )
    assert loss_class()(LOGITS_2X2, TARGET_2X2).item() == pytest.approx(
        loss_class(activation="sigmoid")(LOGITS_2X2, TARGET_2X2).item()
    )


def test_trainer_facing_aliases():
    from fluoro_training.losses import TipHeatmapLoss, gaussian_tip_targets

    assert TipHeatmapLoss is TipHeatmapFocalLoss
    assert isinstance(build_loss("hybrid"), HybridFocalDiceLoss)
    np.testing.assert_array_equal(
        gaussian_tip_targets([[3.0, 4.0]], (8, 6), sigma_px=2.0),
        render_tip_heatmap([[3.0, 4.0]], 8, 6, sigma_px=2.0),
    )
    with pytest.raises(ValueError, match="shape"):
        gaussian_tip_targets([[3.0, 4.0]], (8,))


def test_reinforced_focal_applies_sigmoid_once():
    # Confident correct logits must give ~0 loss. Were a sigmoid applied twice, p would be at
    # most sigmoid(1) = 0.73 and the loss would stay large (> 1).
    logits = torch.tensor([[[[20.0, -20.0]]]])
    loss = ReinforcedFocalLoss()(logits, torch.tensor([[[1, 0]]]))
    assert loss.item() < 1e-6


def test_reinforced_focal_class_weights_pick_channels():
    # Two sigmoid channels: channel 0 is the 2x2 example, channel 1 a perfect prediction.
    logits = torch.cat([LOGITS_2X2, torch.full_like(LOGITS_2X2, -30.0)], dim=1)
    target = torch.cat([TARGET_2X2[:, None].float(), torch.zeros(1, 1, 2, 2)], dim=1)
    only_first = ReinforcedFocalLoss(gamma=2.0, activation="sigmoid", class_weights=[1.0, 0.0])(
        logits, target
    )
    equal = ReinforcedFocalLoss(gamma=2.0, activation="sigmoid")(logits, target)
    assert only_first.item() == pytest.approx(RF_ALPHA100_GAMMA2, rel=1e-5)
    assert equal.item() == pytest.approx(RF_ALPHA100_GAMMA2 / 2, rel=1e-5)
    with pytest.raises(ValueError, match="class_weights"):
        ReinforcedFocalLoss(class_weights=[1.0, 1.0, 1.0])(logits, target)


def test_reinforced_focal_gradient_pushes_towards_target():
    logits = LOGITS_2X2.clone().requires_grad_(True)
    ReinforcedFocalLoss()(logits, TARGET_2X2).backward()
    grad = logits.grad[0, 0]
    assert grad[0, 0] < 0 and grad[0, 1] < 0  # positives: raise the logit
    assert grad[1, 0] > 0 and grad[1, 1] > 0  # negatives: lower it


# -------------------------------------------------------------------------------- hybrid


def test_hybrid_hand_computed():
    loss = HybridFocalDiceLoss(gamma=2.0)(LOGITS_2X2, TARGET_2X2)
    assert loss.item() == pytest.approx(RF_ALPHA100_GAMMA2 + 0.75 * DICE_2X2, rel=1e-5)
    dice_only = HybridFocalDiceLoss(alpha=0.0, gamma=0.0, dice_weight=1.0)
    # alpha 0, gamma 0: focal keeps only the negatives' BCE, (ln 2 + ln 4/3) / 4.
    assert dice_only(LOGITS_2X2, TARGET_2X2).item() == pytest.approx(
        (LN2 + LN4_3) / 4 + DICE_2X2, rel=1e-5
    )


def test_hybrid_empty_target_and_prediction_dice_is_zero():
    logits = torch.full((1, 1, 3, 3), -30.0)
    loss = HybridFocalDiceLoss()(logits, torch.zeros(1, 3, 3, dtype=torch.long))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------- bce + dice + cldice

# 5x5, target a vertical 1 px line in column 2 (5 px); prediction covers its top 3 px with
# logits +-30 (probabilities 0/1 to 1e-13). Soft skeletons of 1 px lines are the lines.
LINE_TARGET = torch.zeros(1, 1, 5, 5)
LINE_TARGET[0, 0, :, 2] = 1.0
LINE_LOGITS = torch.full((1, 1, 5, 5), -30.0)
LINE_LOGITS[0, 0, :3, 2] = 30.0


def test_bce_dice_cldice_alpha_zero_hand_computed():
    # BCE = (ln2 + ln4/3 + ln2 + ln4/3) / 4 = 0.490415; squared softDice:
    # 1 - 2 * 1.25 / (0.25 + 0.5625 + 0.25 + 0.0625 + 2) = 1 - 2.5 / 3.125 = 0.2.
    loss = BceDiceClDiceLoss(cldice_alpha=0.0)(LOGITS_2X2, TARGET_2X2)
    assert loss.item() == pytest.approx((LN2 + LN4_3) / 2 + 0.2, rel=1e-5)


def test_bce_dice_cldice_alpha_moves_weight_from_dice_to_cldice():
    # softDice (squared): 1 - 2*3 / (3 + 5) = 0.25.
    # softclDice (MONAI, smooth_nr = smooth_dr = 1, smooth 1e-4):
    #   Tprec = (3 + 1) / (3 + 1) = 1, Tsens = (3 + 1) / (5 + 1) = 2/3,
    #   loss = 1 - 2 * (2/3) / (5/3 + 1e-4) = 0.200012.
    # The BCE term is the same for both alphas, so L(a=1) - L(a=0) = 0.200012 - 0.25.
    with_cldice = BceDiceClDiceLoss(cldice_alpha=1.0)(LINE_LOGITS, LINE_TARGET)
    with_dice = BceDiceClDiceLoss(cldice_alpha=0.0)(LINE_LOGITS, LINE_TARGET)
    expected_cldice = 1.0 - 2.0 * (2.0 / 3.0) / (5.0 / 3.0 + 1e-4)
    assert (with_cldice - with_dice).item() == pytest.approx(expected_cldice - 0.25, abs=1e-5)
    half = BceDiceClDiceLoss(cldice_alpha=0.5)(LINE_LOGITS, LINE_TARGET)
    assert half.item() == pytest.approx((with_cldice.item() + with_dice.item()) / 2, rel=1e-5)


def test_bce_dice_cldice_perfect_prediction_is_near_zero():
    perfect = torch.where(LINE_TARGET > 0, 30.0, -30.0)
    assert BceDiceClDiceLoss()(perfect, LINE_TARGET).item() == pytest.approx(0.0, abs=1e-4)


def test_deep_supervision_hand_computed():
    # Aux output: 1x1 zero logits, upsampled to 2x2 zeros (p = 0.5 everywhere):
    # focal = (2 * 100 * 0.25 * ln2 + 2 * 0.25 * ln2) / 4 = 8.750984.
    base = ReinforcedFocalLoss(gamma=2.0)
    loss = DeepSupervisionLoss(base, weights=[0.75, 0.25])
    value = loss([LOGITS_2X2, torch.zeros(1, 1, 1, 1)], TARGET_2X2)
    aux = (2 * 100 * 0.25 * LN2 + 2 * 0.25 * LN2) / 4
    assert value.item() == pytest.approx(0.75 * RF_ALPHA100_GAMMA2 + 0.25 * aux, rel=1e-5)
    # A bare tensor is the main output with weight 1 (default weights for one output).
    assert DeepSupervisionLoss(base)(LOGITS_2X2, TARGET_2X2).item() == pytest.approx(
        RF_ALPHA100_GAMMA2, rel=1e-5
    )
    with pytest.raises(ValueError, match="deep supervision weights"):
        loss([LOGITS_2X2], TARGET_2X2)


def test_default_deep_supervision_weights():
    assert default_deep_supervision_weights(3) == pytest.approx((4 / 7, 2 / 7, 1 / 7))
    with pytest.raises(ValueError):
        default_deep_supervision_weights(0)


def test_build_loss_with_deep_supervision():
    loss = build_loss("bce_dice_cldice", deep_supervision_weights=[1.0, 0.5])
    assert isinstance(loss, DeepSupervisionLoss)
    value = loss([LINE_LOGITS, LINE_LOGITS[:, :, ::2, ::2]], LINE_TARGET)
    assert torch.isfinite(value)


# ------------------------------------------------------------------------------------ OHEM


def _ohem_example():
    """Six pixels, 2 classes, all labelled 1, with true-class probabilities
    0.5, 0.5, 0.9, 0.9, 0.9, 0.6 (logits [0, ln(q / (1 - q))])."""
    true_probability = torch.tensor([0.5, 0.5, 0.9, 0.9, 0.9, 0.6])
    logit = torch.log(true_probability / (1 - true_probability))
    logits = torch.stack([torch.zeros(6), logit]).view(1, 2, 2, 3)
    labels = torch.ones(1, 2, 3, dtype=torch.long)
    return logits, labels


@pytest.mark.parametrize(
    ("min_kept", "expected_kept", "expected_loss"),
    [
        # 3 pixels below 0.7: mean(ln2, ln2, -ln 0.6) = 0.632373
        (0, 3, (2 * LN2 - math.log(0.6)) / 3),
        (3, 3, (2 * LN2 - math.log(0.6)) / 3),
        # at least 5: the 3 hard ones plus two of the 0.9 pixels (-ln 0.9 = 0.105361)
        (5, 5, (2 * LN2 - math.log(0.6) - 2 * math.log(0.9)) / 5),
        (100, 6, (2 * LN2 - math.log(0.6) - 3 * math.log(0.9)) / 6),  # capped at valid pixels
    ],
)
def test_ohem_keeps_right_pixel_count(min_kept, expected_kept, expected_loss):
    logits, labels = _ohem_example()
    loss_fn = OhemCrossEntropyLoss(probability_threshold=0.7, min_kept=min_kept)
    assert int(loss_fn.hard_pixel_mask(logits, labels).sum()) == expected_kept
    assert loss_fn(logits, labels).item() == pytest.approx(expected_loss, rel=1e-5)


def test_ohem_ignore_index_and_empty():
    logits, labels = _ohem_example()
    labels[0, 0, 0] = 255  # drop one of the two p = 0.5 pixels
    loss_fn = OhemCrossEntropyLoss(min_kept=0, ignore_index=255)
    assert int(loss_fn.hard_pixel_mask(logits, labels).sum()) == 2
    assert loss_fn(logits, labels).item() == pytest.approx((LN2 - math.log(0.6)) / 2, rel=1e-5)
    all_ignored = torch.full_like(labels, 255)
    assert loss_fn(logits, all_ignored).item() == 0.0


def test_ohem_class_weights():
    # Two hard pixels: label 0 with p0 = 0.5 (ce = ln 2) and label 1 with p1 = 0.6
    # (ce = -ln 0.6). Class weights [3, 1]: (3 * ln 2 + 1 * (-ln 0.6)) / (3 + 1).
    logits = torch.tensor([[[[0.0, 0.0]], [[0.0, math.log(1.5)]]]])  # (1, 2, 1, 2)
    labels = torch.tensor([[[0, 1]]])
    loss = OhemCrossEntropyLoss(min_kept=0, class_weights=[3.0, 1.0])(logits, labels)
    assert loss.item() == pytest.approx((3 * LN2 - math.log(0.6)) / 4, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [{"probability_threshold": 0.0}, {"probability_threshold": 1.5}, {"min_kept": -1}],
)
def test_ohem_invalid_options(kwargs):
    with pytest.raises(ValueError):
        OhemCrossEntropyLoss(**kwargs)


def test_ohem_rejects_single_channel_and_bad_labels():
    with pytest.raises(ValueError, match="softmax"):
        OhemCrossEntropyLoss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        OhemCrossEntropyLoss()(torch.zeros(1, 2, 2, 2), torch.full((1, 2, 2), 3))


# ----------------------------------------------------------------------- L-SNet and DIoU


@pytest.mark.parametrize(
    ("prediction", "target", "expected"),
    [
        ([0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0], 0.0),
        # IoU 1/7; centres (1,1), (2,2): rho^2 = 2; enclosing 3x3: c^2 = 18.
        ([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0], 1 - 1 / 7 + 2 / 18),
        # Disjoint: IoU 0; centres 2 px apart: rho^2 = 4; enclosing 3x1: c^2 = 10.
        ([0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 3.0, 1.0], 1.4),
        # Nested, same centre: 1 - 4/16, no distance term.
        ([1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 4.0, 4.0], 0.75),
    ],
)
def test_diou_hand_computed(prediction, target, expected):
    value = diou_loss(torch.tensor([prediction]), torch.tensor([target]))
    assert value.item() == pytest.approx(expected, abs=1e-6)


def test_diou_reductions_and_bad_shapes():
    prediction = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    target = torch.tensor([[0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 3.0, 1.0]])
    assert diou_loss(prediction, target, "none").tolist() == pytest.approx([0.0, 1.4], abs=1e-6)
    assert diou_loss(prediction, target, "sum").item() == pytest.approx(1.4, abs=1e-6)
    assert diou_loss(torch.zeros(0, 4), torch.zeros(0, 4)).item() == 0.0
    with pytest.raises(ValueError):
        diou_loss(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError):
        diou_loss(prediction, target[:1])
    with pytest.raises(ValueError):
        diou_loss(prediction, target, reduction="max")


def test_distances_to_boxes():
    boxes = distances_to_boxes(torch.tensor([[5.0, 6.0]]), torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    assert boxes.tolist() == [[4.0, 4.0, 8.0, 10.0]]


def test_focal_dice_hand_computed():
    # Lin focal, gamma 2, no alpha: -(1 - p_t)^2 ln p_t for p_t = 0.5, 0.75, 0.5, 0.75:
    # (2 * 0.25 * ln2 + 2 * 0.0625 * ln 4/3) / 4 = 0.095634; + 0.2 * Dice 0.375.
    focal = (2 * 0.25 * LN2 + 2 * 0.0625 * LN4_3) / 4
    loss = FocalDiceLoss()(LOGITS_2X2, TARGET_2X2)
    assert loss.item() == pytest.approx(focal + 0.2 * DICE_2X2, rel=1e-5)


def test_focal_dice_softmax_counts_background_pixels():
    # 2-channel softmax equal to the binary example: categorical focal sums each pixel's
    # true-class term, so it equals the binary focal above; Dice on channel 1 only.
    focal = (2 * 0.25 * LN2 + 2 * 0.0625 * LN4_3) / 4
    loss = FocalDiceLoss(activation="softmax")(_binary_to_two_channel(LOGITS_2X2), TARGET_2X2)
    assert loss.item() == pytest.approx(focal + 0.2 * DICE_2X2, rel=1e-5)


def test_focal_dice_batch_dice_pools_images_before_the_ratio():
    # Image 0 has one foreground pixel predicted with p = 0.5 (sigmoid(0)); image 1 has no
    # foreground and predicts p = sigmoid(-2) everywhere (4 pixels).
    logits = torch.tensor([[[[0.0, -20.0], [-20.0, -20.0]]], [[[-2.0, -2.0], [-2.0, -2.0]]]])
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    p0 = torch.sigmoid(logits[0]).sum().item()
    p1 = torch.sigmoid(logits[1]).sum().item()
    # per image: image 1's Dice loss is ~1 whatever it predicts (empty target)
    per_image = FocalDiceLoss(dice_weight=1.0, gamma=0.0)
    batch = FocalDiceLoss(dice_weight=1.0, gamma=0.0, batch_dice=True)
    focal = torch.nn.functional.binary_cross_entropy_with_logits(logits, target).item()
    dice_image0 = 1 - 2 * 0.5 / (p0 + 1)
    assert per_image(logits, target).item() == pytest.approx(
        focal + (dice_image0 + 1.0) / 2, rel=1e-4
    )
    # pooled: 2 * 0.5 / (p0 + p1 + 1)
    assert batch(logits, target).item() == pytest.approx(
        focal + 1 - 2 * 0.5 / (p0 + p1 + 1), rel=1e-4
    )
    # and the empty image's false positives now get a gradient through the pooled ratio
    logits = logits.clone().requires_grad_(True)
    batch(logits, target).backward()
    assert (logits.grad[1] > 0).all()


def test_lsnet_loss_parts_and_positive_boxes_only():
    heatmap_target = torch.from_numpy(render_tip_heatmap([[2.0, 1.0]], 4, 5, sigma_px=0.5))
    heatmap_target = heatmap_target[None, None]  # (1, 1, 4, 5)
    # Only pixel (row 1, col 2) exceeds tau = 0.5 (neighbours: exp(-1/0.5) = 0.135).
    box_target = torch.full((1, 4, 4, 5), 2.0)
    box_prediction = torch.full((1, 4, 4, 5), 7.0)
    box_prediction[0, :, 1, 2] = 2.0  # correct only at the positive cell
    heatmap_logits = torch.zeros(1, 1, 4, 5)
    out = LSNetLoss()(
        heatmap_logits, box_prediction, LOGITS_2X2, heatmap_target, box_target, TARGET_2X2
    )
    assert out["box"].item() == pytest.approx(0.0, abs=1e-6)
    expected_heatmap = penalty_reduced_focal_loss(heatmap_logits, heatmap_target)
    assert out["heatmap"].item() == pytest.approx(expected_heatmap.item())
    assert out["segmentation"].item() == pytest.approx(
        FocalDiceLoss()(LOGITS_2X2, TARGET_2X2).item()
    )
    assert out["total"].item() == pytest.approx(
        out["heatmap"].item() + out["box"].item() + out["segmentation"].item()
    )
    with pytest.raises(ValueError):
        LSNetLoss(positive_threshold=1.0)


# ------------------------------------------------------------------------------ tip heatmap


def test_tip_heatmap_peak_at_tip_and_gaussian_values():
    heatmap = render_tip_heatmap([[3.0, 4.0]], height=8, width=8, sigma_px=2.0)
    assert heatmap.shape == (8, 8) and heatmap.dtype == np.float32
    assert np.unravel_index(np.argmax(heatmap), heatmap.shape) == (4, 3)  # (row y, col x)
    assert heatmap[4, 3] == 1.0
    assert heatmap[5, 3] == pytest.approx(math.exp(-1 / 8))  # 1 px away: exp(-1 / (2 sigma^2))
    assert heatmap[6, 5] == pytest.approx(math.exp(-8 / 8))  # (2, 2) px away


def test_tip_heatmap_subpixel_two_tips_empty_and_outside():
    heatmap = render_tip_heatmap([[3.4, 4.0], [6.0, 1.0]], height=8, width=8, sigma_px=2.0)
    assert heatmap[4, 3] == 1.0 and heatmap[1, 6] == 1.0  # nearest pixels are exact positives
    assert heatmap[4, 4] == pytest.approx(math.exp(-(0.6**2) / 8))  # sub-pixel centre
    assert int((heatmap == 1.0).sum()) == 2
    assert not render_tip_heatmap(np.zeros((0, 2)), 4, 4).any()
    outside = render_tip_heatmap([[-3.0, 1.0]], 4, 4, sigma_px=2.0)
    assert outside.max() < 1.0 and outside[1, 0] == pytest.approx(math.exp(-9 / 8))
    with pytest.raises(ValueError):
        render_tip_heatmap([[1.0, 1.0]], 4, 4, sigma_px=0.0)
    with pytest.raises(ValueError):
        render_tip_heatmap([[np.nan, 1.0]], 4, 4)


def test_penalty_reduced_focal_hand_computed():
    # target [1, 0.5], logits [0, 0] (p = 0.5), alpha 2, beta 4, one positive:
    #   positive: (1 - 0.5)^2 * ln2 = 0.173287
    #   negative: (1 - 0.5)^4 * 0.5^2 * ln2 = 0.010830
    target = torch.tensor([[[[1.0, 0.5]]]])
    loss = TipHeatmapFocalLoss()(torch.zeros(1, 1, 1, 2), target)
    assert loss.item() == pytest.approx(0.25 * LN2 + 0.0625 * 0.25 * LN2, rel=1e-6)
    # No positives: normalised by 1, only the negative term.
    loss = TipHeatmapFocalLoss()(torch.zeros(1, 1, 1, 1), torch.tensor([[[[0.0]]]]))
    assert loss.item() == pytest.approx(0.25 * LN2, rel=1e-6)
    with pytest.raises(ValueError, match="shape"):
        TipHeatmapFocalLoss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3))


# ------------------------------------------------------------- options, factory, arg order


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("reinforced_focal", {"alpha": -1.0}),
        ("reinforced_focal", {"gamma": -0.5}),
        ("reinforced_focal", {"activation": "relu"}),
        ("reinforced_focal", {"reduction": "max"}),
        ("reinforced_focal", {"class_weights": [-1.0, 1.0]}),
        ("reinforced_focal", {"class_weights": []}),
        ("hybrid_focal_dice", {"dice_weight": -0.75}),
        ("bce_dice_cldice", {"cldice_alpha": 1.5}),
        ("bce_dice_cldice", {"skeleton_iterations": -1}),
        ("focal_dice", {"focal_alpha": 2.0}),
        ("tip_heatmap_focal", {"beta": -4.0}),
        ("diou", {"reduction": "max"}),
    ],
)
def test_invalid_options_raise_value_error(name, kwargs):
    with pytest.raises(ValueError):
        build_loss(name, **kwargs)


def test_build_loss_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as error:
        build_loss("dice_plus_magic")
    for name in LOSSES:
        assert name in str(error.value)


@pytest.mark.parametrize("name", ["reinforced_focal", "hybrid_focal_dice", "bce_dice_cldice"])
@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_every_segmentation_loss_multiclass_backward(name, activation):
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    labels = torch.randint(0, 3, (2, 8, 8))
    loss = build_loss(name, activation=activation)(logits, labels)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad is not None
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize(
    "loss_fn",
    [ReinforcedFocalLoss(), HybridFocalDiceLoss(), BceDiceClDiceLoss(), FocalDiceLoss()],
    ids=["reinforced_focal", "hybrid", "bce_dice_cldice", "focal_dice"],
)
def test_argument_order_prediction_first(loss_fn):
    # (target, prediction) must fail loudly: an integer label map is not float logits.
    with pytest.raises(ValueError, match="logits"):
        loss_fn(TARGET_2X2[:, None], LOGITS_2X2)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (torch.full((1, 2, 2), 2), "labels"),  # binary model, label 2
        (torch.zeros(1, 3, 3, dtype=torch.long), "shape"),  # wrong size
    ],
)
def test_bad_targets_raise(target, message):
    with pytest.raises(ValueError, match=message):
        ReinforcedFocalLoss()(LOGITS_2X2, target)


def test_softmax_needs_two_channels():
    with pytest.raises(ValueError, match="softmax"):
        ReinforcedFocalLoss(activation="softmax")(LOGITS_2X2, TARGET_2X2)


# --------------------------------------------------- training-side metric helpers (torch)


def test_training_metrics_reexport_runtime_metrics():
    import fluoro_perception.metrics as runtime_metrics
    import fluoro_training.metrics as training_metrics

    for name in runtime_metrics.__all__:
        assert getattr(training_metrics, name) is getattr(runtime_metrics, name)


def test_logits_to_masks_softmax_and_sigmoid():
    from fluoro_training.metrics import logits_to_masks

    # (1, 3, 1, 2): pixel 0 argmax class 2, pixel 1 argmax class 0.
    logits = torch.tensor([[[[0.0, 5.0]], [[1.0, 2.0]], [[3.0, -1.0]]]])
    masks = logits_to_masks(logits, "softmax")
    assert masks.dtype == torch.bool
    assert masks[0, :, 0, 0].tolist() == [False, False, True]
    assert masks[0, :, 0, 1].tolist() == [True, False, False]
    # sigmoid > 0.5 <=> logit > 0; threshold 0.88 <=> logit > ln(0.88 / 0.12) = 1.99
    assert logits_to_masks(logits, "sigmoid")[0, :, 0, 0].tolist() == [False, True, True]
    assert logits_to_masks(logits, "sigmoid", 0.88)[0, :, 0, 1].tolist() == [True, True, False]
    with pytest.raises(ValueError):
        logits_to_masks(logits, "tanh")
    with pytest.raises(ValueError):
        logits_to_masks(logits, "sigmoid", threshold=1.0)
    with pytest.raises(ValueError):
        logits_to_masks(logits[0], "softmax")


def test_torch_dice_and_hausdorff_wrappers_hand_computed():
    from fluoro_training.metrics import TorchDiceMetric, TorchHausdorffMetric, labels_to_masks

    # Channel 1: prediction 2 px, target 1 px inside it -> Dice 2*1 / (2 + 1) = 2/3.
    prediction = labels_to_masks(torch.tensor([[[1, 1, 0, 0]]]), 2)
    target = labels_to_masks(torch.tensor([[[1, 0, 0, 0]]]), 2)
    dice = TorchDiceMetric()
    assert dice(prediction, target).flatten().tolist() == pytest.approx([2 / 3])
    assert dice.aggregate().item() == pytest.approx(2 / 3)
    # Vertical 4 px lines in column 3 and column 5 of an 8x8 image: Hausdorff 2 px.
    line = torch.zeros(1, 8, 8, dtype=torch.long)
    line[0, 2:6, 3] = 1
    shifted = torch.roll(line, shifts=2, dims=2)
    hausdorff = TorchHausdorffMetric()
    value = hausdorff(labels_to_masks(shifted, 2), labels_to_masks(line, 2))
    assert value.flatten().tolist() == pytest.approx([2.0])
    assert hausdorff.aggregate().item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="equal shapes"):
        dice(prediction, target[:, :1])
    with pytest.raises(ValueError):
        labels_to_masks(torch.tensor([[[0, 2]]]), 2)
