"""``fluoro_sim_node``: simulated fluoroscopy frames and their ground truth as ROS topics.

Publishes one simulator sequence (:class:`fluoro_perception.sim.SequenceSimulator`) on
``image_raw`` at ``fps`` and, with ``publish_ground_truth``, the ground truth on
``ground_truth/...`` with the same topic names and types as the rosbag format of
``fluoro-sim bag`` (``docs/bag_format.md``). Topics are relative to the node namespace
(default ``fluoro`` -> ``/fluoro/image_raw``).

A worker thread renders frames ahead into a bounded queue so that the timer callback
only stamps and publishes: publishing stays on time even when a frame takes longer than
the period to render. A tick that finds no frame ready is counted (``late_ticks``).
Stamps come from the node clock (``use_sim_time`` honoured); all messages of one frame
share one header.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseArray, PoseStamped
from nav_msgs.msg import Path as PathMsg
from rclpy.node import Node
from sensor_msgs.msg import Image

from fluoro_perception.core.types import GUIDEWIRE, STENT
from fluoro_perception.nodes import conversions as conv
from fluoro_perception.nodes.params import (
    SimNodeConfig,
    declare_config,
    set_parameters_result,
    validate_parameter_change,
)
from fluoro_perception.nodes.segmentation_node import qos_profile
from fluoro_perception.nodes.shutdown import run_node
from fluoro_perception.sim import SequenceSimulator, SimConfig
from fluoro_perception.sim.types import SimFrame

NODE_NAME = "fluoro_sim_node"
DEFAULT_NAMESPACE = "fluoro"
IMAGE_TOPIC = "image_raw"
GROUND_TRUTH_TOPICS: dict[str, tuple[str, type]] = {
    "guidewire_mask": ("ground_truth/guidewire/mask", Image),
    "stent_mask": ("ground_truth/stent/mask", Image),
    "labels": ("ground_truth/labels", Image),
    "tip": ("ground_truth/guidewire/tip", PoseStamped),
    "tips": ("ground_truth/guidewire/tips", PoseArray),
    "centerline": ("ground_truth/guidewire/centerline", PathMsg),
}
_END_OF_SEQUENCE = object()


def sim_config_for(config: SimNodeConfig) -> SimConfig:
    """The simulator settings of a node config (mono16 carries 12-bit detector data)."""
    return SimConfig(
        height=config.height,
        width=config.width,
        fps=config.fps,
        scenario=config.scenario or None,
        bit_depth=12 if config.encoding == "mono16" else 8,
    )


def publishable_image(frame: SimFrame, encoding: str) -> np.ndarray:
    """The frame's image in the dtype ``encoding`` needs (uint8 / uint16)."""
    dtype = np.uint16 if encoding == "mono16" else np.uint8
    if frame.image.dtype != dtype:
        raise ValueError(
            f"simulator returned {frame.image.dtype} for encoding {encoding}; expected {dtype}"
        )
    return frame.image


class SimNode(Node):
    """Publishes simulated frames + ground truth (see the module docstring).

    Parameters
    ----------
    node_name, namespace : str
        Node name and namespace (topics are relative to the namespace).
    **kwargs
        Passed to :class:`rclpy.node.Node` (``context``, ``parameter_overrides``, ...).
    """

    def __init__(
        self, node_name: str = NODE_NAME, *, namespace: str = DEFAULT_NAMESPACE, **kwargs: Any
    ) -> None:
        super().__init__(node_name, namespace=namespace, **kwargs)
        self._config: SimNodeConfig = declare_config(self, SimNodeConfig)
        self._pending_config: SimNodeConfig | None = None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._on_parameters_set)

        qos = qos_profile(self._config.qos, 5)
        self._image_publisher = self.create_publisher(Image, IMAGE_TOPIC, qos)
        self._truth_publishers = {
            key: self.create_publisher(msg_type, topic, qos)
            for key, (topic, msg_type) in GROUND_TRUTH_TOPICS.items()
        }
        self.published_frames = 0
        self.late_ticks = 0
        self.finished = threading.Event()
        self._frames: queue.Queue = queue.Queue(maxsize=self._config.prefetch_frames)
        self._stop = threading.Event()
        self._producer = threading.Thread(
            target=self._produce, name=f"{node_name}_renderer", daemon=True
        )
        self._producer.start()
        self._timer = self.create_timer(1.0 / self._config.fps, self._on_tick)
        self.get_logger().info(
            f"publishing {self._config.width}x{self._config.height} {self._config.encoding} "
            f"at {self._config.fps} Hz on {self._image_publisher.topic_name} "
            f"(seed {self._config.seed}, scenario {self._config.scenario or 'sampled'})"
        )

    @property
    def config(self) -> SimNodeConfig:
        return self._config

    # ---------------------------------------------------------------- parameters

    def _on_set_parameters(self, parameters: Sequence[rclpy.parameter.Parameter]):
        candidate, reason = validate_parameter_change(SimNodeConfig, self._config, parameters)
        if candidate is None:
            return set_parameters_result(False, reason)
        self._pending_config = candidate
        return set_parameters_result(True)

    def _on_parameters_set(self, parameters: Sequence[rclpy.parameter.Parameter]) -> None:
        if self._pending_config is None:
            return
        old_fps = self._config.fps
        self._config, self._pending_config = self._pending_config, None
        if self._config.fps != old_fps:
            # change the period in place: destroying a timer while an executor thread
            # builds its wait set is not safe in rclpy
            self._timer.timer_period_ns = round(1e9 / self._config.fps)

    # ---------------------------------------------------------------- frames

    def _produce(self) -> None:
        """Render frames ahead (worker thread); restart the sequence when looping."""
        config = self._config  # the read-only settings of the sequence
        while not self._stop.is_set():
            simulator = SequenceSimulator(config.seed, sim_config_for(config))
            for index, frame in enumerate(simulator):
                if config.frames and index >= config.frames:
                    break
                if not self._put(frame):
                    return
            if not config.loop:
                self._put(_END_OF_SEQUENCE)
                return

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _on_tick(self) -> None:
        try:
            item = self._frames.get_nowait()
        except queue.Empty:
            self.late_ticks += 1
            return
        if item is _END_OF_SEQUENCE:
            self._timer.cancel()
            self.finished.set()
            self.get_logger().info(f"sequence done after {self.published_frames} frames")
            return
        self.publish_frame(item, self.get_clock().now().nanoseconds)

    def publish_frame(self, frame: SimFrame, stamp_ns: int) -> None:
        """Publish one frame and (if enabled) its ground truth with one shared header."""
        config = self._config
        header = conv.make_header(stamp_ns, config.frame_id)
        self._image_publisher.publish(
            conv.image_to_msg(publishable_image(frame, config.encoding), config.encoding, header)
        )
        self.published_frames += 1
        if not config.publish_ground_truth:
            return
        spacing = float(frame.pixel_spacing_m)
        labels = np.ascontiguousarray(frame.labels, dtype=np.uint8)
        publishers = self._truth_publishers
        publishers["labels"].publish(conv.image_to_msg(labels, "mono8", header))
        guidewire_mask = np.where(labels == GUIDEWIRE, 255, 0).astype(np.uint8)
        stent_mask = np.where(labels == STENT, 255, 0).astype(np.uint8)
        publishers["guidewire_mask"].publish(conv.image_to_msg(guidewire_mask, "mono8", header))
        publishers["stent_mask"].publish(conv.image_to_msg(stent_mask, "mono8", header))
        # same rules as bagio.BagWriter.write_sim_frame: primary = lowest instance id,
        # tips of all wires, empty Path/PoseArray and no tip pose when there is no wire
        wires = sorted(frame.wires, key=lambda wire: wire.instance_id)
        tips = PoseArray(
            header=conv.copy_header(header),
            poses=[conv.pose_from_px(w.tip_px, w.tip_direction_rad, spacing) for w in wires],
        )
        publishers["tips"].publish(tips)
        primary = wires[0] if wires else None
        publishers["centerline"].publish(
            conv.centerline_path_msg(
                primary.centerline_px if primary is not None else None, spacing, header
            )
        )
        if primary is not None:
            publishers["tip"].publish(
                PoseStamped(
                    header=conv.copy_header(header),
                    pose=conv.pose_from_px(primary.tip_px, primary.tip_direction_rad, spacing),
                )
            )

    def destroy_node(self) -> None:
        self._stop.set()
        self._producer.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """``ros2 run fluoro_perception fluoro_sim_node``: ends cleanly on SIGINT/SIGTERM.

    See :func:`fluoro_perception.nodes.shutdown.run_node` (bad parameters: status 1, one
    FATAL line).
    """
    run_node(SimNode, NODE_NAME, args)


if __name__ == "__main__":
    main()
