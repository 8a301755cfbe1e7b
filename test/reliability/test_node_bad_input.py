"""Bad input at the node over real DDS: every bad frame is dropped by reason, logged in one
line, reported on ``/diagnostics``, and the next good frame is processed.

``test/nodes/test_segmentation_node.py`` covers one wrong encoding, one truncated buffer
and fixed duplicate / out-of-order / jump-back stamps. Here hypothesis draws the faults
(bounded: ``NODE_EXAMPLES`` bad frames, each followed by a good one) and the stamp
sequences, and the node must agree with a reference model of its stamp rule. Models and
frames are the 64x64 grey-level ones of the node tests (dark line -> guidewire, mid grey
-> stent, bright -> background).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from _node_harness import (
    SIZE,
    base_overrides,
    diagnostics_values,
    image_msg,
    outputs_with_stamp,
    scene_image,
    wait_for,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluoro_perception.nodes import conversions as conv

pytestmark = pytest.mark.ros

#: Bad frames per run of the fault property (each followed by a good frame).
NODE_EXAMPLES = 14
#: Stamp sequences per run of the stamp property (3..6 frames each).
STAMP_EXAMPLES = 4
_NODE_SETTINGS = settings(
    max_examples=NODE_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# (fault, the text the one-line drop reason must contain)
FAULTS = {
    "float_nan": "'32FC1' is not supported",
    "float_inf_64": "'64FC1' is not supported",
    "unknown_encoding": "'yuv422' is not supported",
    "step_short": "step=",
    "truncated": "truncated",
    "oversized": "oversized",
    "zero_height": "height=0",
    "zero_width": "width=0",
    "huge_width": "step=",
    "huge_height": "truncated",
    "bad_endian_flag": "is_bigendian=2",
}


def bad_frame(fault: str, stamp_ns: int, height: int, width: int):
    """A ``sensor_msgs/Image`` with exactly one fault (rclpy types the fields: uint32 etc.)."""
    rng = np.random.default_rng(height * 100 + width)
    msg = image_msg(stamp_ns, rng.integers(0, 256, (height, width), dtype=np.uint8))
    if fault in ("float_nan", "float_inf_64"):
        dtype = np.float32 if fault == "float_nan" else np.float64
        pixels = np.full((height, width), np.nan if fault == "float_nan" else np.inf, dtype)
        msg.encoding = "32FC1" if fault == "float_nan" else "64FC1"
        msg.step = width * pixels.itemsize
        msg.data = pixels.tobytes()
    elif fault == "unknown_encoding":
        msg.encoding = "yuv422"
    elif fault == "step_short":
        msg.step = width - 1
    elif fault == "truncated":
        msg.data = bytes(msg.data)[: height * width - 1]
    elif fault == "oversized":
        msg.data = bytes(msg.data) + b"\x00" * 7
    elif fault == "zero_height":
        msg.height = 0
    elif fault == "zero_width":
        msg.width = 0
    elif fault == "huge_width":
        msg.width = 2**32 - 1
    elif fault == "huge_height":
        msg.height = 2**32 - 1
    elif fault == "bad_endian_flag":
        msg.encoding, msg.step, msg.is_bigendian = "mono16", width * 2, 2
        msg.data = bytes(height * width * 2)
    return msg


def test_every_bad_frame_is_dropped_reported_and_the_next_good_frame_processed(
    harness_factory, grey_model, capfd
) -> None:
    harness = harness_factory(base_overrides(grey_model, max_age_s=30.0))
    harness.wait_for_subscriber()
    stats = harness.node.stats
    seen_faults: list[str] = []

    @_NODE_SETTINGS
    @given(st.sampled_from(sorted(FAULTS)), st.integers(2, 40), st.integers(2, 40))
    def bad_then_good(fault: str, height: int, width: int) -> None:
        drops_before = stats.drops["decode_error"]
        harness.publisher.publish(bad_frame(fault, harness.now_ns(), height, width))
        wait_for(lambda: stats.drops["decode_error"] == drops_before + 1, f"{fault} dropped")
        reason = stats.last_drop
        assert reason.startswith("decode_error: ") and "\n" not in reason, reason
        assert FAULTS[fault] in reason, (fault, reason)
        good_stamp = harness.now_ns()
        harness.publisher.publish(image_msg(good_stamp))
        wait_for(lambda: outputs_with_stamp(harness, "labels", good_stamp), "the good frame")
        seen_faults.append(fault)

    bad_then_good()
    assert len(seen_faults) >= min(NODE_EXAMPLES, len(FAULTS))
    assert stats.drops["decode_error"] == len(seen_faults)
    assert stats.drops["processing_error"] == 0  # nothing got past the decoder
    # /diagnostics carries the count and the one-line reason of the last drop
    wait_for(
        lambda: any(
            v.get("dropped.decode_error") == str(len(seen_faults))
            and v.get("last_drop", "").startswith("decode_error: ")
            for v in diagnostics_values(harness)
        ),
        "the drop count on /diagnostics",
    )
    # the log has one line per reason and second (throttled per reason, never silent)
    log = capfd.readouterr().err
    drop_lines = [line for line in log.splitlines() if "dropped frame (decode_error: " in line]
    assert drop_lines, log[-2000:]


@pytest.mark.parametrize(
    ("encoding", "make_image", "big_endian"),
    [
        # 12-bit detector data: 16 * the 8-bit grey levels (200 -> 3200 of 4095, ...)
        ("mono16", lambda grey: grey.astype(np.uint16) * 16, False),
        ("mono16", lambda grey: grey.astype(np.uint16) * 16, True),
        ("rgb8", lambda grey: cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB), False),
        ("bgr8", lambda grey: cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), False),
        ("mono8", lambda grey: grey, False),  # padded rows (step > width)
    ],
)
def test_other_layouts_of_the_same_scene_give_the_same_labels(
    harness_factory, grey_model, encoding, make_image, big_endian
) -> None:
    harness = harness_factory(base_overrides(grey_model))
    harness.wait_for_subscriber()
    reference_stamp = harness.now_ns()
    harness.publisher.publish(image_msg(reference_stamp))
    wait_for(lambda: outputs_with_stamp(harness, "labels", reference_stamp), "mono8 labels")
    reference = conv.msg_to_image(outputs_with_stamp(harness, "labels", reference_stamp)[0])
    assert set(np.unique(reference)) == {0, 1, 2}  # the scene has all three classes

    image = make_image(scene_image())
    stamp = harness.now_ns()
    msg = image_msg(stamp, image, encoding)
    if encoding == "mono16" and big_endian:
        msg.data = image.astype(">u2").tobytes()
        msg.is_bigendian = 1
    if encoding == "mono8":
        padded = np.zeros((SIZE, SIZE + 5), np.uint8)
        padded[:, :SIZE] = image
        msg.step, msg.data = SIZE + 5, padded.tobytes()
    harness.publisher.publish(msg)
    wait_for(lambda: outputs_with_stamp(harness, "labels", stamp), f"{encoding} labels")
    labels = conv.msg_to_image(outputs_with_stamp(harness, "labels", stamp)[0])
    np.testing.assert_array_equal(labels, reference)
    assert sum(harness.node.stats.drops.values()) == 0


def test_image_size_change_mid_stream_resets_tracking_and_keeps_processing(
    harness_factory, grey_model
) -> None:
    harness = harness_factory(base_overrides(grey_model, min_tip_confidence=0.0))
    harness.publish_until(lambda: len(harness.messages("tip_tracked")) >= 1, "a track")
    stats = harness.node.stats
    assert stats.tracking_resets == 0
    wide = cv2.resize(scene_image(), (80, 48), interpolation=cv2.INTER_NEAREST)  # W 80, H 48
    stamp = harness.now_ns()
    harness.publisher.publish(image_msg(stamp, wide))
    wait_for(lambda: outputs_with_stamp(harness, "labels", stamp), "labels of the 80x48 frame")
    labels = outputs_with_stamp(harness, "labels", stamp)[0]
    assert (labels.width, labels.height) == (80, 48)
    assert stats.image_size_changes == 1 and stats.tracking_resets == 1
    # the first frame of the new size starts a new (unconfirmed) track: no tracked tip yet
    assert not outputs_with_stamp(harness, "tip_tracked", stamp)
    back = harness.now_ns()
    harness.publisher.publish(image_msg(back))
    wait_for(lambda: outputs_with_stamp(harness, "labels", back), "labels after switching back")
    assert stats.image_size_changes == 2 and sum(stats.drops.values()) == 0
    wait_for(
        lambda: any(
            v.get("image_size_changes") == "2" and v.get("last_image_size_change") == "64x64"
            for v in diagnostics_values(harness)
        ),
        "size changes on /diagnostics",
    )


def expected_outcomes(stamps_ns: list[int], last_ns: int | None, reset_s: float) -> list[str]:
    """Reference of the node's stamp rule: processed, duplicate, out_of_order or reset."""
    outcomes = []
    for stamp in stamps_ns:
        if last_ns is not None and stamp <= last_ns:
            if stamp == last_ns:
                outcomes.append("duplicate_stamp")
                continue
            if (last_ns - stamp) * 1e-9 < reset_s:
                outcomes.append("out_of_order")
                continue
            outcomes.append("reset")
        else:
            outcomes.append("processed")
        last_ns = stamp
    return outcomes


def test_stamp_rule_reference_by_hand() -> None:
    second = 1_000_000_000
    assert expected_outcomes([10, 10, 9, 12], None, 1.0) == [
        "processed",
        "duplicate_stamp",
        "out_of_order",
        "processed",
    ]
    assert expected_outcomes([5 * second, 3 * second], None, 1.0) == ["processed", "reset"]


def test_random_stamp_sequences_follow_the_rule(harness_factory, grey_model) -> None:
    reset_s = 1.0
    harness = harness_factory(base_overrides(grey_model, max_age_s=60.0, time_jump_reset_s=reset_s))
    harness.wait_for_subscriber()
    stats = harness.node.stats
    state = {"base_ns": harness.now_ns(), "last_ns": None}
    expected_published: list[int] = []

    @settings(
        max_examples=STAMP_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(st.sampled_from([0, 40, 100, -30, -300, -1500, -2500]), min_size=3, max_size=6))
    def sequence(steps_ms: list[int]) -> None:
        # each sequence starts 10 s after everything sent before: a clean first frame
        stamps, stamp = [], state["base_ns"] + 10_000_000_000
        for step_ms in steps_ms:
            stamp += step_ms * 1_000_000
            stamps.append(stamp)
        state["base_ns"] = max(stamps)
        outcomes = expected_outcomes(stamps, state["last_ns"], reset_s)
        for stamp, outcome in zip(stamps, outcomes, strict=True):
            drops_before, resets_before = dict(stats.drops), stats.tracking_resets
            labels_before = len(outputs_with_stamp(harness, "labels", stamp))
            harness.publisher.publish(image_msg(stamp))
            if outcome in ("duplicate_stamp", "out_of_order"):
                target = drops_before.get(outcome, 0) + 1
                wait_for(lambda o=outcome, n=target: stats.drops[o] == n, outcome)
                continue
            wait_for(
                lambda s=stamp, n=labels_before: len(outputs_with_stamp(harness, "labels", s)) > n,
                f"{outcome} frame at {stamp}",
            )
            assert stats.tracking_resets == resets_before + (outcome == "reset")
            state["last_ns"] = stamp
            expected_published.append(stamp)

    sequence()
    # published stamps are input stamps, in the order of the input, never reordered
    published = [conv.stamp_to_ns(m.header.stamp) for m in harness.messages("labels")]
    assert published == expected_published
    assert stats.drops["stale"] == 0 and stats.drops["decode_error"] == 0
