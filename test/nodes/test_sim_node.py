"""fluoro_sim_node over REAL DDS: frames at the rate, ground truth with the same header."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np
import pytest
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from test_segmentation_node import wait_for  # the node tests' poller (same folder)

from fluoro_perception.core.types import GUIDEWIRE
from fluoro_perception.nodes import conversions as conv
from fluoro_perception.nodes.params import SimNodeConfig
from fluoro_perception.nodes.sim_node import (
    GROUND_TRUTH_TOPICS,
    IMAGE_TOPIC,
    SimNode,
    sim_config_for,
)
from fluoro_perception.sim import SequenceSimulator

pytestmark = pytest.mark.ros

SIZE = 64


class SimHarness:
    """The sim node plus a probe node recording the image and every ground-truth topic."""

    def __init__(self, overrides: dict[str, object]) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.probe = Node("sim_probe", namespace="fluoro", context=self.context)
        self.received: dict[str, list] = defaultdict(list)
        self._lock = threading.Lock()
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        topics = {"image": (IMAGE_TOPIC, Image), **GROUND_TRUTH_TOPICS}
        for key, (topic, msg_type) in topics.items():
            self.probe.create_subscription(msg_type, topic, self._recorder(key), qos)
        # subscriptions exist before the publisher: discovery is all that is left to wait for
        self.node = SimNode(
            context=self.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
        )
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
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

    def close(self) -> None:
        for node in (self.node, self.probe):
            self.executor.remove_node(node)
        time.sleep(0.1)  # let callbacks already in the thread pool finish first
        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
        self.probe.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def sim_factory():
    harnesses: list[SimHarness] = []

    def make(**overrides: object) -> SimHarness:
        harnesses.append(SimHarness(overrides))
        return harnesses[-1]

    yield make
    for harness in harnesses:
        harness.close()


def base(**extra: object) -> dict[str, object]:
    return {"height": SIZE, "width": SIZE, "fps": 20.0, "seed": 7, "scenario": "mono", **extra}


def test_ground_truth_matches_the_simulator_frame_by_frame(sim_factory) -> None:
    harness = sim_factory(**base(frames=0))
    wait_for(lambda: len(harness.messages("image")) >= 6, "six frames")
    expected = SequenceSimulator(7, sim_config_for(SimNodeConfig(**base()))).frames(40)
    images = harness.messages("image")[:6]
    checked = 0
    for image_msg in images:
        stamp = image_msg.header.stamp
        assert image_msg.header.frame_id == "fluoro_detector"
        assert (image_msg.encoding, image_msg.height, image_msg.width) == ("mono8", SIZE, SIZE)
        image = conv.msg_to_image(image_msg)
        # which simulator frame is it? (same seed -> byte-identical frames)
        index = next(i for i, f in enumerate(expected) if np.array_equal(f.image, image))
        frame = expected[index]

        def same_stamp(key: str, stamp=stamp):
            def matching() -> list:
                return [m for m in harness.messages(key) if m.header.stamp == stamp]

            wait_for(lambda: bool(matching()), f"{key} with the image's stamp")
            return matching()[0]

        labels = conv.msg_to_image(same_stamp("labels"))
        np.testing.assert_array_equal(labels, frame.labels)
        wire_mask = conv.msg_to_image(same_stamp("guidewire_mask"))
        np.testing.assert_array_equal(wire_mask == 255, frame.labels == GUIDEWIRE)
        tips = same_stamp("tips")
        assert len(tips.poses) == len(frame.wires)
        primary = min(frame.wires, key=lambda w: w.instance_id)
        tip = same_stamp("tip")
        assert tip.header.frame_id == "fluoro_detector"
        assert tip.pose.position.x == pytest.approx(primary.tip_px[0] * frame.pixel_spacing_m)
        assert tip.pose.position.y == pytest.approx(primary.tip_px[1] * frame.pixel_spacing_m)
        path = same_stamp("centerline")
        assert len(path.poses) == len(primary.centerline_px)
        checked += 1
    assert checked == 6
    # stamps follow the configured 20 fps (very loose bounds: CI shares 2 cores with other work)
    stamps_s = [conv.stamp_to_ns(m.header.stamp) * 1e-9 for m in images]
    assert 0.01 < np.median(np.diff(stamps_s)) < 1.0


def test_frame_limit_without_loop_stops(sim_factory) -> None:
    harness = sim_factory(**base(frames=3, loop=False))
    wait_for(harness.node.finished.is_set, "end of the sequence")
    assert harness.node.published_frames == 3
    wait_for(lambda: len(harness.messages("image")) == 3, "three images")
    time.sleep(0.3)
    assert len(harness.messages("image")) == 3


def test_mono16_carries_12_bit_data(sim_factory) -> None:
    harness = sim_factory(**base(encoding="mono16", frames=2, publish_ground_truth=False))
    wait_for(lambda: harness.messages("image"), "a mono16 image")
    image = conv.msg_to_image(harness.messages("image")[0])
    assert image.dtype == np.uint16 and image.max() <= 4095
    time.sleep(0.2)
    assert harness.messages("labels") == []  # ground truth off


def test_parameter_rejection_and_rate_change(sim_factory) -> None:
    harness = sim_factory(**base(frames=0))
    node = harness.node
    result = node.set_parameters([Parameter("fps", value=0.0)])[0]
    assert not result.successful and result.reason
    result = node.set_parameters([Parameter("encoding", value="mono16")])[0]
    assert not result.successful and "read-only" in result.reason.lower()
    result = node.set_parameters([Parameter("fps", value=50.0)])[0]
    assert result.successful and node.config.fps == 50.0


def test_bad_override_is_one_line_value_error() -> None:
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        with pytest.raises(ValueError, match=r"scenario='jungle'; expected one of"):
            SimNode(context=context, parameter_overrides=[Parameter("scenario", value="jungle")])
        with pytest.raises(ValueError, match=r"'fps' has the wrong type.*decimal point"):
            SimNode(context=context, parameter_overrides=[Parameter("fps", value=10)])
    finally:
        rclpy.try_shutdown(context=context)


def test_loop_restarts_the_same_sequence(sim_factory) -> None:
    harness = sim_factory(**base(frames=2, loop=True, publish_ground_truth=False))
    wait_for(lambda: len(harness.messages("image")) >= 4, "four images")
    images = [conv.msg_to_image(m) for m in harness.messages("image")[:4]]
    # frames 0, 1, 0, 1: the third image is the first again, the stamps keep increasing
    np.testing.assert_array_equal(images[2], images[0])
    np.testing.assert_array_equal(images[3], images[1])
    assert not np.array_equal(images[0], images[1])
    stamps = [conv.stamp_to_ns(m.header.stamp) for m in harness.messages("image")[:4]]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4
    assert not harness.node.finished.is_set()
