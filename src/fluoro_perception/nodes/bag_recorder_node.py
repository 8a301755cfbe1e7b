"""``bag_recorder_node``: record the perception outputs and ``/diagnostics`` into an MCAP bag.

Subscribes (serialized, no decode on the executor thread beyond what the bag writer
needs) to every output topic of the segmentation node plus ``/diagnostics``
(:func:`fluoro_perception.topics.recorded_topic_types`), and writes each message through
:class:`fluoro_perception.bagio.BagWriter` with its **receive** time on the node clock as
log time (bag time when ``use_sim_time`` is set and a player publishes ``/clock``).

Latency: a frame is complete when its ``labels`` image arrives (the node publishes it
after the poses and masks of that frame). For each complete frame the recorder keeps

* ``clock_latency_ms``: node clock at receive - header stamp [ms] (in clock time: with a
  bag played at ``rate`` x, divide by ``rate`` for wall time);
* ``end_to_end_ms``: time from the input image with the same stamp arriving here
  (the recorder also listens to ``input_topic``) to the labels arriving [ms], i.e. the
  DDS-to-DDS latency of the perception node, independent of the clock.

Optionally (``truth_tip_topic``) it also keeps the ground-truth tip of each stamp so that
the current tip error can be shown while recording (the demo's progress line).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import Image

from fluoro_perception.bagio import IMAGE_TOPIC, BagWriter, get_bag_typestore, stamp_to_ns
from fluoro_perception.nodes.bag_player_node import message_class
from fluoro_perception.nodes.dds_profile import apply_dds_profile
from fluoro_perception.topics import DEFAULT_NAMESPACE, perception_topics, recorded_topic_types

NODE_NAME = "bag_recorder"
_NS_PER_S = 1_000_000_000


def cdr_header_stamp_ns(raw: bytes) -> int | None:
    """Header stamp [ns] of a serialized message whose first field is ``std_msgs/Header``.

    CDR: a 4-byte encapsulation header (byte 1 = 1 for little endian), then
    ``int32 sec``, ``uint32 nanosec``. Reading these 12 bytes avoids deserializing a
    whole image on the executor thread just to learn its stamp (rosbags has no partial
    deserializer, hence this small parser). None when the buffer is too short.
    """
    if len(raw) < 12:
        return None
    byte_order = "<" if raw[1] & 1 else ">"
    seconds, nanoseconds = struct.unpack(f"{byte_order}iI", raw[4:12])
    return int(seconds) * _NS_PER_S + int(nanoseconds)


def message_stamp_ns(message: Any) -> int | None:
    """Header stamp [ns] of a rosbags message (MarkerArray: its first marker's), else None."""
    header = getattr(message, "header", None)
    if header is not None:
        return stamp_to_ns(header.stamp)
    markers = getattr(message, "markers", None)
    if markers:
        return stamp_to_ns(markers[0].header.stamp)
    return None


@dataclass
class FrameRecord:
    """Timing of one recorded (complete) frame.

    Attributes
    ----------
    stamp_ns : int
        Header stamp of the frame [ns].
    receive_monotonic_s : float
        Wall (monotonic) time its labels arrived [s].
    clock_latency_ms : float or None
        Node clock at receive - stamp [ms] (clock time), None while the clock is unset.
    end_to_end_ms : float or None
        Input image received -> labels received, middleware receive timestamps (system
        clock) [ms]; None if the input was not seen.
    received_ns : int or None
        Middleware receive timestamp of the labels (system clock) [ns].
    """

    stamp_ns: int
    receive_monotonic_s: float
    clock_latency_ms: float | None
    end_to_end_ms: float | None
    received_ns: int | None = None


def recorder_qos(depth: int) -> QoSProfile:
    """RELIABLE, KEEP_LAST ``depth``, volatile: matches the node's reliable outputs."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


class BagRecorderNode(Node):
    """Record topics into an MCAP bag with receive stamps and per-frame latency.

    Parameters
    ----------
    output_path : str or Path
        Bag directory to create (must not exist, or be an empty folder).
    topic_types : dict[str, str] or None
        Absolute topic -> message type to record; None = the perception outputs under
        ``/fluoro`` plus ``/diagnostics``.
    input_topic : str or None
        Image topic whose arrival times start the end-to-end latency; None = off.
    completion_topic : str or None
        Topic whose message completes a frame; None = ``<namespace>/perception/labels``.
    tip_topic, truth_tip_topic : str or None
        PoseStamped topics of the predicted and ground-truth tip for
        :meth:`latest_tip_error_m` (the truth topic must be in ``topic_types`` too).
    storage : str
        ``mcap`` (default) or ``sqlite3``.
    depth : int
        Subscription history depth.
    node_name : str
        Node name.
    **kwargs
        Passed to :class:`rclpy.node.Node` (``context``, ``parameter_overrides``, ...).
    """

    def __init__(
        self,
        output_path: str | Path,
        *,
        topic_types: dict[str, str] | None = None,
        input_topic: str | None = IMAGE_TOPIC,
        completion_topic: str | None = None,
        tip_topic: str | None = None,
        truth_tip_topic: str | None = None,
        storage: str = "mcap",
        depth: int = 100,
        node_name: str = NODE_NAME,
        **kwargs: Any,
    ) -> None:
        super().__init__(node_name, **kwargs)
        self.topic_types = dict(topic_types or recorded_topic_types(DEFAULT_NAMESPACE))
        outputs = perception_topics(DEFAULT_NAMESPACE)
        self.completion_topic = completion_topic or outputs["labels"][0]
        self.tip_topic = tip_topic or outputs["tip"][0]
        self.truth_tip_topic = truth_tip_topic
        self._lock = threading.Lock()
        self._writer: BagWriter | None = BagWriter(output_path, storage=storage).open()
        self._final_counts: dict[str, int] = {}
        self._input_received_ns: dict[int, int] = {}
        self._records: dict[int, FrameRecord] = {}
        self._tips_m: dict[str, dict[int, tuple[float, float]]] = {"pred": {}, "truth": {}}
        self.last_receive_monotonic = time.monotonic()
        self.write_errors: dict[str, int] = {}
        self._recording_subscriptions = []
        for topic, msgtype in sorted(self.topic_types.items()):
            msg_class = message_class(msgtype)
            if msg_class is None:
                raise ValueError(
                    f"topic {topic}: message type {msgtype} is not installed; install its "
                    "ROS 2 message package or drop the topic"
                )
            self._recording_subscriptions.append(
                self.create_subscription(
                    msg_class,
                    topic,
                    functools.partial(self._on_message, topic, msgtype),
                    recorder_qos(depth),
                    raw=True,
                )
            )
        if input_topic:
            # best effort matches reliable and best-effort image publishers alike
            self._recording_subscriptions.append(
                self.create_subscription(
                    Image, input_topic, self._on_input, qos_profile_sensor_data, raw=True
                )
            )
        self.get_logger().info(
            f"recording {len(self.topic_types)} topics to {output_path} ({storage})"
        )

    # ---------------------------------------------------------------- callbacks

    def _clock_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    def _on_input(self, raw: bytes, info: MessageInfo) -> None:
        stamp = cdr_header_stamp_ns(raw)
        if stamp is not None:
            with self._lock:
                self._input_received_ns.setdefault(stamp, int(info["received_timestamp"]))

    def _on_message(self, topic: str, msgtype: str, raw: bytes, info: MessageInfo) -> None:
        received_s = time.monotonic()
        received_ns = int(info["received_timestamp"])  # set by the middleware on arrival
        clock_ns = self._clock_ns()
        try:
            message = get_bag_typestore().deserialize_cdr(bytes(raw), msgtype)
        except Exception as exc:  # a malformed message must not stop the recording
            self._count_error(f"undecodable {msgtype} on {topic}: {type(exc).__name__}")
            return
        stamp = message_stamp_ns(message)
        # receive time on the node clock; before the first /clock (sim time unset) the
        # header stamp is the best available log time
        log_time_ns = clock_ns if clock_ns > 0 else max(stamp or 0, 0)
        with self._lock:
            if self._writer is None:
                return  # closed: the recording is over
            try:
                self._writer.write_message(topic, msgtype, message, log_time_ns)
            except (ValueError, OSError) as exc:
                self._count_error(f"write failed on {topic}: {exc}")
                return
            self.last_receive_monotonic = received_s
            if stamp is None:
                return
            if topic == self.completion_topic and stamp not in self._records:
                self._records[stamp] = FrameRecord(
                    stamp_ns=stamp,
                    receive_monotonic_s=received_s,
                    clock_latency_ms=(clock_ns - stamp) * 1e-6 if clock_ns > 0 else None,
                    end_to_end_ms=None,
                    received_ns=received_ns,
                )
            if topic in (self.tip_topic, self.truth_tip_topic):
                key = "pred" if topic == self.tip_topic else "truth"
                position = message.pose.position
                self._tips_m[key][stamp] = (float(position.x), float(position.y))

    def _count_error(self, reason: str) -> None:
        self.write_errors[reason] = self.write_errors.get(reason, 0) + 1
        self.get_logger().warning(reason, throttle_duration_sec=2.0)

    # ---------------------------------------------------------------- results

    @property
    def frames_recorded(self) -> int:
        """Frames whose completion message (labels) was recorded."""
        with self._lock:
            return len(self._records)

    @property
    def message_counts(self) -> dict[str, int]:
        """Messages written per topic (the final counts once the bag is closed)."""
        with self._lock:
            if self._writer is not None:
                return self._writer.message_counts
            return dict(self._final_counts)

    def _with_end_to_end(self, record: FrameRecord) -> FrameRecord:
        # the input and its labels may be handled by different executor threads in either
        # order, so the pair is matched when asked for, from the middleware's timestamps
        input_ns = self._input_received_ns.get(record.stamp_ns)
        if input_ns is None or record.received_ns is None:
            return record
        return dataclasses.replace(record, end_to_end_ms=(record.received_ns - input_ns) * 1e-6)

    def frame_records(self) -> dict[int, FrameRecord]:
        """Stamp -> :class:`FrameRecord` of every complete frame (with end-to-end latency)."""
        with self._lock:
            return {stamp: self._with_end_to_end(r) for stamp, r in self._records.items()}

    def latest_latency_ms(self) -> float | None:
        """End-to-end latency of the newest complete frame [ms] (None if unknown)."""
        with self._lock:
            if not self._records:
                return None
            return self._with_end_to_end(self._records[max(self._records)]).end_to_end_ms

    def latest_tip_error_m(self) -> float | None:
        """Predicted-to-true tip distance of the newest stamp that has both [m]."""
        with self._lock:
            common = set(self._tips_m["pred"]) & set(self._tips_m["truth"])
            if not common:
                return None
            stamp = max(common)
            (px, py), (tx, ty) = self._tips_m["pred"][stamp], self._tips_m["truth"][stamp]
            return math.hypot(px - tx, py - ty)

    def close(self) -> None:
        """Finish the bag (idempotent); later messages are ignored."""
        for subscription in self._recording_subscriptions:
            self.destroy_subscription(subscription)
        self._recording_subscriptions = []
        with self._lock:
            if self._writer is not None:
                self._final_counts = self._writer.message_counts
                self._writer.close()
                self._writer = None

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """``ros2 run fluoro_perception bag_recorder_node OUTPUT`` (records until Ctrl-C)."""
    from rclpy.utilities import remove_ros_args

    argv = sys.argv if args is None else args
    parser = argparse.ArgumentParser(
        prog="bag_recorder_node", description="Record the perception outputs into an MCAP bag."
    )
    parser.add_argument("output", type=Path, help="bag directory to create")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument(
        "--input-topic", default=IMAGE_TOPIC, help="image topic for the end-to-end latency"
    )
    options = parser.parse_args(remove_ros_args(argv)[1:])
    apply_dds_profile()  # before the first participant (dds_profile)
    rclpy.init(args=argv)
    node = None
    try:
        node = BagRecorderNode(
            options.output, storage=options.storage, input_topic=options.input_topic or None
        )
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(exc))
    finally:
        if node is not None:
            node.destroy_node()
            print(f"bag_recorder_node: {node.frames_recorded} frames -> {options.output}")
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
