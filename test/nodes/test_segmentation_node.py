"""segmentation_node over REAL DDS (isolated domain, localhost; see test/conftest.py).

A separate test node publishes frames and records every output. Models are tiny ONNX
graphs: ``make_random_onnx_model`` (random weights) and, where the test needs a known
answer, a one-layer "grey-level" model whose classes follow the pixel value (dark line
-> guidewire, mid grey -> stent, bright -> background) or whose bias says "all
background". Every wait has a deadline.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState
from model_fixtures import make_random_onnx_model
from onnx import TensorProto, helper, numpy_helper
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from fluoro_perception.core.model_metadata import METADATA_KEY, ModelMetadata, PreprocessSpec
from fluoro_perception.nodes import conversions as conv
from fluoro_perception.nodes.segmentation_node import (
    OUTPUT_TOPICS,
    FrameMailbox,
    PerceptionStats,
    SegmentationNode,
    qos_profile,
    resolve_model_path,
)

pytestmark = pytest.mark.ros

SIZE = 64  # [px] square test frames and model input
FRAME_ID = "test_detector"
SPACING_M = 2.0e-4
WIRE_START_PX, WIRE_END_PX = (8, 56), (56, 8)  # a dark diagonal line
STENT_BOX_PX = (38, 40, 58, 54)  # x0, y0, x1, y1 of a mid-grey block
DEADLINE_S = 20.0


# ------------------------------------------------------------------ models and frames


def make_grey_level_model(path: Path, *, all_background: bool = False) -> Path:
    """A 1x1-conv model: logits = w * grey + b on the un-normalized grey level in [0, 1].

    With ``fixed`` normalization (mean 0, std 1) the network sees the grey level x:
    background = 40 (x - 0.6), guidewire = 40 (0.25 - x), stent = 0, so x < 0.25 is
    guidewire, 0.25 < x < 0.6 stent, brighter background. ``all_background`` sets the
    weights to 0 and the background bias far above the others.
    """
    if all_background:
        weight, bias = [0.0, 0.0, 0.0], [20.0, -20.0, -20.0]
    else:
        weight, bias = [40.0, -40.0, 0.0], [-24.0, 10.0, 0.0]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w", "b"], ["logits"])],
        "grey_level",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        initializer=[
            numpy_helper.from_array(np.array(weight, np.float32).reshape(3, 1, 1, 1), "w"),
            numpy_helper.from_array(np.array(bias, np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    metadata = ModelMetadata(
        architecture="grey_level_test",
        classes=("background", "guidewire", "stent"),
        heads=("logits",),
        stride=16,
        preprocessing=PreprocessSpec(
            input_size=(SIZE, SIZE), crop_to_field=False, normalization="fixed", mean=0.0, std=1.0
        ),
    )
    helper.set_model_props(model, {METADATA_KEY: json.dumps(asdict(metadata))})
    onnx.save(model, str(path))
    return path


def scene_image() -> np.ndarray:
    """(SIZE, SIZE) uint8: bright background, a mid-grey stent block, a dark wire line."""
    image = np.full((SIZE, SIZE), 200, np.uint8)
    x0, y0, x1, y1 = STENT_BOX_PX
    image[y0:y1, x0:x1] = 110
    cv2.line(image, WIRE_START_PX, WIRE_END_PX, 30, thickness=3, lineType=cv2.LINE_8)
    return image


def image_msg(stamp_ns: int, image: np.ndarray | None = None, encoding: str = "mono8") -> Image:
    image = scene_image() if image is None else image
    return conv.image_to_msg(image, encoding, conv.make_header(stamp_ns, FRAME_ID))


# ------------------------------------------------------------------ harness


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Poll ``condition`` every 20 ms until it is true; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Harness:
    """A context, an executor thread, the node under test and a recording test node."""

    def __init__(
        self,
        overrides: dict[str, object],
        *,
        input_reliability: ReliabilityPolicy = ReliabilityPolicy.RELIABLE,
        output_reliability: ReliabilityPolicy = ReliabilityPolicy.RELIABLE,
    ) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = SegmentationNode(
            context=self.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
        )
        self.probe = Node("probe", namespace="fluoro", context=self.context)
        self.received: dict[str, list] = defaultdict(list)
        self._lock = threading.Lock()
        self.publisher = self.probe.create_publisher(
            Image, "image_raw", QoSProfile(depth=10, reliability=input_reliability)
        )
        output_qos = QoSProfile(depth=50, reliability=output_reliability)
        for key, (topic, msg_type) in OUTPUT_TOPICS.items():
            self.probe.create_subscription(msg_type, topic, self._recorder(key), output_qos)
        self.probe.create_subscription(
            DiagnosticArray, "/diagnostics", self._recorder("diagnostics"), 10
        )
        # one executor thread: lifecycle transitions requested through the services run
        # on it, like under `rclpy.spin` (the node's own worker threads do the heavy work)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _recorder(self, key: str) -> Callable:
        def record(msg) -> None:
            with self._lock:
                self.received[key].append(msg)

        return record

    def messages(self, key: str) -> list:
        with self._lock:
            return list(self.received[key])

    def now_ns(self) -> int:
        return self.probe.get_clock().now().nanoseconds

    def wait_for(self, condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S):
        wait_for(condition, what, timeout_s)

    def wait_for_subscriber(self) -> None:
        self.wait_for(lambda: self.publisher.get_subscription_count() > 0, "node subscription")

    def publish_until(
        self, condition: Callable[[], bool], what: str, period_s: float = 0.1
    ) -> list[int]:
        """Publish fresh frames every ``period_s`` until ``condition``; the stamps sent."""
        self.wait_for_subscriber()
        stamps: list[int] = []
        deadline = time.monotonic() + DEADLINE_S
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {DEADLINE_S} s waiting for {what}")
            stamps.append(self.now_ns())
            self.publisher.publish(image_msg(stamps[-1]))
            time.sleep(period_s)
        return stamps

    def close(self) -> None:
        for node in (self.node, self.probe):
            self.executor.remove_node(node)
        time.sleep(0.1)  # let callbacks already in the thread pool finish first
        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
        self.probe.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture(scope="module")
def grey_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64x64 one-layer model: dark -> guidewire, mid grey -> stent, bright -> background."""
    return make_grey_level_model(tmp_path_factory.mktemp("models") / "grey.onnx")


@pytest.fixture(scope="module")
def background_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_grey_level_model(
        tmp_path_factory.mktemp("models") / "background.onnx", all_background=True
    )


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_onnx_model(tmp_path_factory.mktemp("models") / "random.onnx")


@pytest.fixture
def harness_factory():
    harnesses: list[Harness] = []

    def make(overrides: dict[str, object], **kwargs) -> Harness:
        harnesses.append(Harness(overrides, **kwargs))
        return harnesses[-1]

    yield make
    for harness in harnesses:
        harness.close()


def base_overrides(model: Path, **extra: object) -> dict[str, object]:
    return {
        "model.path": str(model),
        "model.providers": ["CPUExecutionProvider"],
        "model.warmup_runs": 0,
        "qos.input": "reliable",
        "pixel_spacing_m": SPACING_M,
        "diagnostics_period_s": 0.2,
        **extra,
    }


# ------------------------------------------------------------------ pure parts


def test_mailbox_keeps_only_the_newest_item() -> None:
    mailbox = FrameMailbox()
    assert mailbox.put("a") is False
    assert mailbox.put("b") is True  # "a" was never taken: superseded
    assert mailbox.take(timeout_s=0.01) == "b"
    assert mailbox.take(timeout_s=0.01) is None
    mailbox.close()
    started = time.monotonic()
    assert mailbox.take(timeout_s=5.0) is None  # closed: returns at once
    assert time.monotonic() - started < 1.0


def test_stats_percentiles_rates_and_drops() -> None:
    stats = PerceptionStats(window_s=10.0)
    for index, latency_ms in enumerate([10.0, 20.0, 30.0, 40.0, 50.0]):
        stats.note_received(index * 0.5)  # 2 Hz
        stats.note_processed(index * 0.5, latency_ms)
    stats.note_drop("decode_error", "encoding='32FC1' is not supported")
    stats.note_drop("superseded")
    values = stats.snapshot(now_s=2.0)
    assert values["input_rate_hz"] == pytest.approx(2.0)
    assert values["latency_p50_ms"] == pytest.approx(30.0)
    assert values["latency_p95_ms"] == pytest.approx(48.0)  # linear interpolation
    assert values["latency_max_ms"] == 50.0
    assert values["frames_dropped"] == 2
    assert values["dropped.decode_error"] == 1 and values["dropped.stale"] == 0
    assert values["last_drop"] == "superseded"
    assert math.isnan(PerceptionStats().snapshot(0.0)["latency_p50_ms"])


def test_qos_profiles() -> None:
    assert qos_profile("sensor_data", 1).reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos_profile("reliable", 3).reliability == ReliabilityPolicy.RELIABLE
    assert qos_profile("reliable", 3).depth == 3
    with pytest.raises(ValueError, match="expected 'sensor_data' or 'reliable'"):
        qos_profile("fast", 1)


def test_explicit_model_path_is_used_as_given(tmp_path: Path) -> None:
    assert resolve_model_path(str(tmp_path / "m.onnx")) == tmp_path / "m.onnx"


# ------------------------------------------------------------------ over DDS


def test_every_output_carries_the_input_header(harness_factory, grey_model: Path) -> None:
    harness = harness_factory(base_overrides(grey_model, min_tip_confidence=0.0))
    assert harness.node._state_machine.current_state[1] == "active"  # autostart
    frame_keys = list(OUTPUT_TOPICS)
    stamps = harness.publish_until(
        lambda: all(harness.messages(key) for key in frame_keys), "every output topic"
    )
    for key in frame_keys:
        for message in harness.messages(key):
            # a MarkerArray has no header of its own: each marker carries it
            headers = [m.header for m in message.markers] if key == "markers" else [message.header]
            for header in headers:
                assert conv.stamp_to_ns(header.stamp) in stamps, key
                assert header.frame_id == FRAME_ID, key

    mask_msg = harness.messages("guidewire_mask")[-1]
    assert (mask_msg.encoding, mask_msg.height, mask_msg.width) == ("mono8", SIZE, SIZE)
    mask = conv.msg_to_image(mask_msg)
    assert set(np.unique(mask)) <= {0, 255}
    assert mask[32, 32] == 255 and mask[5, 5] == 0  # on / off the drawn line
    stent_mask = conv.msg_to_image(harness.messages("stent_mask")[-1])
    assert stent_mask[47, 48] == 255
    labels = conv.msg_to_image(harness.messages("labels")[-1])
    assert labels[32, 32] == 1 and labels[47, 48] == 2 and labels[2, 2] == 0
    assert harness.messages("overlay")[-1].encoding == "rgb8"

    # the tip is one end of the drawn line, in metres
    tip = harness.messages("tip")[-1].pose.position
    ends_m = [np.array(WIRE_START_PX) * SPACING_M, np.array(WIRE_END_PX) * SPACING_M]
    distance_m = min(np.hypot(tip.x - e[0], tip.y - e[1]) for e in ends_m)
    assert distance_m < 4 * SPACING_M
    path = harness.messages("centerline")[-1]
    assert len(path.poses) > 30
    first = path.poses[0].pose.position
    assert (first.x, first.y) == pytest.approx((tip.x, tip.y))
    odometry = harness.messages("tip_tracked")[-1]
    assert odometry.child_frame_id == "guidewire_tip"
    stent_pose = harness.messages("stent_pose")[-1].pose.position
    assert stent_pose.x == pytest.approx(47.5 * SPACING_M, abs=2 * SPACING_M)
    assert stent_pose.y == pytest.approx(46.5 * SPACING_M, abs=2 * SPACING_M)

    harness.wait_for(
        lambda: any(
            {kv.key: kv.value for kv in m.status[0].values}.get("state") == "active"
            for m in harness.messages("diagnostics")
        ),
        "diagnostics of the active node",
    )
    status = harness.messages("diagnostics")[-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert values["provider"] == "CPUExecutionProvider"
    assert {"latency_p50_ms", "latency_p95_ms", "latency_max_ms", "input_rate_hz"} <= set(values)


def test_no_tip_for_a_frame_without_a_wire(harness_factory, background_model: Path) -> None:
    harness = harness_factory(base_overrides(background_model, min_tip_confidence=0.0))
    harness.publish_until(lambda: len(harness.messages("tips")) >= 3, "three processed frames")
    assert harness.messages("tip") == []
    assert harness.messages("tip_tracked") == []
    assert all(len(m.poses) == 0 for m in harness.messages("tips"))
    assert all(len(m.poses) == 0 for m in harness.messages("centerline"))
    assert not conv.msg_to_image(harness.messages("guidewire_mask")[-1]).any()
    assert harness.node.stats.tips_published == 0


def test_low_confidence_withholds_the_tip(harness_factory, grey_model: Path) -> None:
    # the wire is found (centerline published) but 1.0 is above any confidence < 1
    harness = harness_factory(base_overrides(grey_model, min_tip_confidence=1.0))
    harness.publish_until(lambda: len(harness.messages("centerline")) >= 2, "two frames")
    assert harness.messages("tip") == []
    assert len(harness.messages("centerline")[-1].poses) > 30


def test_bad_frames_are_dropped_counted_and_reported(harness_factory, grey_model: Path) -> None:
    harness = harness_factory(base_overrides(grey_model))
    harness.wait_for_subscriber()
    stats = harness.node.stats

    wrong_encoding = image_msg(harness.now_ns())
    wrong_encoding.encoding = "32FC1"
    harness.publisher.publish(wrong_encoding)
    harness.wait_for(lambda: stats.drops["decode_error"] == 1, "first decode_error")

    truncated = image_msg(harness.now_ns())
    truncated.data = bytes(truncated.data)[: SIZE * SIZE // 2]
    harness.publisher.publish(truncated)
    harness.wait_for(lambda: stats.drops["decode_error"] == 2, "second decode_error")
    assert "data" in stats.last_drop or "bytes" in stats.last_drop

    good_stamp = harness.now_ns()
    harness.publisher.publish(image_msg(good_stamp))
    harness.wait_for(
        lambda: any(
            conv.stamp_to_ns(m.header.stamp) == good_stamp
            for m in harness.messages("guidewire_mask")
        ),
        "the good frame after the bad ones",
    )

    def reported() -> bool:
        for message in harness.messages("diagnostics"):
            values = {kv.key: kv.value for kv in message.status[0].values}
            if values.get("dropped.decode_error") == "2":
                return True
        return False

    harness.wait_for(reported, "dropped.decode_error = 2 on /diagnostics")


def test_duplicate_out_of_order_and_stale_frames(harness_factory, grey_model: Path) -> None:
    harness = harness_factory(base_overrides(grey_model, max_age_s=30.0, time_jump_reset_s=1.0))
    harness.wait_for_subscriber()
    stats = harness.node.stats

    def processed(stamp_ns: int) -> bool:
        return any(conv.stamp_to_ns(m.header.stamp) == stamp_ns for m in harness.messages("labels"))

    first = harness.now_ns()
    harness.publisher.publish(image_msg(first))
    harness.wait_for(lambda: processed(first), "first frame")
    harness.publisher.publish(image_msg(first))
    harness.wait_for(lambda: stats.drops["duplicate_stamp"] == 1, "duplicate dropped")
    harness.publisher.publish(image_msg(first - 100_000_000))  # 0.1 s back
    harness.wait_for(lambda: stats.drops["out_of_order"] == 1, "out-of-order dropped")
    jumped = first - 5_000_000_000  # 5 s back: a clock jump (bag loop)
    harness.publisher.publish(image_msg(jumped))
    harness.wait_for(lambda: processed(jumped), "frame after the jump back")
    assert stats.tracking_resets == 1
    old = harness.now_ns() - 40_000_000_000  # older than max_age_s = 30 s
    harness.publisher.publish(image_msg(old))
    harness.wait_for(lambda: stats.drops["stale"] == 1, "stale frame dropped")
    assert not processed(old)


def test_lifecycle_transitions(harness_factory, grey_model: Path) -> None:
    harness = harness_factory(base_overrides(grey_model, autostart=False))
    node = harness.node
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
    assert harness.publisher.get_subscription_count() == 0

    # every transition through the lifecycle service, as a lifecycle manager does it
    change_state = _lifecycle_client(harness)

    assert change_state(Transition.TRANSITION_CONFIGURE)
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_INACTIVE
    assert node.diagnostics_values()[2]["provider"] == "CPUExecutionProvider"
    # configured but inactive: frames are counted and ignored, nothing is published
    harness.wait_for_subscriber()
    harness.publisher.publish(image_msg(harness.now_ns()))
    harness.wait_for(lambda: node.stats.drops["inactive"] >= 1, "frame ignored while inactive")
    assert harness.messages("labels") == []

    assert change_state(Transition.TRANSITION_ACTIVATE)
    harness.publish_until(lambda: harness.messages("labels"), "output while active")

    assert change_state(Transition.TRANSITION_DEACTIVATE)
    count = len(harness.messages("labels"))
    inactive_before = node.stats.drops["inactive"]
    harness.publisher.publish(image_msg(harness.now_ns()))
    harness.wait_for(lambda: node.stats.drops["inactive"] > inactive_before, "ignored frame")
    time.sleep(0.2)
    assert len(harness.messages("labels")) == count  # inactive: nothing published

    assert change_state(Transition.TRANSITION_CLEANUP)
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
    assert node.diagnostics_values()[2]["model"] == ""  # engine released
    harness.wait_for(lambda: harness.publisher.get_subscription_count() == 0, "unsubscribe")

    # and back again: configure + activate after a cleanup work
    assert change_state(Transition.TRANSITION_CONFIGURE)
    assert change_state(Transition.TRANSITION_ACTIVATE)
    count = len(harness.messages("labels"))
    harness.publish_until(lambda: len(harness.messages("labels")) > count, "output again")


def _failed_configure(harness_factory, missing: Path) -> Harness:
    """A harness whose node's configure failed on the missing model file ``missing``."""
    harness = harness_factory(base_overrides(missing))
    assert harness.node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
    assert str(missing) in harness.node.configure_error
    return harness


def test_missing_model_fails_configure_with_a_clear_message(
    harness_factory, tmp_path: Path
) -> None:
    missing = tmp_path / "no_such_model.onnx"
    harness = _failed_configure(harness_factory, missing)
    node = harness.node
    assert "\n" not in node.configure_error
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE  # still no crash

    def error_reported() -> bool:
        return any(
            m.status[0].level == conv.DiagnosticStatus.ERROR and str(missing) in m.status[0].message
            for m in harness.messages("diagnostics")
        )

    harness.wait_for(error_reported, "ERROR status naming the model on /diagnostics")


def _lifecycle_client(harness: Harness) -> Callable[[int], bool]:
    """``change_state(transition_id) -> success`` through the node's lifecycle service."""
    client = harness.probe.create_client(ChangeState, "segmentation_node/change_state")
    assert client.wait_for_service(timeout_sec=DEADLINE_S)

    def change_state(transition_id: int) -> bool:
        future = client.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        harness.wait_for(future.done, f"transition {transition_id}")
        return future.result().success

    return change_state


def _set_parameter_client(harness: Harness) -> Callable[[str, object], object]:
    """``set_remote(name, value) -> SetParametersResult`` as ``ros2 param set`` does it."""
    client = harness.probe.create_client(SetParameters, "segmentation_node/set_parameters")
    assert client.wait_for_service(timeout_sec=DEADLINE_S)

    def set_remote(name: str, value: object):
        request = SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg()]
        )
        future = client.call_async(request)
        harness.wait_for(future.done, f"set_parameters {name}")
        return future.result().results[0]

    return set_remote


def test_failed_configure_is_fixed_in_place(
    harness_factory, grey_model: Path, background_model: Path, tmp_path: Path
) -> None:
    # `ros2 param set ... model.path` + `ros2 lifecycle set ... configure`, no restart
    harness = _failed_configure(harness_factory, tmp_path / "typo.onnx")
    node = harness.node
    change_state = _lifecycle_client(harness)
    set_remote = _set_parameter_client(harness)

    result = set_remote("model.path", str(grey_model))  # unconfigured: accepted
    assert result.successful, result.reason
    assert node.config.model.path == str(grey_model)
    assert change_state(Transition.TRANSITION_CONFIGURE)
    assert node.configure_error == ""
    assert node.diagnostics_values()[2]["model"] == str(grey_model)
    assert change_state(Transition.TRANSITION_ACTIVATE)
    harness.publish_until(lambda: harness.messages("labels"), "output after the fix")

    # active: refused with the reason, nothing changes
    result = set_remote("model.path", str(background_model))
    assert not result.successful
    assert "'model.path' cannot change while the node is active" in result.reason
    assert node.config.model.path == str(grey_model)
    result = set_remote("qos.input", "sensor_data")
    assert not result.successful and "while the node is active" in result.reason

    # inactive: accepted, used at the next configure (the loaded model stays until then)
    assert change_state(Transition.TRANSITION_DEACTIVATE)
    result = set_remote("model.path", str(background_model))
    assert result.successful, result.reason
    assert node.diagnostics_values()[2]["model"] == str(grey_model)
    assert change_state(Transition.TRANSITION_CLEANUP)
    assert change_state(Transition.TRANSITION_CONFIGURE)
    assert node.diagnostics_values()[2]["model"] == str(background_model)
    assert change_state(Transition.TRANSITION_ACTIVATE)
    count = len(harness.messages("labels"))
    harness.publish_until(lambda: len(harness.messages("labels")) > count, "output of model 2")
    labels = conv.msg_to_image(harness.messages("labels")[-1])
    assert not labels.any()  # the all-background model is the one running now


def test_markers_switched_off(harness_factory, grey_model: Path) -> None:
    harness = harness_factory(base_overrides(grey_model, min_tip_confidence=0.0,
                                             markers_enabled=False))  # fmt: skip
    # the poses of a frame are published before its markers would be: once the stent
    # outline of three frames is here, their markers would have been too
    harness.publish_until(lambda: len(harness.messages("stent_outline")) >= 3, "three frames")
    harness.wait_for(lambda: harness.messages("tip") and harness.messages("stent_pose"), "poses")
    time.sleep(0.2)
    assert harness.messages("markers") == []
    # switched on at run time: markers of the next frames, with a wire and a stent
    assert harness.node.set_parameters([Parameter("markers_enabled", value=True)])[0].successful
    expected = {"fluoro/guidewire", "fluoro/tip", "fluoro/stent"}
    harness.publish_until(
        lambda: any(expected <= {mk.ns for mk in m.markers} for m in harness.messages("markers")),
        "markers of a wire, its tip and a stent after switching on",
    )


def test_parameter_changes_validated_with_a_reason(harness_factory, grey_model: Path) -> None:
    harness = harness_factory(base_overrides(grey_model))
    set_remote = _set_parameter_client(harness)

    result = set_remote("geometry.wire_threshold", 1.5)  # the core's own validation
    assert not result.successful and "wire_threshold" in result.reason
    result = set_remote("min_tip_confidence", 2.0)  # outside the descriptor's range
    assert not result.successful and result.reason
    result = set_remote("diagnostics_period_s", 0.5)  # read-only: fixed at start-up
    assert not result.successful and "read-only" in result.reason.lower()
    assert harness.node.config.min_tip_confidence == 0.3

    result = set_remote("min_tip_confidence", 0.6)
    assert result.successful
    assert harness.node.config.min_tip_confidence == 0.6  # cached config updated
    result = set_remote("geometry.max_wires", 1)
    assert result.successful and harness.node.config.geometry.max_wires == 1
    assert harness.node._pipeline.config.geometry.max_wires == 1  # pipeline rebuilt


@pytest.mark.parametrize(
    ("node_input", "publisher", "node_output", "subscriber"),
    [
        (
            "sensor_data",
            ReliabilityPolicy.BEST_EFFORT,
            "sensor_data",
            ReliabilityPolicy.BEST_EFFORT,
        ),
        ("sensor_data", ReliabilityPolicy.RELIABLE, "reliable", ReliabilityPolicy.BEST_EFFORT),
        ("reliable", ReliabilityPolicy.RELIABLE, "reliable", ReliabilityPolicy.RELIABLE),
    ],
)
def test_qos_combinations_deliver(
    harness_factory, random_model: Path, node_input, publisher, node_output, subscriber
) -> None:
    harness = harness_factory(
        base_overrides(random_model, **{"qos.input": node_input, "qos.output": node_output}),
        input_reliability=publisher,
        output_reliability=subscriber,
    )
    harness.publish_until(lambda: harness.messages("labels"), f"labels over {node_output}")


def test_random_model_proof_of_life_on_mono16(harness_factory, random_model: Path) -> None:
    # Isaac ROS-style proof of life: random weights, 12-bit data in mono16, 96x80 input
    harness = harness_factory(base_overrides(random_model))
    harness.wait_for_subscriber()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4096, size=(80, 96), dtype=np.uint16)
    stamp = harness.now_ns()
    harness.publisher.publish(image_msg(stamp, image, "mono16"))
    harness.wait_for(lambda: harness.messages("labels"), "labels of the mono16 frame")
    labels_msg = harness.messages("labels")[0]
    assert (labels_msg.height, labels_msg.width) == (80, 96)
    assert conv.msg_to_image(labels_msg).max() <= 2
    assert conv.stamp_to_ns(labels_msg.header.stamp) == stamp


def test_overlay_and_tracking_switched_off(harness_factory, grey_model: Path) -> None:
    overrides = base_overrides(
        grey_model, min_tip_confidence=0.0, overlay_enabled=False, tracking_enabled=False
    )
    harness = harness_factory(overrides)
    harness.publish_until(lambda: len(harness.messages("tip")) >= 4, "four tips")
    assert harness.messages("overlay") == []
    assert harness.messages("tip_tracked") == []
    # switched back on at run time: the cached config changes, the next frames show it
    assert harness.node.set_parameters([Parameter("overlay_enabled", value=True)])[0].successful
    harness.publish_until(lambda: harness.messages("overlay"), "overlay after switching on")


def test_sim_time_is_honoured_for_the_age_check(harness_factory, grey_model: Path) -> None:
    from rosgraph_msgs.msg import Clock

    harness = harness_factory(base_overrides(grey_model, use_sim_time=True, max_age_s=1.0))
    # no /clock yet: the age of a frame is unknown, so it is processed
    harness.wait_for_subscriber()
    harness.publisher.publish(image_msg(5_000_000_000))  # t = 5 s of bag time
    harness.wait_for(lambda: harness.messages("labels"), "frame before any /clock")
    clock_publisher = harness.probe.create_publisher(Clock, "/clock", 10)
    harness.wait_for(lambda: clock_publisher.get_subscription_count() > 0, "/clock subscriber")
    clock_publisher.publish(Clock(clock=conv.ns_to_stamp(100_000_000_000)))  # t = 100 s
    harness.wait_for(
        lambda: harness.node.get_clock().now().nanoseconds == 100_000_000_000, "sim clock"
    )
    harness.publisher.publish(image_msg(50_000_000_000))  # 50 s old in bag time
    harness.wait_for(lambda: harness.node.stats.drops["stale"] == 1, "stale in sim time")
    fresh = 99_900_000_000
    harness.publisher.publish(image_msg(fresh))
    harness.wait_for(
        lambda: any(conv.stamp_to_ns(m.header.stamp) == fresh for m in harness.messages("labels")),
        "fresh frame in sim time",
    )


def test_frame_that_ages_during_processing_publishes_no_pose(
    harness_factory, grey_model: Path
) -> None:
    harness = harness_factory(base_overrides(grey_model, min_tip_confidence=0.0, max_age_s=0.3))
    harness.publish_until(lambda: harness.messages("tip"), "a tip from a fast frame")
    pipeline = harness.node._pipeline
    original_process = pipeline.process

    def slow_process(*args, **kwargs):
        time.sleep(0.5)  # longer than max_age_s: the results are stale when ready
        return original_process(*args, **kwargs)

    pipeline.process = slow_process
    stamp = harness.now_ns()
    harness.publisher.publish(image_msg(stamp))
    harness.wait_for(
        lambda: any(conv.stamp_to_ns(m.header.stamp) == stamp for m in harness.messages("labels")),
        "masks of the slow frame",
    )
    time.sleep(0.2)
    for key in ("tip", "tips", "centerline", "markers"):
        headers = [
            h
            for m in harness.messages(key)
            for h in ([mk.header for mk in m.markers] if key == "markers" else [m.header])
        ]
        assert not any(conv.stamp_to_ns(h.stamp) == stamp for h in headers), key
    assert harness.node.stats.tips_withheld >= 1


def test_model_card_mismatch_fails_configure(harness_factory, tmp_path: Path) -> None:
    from fluoro_perception.model_registry import write_model_card

    model = make_grey_level_model(tmp_path / "carded.onnx")
    card = write_model_card(model)
    # a well-formed digest that is not the file's: the model was replaced after export
    card.write_text("# carded\n\nsha256: " + "0" * 64 + "\n", encoding="utf-8")
    harness = harness_factory(base_overrides(model))
    assert harness.node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
    assert "does not match its card" in harness.node.configure_error
