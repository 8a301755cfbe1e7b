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
    field_gain,
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


# --- contrast, distractors, wire appearance ----------------------------------------------


@pytest.mark.parametrize(
    ("t_s", "front", "opacity", "base"),
    [
        (0.1, 0.0, 0.0, 0.0),  # before the first injection
        (0.5, 300.0, 0.5, 0.0),  # filling: 0.3 s into a 1 s fill, rise over 0.6 s
        (1.4, 1200.0, 1.0, 0.0),  # fully opacified (hold)
        (4.2, 4000.0, 0.55, 0.0),  # half-way through the 2 s washout to 10 % residual
        (9.2, 9000.0, 0.1, 0.0),  # washed out to the residual
        (10.5, 300.0, 0.5, 0.1),  # second injection, residual elsewhere
    ],
)
def test_bolus_timing(t_s, front, opacity, base):
    from fluoro_perception.sim.sequence import _bolus_at

    schedule = {"mode": "injection", "period_s": 10.0, "start_s": 0.2, "fill_s": 1.0,
                "front_speed_px_s": 1000.0, "hold_s": 2.0, "fade_s": 2.0, "residual": 0.1,
                "soft_px": 6.0}  # fmt: skip
    got = _bolus_at(schedule, t_s)
    assert got == pytest.approx((front, opacity, base), abs=1e-9)


def _still_contrast_frames(seed: int) -> list:
    """16 frames (t = 0 .. 1 s at 15 Hz) of a 160 px contrast sequence without motion."""
    config = SimConfig(
        height=160, width=160, fps=15.0, scenario="contrast", motion_scale=0.0,
        table_pan_probability=0.0,
    )  # fmt: skip
    return SequenceSimulator(seed, config).frames(16)


@pytest.mark.parametrize("seed", range(6))
def test_contrast_visible_in_every_contrast_sequence_within_one_second(seed):
    frames = _still_contrast_frames(seed)  # t = 0 .. 1 s
    assert frames[0].params["bolus_opacity"] == 0.0  # injections start after 0.07 s
    before = cv2.GaussianBlur(frames[0].image.astype(np.float32), (0, 0), 1.0)
    after = cv2.GaussianBlur(frames[-1].image.astype(np.float32), (0, 0), 1.0)
    inner = cv2.erode(frames[0].field_mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    darker = ((before - after) > 12.0) & inner
    # the filled tree covers a visible share of the field at t = 1 s
    assert darker.sum() > 0.01 * inner.sum(), f"only {darker.sum()} darker pixels"
    assert frames[-1].params["bolus_opacity"] > 0.5


def test_residual_contrast_in_other_scenarios():
    config = dict(scenario="mono", contrast_probability=0.0, residual_contrast_probability=1.0)
    frame = _frames(3, 1, **config)[0]
    assert frame.params["residual_contrast"] and not frame.params["contrast"]
    assert 0.05 <= frame.params["bolus_base_opacity"] <= 0.2
    none = _frames(3, 1, scenario="mono", contrast_probability=0.0,
                   residual_contrast_probability=0.0)[0]  # fmt: skip
    assert not none.params["residual_contrast"] and none.params["bolus_base_opacity"] == 0.0


def _guidewire_band(frame) -> np.ndarray:
    band = np.zeros(frame.labels.shape, dtype=np.uint8)
    for wire in frame.wires:
        rasterize_polyline(band, wire.centerline_px, 1, gt_wire_thickness_px(wire.width_px))
    # 2 px slack: the GT band continues a pixel or two past the last centerline point
    # where the wire leaves the field (the centerline keeps only in-field points); any
    # mislabelled distractor (leads, loops, clips, edges) is far longer than that
    return cv2.dilate(band, np.ones((5, 5), np.uint8)) > 0


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_distractors_common_and_never_labelled_guidewire(scenario):
    with_distractors = 0
    seeds = range(8)
    for seed in seeds:
        frame = _frames(seed, 1, height=96, width=96, scenario=scenario)[0]
        with_distractors += bool(frame.params["distractors"])
        # guidewire label only where a GT wire runs, never on ECG leads, sternal wires,
        # pacemaker leads, clips, table edges or wireless catheters
        # (pixels within 2 px of the field edge are exempt: a wire running just outside
        # and along the edge has no in-field centerline point but its band reaches in)
        inner = cv2.erode(frame.field_mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        guidewire = (frame.labels == 1) & inner
        assert not (guidewire & ~_guidewire_band(frame)).any()
    assert with_distractors >= 6, f"{with_distractors}/8 sequences had distractors"


def test_wireless_catheter_labelled_catheter_only():
    found = 0
    for seed in range(12):
        frame = _frames(seed, 1, scenario="mono")[0]
        if not frame.params["wireless_catheter"]:
            continue
        found += 1
        assert frame.params["catheters"] >= 1
        assert (frame.labels == 3).any()
        inner = cv2.erode(frame.field_mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert not ((frame.labels == 1) & inner & ~_guidewire_band(frame)).any()
    assert found >= 1, "no seed in 0..11 drew a wireless catheter (25 % expected)"


def test_wire_visibility_gaps_lower_the_stroke_level():
    from fluoro_perception.sim.instruments import WireSpec, wire_strokes

    spec = WireSpec("guidewire", 2.0, 0.1, 0.2, 5.0, "straight", 0.0, 0.0)
    points = np.stack([np.arange(20.0), np.zeros(20)], axis=1)
    visibility = np.ones(20)
    visibility[10:15] = 0.3
    strokes, _ = wire_strokes(points, spec, visibility)
    # body level 255 * 0.1 / 0.2 = 128 (rounded); the gap keeps 30 %: round(128 * 3 / 10)
    assert sorted({s.level for s in strokes}) == [38, 128, 255]
    assert sum(len(s.points_px) for s in strokes if s.level == 38) == 6  # 5 points + joint
    full, _ = wire_strokes(points, spec)
    assert [s.level for s in full] == [128, 255]


def test_accumulate_strokes_weight_scales_the_drawn_wire():
    from fluoro_perception.sim.instruments import Stroke, accumulate_strokes

    line = Stroke(np.array([[2.0, 5.0], [17.0, 5.0]]), 255, 1)
    plain = np.zeros((10, 20), np.float32)
    accumulate_strokes(plain, [line], 1.0 / 255.0)
    weight = np.ones((10, 20), np.float32)
    weight[:, 10:] = 0.25  # e.g. the right half lies in a contrast-filled lumen
    weighted = np.zeros((10, 20), np.float32)
    accumulate_strokes(weighted, [line], 1.0 / 255.0, weight)
    np.testing.assert_allclose(weighted[:, :10], plain[:, :10])
    np.testing.assert_allclose(weighted[:, 10:], 0.25 * plain[:, 10:], rtol=1e-6)
    assert plain[5, 8] > 0.8  # anti-aliased 1 px line: most of the level on its row


def test_close_dual_wires_stay_separate_instances():
    close = 0
    for seed in range(10):
        frame = _frames(seed, 1, scenario="dual")[0]
        if len(frame.wires) != 2:
            continue
        a, b = (w.centerline_px for w in frame.wires)
        gaps = np.min(np.hypot(*(a[:, None, :] - b[None, :, :]).transpose(2, 0, 1)), axis=1)
        close += np.median(gaps) < 3.0
        assert {1, 2} <= set(np.unique(frame.wire_instances))
    assert close >= 1, "no dual sequence in 0..9 had wires within 3 px of each other"


@pytest.mark.parametrize(
    ("wedge", "angle", "left", "right"),
    [
        (0.0, 0.0, 1.0, 1.0),  # no wedge
        (1.0, 0.0, 1.0, np.exp(-1.0)),  # wedge over the right half (angle 0 = +x)
        (0.5, np.pi, np.exp(-0.5), 1.0),  # wedge over the left half
    ],
)
def test_field_gain_wedge_filter(wedge, angle, left, right):
    spec = ImagingSpec(
        dose_photons=100.0, electronic_noise_photons=0.0, scatter_fraction=0.0,
        psf_sigma_px=0.0, temporal_filter=0.0, edge_enhance=0.0, edge_sigma_px=2.0,
        gamma=1.0, black_level=0.1, white_level=0.9, window_low_pct=0.0,
        window_high_pct=100.0, vignette_depth=0.0, vignette_width_px=10.0,
        heel_gradient=0.0, heel_angle_rad=0.0, outside_level=0.0, raw=True,
        wedge_attenuation=wedge, wedge_angle_rad=angle, wedge_offset=0.0,
        wedge_softness_px=2.0,
    )  # fmt: skip
    gain = field_gain(np.ones((20, 40), dtype=bool), spec)
    # rows 10, columns far from the soft edge at x = 20 and from the (blurred) frame edge
    assert gain[10, 8] == pytest.approx(left, rel=1e-4)
    assert gain[10, 32] == pytest.approx(right, rel=1e-4)


# ---------------------------------------------------------------- hard negatives


def test_wire_absent_sequences_have_no_wire_and_no_stent():
    config = SimConfig(height=128, width=128, scenario="stent", wire_absent_probability=1.0)
    frames = SequenceSimulator(5, config).frames(2)
    for frame in frames:
        assert frame.wires == [] and frame.stents == []
        assert not np.isin(frame.labels, [1, 2]).any()
        assert not frame.wire_instances.any()
        assert frame.params["wire_absent"] is True and frame.params["n_wires"] == 0
    # the catheter is still there: the hard negative keeps the rest of the scene
    assert any((f.labels == 3).any() for f in frames)


def test_wire_absent_draw_changes_no_other_draw():
    # a probability that is > 0 (so the draw happens) but never hits gives the frames of
    # the default config byte for byte: the draw comes after every other scene draw
    for seed in (1, 2):
        default = SequenceSimulator(seed, SimConfig(height=96, width=96)).frames(2)
        drawn = SequenceSimulator(
            seed, SimConfig(height=96, width=96, wire_absent_probability=1e-12)
        ).frames(2)
        for a, b in zip(default, drawn, strict=True):
            np.testing.assert_array_equal(a.image, b.image)
            np.testing.assert_array_equal(a.labels, b.labels)
            assert "wire_absent" not in b.params


def test_wire_absent_probability_is_validated():
    with pytest.raises(ValueError, match="wire_absent_probability"):
        SimConfig(wire_absent_probability=1.5)


# ------------------------------------------------------------- contrast-vessel ground truth


def test_vessel_mask_is_a_field_bool_map_of_the_frame():
    config = SimConfig(height=96, width=112, scenario="contrast", contrast_probability=1.0)
    for frame in SequenceSimulator(5, config).frames(4):
        assert frame.vessel_mask.shape == frame.labels.shape
        assert frame.vessel_mask.dtype == bool
        assert not (frame.vessel_mask & ~frame.field_mask).any()  # background outside


def test_vessel_mask_is_false_without_contrast():
    frames = _frames(3, 3, scenario="mono", contrast_probability=0.0,
                     residual_contrast_probability=0.0)  # fmt: skip
    assert not frames[0].params["contrast"] and not frames[0].params["residual_contrast"]
    assert all(not f.vessel_mask.any() for f in frames)
    # an injection sequence before its first injection (>= 0.07 s) has none either
    first = _frames(1, 1, scenario="contrast")[0]
    assert first.params["bolus_opacity"] == 0.0 and not first.vessel_mask.any()


@pytest.mark.parametrize("seed", range(4))
def test_vessel_mask_lies_on_the_rendered_contrast_vessel(seed):
    frames = _still_contrast_frames(seed)  # t = 0 .. 1 s: the tree fills
    before, after = frames[0], frames[-1]
    darkening = cv2.GaussianBlur(before.image.astype(np.float32), (0, 0), 1.0) - (
        cv2.GaussianBlur(after.image.astype(np.float32), (0, 0), 1.0)
    )
    field = cv2.erode(before.field_mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    instruments = cv2.dilate((after.labels > 0).astype(np.uint8), np.ones((11, 11), np.uint8))
    away = after.vessel_mask & field & (instruments == 0)  # vessel away from wire / catheter
    rest = (
        field
        & (instruments == 0)
        & (cv2.dilate(after.vessel_mask.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0)
    )
    assert away.sum() > 0.02 * field.sum()
    # the masked pixels are the ones the contrast darkened (beyond the auto-window drift)
    assert darkening[away].mean() - darkening[rest].mean() > 3.0


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_vessel_mask_moves_with_the_labels(seed):
    # the wire runs in the vessel it follows (branch 0): with patient motion on, its GT
    # stays inside the (warped) vessel mask of the filled tree (the mask warped with the
    # maps of t = 0 instead holds only 54-68 % of it)
    config = SimConfig(height=160, width=160, fps=15.0, scenario="contrast")
    frame = SequenceSimulator(seed, config).frames(20)[-1]
    wire = frame.labels == 1
    assert frame.params["bolus_opacity"] == 1.0 and wire.sum() > 100
    assert (wire & frame.vessel_mask).sum() > 0.9 * wire.sum()
