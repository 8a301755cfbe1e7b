"""Style-held-out renders (``fluoro_perception.sim.styles``, ``fluoro-sim styleset``) and
hard negatives (``fluoro-sim dataset --negatives``)."""

from __future__ import annotations

import numpy as np
import pytest

from fluoro_perception.sim import SequenceSimulator, SimConfig
from fluoro_perception.sim.cli import HARD_NEGATIVES, main, sequence_seeds
from fluoro_perception.sim.dataset import load_frame, read_dataset
from fluoro_perception.sim.styles import (
    STYLE_CHOICES,
    STYLE_FACTORS,
    StylePostProcessor,
    pelvis_transmission,
    sim_overrides,
    styled_frames,
)

SIZE = 96
#: Ranges of the training stream (config/train/default.yaml and the simulator's own
#: draws) that each held-out factor must leave.
TRAINED_SPACING_MM = (0.1, 0.3)
TRAINED_WIRE_WIDTH_PX = (1.0, 4.0)
TRAINED_MAX_BODY_ATTENUATION = 0.45


def _frames(style: str, seed: int = 3, n: int = 3, **config):
    return list(styled_frames(seed, style, n, f"s{seed}", height=SIZE, width=SIZE, **config))


def test_none_style_is_the_plain_simulator():
    plain = SequenceSimulator(3, SimConfig(height=SIZE, width=SIZE), sequence_id="s3").frames(3)
    for a, b in zip(plain, _frames("none"), strict=True):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.labels, b.labels)
        assert b.params["style"] == "none" and b.params["style_factors"] == []


@pytest.mark.parametrize("style", ["noise", "display", "anatomy"])
def test_display_domain_styles_change_the_image_but_not_the_truth(style):
    reference = _frames("none")
    for a, b in zip(reference, _frames(style), strict=True):
        assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() > 1.0
        np.testing.assert_array_equal(a.labels, b.labels)
        assert [w.tip_px.tolist() for w in a.wires] == [w.tip_px.tolist() for w in b.wires]
        # outside the exposed field stays as the simulator left it
        np.testing.assert_array_equal(a.image[~a.field_mask], b.image[~b.field_mask])


def test_spacing_and_instruments_leave_the_trained_ranges():
    for seed in range(12):
        overrides = sim_overrides("all", np.random.default_rng([seed, 5150]))
        low, high = overrides["pixel_spacing_mm_range"]
        assert high < TRAINED_SPACING_MM[0] or low > TRAINED_SPACING_MM[1]
        low, high = overrides["wire_width_px_range"]
        assert high < TRAINED_WIRE_WIDTH_PX[0] or low > TRAINED_WIRE_WIDTH_PX[1]
        assert overrides["wire_attenuation_range"][0] > TRAINED_MAX_BODY_ATTENUATION
    simulator = SequenceSimulator(
        4, SimConfig(height=SIZE, width=SIZE, wire_width_px_range=(4.5, 6.0),
                     wire_attenuation_range=(0.5, 0.9))
    )  # fmt: skip
    frame = simulator.frames(1)[0]
    for wire in frame.wires:
        assert 4.5 * 0.5 <= wire.width_px <= 6.0  # 96 px frame: sizes scale with 96/512
    for spec in (w.spec for w in simulator._wires):
        assert 0.5 <= spec.body_attenuation <= 0.9
        assert spec.tip_attenuation > spec.body_attenuation


def test_display_style_leaves_a_lag_trail():
    post = StylePostProcessor("display", seed=1)
    base = SequenceSimulator(2, SimConfig(height=SIZE, width=SIZE)).frames(2)
    dark = base[0]
    bright = type(dark)(**{**dark.__dict__, "image": np.full_like(dark.image, 250)})
    post(dark)
    after = post(bright)
    inside = dark.field_mask
    # the recursive filter keeps most of the previous (darker) frame
    assert after.image[inside].mean() < 200


def test_pelvis_darkens_bone_and_brightens_gas():
    transmission = pelvis_transmission((128, 128), np.random.default_rng(0))
    assert transmission.min() < 0.8 and transmission.max() > 1.0
    assert transmission.shape == (128, 128) and transmission.dtype == np.float32


def test_unknown_style_is_a_one_line_error():
    with pytest.raises(ValueError, match="unknown style 'vendor'; expected one of none"):
        StylePostProcessor("vendor", 0)
    assert set(STYLE_FACTORS) < set(STYLE_CHOICES)


def test_styleset_command_writes_a_readable_dataset(tmp_path, capsys):
    out = tmp_path / "style"
    argv = ["styleset", str(out), "--style", "all", "--sequences", "2", "--frames", "2"]
    assert main([*argv, "--size", "64", "64", "--seed", "5", "--quiet"]) == 0
    dataset = read_dataset(out)
    assert len(dataset) == 4
    frame = load_frame(dataset.records[0])
    assert frame.image.shape == (64, 64)
    assert dataset.header["generator"]["style"] == "all"
    assert "style 'all'" in capsys.readouterr().out


def test_negatives_dataset_has_no_wire(tmp_path):
    out = tmp_path / "neg"
    assert main(["dataset", str(out), "--negatives", "--sequences", "2", "--frames", "1",
                 "--size", "64", "64", "--quiet"]) == 0  # fmt: skip
    dataset = read_dataset(out)
    for record in dataset.records:
        frame = load_frame(record)
        assert frame.wires == [] and not np.isin(frame.labels, [1, 2]).any()
    assert dataset.header["generator"]["negatives"] is True
    assert HARD_NEGATIVES["wire_absent_probability"] == 1.0
    assert len(sequence_seeds(0, 2)) == 2


def test_frame_step_renders_every_kth_frame_of_the_same_run():
    config = SimConfig(height=64, width=64, scenario="contrast")
    stepped = SequenceSimulator(5, config).frames(3, step=10)
    consecutive = SequenceSimulator(5, config).frames(21)
    assert [f.frame_index for f in stepped] == [0, 10, 20]
    assert [f.timestamp_s for f in stepped] == pytest.approx([0.0, 10 / 15, 20 / 15])
    for frame in stepped:  # truth depends on the time only, not on the noise draws
        same = consecutive[frame.frame_index]
        assert np.array_equal(frame.labels, same.labels)
        assert np.array_equal(frame.vessel_mask, same.vessel_mask)
    with pytest.raises(ValueError, match="step"):
        SequenceSimulator(5, config).frames(1, step=0)


def test_dataset_frame_step_spans_the_contrast_injection(tmp_path):
    out = tmp_path / "vessels"
    assert main(["dataset", str(out), "--negatives", "--scenario", "contrast", "--frame-step",
                 "10", "--sequences", "1", "--frames", "3", "--size", "64", "64",
                 "--quiet"]) == 0  # fmt: skip
    dataset = read_dataset(out)
    assert [r.frame_index for r in dataset.records] == [0, 10, 20]
    assert dataset.header["generator"]["frame_step"] == 10
    frames = [load_frame(r) for r in dataset.records]
    assert all(f.wires == [] for f in frames)
