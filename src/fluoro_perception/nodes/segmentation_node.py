"""``segmentation_node``: fluoroscopy frames in, guidewire/stent perception out.

A lifecycle node (ros2/demos ``lifecycle_py`` pattern): the ONNX Runtime engine and the
pipeline are created in ``on_configure`` (a failed load is a FAILED transition with a
one-line reason, never a crash), frames are processed and results published only while
active, everything is released in ``on_cleanup``. With ``autostart`` (default) the node
configures and activates itself so that it also works when started alone.

Threading: the image callback only stores the newest message in a one-slot mailbox
(an unprocessed frame that gets replaced is counted as ``superseded``) and wakes the
worker thread, which decodes, runs :class:`~fluoro_perception.core.pipeline.
PerceptionPipeline` and publishes (tip poses first). No callback ever waits on
inference. The overlay image is rendered on a third thread from its own one-slot
mailbox, so drawing for people never delays the next frame.

Every output carries the input image's header (stamp and frame_id). Positions are in
metres in the image frame (:mod:`fluoro_perception.nodes.conversions`). Topics, QoS and
parameters: ``docs/ros_interface.md``.

The mailbox (:mod:`fluoro_perception.nodes.mailbox`) and the diagnostics counters
(:mod:`fluoro_perception.nodes.perception_stats`, ``DROP_REASONS``) live in their own
modules, re-exported here; the rest stays in this one because the lifecycle
transitions, the two worker threads and the publishers share one node state.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PolygonStamped, PoseArray, PoseStamped
from nav_msgs.msg import Odometry
from nav_msgs.msg import Path as PathMsg
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from fluoro_perception.core.decode import ImageDecodeError
from fluoro_perception.core.engine import InferenceEngine
from fluoro_perception.core.overlay import render_overlay
from fluoro_perception.core.pipeline import PerceptionPipeline
from fluoro_perception.core.types import FrameResult
from fluoro_perception.model_registry import default_model_path, verify_model
from fluoro_perception.nodes import conversions as conv
from fluoro_perception.nodes.mailbox import FrameMailbox
from fluoro_perception.nodes.params import (
    SegmentationNodeConfig,
    declare_config,
    set_parameters_result,
    validate_parameter_change,
)
from fluoro_perception.nodes.perception_stats import DROP_REASONS as DROP_REASONS  # re-export
from fluoro_perception.nodes.perception_stats import PerceptionStats
from fluoro_perception.nodes.shutdown import run_node
from fluoro_perception.topics import DIAGNOSTICS_TOPIC, OUTPUT_TOPIC_TYPES, ros_type_name

NODE_NAME = "segmentation_node"
DEFAULT_NAMESPACE = "fluoro"

#: Relative topic names (under the node namespace, default ``/fluoro``).
INPUT_TOPIC = "image_raw"
# the table lives in fluoro_perception.topics (type names, importable without rclpy);
# here its type names become the message classes the node publishes
_MESSAGE_CLASSES = {
    ros_type_name(cls): cls
    for cls in (Image, PathMsg, PoseStamped, PoseArray, Odometry, PolygonStamped, MarkerArray)
}
OUTPUT_TOPICS: dict[str, tuple[str, type]] = {
    key: (relative, _MESSAGE_CLASSES[type_name])
    for key, (relative, type_name) in OUTPUT_TOPIC_TYPES.items()
}
#: At most one "dropped frame" log line per drop reason in this period [s].
DROP_LOG_PERIOD_S = 1.0
#: Time a worker thread gets to finish its frame at cleanup / at shutdown [s].
CLEANUP_JOIN_TIMEOUT_S = 10.0
SHUTDOWN_JOIN_TIMEOUT_S = 2.0


def qos_profile(kind: str, depth: int) -> QoSProfile:
    """``sensor_data`` (best effort, volatile) or ``reliable`` (volatile) with ``depth``."""
    if kind == "sensor_data":
        profile = QoSProfile(
            history=qos_profile_sensor_data.history,
            depth=depth,
            reliability=qos_profile_sensor_data.reliability,
            durability=qos_profile_sensor_data.durability,
        )
        return profile
    if kind == "reliable":
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=depth,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
    raise ValueError(f"QoS kind {kind!r}; expected 'sensor_data' or 'reliable'")


def resolve_model_path(path: str) -> Path:
    """The model file for the ``model.path`` parameter.

    An empty path means the shipped default model ``models/default.onnx`` in the package
    share directory (installed prefix or source tree), see
    :func:`fluoro_perception.model_registry.default_model_path`.

    Raises
    ------
    FileNotFoundError
        No default model is shipped where it was searched (one line saying how to get one).
    """
    if path:
        return Path(path).expanduser()
    return default_model_path()


class SegmentationNode(LifecycleNode):
    """Guidewire/stent perception lifecycle node (see the module docstring).

    Parameters
    ----------
    node_name : str
        Node name (parameter files address it by this name).
    namespace : str
        Node namespace; topics are relative to it (default ``fluoro`` -> ``/fluoro/...``).
    **kwargs
        Passed to :class:`rclpy.lifecycle.LifecycleNode` (``context``,
        ``parameter_overrides``, ``cli_args``, ...).
    """

    def __init__(
        self, node_name: str = NODE_NAME, *, namespace: str = DEFAULT_NAMESPACE, **kwargs: Any
    ) -> None:
        super().__init__(node_name, namespace=namespace, **kwargs)
        self._config: SegmentationNodeConfig = declare_config(self, SegmentationNodeConfig)
        self._pending_config: SegmentationNodeConfig | None = None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._on_parameters_set)

        self.stats = PerceptionStats()
        self._mailbox = FrameMailbox()
        # overlays are for people: rendered on their own thread so they never delay the
        # next frame; one slot, the newest wins (skips are counted, not frame drops)
        self._overlay_mailbox = FrameMailbox()
        self._overlay_worker: threading.Thread | None = None
        # render + publish time of the last overlays [ms] (diagnostics
        # ``stage_p50_ms.overlay``): appended on the overlay thread, copied under the GIL
        self._overlay_ms: collections.deque[float] = collections.deque(maxlen=200)
        self._lock = threading.Lock()  # guards engine/pipeline/publishers swaps
        self._engine: InferenceEngine | None = None
        self._pipeline: PerceptionPipeline | None = None
        self._outputs: dict[str, Any] = {}
        self._subscription = None
        self._worker: threading.Thread | None = None
        self._stop_worker = threading.Event()
        self._active = threading.Event()
        self._last_stamp_ns: int | None = None
        self._last_drop_log_s: dict[str, float] = {}  # reason -> time of its last log line
        self._state_label = "unconfigured"
        self._configure_error = ""
        self._provider_fallback = ""  # why the engine runs on another provider ("" = none)

        # diagnostics exist in every state, so a failed configure is visible on /diagnostics
        self._diagnostics_publisher = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._diagnostics_timer = self.create_timer(
            self._config.diagnostics_period_s, self.publish_diagnostics
        )

        if self._config.autostart:
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()

    # ---------------------------------------------------------------- parameters

    @property
    def config(self) -> SegmentationNodeConfig:
        """The current validated configuration (cached; never read per frame)."""
        return self._config

    @property
    def configure_error(self) -> str:
        """One-line reason of the last failed configure ("" when it succeeded)."""
        return self._configure_error

    def _on_set_parameters(self, parameters: Sequence[rclpy.parameter.Parameter]):
        # model.* and qos.* are read at configure: settable while unconfigured or
        # inactive (fix a failed configure in place), refused while active
        candidate, reason = validate_parameter_change(
            SegmentationNodeConfig, self._config, parameters, self._lifecycle_state()
        )
        if candidate is None:
            self.get_logger().warning(f"rejected parameter change: {reason}")
            return set_parameters_result(False, reason)
        self._pending_config = candidate
        return set_parameters_result(True)

    def _on_parameters_set(self, parameters: Sequence[rclpy.parameter.Parameter]) -> None:
        new_config = self._pending_config
        if new_config is None:
            return
        old_config, self._config, self._pending_config = self._config, new_config, None
        for name in ("model", "qos"):
            if getattr(old_config, name) != getattr(new_config, name):
                self.get_logger().info(f"{name}.* changed: used at the next configure")
        pipeline_changed = any(
            getattr(old_config, name) != getattr(new_config, name)
            for name in ("geometry", "tracker", "tracking_enabled", "bit_depth",
                         "min_tip_confidence")
        )  # fmt: skip
        if pipeline_changed:
            with self._lock:
                if self._engine is not None:
                    self._pipeline = PerceptionPipeline(self._engine, new_config.pipeline_config())
                    self.get_logger().info("pipeline settings changed: tracking restarts")

    # ---------------------------------------------------------------- lifecycle

    def _lifecycle_state(self) -> str:
        """Label of the current lifecycle state (``unconfigured``, ``active``, ...)."""
        return self._state_machine.current_state[1]

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        config = self._config
        try:
            model_path = resolve_model_path(config.model.path)
            # a shipped model must match the sha256 on its model card; a user's own model
            # is checked against its card only when it has one
            card_sha256 = verify_model(model_path, require_card=not config.model.path)
            engine = InferenceEngine(
                model_path,
                providers=config.model.providers,
                fp16=config.model.fp16,
                trt_cache_dir=config.model.trt_cache_dir or None,
                allow_cpu_fallback=config.model.allow_cpu_fallback,
                intra_op_threads=config.model.intra_op_threads,
                warmup_runs=config.model.warmup_runs,
                expected_sha256=config.model.expected_sha256 or card_sha256,
            )
            pipeline = PerceptionPipeline(engine, config.pipeline_config())
        except Exception as exc:
            # any load failure (ModelLoadError, a missing file, an ONNX Runtime error) is
            # a FAILED transition with one line, never the lifecycle error state or a crash
            self._configure_error = " ".join(str(exc).split())
            self._state_label = "unconfigured (configure failed)"
            self.get_logger().error(f"configure failed: {self._configure_error}")
            return TransitionCallbackReturn.FAILURE

        output_qos = qos_profile(config.qos.output, config.qos.output_depth)
        with self._lock:
            self._engine, self._pipeline = engine, pipeline
            self._outputs = {
                key: self.create_lifecycle_publisher(msg_type, topic, output_qos)
                for key, (topic, msg_type) in OUTPUT_TOPICS.items()
            }
        self._subscription = self.create_subscription(
            Image,
            INPUT_TOPIC,
            self._on_image,
            qos_profile(config.qos.input, config.qos.input_depth),
        )
        self._configure_error = ""
        requested = [name for name in config.model.providers if name]
        if requested and engine.active_provider != requested[0]:
            # degraded as configured (model.allow_cpu_fallback): say so in the log and
            # on /diagnostics, never silently
            self._provider_fallback = (
                f"requested {requested[0]} is not available here; running on "
                f"{engine.active_provider}"
            )
            self.get_logger().warning(f"provider fallback: {self._provider_fallback}")
        else:
            self._provider_fallback = ""
        self._last_stamp_ns = None
        # a fresh event per configure: a worker left behind by a cleanup keeps its own,
        # already set, and ends after its frame instead of joining the new workers
        self._stop_worker = stop = threading.Event()
        self._mailbox.reopen()
        self._overlay_mailbox.reopen()
        self._worker = threading.Thread(
            target=self._worker_loop, args=(stop,), name=f"{self.get_name()}_worker", daemon=True
        )
        self._overlay_worker = threading.Thread(
            target=self._overlay_loop, args=(stop,), name=f"{self.get_name()}_overlay",
            daemon=True,
        )  # fmt: skip
        self._worker.start()
        self._overlay_worker.start()
        self._state_label = "inactive"
        self.get_logger().info(
            f"configured: model {engine.model_path} ({engine.metadata.architecture}) on "
            f"{engine.active_provider}, input {engine.input_shape[1]}x{engine.input_shape[0]}"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active.set()
        self._state_label = "active"
        self.get_logger().info(
            f"active: processing frames from {self._subscription.topic_name} "
            f"({self._config.qos.input})"
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        # the subscription stays (it is destroyed at cleanup): destroying entities while
        # a multi-threaded executor builds its wait set is not safe in rclpy, and
        # activate/deactivate must be cheap and safe to toggle
        self._active.clear()
        if self._mailbox.clear():
            self.stats.note_drop("inactive", "waiting frame dropped at deactivate")
        self._state_label = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active.clear()
        self._release(SHUTDOWN_JOIN_TIMEOUT_S)
        self._state_label = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def _release(self, join_timeout_s: float = CLEANUP_JOIN_TIMEOUT_S) -> None:
        """Stop the workers, then free the subscription, the engine and the publishers.

        Each worker gets ``join_timeout_s`` to finish the frame it is on. One still busy
        after that is left behind (a daemon thread: its frame is dropped with the
        released engine and publishers, and it ends with the process), so that a node
        that is being shut down always ends in bounded time.
        """
        self._active.clear()
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        self._stop_worker.set()
        self._mailbox.close()
        self._overlay_mailbox.close()
        for thread in (self._worker, self._overlay_worker):
            if thread is not None:
                thread.join(timeout=join_timeout_s)
                if thread.is_alive():
                    self.get_logger().warning(
                        f"{thread.name} still busy after {join_timeout_s:g} s; releasing anyway"
                    )
        self._worker, self._overlay_worker = None, None
        self._overlay_mailbox.clear()
        with self._lock:
            for publisher in self._outputs.values():
                self.destroy_lifecycle_publisher(publisher)
            self._outputs = {}
            if self._engine is not None:
                self._engine.close()
            self._engine, self._pipeline = None, None

    def destroy_node(self) -> None:
        self._active.clear()
        self._release(SHUTDOWN_JOIN_TIMEOUT_S)
        super().destroy_node()

    # ---------------------------------------------------------------- frames

    def _on_image(self, msg: Image) -> None:
        # executor thread: store and return at once; never wait on inference here
        if not self._active.is_set():
            self.stats.note_drop("inactive", "frame received while the node is inactive")
            return
        self.stats.note_received(time.monotonic())
        if self._mailbox.put((msg, time.monotonic())):
            self.stats.note_drop("superseded")

    def _worker_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            item = self._mailbox.take(timeout_s=0.2)
            if item is None or stop.is_set():
                continue
            msg, received_s = item
            try:
                self._process(msg, received_s)
            except Exception as exc:  # a bad frame must never kill the worker
                self._drop("processing_error", f"{type(exc).__name__}: {exc}")

    def _overlay_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            item = self._overlay_mailbox.take(timeout_s=0.2)
            if item is None or stop.is_set():
                continue
            image, result, header, encoding = item
            try:
                overlay_start = time.perf_counter()
                overlay = render_overlay(image, result, encoding)  # (H, W, 3) uint8 RGB
                with self._lock:
                    publisher = self._outputs.get("overlay")
                if publisher is not None and self._active.is_set():
                    publisher.publish(conv.image_to_msg(overlay, "rgb8", header))
                    self._overlay_ms.append((time.perf_counter() - overlay_start) * 1e3)
            except Exception as exc:  # an overlay failure must never stop perception
                self.get_logger().warning(
                    f"overlay failed: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0
                )

    def _drop(self, reason: str, detail: str = "") -> None:
        detail = " ".join(detail.split())
        self.stats.note_drop(reason, detail)
        # throttled per reason (not per call site): a flood of one kind of bad frame
        # cannot hide the first line of another kind
        now_s = time.monotonic()
        if now_s - self._last_drop_log_s.get(reason, -math.inf) >= DROP_LOG_PERIOD_S:
            self._last_drop_log_s[reason] = now_s
            self.get_logger().warning(f"dropped frame ({reason}{': ' + detail if detail else ''})")

    def _frame_age_s(self, stamp_ns: int) -> float | None:
        """clock now - stamp [s]; None while the clock is unset (sim time before /clock)."""
        now_ns = self.get_clock().now().nanoseconds
        return None if now_ns <= 0 else (now_ns - stamp_ns) * 1e-9

    def _process(self, msg: Image, received_s: float) -> None:
        config = self._config  # one consistent snapshot for the whole frame
        with self._lock:
            pipeline = self._pipeline
        if pipeline is None or not self._active.is_set():
            self._drop("inactive", "the node is not active")
            return
        stamp_ns = conv.stamp_to_ns(msg.header.stamp)
        if self._last_stamp_ns is not None and stamp_ns <= self._last_stamp_ns:
            step_back_s = (self._last_stamp_ns - stamp_ns) * 1e-9
            if stamp_ns == self._last_stamp_ns:
                self._drop("duplicate_stamp", f"stamp {stamp_ns} ns seen before")
                return
            if step_back_s < config.time_jump_reset_s:
                self._drop("out_of_order", f"{step_back_s:.3f} s older than the previous frame")
                return
            pipeline.reset_tracking()
            self.stats.note_tracking_reset()
            self.get_logger().info(f"time jumped back by {step_back_s:.3f} s: tracking reset")
        age_s = self._frame_age_s(stamp_ns)
        if age_s is not None and age_s > config.max_age_s:
            self._drop("stale", f"frame is {age_s:.3f} s old (max_age_s {config.max_age_s})")
            return
        try:
            image = conv.msg_to_image(msg)
        except (ImageDecodeError, ValueError, TypeError) as exc:
            self._drop("decode_error", str(exc))
            return
        size_changes_before = pipeline.image_size_changes
        try:
            result = pipeline.process(image, stamp_ns, msg.encoding)
        except (ValueError, TypeError) as exc:
            self._drop("processing_error", str(exc))
            return
        if pipeline.image_size_changes != size_changes_before:
            self.stats.note_tracking_reset()
            self.stats.note_size_change(f"{msg.width}x{msg.height}")
            self.get_logger().info(
                f"image size changed to {msg.width}x{msg.height} px: tracking reset"
            )
        self._last_stamp_ns = stamp_ns
        publish_start = time.perf_counter()
        markers_ms = self._publish(result, image, msg, config)
        # "publish" is every message of the worker (core outputs, then markers); "markers"
        # is the part of it spent on the markers, after the core outputs were sent
        stage_ms = {**result.timings_ms, "publish": (time.perf_counter() - publish_start) * 1e3,
                    "markers": markers_ms}  # fmt: skip
        self.stats.note_processed(time.monotonic(), (time.monotonic() - received_s) * 1e3, stage_ms)
        self.stats.note_geometry_caps(result.geometry_caps_hit)

    def _publish(
        self, result: FrameResult, image: np.ndarray, msg: Image, config: SegmentationNodeConfig
    ) -> float:
        """Publish one frame's outputs; returns the time spent on its markers [ms]."""
        header: Header = msg.header
        with self._lock:
            publishers = dict(self._outputs)
        if not publishers or not self._active.is_set():
            return 0.0
        # poses first: they are what the control stack waits for; images and
        # visualization follow
        age_s = self._frame_age_s(result.stamp_ns)
        fresh = age_s is None or age_s <= config.max_age_s
        if fresh:
            self._publish_poses(result, config, header, publishers)
        else:
            # never a pose of a frame that became too old while it was processed
            self.stats.note_tip(published=False)
            self.get_logger().warning(
                f"poses withheld: frame became {age_s:.3f} s old during processing",
                throttle_duration_sec=1.0,
            )
        publishers["guidewire_mask"].publish(
            conv.image_to_msg(result.guidewire_mask, "mono8", header)
        )
        publishers["stent_mask"].publish(conv.image_to_msg(result.stent_mask, "mono8", header))
        publishers["labels"].publish(conv.image_to_msg(result.labels, "mono8", header))
        if config.overlay_enabled and self._overlay_mailbox.put(
            (image, result, header, msg.encoding)
        ):
            self.stats.note_overlay_skipped()
        if not (fresh and config.markers_enabled):
            return 0.0
        markers_start = time.perf_counter()
        publishers["markers"].publish(conv.markers_msg(result, config.pixel_spacing_m, header))
        return (time.perf_counter() - markers_start) * 1e3

    def _publish_poses(
        self,
        result: FrameResult,
        config: SegmentationNodeConfig,
        header: Header,
        publishers: dict[str, Any],
    ) -> None:
        """Tip, tracked tip, tips, centerline, stent pose/outline of a fresh frame."""
        messages = conv.pose_messages(
            result,
            header,
            pixel_spacing_m=config.pixel_spacing_m,
            min_tip_confidence=config.min_tip_confidence,
            tracking_enabled=config.tracking_enabled,
        )
        for key, message in messages:
            publishers[key].publish(message)
        self.stats.note_tip(published=any(key == "tip" for key, _ in messages))

    # ---------------------------------------------------------------- diagnostics

    def diagnostics_values(self) -> tuple[str, str, dict[str, Any]]:
        """``(level, message, values)`` of the current diagnostics status."""
        values = self.stats.snapshot(time.monotonic())
        overlay_ms = list(self._overlay_ms)
        if overlay_ms:  # on its own thread: not part of the frame's latency
            values["stage_p50_ms.overlay"] = float(np.median(overlay_ms))
        with self._lock:
            engine = self._engine
        values = {
            "state": self._state_label,
            "model": str(engine.model_path) if engine is not None else "",
            "architecture": engine.metadata.architecture if engine is not None else "",
            "provider": engine.active_provider if engine is not None else "",
            "provider_fallback": self._provider_fallback if engine is not None else "",
            **values,
        }
        if self._configure_error:
            return "error", f"configure failed: {self._configure_error}", values
        if engine is None or not self._active.is_set():
            return "warn", self._state_label, values
        if values["frames_dropped"] and values["last_drop"]:
            return "ok", f"processing; last drop {values['last_drop']}", values
        return "ok", "processing", values

    def publish_diagnostics(self) -> None:
        level, message, values = self.diagnostics_values()
        self._diagnostics_publisher.publish(
            conv.diagnostics_msg(
                name=f"{self.get_fully_qualified_name()}",
                hardware_id=values["model"] or "no model",
                level=level,
                message=message,
                values=values,
                stamp_ns=max(self.get_clock().now().nanoseconds, 0),
            )
        )


def main(args: list[str] | None = None) -> None:
    """``ros2 run fluoro_perception segmentation_node``: ends cleanly on SIGINT/SIGTERM.

    :func:`fluoro_perception.nodes.shutdown.run_node`: repeated Ctrl-C or SIGTERM end it
    with status 0 and no traceback; a context or node that cannot be created (bad
    parameters, DDS security set-up) exits with status 1 and one FATAL line.
    """
    run_node(SegmentationNode, NODE_NAME, args)


if __name__ == "__main__":
    main()
