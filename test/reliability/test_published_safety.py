"""Safety of what reaches the robot: no stale pose, no unsure tip, bounded coasting, input
stamps in input order, and a time jump back that resets tracking.

Already covered in ``test/nodes/test_segmentation_node.py``: a frame stale on arrival, a
frame that ages during processing, one low-confidence case, and a jump back counted as a
reset. Here: the confidence rule as a property of the one function that decides the pose
outputs (:func:`conversions.pose_messages`, shared by the node and replay), an age sweep
on a simulated clock (deterministic), coasting at node level, and the bag-loop jump back
with ``use_sim_time`` checked on the tracked velocity.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _node_harness import (
    SPACING_M,
    base_overrides,
    image_msg,
    outputs_with_stamp,
    scene_image,
    wait_for,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from rosgraph_msgs.msg import Clock

from fluoro_perception.core.types import FrameResult, WireDetection
from fluoro_perception.nodes import conversions as conv

_NS_PER_S = 1_000_000_000
POSE_EXAMPLES = 200


def wire(wire_id: int, confidence: float) -> WireDetection:
    centerline = np.array([[10.0 + wire_id, 5.0], [10.0 + wire_id, 15.0]], np.float32)
    return WireDetection(wire_id, centerline, centerline[0], -math.pi / 2, confidence, 10.0)


@settings(max_examples=POSE_EXAMPLES, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=0, max_size=4),
    st.floats(0.0, 1.0),
    st.integers(0, 2**40),
)
def test_no_tip_below_the_confidence_threshold_and_stamps_are_the_input_stamp(
    confidences, threshold, stamp_ns
) -> None:
    confidences = sorted(confidences, reverse=True)  # wires[0] is the most confident
    empty = np.zeros((4, 4), np.uint8)
    result = FrameResult(
        stamp_ns, empty, empty, empty, wires=[wire(i, c) for i, c in enumerate(confidences)]
    )
    header = conv.make_header(stamp_ns, "detector")
    messages = dict(
        conv.pose_messages(
            result,
            header,
            pixel_spacing_m=SPACING_M,
            min_tip_confidence=threshold,
            tracking_enabled=True,
        )
    )
    primary_confident = bool(confidences) and confidences[0] >= threshold
    assert ("tip" in messages) == primary_confident
    assert len(messages["tips"].poses) == sum(c >= threshold for c in confidences)
    assert "tip_tracked" not in messages  # no track in the result: nothing invented
    for message in messages.values():
        assert conv.stamp_to_ns(message.header.stamp) == stamp_ns


def start_sim_clock(harness, now_ns: int):
    """A /clock publisher on the probe, the node's clock set to ``now_ns``."""
    clock = harness.probe.create_publisher(Clock, "/clock", 10)
    wait_for(lambda: clock.get_subscription_count() > 0, "/clock subscriber")
    set_sim_clock(harness, clock, now_ns)
    return clock


def set_sim_clock(harness, clock, now_ns: int) -> None:
    clock.publish(Clock(clock=conv.ns_to_stamp(now_ns)))
    wait_for(lambda: harness.node.get_clock().now().nanoseconds == now_ns, f"sim clock {now_ns}")


@pytest.mark.ros
def test_age_sweep_on_a_sim_clock_publishes_poses_only_within_max_age(
    harness_factory, grey_model
) -> None:
    max_age_s = 0.5
    harness = harness_factory(
        base_overrides(grey_model, use_sim_time=True, max_age_s=max_age_s, min_tip_confidence=0.0)
    )
    harness.wait_for_subscriber()
    now_ns = 1000 * _NS_PER_S
    start_sim_clock(harness, now_ns)  # the clock stands still: ages are exact
    stats = harness.node.stats
    # oldest first so the stamps increase (no out-of-order drops)
    for age_s in (30.0, 1.0, 0.51, 0.5, 0.49, 0.2, 0.0):
        stamp = now_ns - round(age_s * _NS_PER_S)
        stale_before = stats.drops["stale"]
        harness.publisher.publish(image_msg(stamp))
        if age_s > max_age_s:
            wait_for(lambda n=stale_before: stats.drops["stale"] == n + 1, f"{age_s} s dropped")
        else:
            wait_for(lambda s=stamp: outputs_with_stamp(harness, "tip", s), f"tip at {age_s} s")
    for key in ("tip", "tips", "centerline", "labels"):
        ages = [
            (now_ns - conv.stamp_to_ns(m.header.stamp)) / _NS_PER_S for m in harness.messages(key)
        ]
        assert ages and max(ages) <= max_age_s, (key, ages)
    assert stats.drops["stale"] == 3


@pytest.mark.ros
def test_tracked_tip_coasts_at_most_n_frames_with_growing_covariance_then_stops(
    harness_factory, grey_model
) -> None:
    max_coast = 3
    harness = harness_factory(
        base_overrides(
            grey_model, min_tip_confidence=0.0, **{"tracker.max_coast_frames": max_coast}
        )
    )
    harness.publish_until(lambda: len(harness.messages("tip_tracked")) >= 2, "a confirmed track")
    blank = np.full_like(scene_image(), 200)  # bright: no wire, no stent

    def send(image: np.ndarray) -> int:
        stamp = harness.now_ns()
        harness.publisher.publish(image_msg(stamp, image))
        wait_for(lambda: outputs_with_stamp(harness, "labels", stamp), "the frame's labels")
        return stamp

    blank_stamps = []
    for _ in range(max_coast + 3):
        blank_stamps.append(send(blank))
    coasting = [outputs_with_stamp(harness, "tip_tracked", s) for s in blank_stamps]
    assert [len(found) for found in coasting] == [1] * max_coast + [0] * 3
    variances = [found[0].pose.covariance[0] for found in coasting[:max_coast]]
    assert all(b > a for a, b in zip(variances, variances[1:], strict=False)), variances
    assert all(not outputs_with_stamp(harness, "tip", s) for s in blank_stamps)
    # the wire comes back: a NEW track must be confirmed again (3 hits) before publishing
    back = [send(scene_image()) for _ in range(3)]
    assert not outputs_with_stamp(harness, "tip_tracked", back[0])
    assert outputs_with_stamp(harness, "tip_tracked", back[2])


@pytest.mark.ros
def test_bag_loop_time_jump_back_resets_tracks_without_wild_velocity(
    harness_factory, grey_model
) -> None:
    harness = harness_factory(
        base_overrides(grey_model, use_sim_time=True, min_tip_confidence=0.0, max_age_s=1.0)
    )
    harness.wait_for_subscriber()
    period_ns = _NS_PER_S // 10
    clock = start_sim_clock(harness, 100 * _NS_PER_S)

    def play(start_ns: int, frames: int) -> list[int]:
        stamps = []
        for index in range(frames):
            stamp = start_ns + index * period_ns
            set_sim_clock(harness, clock, stamp + period_ns // 2)
            harness.publisher.publish(image_msg(stamp))
            wait_for(lambda s=stamp: outputs_with_stamp(harness, "labels", s), "labels")
            stamps.append(stamp)
        return stamps

    first_pass = play(100 * _NS_PER_S, 5)
    assert outputs_with_stamp(harness, "tip_tracked", first_pass[-1])
    loop = play(10 * _NS_PER_S, 5)  # the bag starts again: 90 s back in time
    assert harness.node.stats.tracking_resets == 1
    # a fresh track: unconfirmed for the first two frames, then slow (the scene is still)
    assert not outputs_with_stamp(harness, "tip_tracked", loop[0])
    assert not outputs_with_stamp(harness, "tip_tracked", loop[1])
    after = [m for s in loop[2:] for m in outputs_with_stamp(harness, "tip_tracked", s)]
    assert after
    for odometry in after:
        speed_m_s = math.hypot(odometry.twist.twist.linear.x, odometry.twist.twist.linear.y)
        assert speed_m_s < 1e-3, speed_m_s  # a 90 s jump through one filter would be wild
    # every output carries an input stamp; per topic they follow the input order
    inputs = set(first_pass + loop)
    for key in ("labels", "tip", "tip_tracked", "tips"):
        stamps = [conv.stamp_to_ns(m.header.stamp) for m in harness.messages(key)]
        assert set(stamps) <= inputs, key
        assert stamps == [s for s in first_pass + loop if s in set(stamps)], key
