"""Tests of the Kalman tip tracker on synthetic tip trajectories."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fluoro_perception.core.tracking import TipTracker, TrackerConfig
from fluoro_perception.core.types import WireDetection

FRAME_NS = 100_000_000  # 10 fps


def wire_at(x: float, y: float, direction_rad: float = 0.0, wire_id: int = 0) -> WireDetection:
    tip = np.array([x, y], np.float32)
    body = tip - 20 * np.array([math.cos(direction_rad), math.sin(direction_rad)], np.float32)
    return WireDetection(
        wire_id=wire_id,
        centerline_px=np.stack([tip, body]),
        tip_px=tip,
        tip_direction_rad=direction_rad,
        confidence=0.9,
        length_px=20.0,
    )


def run_constant_velocity(tracker, frames, start, velocity_px_s, noise_px=0.0, seed=0):
    rng = np.random.default_rng(seed)
    tracks = []
    for frame in range(frames):
        t_s = frame * FRAME_NS / 1e9
        x, y = np.asarray(start) + t_s * np.asarray(velocity_px_s) + rng.normal(0, noise_px, 2)
        tracks = tracker.update(frame * FRAME_NS, [wire_at(x, y)])
    return tracks


@pytest.mark.parametrize(
    ("velocity_px_s", "noise_px"),
    [((40.0, -20.0), 0.0), ((0.0, 0.0), 0.5), ((-30.0, 60.0), 0.5), ((80.0, 0.0), 1.0)],
)
def test_constant_velocity_target_converges(velocity_px_s, noise_px):
    # A constant-velocity target: low process noise is the right model for it.
    config = TrackerConfig(process_noise_px_s2=20.0, measurement_noise_px=max(noise_px, 0.5))
    tracker = TipTracker(config)
    frames = 40
    tracks = run_constant_velocity(tracker, frames, (100, 100), velocity_px_s, noise_px)
    assert len(tracks) == 1
    t_s = (frames - 1) * FRAME_NS / 1e9
    expected_position = np.array([100, 100]) + t_s * np.array(velocity_px_s)
    np.testing.assert_allclose(tracks[0].velocity_px_s, velocity_px_s, atol=3.0 + 4 * noise_px)
    np.testing.assert_allclose(tracks[0].position_px, expected_position, atol=0.5 + noise_px)
    assert tracks[0].track_id == 0 and tracks[0].age_frames == frames
    assert tracks[0].covariance.shape == (4, 4)


def test_track_is_confirmed_after_min_hits():
    tracker = TipTracker(TrackerConfig(min_hits_to_confirm=3))
    counts = [len(tracker.update(i * FRAME_NS, [wire_at(50 + i, 50)])) for i in range(4)]
    assert counts == [0, 0, 1, 1]
    tentative = TipTracker(TrackerConfig(min_hits_to_confirm=3, output_tentative=True))
    assert len(tentative.update(0, [wire_at(50, 50)])) == 1


@pytest.mark.parametrize("dropout_frames", [1, 3, 5])
def test_dropout_keeps_the_same_id(dropout_frames):
    tracker = TipTracker(TrackerConfig(max_coast_frames=5))
    velocity = 30.0  # px/s along x: 3 px per frame
    frame = 0
    for frame in range(10):
        tracks = tracker.update(frame * FRAME_NS, [wire_at(50 + 3 * frame, 60)])
    track_id = tracks[0].track_id
    for _ in range(dropout_frames):
        frame += 1
        tracks = tracker.update(frame * FRAME_NS, [])
        assert len(tracks) == 1 and tracks[0].coasting
        # The prediction keeps moving with the estimated velocity.
        assert tracks[0].position_px[0] == pytest.approx(50 + 3 * frame, abs=1.0)
    frame += 1
    tracks = tracker.update(frame * FRAME_NS, [wire_at(50 + velocity * frame / 10, 60)])
    assert [t.track_id for t in tracks] == [track_id]
    assert tracks[0].missed_frames == 0


@pytest.mark.parametrize("max_coast_frames", [0, 2, 5])
def test_coasting_beyond_the_limit_ends_the_track(max_coast_frames):
    tracker = TipTracker(TrackerConfig(max_coast_frames=max_coast_frames))
    for frame in range(5):
        tracker.update(frame * FRAME_NS, [wire_at(50, 50)])
    for missed in range(1, max_coast_frames + 1):
        tracks = tracker.update((4 + missed) * FRAME_NS, [])
        assert len(tracks) == 1 and tracks[0].missed_frames == missed
    assert tracker.update((5 + max_coast_frames) * FRAME_NS, []) == []


def test_covariance_grows_while_coasting():
    tracker = TipTracker(TrackerConfig())
    for frame in range(8):
        tracker.update(frame * FRAME_NS, [wire_at(50 + frame, 50)])
    traces = []
    for frame in range(8, 13):
        tracks = tracker.update(frame * FRAME_NS, [])
        traces.append(np.trace(tracks[0].covariance[:2, :2]))
    assert all(b > a for a, b in zip(traces[:-1], traces[1:], strict=True))


@pytest.mark.parametrize("jump_px", [(60.0, 0.0), (0.0, -45.0), (25.0, 25.0)])
def test_outlier_jump_does_not_drag_the_track(jump_px):
    tracker = TipTracker(TrackerConfig())
    for frame in range(10):
        tracks = tracker.update(frame * FRAME_NS, [wire_at(50 + 2 * frame, 80)])
    track_id = tracks[0].track_id
    outlier = wire_at(50 + 2 * 10 + jump_px[0], 80 + jump_px[1])
    tracks = tracker.update(10 * FRAME_NS, [outlier])
    assert [t.track_id for t in tracks] == [track_id]
    np.testing.assert_allclose(tracks[0].position_px, (70, 80), atol=1.0)
    assert tracks[0].missed_frames == 1
    assert tracker.rejected_detections == 1
    tracks = tracker.update(11 * FRAME_NS, [wire_at(72, 80)])
    assert [t.track_id for t in tracks] == [track_id]
    np.testing.assert_allclose(tracks[0].position_px, (72, 80), atol=1.0)
    # The tentative track the outlier started died on its first miss.
    for frame in range(12, 16):
        tracks = tracker.update(frame * FRAME_NS, [wire_at(50 + 2 * frame, 80)])
    assert [t.track_id for t in tracks] == [track_id]


def test_two_parallel_wires_keep_their_ids():
    tracker = TipTracker(TrackerConfig())
    ids_by_row: dict[int, set[int]] = {40: set(), 60: set()}
    for frame in range(30):
        x = 30 + 4 * frame + 3 * math.sin(frame / 3)
        wires = [wire_at(x, 40, wire_id=0), wire_at(x, 60, wire_id=1)]
        if frame % 2:
            wires.reverse()  # geometry's confidence order is not stable across frames
        tracks = tracker.update(frame * FRAME_NS, wires)
        for track in tracks:
            ids_by_row[round(float(track.position_px[1]))].add(track.track_id)
    assert len(ids_by_row[40]) == 1 and len(ids_by_row[60]) == 1
    assert ids_by_row[40] != ids_by_row[60]


@pytest.mark.parametrize("stale_stamp_ns", [5 * FRAME_NS, 9 * FRAME_NS])
def test_time_going_backwards_resets(stale_stamp_ns):
    tracker = TipTracker(TrackerConfig(min_hits_to_confirm=1))
    for frame in range(10):
        tracks = tracker.update(frame * FRAME_NS, [wire_at(50 + 5 * frame, 50)])
    old_id = tracks[0].track_id
    assert tracks[0].velocity_px_s[0] == pytest.approx(50.0, abs=3.0)
    tracks = tracker.update(stale_stamp_ns, [wire_at(20, 20)])
    assert tracker.resets == 1
    assert len(tracks) == 1 and tracks[0].track_id != old_id
    np.testing.assert_allclose(tracks[0].position_px, (20, 20))
    np.testing.assert_allclose(tracks[0].velocity_px_s, (0, 0))


def test_stale_frame_is_ignored_when_reset_is_disabled():
    tracker = TipTracker(TrackerConfig(min_hits_to_confirm=1, reset_on_time_jump_back=False))
    for frame in range(5):
        before = tracker.update(frame * FRAME_NS, [wire_at(50 + frame, 50)])
    after = tracker.update(2 * FRAME_NS, [wire_at(90, 90)])
    assert tracker.stale_frames == 1 and tracker.resets == 0
    assert [t.track_id for t in after] == [t.track_id for t in before]
    np.testing.assert_allclose(after[0].position_px, before[0].position_px)


def test_long_forward_gap_resets():
    tracker = TipTracker(TrackerConfig(min_hits_to_confirm=1, max_dt_s=1.0))
    tracker.update(0, [wire_at(50, 50)])
    tracks = tracker.update(3 * 10**9, [wire_at(52, 50)])
    assert tracker.resets == 1 and tracks[0].track_id == 1


def test_direction_is_smoothed_across_the_wrap():
    tracker = TipTracker(TrackerConfig(min_hits_to_confirm=1, direction_smoothing=0.5))
    tracker.update(0, [wire_at(50, 50, direction_rad=math.pi - 0.1)])
    tracks = tracker.update(FRAME_NS, [wire_at(50, 50, direction_rad=-math.pi + 0.1)])
    assert abs(abs(tracks[0].direction_rad) - math.pi) < 0.01


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("gate_px", 0.0, ValueError),
        ("max_coast_frames", -1, ValueError),
        ("min_hits_to_confirm", 0, ValueError),
        ("direction_smoothing", 1.5, ValueError),
        ("measurement_noise_px", float("nan"), ValueError),
        ("reset_on_time_jump_back", 1, TypeError),
    ],
)
def test_config_rejects_bad_values(field, value, error):
    with pytest.raises(error, match=field):
        TrackerConfig(**{field: value})


def test_bad_update_arguments_raise():
    tracker = TipTracker(TrackerConfig())
    with pytest.raises(TypeError, match="stamp_ns"):
        tracker.update(1.5, [])
    with pytest.raises(TypeError, match="WireDetection"):
        tracker.update(1, [(1.0, 2.0)])
