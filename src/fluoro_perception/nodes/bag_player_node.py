"""``bag_player_node``: publish a rosbag2's messages over DDS with ``/clock``.

A minimal ``ros2 bag play`` for machines without the ROS 2 command line: the bag is read
with ``rosbags`` (the storage file that :class:`fluoro_perception.bagio.BagReader`
resolves: a rosbag2 directory, a metadata-less directory, or a ``.mcap`` / ``.db3``
file) and every message of a topic whose type is importable here is published as the
recorded CDR bytes (no decode / re-encode), in log-time order, at the recorded rate
times ``rate``. ``/clock`` (``rosgraph_msgs/Clock``) carries the playback time: the log
time of each message just before it is published, and in between every
``1 / clock_hz`` seconds of wall time, so nodes with ``use_sim_time`` see bag time.

QoS: every topic is published RELIABLE, KEEP_LAST ``depth``, volatile. A reliable
publisher reaches best-effort (``sensor_data``) subscribers such as the segmentation
node's image input as well as reliable ones (recorders, RViz), so images are
sensor-data-compatible and ground truth is delivered reliably to reliable subscribers.
``image_qos: sensor_data`` publishes images best effort instead.

The node ends by itself when the bag is done (``finished`` is set; ``main`` returns).
Messages that cannot be read (storage damage) are counted in ``skipped``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.highlevel import AnyReader
from rosgraph_msgs.msg import Clock

from fluoro_perception.bagio import IMAGE_TOPIC, IMAGE_TYPE, BagReader, get_bag_typestore
from fluoro_perception.nodes.conversions import ns_to_stamp
from fluoro_perception.nodes.dds_profile import apply_dds_profile

NODE_NAME = "bag_player"
CLOCK_TOPIC = "/clock"
_NS_PER_S = 1_000_000_000


def message_class(msgtype: str) -> type | None:
    """``"sensor_msgs/msg/Image"`` -> the rclpy message class, None when not installed."""
    package, _, name = msgtype.partition("/msg/")
    if not package or not name:
        return None
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError):
        return None


def player_qos(depth: int, best_effort: bool = False) -> QoSProfile:
    """KEEP_LAST ``depth``, volatile; reliable unless ``best_effort``."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


class BagPlayerNode(Node):
    """Publishes a bag's topics and ``/clock`` from a playback thread.

    Parameters
    ----------
    bag_path : str or Path
        rosbag2 directory, ``.mcap`` or ``.db3`` file.
    rate : float
        Playback speed factor (> 0): 2 plays twice as fast as recorded.
    topics : list of str or None
        Topics to play; None = every topic whose message type is importable.
    clock_hz : float
        ``/clock`` publications per second of wall time between messages [Hz].
    depth : int
        History depth of the publishers.
    image_qos : str
        ``reliable`` (default) or ``sensor_data`` (best effort) for Image topics.
    node_name : str
        Node name.
    **kwargs
        Passed to :class:`rclpy.node.Node` (``context``, ``parameter_overrides``, ...).

    Attributes
    ----------
    finished : threading.Event
        Set when every message was played (or playback stopped).
    skipped : dict[str, int]
        Reason -> messages not published (unknown type, storage damage).
    """

    def __init__(
        self,
        bag_path: str | Path,
        *,
        rate: float = 1.0,
        topics: list[str] | None = None,
        clock_hz: float = 100.0,
        depth: int = 10,
        image_qos: str = "reliable",
        node_name: str = NODE_NAME,
        **kwargs: Any,
    ) -> None:
        if not rate > 0.0:
            raise ValueError(f"rate={rate!r}; expected a playback factor > 0 (1 = recorded rate)")
        if not clock_hz > 0.0:
            raise ValueError(f"clock_hz={clock_hz!r}; expected a clock rate > 0 [Hz]")
        if image_qos not in ("reliable", "sensor_data"):
            raise ValueError(f"image_qos={image_qos!r}; expected 'reliable' or 'sensor_data'")
        super().__init__(node_name, **kwargs)
        self.rate = float(rate)
        self.clock_period_s = 1.0 / float(clock_hz)
        self.skipped: dict[str, int] = {}
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counts: dict[str, int] = {}
        self._counts_lock = threading.Lock()
        self._last_clock_ns = -1
        self._clock_lock = threading.Lock()

        # resolve the storage (directory, metadata-less directory, single file) as bagio does
        self._bag_reader = BagReader(bag_path)
        # open once through bagio: a damaged or missing bag is one BagError line here
        self._bag_reader.open().close()
        self._reader = AnyReader(
            [self._bag_reader.storage_path], default_typestore=get_bag_typestore()
        )
        self._reader.open()
        wanted = None if topics is None else set(topics)
        self._connections = []
        self._topic_publishers: dict[str, Any] = {}
        for connection in self._reader.connections:
            if wanted is not None and connection.topic not in wanted:
                continue
            msg_class = message_class(connection.msgtype)
            if msg_class is None:
                reason = f"type {connection.msgtype} not installed ({connection.topic})"
                self.skipped[reason] = self.skipped.get(reason, 0) + int(connection.msgcount)
                continue
            if connection.topic not in self._topic_publishers:
                best_effort = image_qos == "sensor_data" and connection.msgtype == IMAGE_TYPE
                self._topic_publishers[connection.topic] = self.create_publisher(
                    msg_class, connection.topic, player_qos(depth, best_effort)
                )
            self._connections.append(connection)
        if wanted is not None:
            missing = sorted(wanted - {c.topic for c in self._reader.connections})
            if missing:
                self._reader.close()
                raise ValueError(
                    f"topics {missing} are not in bag {bag_path}; topics are "
                    f"{sorted({c.topic for c in self._reader.connections})}"
                )
        self._clock_publisher = self.create_publisher(Clock, CLOCK_TOPIC, player_qos(1))
        self.message_total = sum(int(c.msgcount) for c in self._connections)
        self.get_logger().info(
            f"{self.message_total} messages on {len(self._topic_publishers)} topics from {bag_path} "
            f"at {self.rate:g}x"
        )

    # ---------------------------------------------------------------- state

    def frames_published(self, topic: str) -> int:
        """Messages published so far on ``topic``."""
        with self._counts_lock:
            return self._counts.get(topic, 0)

    @property
    def published_counts(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self._counts)

    def image_topics(self) -> list[str]:
        """The played topics that carry ``sensor_msgs/msg/Image``."""
        return sorted({c.topic for c in self._connections if c.msgtype == IMAGE_TYPE})

    def image_subscribers(self, topic: str) -> int:
        """Subscriptions matched to the publisher of ``topic`` (0 if it is not played).

        Any played topic works; the name says what it is used for (waiting until the
        consumers of the image stream are matched before playing).
        """
        publisher = self._topic_publishers.get(topic)
        return 0 if publisher is None else publisher.get_subscription_count()

    # ---------------------------------------------------------------- playback

    def start(self) -> None:
        """Start playing on a thread (once)."""
        if self._thread is not None:
            raise RuntimeError("playback already started; create a new BagPlayerNode to replay")
        self._thread = threading.Thread(target=self._play, name=f"{NODE_NAME}_play", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop playback (idempotent) and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _publish_clock(self, bag_time_ns: int) -> None:
        with self._clock_lock:
            # the clock never runs backwards, even when a message is published late
            bag_time_ns = max(int(bag_time_ns), self._last_clock_ns)
            self._last_clock_ns = bag_time_ns
        self._clock_publisher.publish(Clock(clock=ns_to_stamp(bag_time_ns)))

    def _wait_until(self, wall_target_s: float, bag_of_wall: Any) -> bool:
        """Sleep until ``wall_target_s`` publishing the clock; False when stopped."""
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= wall_target_s:
                return True
            self._publish_clock(bag_of_wall(now))
            time.sleep(min(self.clock_period_s, wall_target_s - now))
        return False

    def _play(self) -> None:
        start_wall_s = time.monotonic()
        start_bag_ns: int | None = None

        def bag_of_wall(wall_s: float) -> int:
            return int(start_bag_ns + (wall_s - start_wall_s) * self.rate * _NS_PER_S)

        played = 0
        try:
            for connection, log_time_ns, raw in self._reader.messages(
                connections=self._connections
            ):
                if start_bag_ns is None:
                    start_bag_ns = int(log_time_ns)
                    start_wall_s = time.monotonic()
                target_s = start_wall_s + (int(log_time_ns) - start_bag_ns) / (
                    self.rate * _NS_PER_S
                )
                if not self._wait_until(target_s, bag_of_wall):
                    break
                self._publish_clock(int(log_time_ns))
                self._topic_publishers[connection.topic].publish(bytes(raw))
                played += 1
                with self._counts_lock:
                    self._counts[connection.topic] = self._counts.get(connection.topic, 0) + 1
        except Exception as exc:  # storage damage: what was played stays played
            self.skipped["unreadable after storage damage"] = max(0, self.message_total - played)
            self.get_logger().error(
                f"bag damaged after {played} messages ({type(exc).__name__}: {exc}); stopped"
            )
        finally:
            self.finished.set()
            self.get_logger().info(f"playback done: {played} messages published")

    def destroy_node(self) -> None:
        self.stop()
        self._reader.close()
        super().destroy_node()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bag_player_node", description="Publish a rosbag2 with /clock (see module docs)."
    )
    parser.add_argument("bag", type=Path, help="rosbag2 directory, .mcap or .db3")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    parser.add_argument("--topics", nargs="+", default=None, help="topics to play (default all)")
    parser.add_argument(
        "--wait-subscribers",
        type=int,
        default=0,
        metavar="N",
        help="wait (up to 30 s) until N subscribers listen to --wait-topic",
    )
    parser.add_argument(
        "--wait-topic", default=IMAGE_TOPIC, help=f"topic of --wait-subscribers ({IMAGE_TOPIC})"
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=0.5,
        help="wait this long after start-up (and --wait-subscribers) before playing [s], so "
        "that discovery completes on the subscribers' side too",
    )
    parser.add_argument(
        "--image-qos", choices=("reliable", "sensor_data"), default="reliable", help="image QoS"
    )
    return parser.parse_args(argv)


def main(args: list[str] | None = None) -> None:
    """``ros2 run fluoro_perception bag_player_node BAG [--rate R]`` (ends when the bag does)."""
    from rclpy.utilities import remove_ros_args

    argv = sys.argv if args is None else args
    options = parse_args(remove_ros_args(argv)[1:])
    apply_dds_profile()  # before the first participant (dds_profile)
    rclpy.init(args=argv)
    node = None
    try:
        # the executor before the node: a signal while the bag is opened shuts the
        # context down, and an executor created after that fails in its own __del__
        executor = SingleThreadedExecutor()
        node = BagPlayerNode(
            options.bag, rate=options.rate, topics=options.topics, image_qos=options.image_qos
        )
        executor.add_node(node)
        deadline = time.monotonic() + 30.0
        while (
            options.wait_subscribers
            and node.image_subscribers(options.wait_topic) < options.wait_subscribers
            and time.monotonic() < deadline
        ):
            executor.spin_once(timeout_sec=0.1)
        delay_end = time.monotonic() + max(0.0, options.delay)
        while time.monotonic() < delay_end:
            executor.spin_once(timeout_sec=0.05)
        node.start()
        while not node.finished.is_set():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(exc))
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
