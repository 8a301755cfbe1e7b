"""Tests of the fluoroscopy simulator core (``fluoro_perception.sim``).

Small frames (96-160 px) and few frames keep the file fast on 2 cores.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fluoro_perception.sim import SCENARIOS, SequenceSimulator, SimConfig, simulate_sequence
from fluoro_perception.sim.instruments import (
    gt_wire_thickness_px,
    rasterize_polyline,
    resample_polyline,
)
from fluoro_perception.sim.physics import (
    ImageFormation,
    ImagingSpec,
    image_statistics,
    make_field_mask,
)
from fluoro_perception.sim.stents import stent_outline_metrics

SMALL = {"height": 128, "width": 128}


def _frames(seed: int, n: int, **config) -> list:
    return SequenceSimulator(seed, SimConfig(**{**SMALL, **config})).frames(n)


def _rounded(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.round(points[:, 0]).astype(int), np.round(points[:, 1]).astype(int)


# --- pure helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width_px", "expected"), [(0.8, 3), (1.0, 3), (2.6, 3), (3.5, 4), (3.6, 4), (4.0, 4)]
)
def test_gt_wire_thickness_rule(width_px, expected):
    assert gt_wire_thickness_px(width_px) == expected


@pytest.mark.parametrize(
    ("points", "spacing", "expected_count"),
    [
        (np.array([[0.0, 0.0], [10.0, 0.0]]), 1.0, 11),
        (np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 9.0]]), 1.0, 11),  # length 5 + 5
        (np.array([[0.0, 0.0], [0.0, 4.0]]), 2.0, 3),
    ],
)
def test_resample_polyline_spacing(points, spacing, expected_count):
    out = resample_polyline(points, spacing)
    assert len(out) == expected_count
    np.testing.assert_allclose(out[0], points[0])
    np.testing.assert_allclose(out[-1], points[-1])
    np.testing.assert_allclose(np.hypot(*np.diff(out, axis=0).T), spacing, atol=1e-5)


def test_stent_outline_metrics_rectangle():
    # 10 x 4 rectangle from (0, 0) to (10, 4): centroid (5, 2); axis along +x, length 10
    outline = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 4.0], [0.0, 4.0]])
    axis = np.array([[0.0, 2.0], [5.0, 2.0], [10.0, 2.0]])
    centroid, angle, length = stent_outline_metrics(outline, axis)
    np.testing.assert_allclose(centroid, [5.0, 2.0])
    assert angle == pytest.approx(0.0)
    assert length == pytest.approx(10.0)


def test_field_mask_kinds():
    rng = np.random.default_rng(0)
    assert make_field_mask(rng, 40, 50, "full").all()
    circle = make_field_mask(rng, 64, 64, "circle", 0.2)
    assert 0.2 <= circle.mean() < 1.0
    with pytest.raises(ValueError, match="field kind 'oval'"):
        make_field_mask(rng, 40, 40, "oval")


def test_image_formation_denser_is_darker():
    spec = ImagingSpec(
        dose_photons=1e7, electronic_noise_photons=0.0, scatter_fraction=0.0,
        psf_sigma_px=0.0, temporal_filter=0.0, edge_enhance=0.0, edge_sigma_px=2.0,
        gamma=1.0, black_level=0.1, white_level=0.9, window_low_pct=0.0,
        window_high_pct=100.0, vignette_depth=0.0, vignette_width_px=10.0,
        heel_gradient=0.0, heel_angle_rad=0.0, outside_level=0.0, raw=True,
    )  # fmt: skip
    field = np.ones((8, 64), dtype=bool)
    ramp = np.tile(np.linspace(3.0, 5.0, 64, dtype=np.float32), (8, 1))
    image = ImageFormation(spec, field, 8).render(ramp, np.random.default_rng(0))
    row = image[4].astype(int)
    # window spans the whole ramp: least attenuation -> white level, most -> black level
    assert row[0] == pytest.approx(0.9 * 255, abs=3)
    assert row[-1] == pytest.approx(0.1 * 255, abs=3)
    assert np.all(np.diff(row) <= 0)


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"height": 0}, ValueError, "height"),
        ({"width": 10000}, ValueError, "width"),
        ({"height": 64.5}, TypeError, "height"),
        ({"scenario": "cardiac"}, ValueError, "scenario"),
        ({"bit_depth": 10}, ValueError, "bit_depth"),
        ({"fps": 0.0}, ValueError, "fps"),
        ({"dose_photons_range": (500.0, 50.0)}, ValueError, "dose_photons_range"),
        ({"scenario_weights": (1.0, 1.0)}, ValueError, "scenario_weights"),
        ({"tip_excursion_probability": 1.5}, ValueError, "tip_excursion_probability"),
        ({"pixel_spacing_mm_range": [0.1, 0.2]}, TypeError, "pixel_spacing_mm_range"),
    ],
)
def test_config_validation(kwargs, error, message):
    with pytest.raises(error, match=message):
        SimConfig(**kwargs)


@pytest.mark.parametrize("n_frames", [-1, 2.0])
def test_simulate_sequence_validates_at_call(n_frames):
    with pytest.raises(ValueError, match="n_frames"):
        simulate_sequence(0, n_frames, SimConfig(**SMALL))


@pytest.mark.parametrize("seed", [-1, 1.5, "3"])
def test_bad_seed_rejected(seed):
    with pytest.raises(ValueError, match="seed"):
        SequenceSimulator(seed, SimConfig(**SMALL))


# --- determinism, streaming, formats -----------------------------------------------------


def test_same_seed_gives_identical_bytes():
    a = _frames(11, 3)
    b = _frames(11, 3)
    for fa, fb in zip(a, b, strict=True):
        assert fa.image.tobytes() == fb.image.tobytes()
        assert fa.labels.tobytes() == fb.labels.tobytes()
        assert fa.wire_instances.tobytes() == fb.wire_instances.tobytes()
        assert len(fa.wires) == len(fb.wires)
        for wa, wb in zip(fa.wires, fb.wires, strict=True):
            assert wa.centerline_px.tobytes() == wb.centerline_px.tobytes()
        assert fa.params == fb.params


def test_different_seeds_give_different_images():
    images = [_frames(seed, 1)[0].image for seed in (1, 2, 3)]
    assert not np.array_equal(images[0], images[1])
    assert not np.array_equal(images[1], images[2])


def test_same_seed_different_scenarios_differ():
    mono = _frames(8, 1, scenario="mono")[0]
    dual = _frames(8, 1, scenario="dual")[0]
    assert mono.params["mm_per_px"] != dual.params["mm_per_px"]


def test_stream_is_consecutive_and_timestamps_follow_fps():
    config = SimConfig(**SMALL, fps=7.5)
    simulator = SequenceSimulator(4, config, sequence_id="run-a")
    first = simulator.frames(2)
    third = next(iter(simulator))
    assert [f.frame_index for f in [*first, third]] == [0, 1, 2]
    assert [f.timestamp_s for f in [*first, third]] == pytest.approx([0.0, 1 / 7.5, 2 / 7.5])
    assert {f.sequence_id for f in [*first, third]} == {"run-a"}
    generated = list(simulate_sequence(4, 3, config))
    assert generated[2].image.tobytes() == third.image.tobytes()


@pytest.mark.parametrize(
    ("bit_depth", "dtype", "full_scale"),
    [(8, np.uint8, 255), (12, np.uint16, 4095), (16, np.uint16, 65535)],
)
def test_bit_depths(bit_depth, dtype, full_scale):
    frame = _frames(5, 1, bit_depth=bit_depth)[0]
    assert frame.image.dtype == dtype
    assert frame.bit_depth == bit_depth
    assert frame.image.max() <= full_scale
    # the display range is used: bright parts of the field reach well above 8-bit codes
    assert np.percentile(frame.image[frame.field_mask], 99) > 0.4 * full_scale


# --- ground-truth invariants -------------------------------------------------------------


def _check_frame_invariants(frame) -> None:
    height, width = frame.image.shape
    field = frame.field_mask
    assert field.shape == (height, width) and field.dtype == bool and field.any()
    assert frame.labels.dtype == np.uint8 and frame.wire_instances.dtype == np.uint8
    assert not frame.labels[~field].any()
    assert not frame.wire_instances[~field].any()
    assert set(np.unique(frame.labels)) <= {0, 1, 2, 3}
    # outside the collimated field the image is (near) black
    assert frame.image[~field].max(initial=0) <= 0.06 * (
        255 if frame.bit_depth == 8 else 4095 if frame.bit_depth == 12 else 65535
    )
    ids = [w.instance_id for w in frame.wires]
    assert len(ids) == len(set(ids))
    for wire in frame.wires:
        centerline = wire.centerline_px
        assert centerline.ndim == 2 and centerline.shape[1] == 2 and len(centerline) >= 1
        xs, ys = _rounded(centerline)
        assert np.all((xs >= 0) & (xs < width) & (ys >= 0) & (ys < height))
        assert field[ys, xs].all()
        # every centerline point lies in a wire mask: its own id, or the id of another
        # wire of the frame where that one is drawn over it (shorter wire wins overlaps)
        on_mask = frame.wire_instances[ys, xs]
        assert np.isin(on_mask, ids).all()
        if not (on_mask == wire.instance_id).any():
            # only allowed when another wire runs on top of this one over its whole length
            others = [w.centerline_px for w in frame.wires if w.instance_id != wire.instance_id]
            gaps = [
                np.min(
                    np.hypot(*(centerline[:, None, :] - o[None, :, :]).transpose(2, 0, 1)), axis=1
                )
                for o in others
            ]
            assert gaps and np.min(gaps, axis=0).max() < 3.0
        assert np.isin(frame.labels[ys, xs], [1, 2]).all()
        # the GT band is the centerline rasterized with the documented thickness
        band = np.zeros((height, width), dtype=np.uint8)
        rasterize_polyline(band, centerline, 1, gt_wire_thickness_px(wire.width_px))
        band_in_field = (band > 0) & field
        covered = np.isin(frame.labels[band_in_field], [1, 2])
        assert covered.mean() > 0.95
        if wire.tip_visible:
            np.testing.assert_allclose(centerline[0], wire.tip_px, atol=1e-4)
            tx, ty = _rounded(wire.tip_px[None, :])
            assert field[ty[0], tx[0]]
        if len(centerline) > 3:
            steps = np.hypot(*np.diff(centerline, axis=0).T)
            assert 0.7 < np.median(steps) < 1.3
    for stent in frame.stents:
        assert stent.outline_px.ndim == 2 and stent.outline_px.shape[1] == 2
        assert np.isfinite(stent.centroid_px).all()
        assert stent.diameter_px > 0 and stent.length_px > 0
        assert 0.0 <= stent.deployed_fraction <= 1.0
    if frame.stents:
        assert (frame.labels == 2).any()


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("seed", [0, 1])
def test_ground_truth_invariants(scenario, seed):
    for frame in _frames(seed, 4, scenario=scenario):
        assert frame.scenario == scenario
        _check_frame_invariants(frame)


@pytest.mark.parametrize("seed", range(6))
def test_sampled_scenarios_are_consistent(seed):
    frames = _frames(100 + seed, 2, height=96, width=160)
    assert frames[0].scenario in SCENARIOS
    assert frames[0].image.shape == (96, 160)
    assert 0.05 * 1e-3 < frames[0].pixel_spacing_m < 1.0e-3
    for frame in frames:
        _check_frame_invariants(frame)


@pytest.mark.parametrize(
    ("scenario", "kinds", "n_wires"),
    [
        ("mono", {"guidewire"}, 1),
        ("dual", {"guidewire"}, 2),
        ("stiff", {"stiff_guidewire"}, 1),
        ("contrast", {"guidewire"}, None),
        ("collimation", {"guidewire"}, None),
        ("stent", {"guidewire"}, None),
    ],
)
def test_each_scenario_produces_its_instruments(scenario, kinds, n_wires):
    for seed in (0, 1):
        simulator = SequenceSimulator(seed, SimConfig(**SMALL, scenario=scenario))
        frame = simulator.frames(1)[0]
        assert {w.kind for w in frame.wires} <= kinds
        assert len(frame.wires) >= 1
        if n_wires is not None:
            assert len(frame.wires) == n_wires
        if scenario in ("mono", "dual") and frame.params["catheters"] > 0:
            assert (frame.labels == 3).any(), "the guide catheter must be labelled"
        if scenario == "stent":
            assert len(frame.stents) >= 1
            assert frame.stents[0].kind in {"balloon_expandable", "self_expanding"}
        if scenario == "collimation":
            assert frame.field_mask.mean() <= 0.76
        if scenario == "contrast":
            assert frame.params["contrast"]
            opacities = [f.params["bolus_opacity"] for f in simulator.frames(45)]
            assert max(opacities) > 0.5


def test_dual_wires_have_separate_instances():
    for frame in _frames(2, 3, scenario="dual"):
        assert sorted(w.instance_id for w in frame.wires) == [1, 2]
        counts = [(frame.wire_instances == k).sum() for k in (1, 2)]
        assert min(counts) > 10
        # two different curves, not one wire drawn twice
        a, b = frame.wires[0].centerline_px, frame.wires[1].centerline_px
        assert not np.allclose(a[-1], b[-1], atol=1.0) or not np.allclose(a[0], b[0], atol=1.0)


@pytest.mark.parametrize("scenario", ["mono", "dual", "stiff", "stent"])
def test_instruments_darker_than_local_background(scenario):
    differences = []
    for seed in (0, 1, 2):
        for frame in _frames(seed, 2, scenario=scenario, faint_wire_probability=0.0):
            instrument = (frame.labels > 0).astype(np.uint8)
            if instrument.sum() < 20:
                continue
            grown = cv2.dilate(instrument, np.ones((9, 9), np.uint8))
            near = cv2.dilate(instrument, np.ones((3, 3), np.uint8))
            ring = (grown > 0) & (near == 0) & frame.field_mask
            image = frame.image.astype(np.float64)
            differences.append(image[ring].mean() - image[instrument > 0].mean())
    assert len(differences) >= 4
    assert np.mean(differences) > 2.0


# --- motion ------------------------------------------------------------------------------


def test_motion_moves_the_scene():
    def change(scale: float) -> float:
        frames = _frames(9, 12, scenario="mono", motion_scale=scale, table_pan_probability=0.0)
        first, last = frames[0], frames[-1]
        inner = cv2.erode(first.field_mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        return float(np.abs(first.image.astype(float) - last.image.astype(float))[inner].mean())

    assert change(2.0) > change(0.0) + 0.5


def test_wire_moves_between_frames():
    frames = _frames(3, 20, scenario="mono")
    tips = np.array([f.wires[0].tip_px for f in frames])
    assert np.max(np.hypot(*(tips - tips[0]).T)) > 1.0


def test_tip_leaves_and_reenters_the_field():
    config = dict(
        scenario="mono", tip_excursion_probability=1.0, excursion_period_s_range=(2.5, 3.0),
        motion_scale=0.3, table_pan_probability=0.0,
    )  # fmt: skip
    found = False
    for seed in range(4):
        simulator = SequenceSimulator(seed, SimConfig(**SMALL, **config))
        frames = simulator.frames(50)
        if not frames[0].params["tip_excursion"]:
            continue
        visible = [bool(f.wires and f.wires[0].tip_visible) for f in frames]
        first_out = visible.index(False) if False in visible else None
        assert visible[0], "the excursion starts with the tip inside the field"
        assert first_out is not None, "the tip must leave the field"
        assert any(visible[first_out:]), "the tip must come back into the field"
        for frame in frames:
            _check_frame_invariants(frame)
        found = True
        break
    assert found, "no seed in 0..3 produced a tip excursion"


def test_grey_statistics_in_clinical_ranges():
    # real-fluoroscopy.md: 1st-99th percentile about 45-200, mean about 100-120
    stats = []
    for seed in range(6):
        frame = _frames(200 + seed, 2, height=192, width=192)[-1]
        stats.append(image_statistics(frame.image, frame.field_mask, frame.bit_depth))
    mean_of = {key: np.mean([s[key] for s in stats]) for key in stats[0]}
    assert 25.0 < mean_of["p1"] < 95.0
    assert 150.0 < mean_of["p99"] < 235.0
    assert 90.0 < mean_of["mean"] < 135.0
    assert 0.5 < mean_of["highpass_std"] < 15.0
