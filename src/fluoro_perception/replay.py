"""Bag replay: run the perception stack on a recorded rosbag2 and report what it did.

Two modes (``fluoro-perception replay``, ``docs/replay.md``):

* **offline** (:func:`replay_offline`): frames are read with ``rosbags`` through
  :mod:`fluoro_perception.bagio`, run through
  :class:`~fluoro_perception.core.pipeline.PerceptionPipeline` one after the other
  (deterministic, as fast as the CPU allows) and every perception output is written to an
  MCAP bag under the same topic names and types the ROS node publishes, stamped with the
  input stamps. No DDS, no ``rclpy.init``.
* **live** (:func:`replay_live`): the bag player node, the segmentation node (with
  ``use_sim_time``) and the recorder node run in ONE process on a
  ``MultiThreadedExecutor`` over real DDS; the bag is played at its recorded rate (or
  ``rate`` times it) and dropped frames, end-to-end latency and the achieved rate are
  reported.

When the bag carries ground truth (``/fluoro/ground_truth/...``, ``docs/bag_format.md``)
both modes also write the evaluation report of :mod:`fluoro_perception.evaluation.report`
(``metrics.json``, ``report.md``, figures). Every run writes ``replay.json`` and
``replay.md`` (frame accounting, timing, skipped messages).

Importing this module does not import rclpy: the ROS message classes (built by
:mod:`fluoro_perception.nodes.conversions`, so offline outputs are byte-for-byte the
messages the node publishes) and ``rclpy.serialization`` are imported when a replay runs.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fluoro_perception.bagio import (
    GT_MARKERS_TOPIC,
    IMAGE_TOPIC,
    IMAGE_TYPE,
    MARKER_ARRAY_TYPE,
    PIXEL_SPACING_KEY,
    BagError,
    BagFrame,
    BagReader,
    BagWriter,
    get_bag_typestore,
    open_bag,
    stamp_to_ns,
)
from fluoro_perception.core.decode import ImageDecodeError, decode_image
from fluoro_perception.core.types import GUIDEWIRE, STENT, FrameResult, WireDetection
from fluoro_perception.jsonsafe import json_safe
from fluoro_perception.metrics import summarize_values
from fluoro_perception.sim.types import SimFrame, WireTruth

#: Namespace the perception topics live in (``config/graph.yaml`` ``namespace``).
DEFAULT_NAMESPACE = "/fluoro"
#: Output bag folder inside the replay output directory.
OUTPUT_BAG_DIR = "output_bag"
SUMMARY_JSON = "replay.json"
SUMMARY_MD = "replay.md"
#: The evaluation report's markdown file (``evaluation.report.REPORT_FILE``), linked from
#: ``replay.md``.
REPORT_LINK = "report.md"
REPLAY_MODES = ("offline", "live")
#: Pixel spacing used when neither the user nor the bag gives one: the segmentation
#: node's default ``pixel_spacing_m`` [m/px] (``config/segment.yaml``).
FALLBACK_PIXEL_SPACING_M = 2.0e-4
#: Length of the GT tip arrows ``fluoro-sim bag`` writes on ``/fluoro/ground_truth/markers``
#: [px] (``bagio._frame_markers``): arrow length [m] / this = the bag's pixel spacing.
GT_TIP_ARROW_LENGTH_PX = 20.0
DIAGNOSTICS_TOPIC = "/diagnostics"
#: Drop reason of frames a player / simulator published that the node never received: its
#: best-effort input of depth 1 keeps only the newest sample, so a frame the executor did
#: not take in time is overwritten in the DDS reader queue (or, over a network, lost).
NOT_RECEIVED = "not received by the node (overwritten in its DDS input queue or lost)"
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
_NS_PER_S = 1_000_000_000


# ----------------------------------------------------------------------------- topics


def ros_type_name(msg_class: type) -> str:
    """``sensor_msgs.msg.Image`` class -> ``"sensor_msgs/msg/Image"``."""
    return f"{msg_class.__module__.split('.')[0]}/msg/{msg_class.__name__}"


def perception_topics(namespace: str = DEFAULT_NAMESPACE) -> dict[str, tuple[str, str]]:
    """Output key -> ``(absolute topic, message type)`` of the segmentation node.

    Taken from :data:`fluoro_perception.nodes.segmentation_node.OUTPUT_TOPICS` (imported
    here, not at module import, because that module imports rclpy), so the replay and
    the node can never disagree on names or types.
    """
    from fluoro_perception.nodes.segmentation_node import OUTPUT_TOPICS

    prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return {
        key: (f"{prefix}/{relative}", ros_type_name(msg_class))
        for key, (relative, msg_class) in OUTPUT_TOPICS.items()
    }


def recorded_topic_types(namespace: str = DEFAULT_NAMESPACE) -> dict[str, str]:
    """Topic -> type of everything the recorder keeps: perception outputs + ``/diagnostics``."""
    topics = {topic: kind for topic, kind in perception_topics(namespace).values()}
    topics[DIAGNOSTICS_TOPIC] = DIAGNOSTICS_TYPE
    return topics


# ----------------------------------------------------------------------------- spacing


def pixel_spacing_from_markers(bag: BagReader) -> float | None:
    """Pixel spacing [m/px] of a ``fluoro-sim bag`` from its GT tip arrows, None if absent.

    The simulator writes every GT tip as an ARROW marker ``GT_TIP_ARROW_LENGTH_PX`` long
    with both end points in metres, so ``|head - tail| [m] / 20 [px]`` is the spacing the
    bag's metre positions were computed with (bags written before ``fluoro-sim bag``
    stored :data:`~fluoro_perception.bagio.PIXEL_SPACING_KEY` have no spacing field).
    """
    if bag.topics.get(GT_MARKERS_TOPIC) != MARKER_ARRAY_TYPE:
        return None
    for _, message in bag.iter_messages(GT_MARKERS_TOPIC, MARKER_ARRAY_TYPE):
        for marker in message.markers:
            if marker.ns == "tip" and marker.type == 0 and len(marker.points) == 2:
                tail, head = marker.points
                length_m = math.hypot(head.x - tail.x, head.y - tail.y)
                if length_m > 0.0:
                    return length_m / GT_TIP_ARROW_LENGTH_PX
    return None


def resolve_pixel_spacing(bag_path: str | Path, override_m: float | None) -> tuple[float, str]:
    """The pixel spacing [m/px] to use for a bag and where it came from.

    Order: ``override_m`` (``--pixel-spacing``), the bag's ``metadata.yaml`` custom data
    (:data:`~fluoro_perception.bagio.PIXEL_SPACING_KEY`, written by ``fluoro-sim bag``),
    the GT tip markers of a simulator bag (:func:`pixel_spacing_from_markers`, for bags
    written before the key existed or read without their metadata), else
    :data:`FALLBACK_PIXEL_SPACING_M` (the node default; metre outputs and mm errors then
    carry that assumption). When both the metadata and the markers give a spacing, the
    metadata wins and the returned source says whether the markers agree (rel. 1e-6).
    """
    if override_m is not None:
        if not (math.isfinite(override_m) and override_m > 0.0):
            raise ValueError(
                f"--pixel-spacing {override_m!r}; expected a finite spacing > 0 [m/px], e.g. 2e-4"
            )
        return float(override_m), "--pixel-spacing"
    with open_bag(bag_path) as bag:
        from_metadata = bag.pixel_spacing_m
        try:
            from_markers = pixel_spacing_from_markers(bag)
        except BagError:
            from_markers = None  # a damaged marker topic: fall back, the frames may still read
    if from_metadata is not None:
        source = f"bag metadata custom_data ({PIXEL_SPACING_KEY})"
        if from_markers is not None:
            # the markers are a cross-check: a bag edited or merged by hand can disagree
            agree = math.isclose(from_markers, from_metadata, rel_tol=1e-6)
            source += (
                "; ground-truth tip markers agree"
                if agree
                else f"; ground-truth tip markers disagree ({from_markers!r} m/px, not used)"
            )
        return from_metadata, source
    if from_markers is not None:
        return from_markers, f"ground-truth tip markers ({GT_MARKERS_TOPIC})"
    return FALLBACK_PIXEL_SPACING_M, "assumed (segmentation_node default pixel_spacing_m)"


# ----------------------------------------------------------------------------- ground truth


def truth_from_bag_frame(
    frame: BagFrame, pixel_spacing_m: float, frame_index: int, sequence_id: str
) -> SimFrame | None:
    """The bag's ground truth of one frame as a :class:`SimFrame` in pixels, None without GT.

    Metres are turned into pixels with ``pixel_spacing_m`` (``x_px = x_m / spacing``).
    The bag format carries the centerline of the primary wire only (tip first), so other
    wires get their tip and an empty centerline; a tip outside the image is not visible.
    Labels come from the labels topic, else from the guidewire / stent masks.
    """
    truth = frame.ground_truth
    if truth is None:
        return None
    image = frame.image.image
    height, width = image.shape[:2]
    if truth.labels is not None:
        labels = np.asarray(truth.labels, dtype=np.uint8)
    elif truth.guidewire_mask is not None or truth.stent_mask is not None:
        labels = np.zeros((height, width), dtype=np.uint8)
        if truth.stent_mask is not None:
            labels[np.asarray(truth.stent_mask) > 0] = STENT
        if truth.guidewire_mask is not None:
            labels[np.asarray(truth.guidewire_mask) > 0] = GUIDEWIRE
    else:
        return None
    if labels.shape != (height, width):
        return None
    spacing = float(pixel_spacing_m)
    tips_m = truth.tips_m
    yaws = truth.tip_directions_rad
    if tips_m is None and truth.tip_position_m is not None:
        tips_m = np.reshape(truth.tip_position_m, (1, 3))
        yaws = np.array([truth.tip_direction_rad or 0.0])
    centerline_px = (
        np.asarray(truth.centerline_m, dtype=np.float64)[:, :2] / spacing
        if truth.centerline_m is not None and len(truth.centerline_m)
        else np.zeros((0, 2))
    )
    wires = []
    for index, tip_m in enumerate(np.zeros((0, 3)) if tips_m is None else tips_m):
        tip_px = np.asarray(tip_m[:2], dtype=np.float64) / spacing
        inside = bool(0.0 <= tip_px[0] <= width - 1 and 0.0 <= tip_px[1] <= height - 1)
        wires.append(
            WireTruth(
                instance_id=index + 1,
                kind="guidewire",
                centerline_px=(centerline_px if index == 0 else np.zeros((0, 2))).astype(
                    np.float32
                ),
                tip_px=tip_px,
                tip_direction_rad=float(yaws[index]) if yaws is not None else 0.0,
                tip_visible=inside,
                width_px=1.0,
            )
        )
    return SimFrame(
        image=image,
        bit_depth=8 if image.dtype == np.uint8 else 16,
        labels=labels,
        wire_instances=np.zeros((height, width), dtype=np.uint8),
        field_mask=np.ones((height, width), dtype=bool),
        wires=wires,
        stents=[],
        pixel_spacing_m=spacing,
        sequence_id=sequence_id,
        frame_index=int(frame_index),
        timestamp_s=frame.image.stamp_ns * 1e-9,
        scenario="bag",
    )


def iter_bag_frames(bag: BagReader, topic: str, skipped: dict[str, int]) -> Iterator[BagFrame]:
    """``bag.iter_frames(topic)`` that ends at storage damage instead of raising.

    A damaged chunk makes the rest of the bag unreadable: the frames before it are
    yielded, the image messages after it are counted in ``skipped`` under
    ``"unreadable after storage damage"``, and the one-line reason under
    ``"damage: ..."``.
    """
    frames = bag.iter_frames(topic)
    read = 0
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except BagError as exc:
            remaining = max(0, bag.message_count(topic) - read)
            skipped["unreadable after storage damage"] = (
                skipped.get("unreadable after storage damage", 0) + remaining
            )
            skipped[f"damage: {exc}"] = 1
            return
        read += 1
        yield frame


# ----------------------------------------------------------------------------- messages


def perception_messages(
    result: FrameResult,
    image: np.ndarray,
    encoding: str,
    header: Any,
    config: Any,
) -> list[tuple[str, Any]]:
    """The ``(output key, rclpy message)`` list the segmentation node publishes for a result.

    The pose outputs come from :func:`fluoro_perception.nodes.conversions.pose_messages`,
    the function the node publishes with, followed by masks, overlay and markers when
    enabled. A replay has no stale frames, so poses are never withheld.

    Parameters
    ----------
    result : FrameResult
        Pipeline output of ``image``.
    image : np.ndarray
        The decoded input frame (for the overlay).
    encoding : str
        Its encoding.
    header : std_msgs.msg.Header
        Input header (stamp and frame_id copied into every message).
    config : SegmentationNodeConfig
        Node settings (``pixel_spacing_m`` [m/px], ``min_tip_confidence``, switches).
    """
    from fluoro_perception.core.overlay import render_overlay
    from fluoro_perception.nodes import conversions as conv

    spacing = config.pixel_spacing_m
    messages: list[tuple[str, Any]] = conv.pose_messages(
        result,
        header,
        pixel_spacing_m=spacing,
        min_tip_confidence=config.min_tip_confidence,
        tracking_enabled=config.tracking_enabled,
    )
    messages.append(("guidewire_mask", conv.image_to_msg(result.guidewire_mask, "mono8", header)))
    messages.append(("stent_mask", conv.image_to_msg(result.stent_mask, "mono8", header)))
    messages.append(("labels", conv.image_to_msg(result.labels, "mono8", header)))
    if config.overlay_enabled:
        overlay = render_overlay(image, result, encoding)  # (H, W, 3) uint8 RGB
        messages.append(("overlay", conv.image_to_msg(overlay, "rgb8", header)))
    if config.markers_enabled:
        messages.append(("markers", conv.markers_msg(result, spacing, header)))
    return messages


def write_rclpy_message(
    bag: BagWriter, topic: str, msgtype: str, message: Any, log_time_ns: int
) -> None:
    """Write an rclpy message (or its CDR bytes) to a :class:`BagWriter` bag.

    The CDR of ``rclpy.serialization`` is read back into a ``rosbags`` message of the
    bag typestore and written through :meth:`BagWriter.write_message`, so the output bag
    holds exactly the bytes a ROS 2 recorder would.
    """
    if isinstance(message, bytes | bytearray | memoryview):
        raw = bytes(message)
    else:
        from rclpy.serialization import serialize_message

        raw = serialize_message(message)
    typed = get_bag_typestore().deserialize_cdr(raw, msgtype)
    bag.write_message(topic, msgtype, typed, int(log_time_ns))


# ----------------------------------------------------------------------------- summary


@dataclass
class ReplaySummary:
    """What a replay did (written to ``replay.json`` / ``replay.md``).

    Attributes
    ----------
    mode : str
        ``offline`` or ``live``.
    bag_path, output_bag : str
        Input bag and the output bag written.
    image_topic : str
        Image topic replayed.
    frames_in_bag : int
        Image messages the bag index lists.
    frames_read : int
        Images decoded from the bag (offline) / published by the player (live).
    frames_processed : int
        Frames with perception output in the output bag.
    frames_dropped : dict[str, int]
        Reason -> frames without output (node drops, lost in transport, pipeline errors).
    skipped : dict[str, int]
        Reason -> bag messages that could not be read.
    latency_ms : dict
        Statistics of the per-frame latency [ms]: the pipeline time offline, the
        end-to-end time (input on DDS -> labels output on DDS) live.
    clock_latency_ms : dict
        Live only: output receive time on the ROS (sim) clock - header stamp, converted
        to wall time by dividing by ``rate`` [ms].
    rate_hz : float
        Frames processed per second of wall time over the run [Hz].
    input_rate_hz : float
        Rate of the input frames as recorded [Hz] (0 for a single frame).
    rate : float
        Playback speed factor (live).
    wall_s : float
        Wall time of the run [s].
    pixel_spacing_m : float
        Spacing used for metres [m/px], with ``pixel_spacing_source``.
    has_ground_truth : bool
        Frames with ground truth were evaluated (see ``report``).
    topics_written : dict[str, int]
        Output bag topic -> message count.
    report : dict[str, str]
        Evaluation report files (``metrics``, ``report``, figures), empty without GT.
    accuracy : dict
        Key accuracy figures of the evaluation (empty without GT).
    """

    mode: str
    bag_path: str
    output_bag: str
    image_topic: str
    frames_in_bag: int = 0
    frames_read: int = 0
    frames_processed: int = 0
    frames_dropped: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    latency_ms: dict = field(default_factory=dict)
    clock_latency_ms: dict = field(default_factory=dict)
    rate_hz: float = 0.0
    input_rate_hz: float = 0.0
    rate: float = 1.0
    wall_s: float = 0.0
    pixel_spacing_m: float = FALLBACK_PIXEL_SPACING_M
    pixel_spacing_source: str = ""
    has_ground_truth: bool = False
    topics_written: dict[str, int] = field(default_factory=dict)
    report: dict[str, str] = field(default_factory=dict)
    accuracy: dict = field(default_factory=dict)

    @property
    def num_dropped(self) -> int:
        return int(sum(self.frames_dropped.values()))

    def record_evaluation(self, paths: dict[str, Path], evaluation_summary: dict) -> None:
        """Attach an evaluation: its report files and key figures of its ``summary``."""
        self.has_ground_truth = True
        self.report = {name: str(path) for name, path in paths.items()}
        self.accuracy = accuracy_figures(evaluation_summary)

    def to_dict(self) -> dict[str, Any]:
        return json_safe({**asdict(self), "num_dropped": self.num_dropped})

    def one_line(self) -> str:
        """A one-line summary for the terminal."""
        latency = self.latency_ms
        text = (
            f"replay ({self.mode}): {self.frames_processed} of {self.frames_read} frames "
            f"processed, {self.num_dropped} dropped, {sum(self.skipped.values())} bag messages "
            f"skipped; latency p50 {_fmt(latency.get('median'))} ms, p95 "
            f"{_fmt(latency.get('p95'))} ms, max {_fmt(latency.get('max'))} ms; "
            f"{self.rate_hz:.1f} frames/s"
        )
        if self.accuracy:
            text += (
                f"; guidewire F1 {_fmt(self.accuracy.get('guidewire_f1'), 3)}, tip error "
                f"median {_fmt(self.accuracy.get('tip_error_px_median'))} px"
            )
        return text


def _fmt(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{value:.{digits}f}"


def render_summary_markdown(summary: ReplaySummary) -> str:
    """``replay.md`` / ``demo.md``: frame accounting, timing and skipped messages of a run."""
    latency, clock_latency = summary.latency_ms, summary.clock_latency_ms
    lines = [
        "# Demo" if summary.mode == "demo" else f"# Replay ({summary.mode})",
        "",
        "| | |",
        "|---|---|",
        f"| input | `{summary.bag_path}` (topic `{summary.image_topic}`) |",
        f"| output bag | `{summary.output_bag}` |",
        f"| frames in bag / read / processed | {summary.frames_in_bag} / {summary.frames_read} / "
        f"{summary.frames_processed} |",
        f"| frames dropped | {summary.num_dropped} |",
        {
            "live": f"| playback rate | {summary.rate:g}x the recorded rate |",
            "offline": "| playback | as fast as possible, frame by frame |",
        }.get(summary.mode, "| source | simulator node over DDS |"),
        f"| input rate (recorded) | {summary.input_rate_hz:.2f} Hz |",
        f"| rate achieved | {summary.rate_hz:.2f} frames/s over {summary.wall_s:.2f} s |",
        f"| pixel spacing | {summary.pixel_spacing_m * 1e3:.4f} mm/px ({summary.pixel_spacing_source}) |",
        "",
        "## Latency",
        "",
        "| latency | p50 | p95 | max | frames |",
        "|---|---|---|---|---|",
        f"| {'pipeline' if summary.mode == 'offline' else 'end-to-end (input -> labels on DDS)'}"
        f" [ms] | {_fmt(latency.get('median'))} | {_fmt(latency.get('p95'))} | "
        f"{_fmt(latency.get('max'))} | {latency.get('count', 0)} |",
    ]
    if clock_latency:
        lines.append(
            f"| ROS clock - header stamp, / rate [ms] | {_fmt(clock_latency.get('median'))} | "
            f"{_fmt(clock_latency.get('p95'))} | {_fmt(clock_latency.get('max'))} | "
            f"{clock_latency.get('count', 0)} |"
        )
    lines += ["", "## Dropped frames", ""]
    lines += [f"- {reason}: {count}" for reason, count in summary.frames_dropped.items()] or [
        "none"
    ]
    lines += ["", "## Skipped bag messages", ""]
    lines += [f"- {reason}: {count}" for reason, count in summary.skipped.items()] or ["none"]
    lines += ["", "## Output topics", "", "| topic | messages |", "|---|---|"]
    lines += [f"| `{topic}` | {count} |" for topic, count in sorted(summary.topics_written.items())]
    lines += ["", "## Accuracy", ""]
    if summary.has_ground_truth:
        lines.append(f"Evaluation report: [`{REPORT_LINK}`]({REPORT_LINK}).")
        lines += [f"- {name}: {_fmt(value, 3)}" for name, value in summary.accuracy.items()]
    else:
        lines.append("The bag has no ground truth: no accuracy figures.")
    return "\n".join(lines) + "\n"


def write_summary(
    output_dir: Path, summary: ReplaySummary, stem: str = "replay"
) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` (default ``replay.*``) into ``output_dir``."""
    json_path = output_dir / f"{stem}.json"
    json_path.write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
    md_path = output_dir / f"{stem}.md"
    md_path.write_text(render_summary_markdown(summary), encoding="utf-8")
    return json_path, md_path


def accuracy_figures(document_summary: dict) -> dict[str, float | None]:
    """The few accuracy numbers a replay prints from an evaluation summary."""
    return {
        "guidewire_f1": document_summary.get("guidewire_f1"),
        "centerline_f1_mean": document_summary.get("centerline_f1_mean"),
        "tip_error_px_median": document_summary.get("tip_error_px", {}).get("median"),
        "tip_error_mm_median": document_summary.get("tip_error_mm", {}).get("median"),
        "tip_detection_rate": document_summary.get("tip_detection_rate"),
        "stent_dice": document_summary.get("stent_dice"),
    }


def _input_rate_hz(stamps_ns: list[int]) -> float:
    if len(stamps_ns) < 2:
        return 0.0
    span_s = (max(stamps_ns) - min(stamps_ns)) * 1e-9
    return (len(stamps_ns) - 1) / span_s if span_s > 0 else 0.0


def achieved_rate_hz(receive_times_s: list[float]) -> float:
    """Output rate [Hz]: (frames - 1) / (last - first receive time); 0 below two frames."""
    if len(receive_times_s) < 2:
        return 0.0
    span_s = max(receive_times_s) - min(receive_times_s)
    return (len(receive_times_s) - 1) / span_s if span_s > 0 else 0.0


def prepare_output_dir(output_dir: str | Path, overwrite: bool) -> tuple[Path, Path]:
    """Create ``output_dir``; return it and the output bag path (never clobbering a run)."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {out} is a file; expected a folder (new or empty)")
    bag_path = out / OUTPUT_BAG_DIR
    if (out / SUMMARY_JSON).exists() and not overwrite:
        raise ValueError(
            f"--output {out} already holds {SUMMARY_JSON}; pass --overwrite or choose a new folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    if bag_path.exists():
        if not overwrite:
            raise ValueError(
                f"--output {out} already holds {OUTPUT_BAG_DIR}; pass --overwrite or choose a "
                "new folder"
            )
        import shutil

        shutil.rmtree(bag_path)
    return out, bag_path


def load_node_config(overrides: dict[str, Any] | None = None) -> Any:
    """The segmentation node's config from the graph's parameter file plus ``overrides``."""
    from fluoro_perception.nodes.graph import load_graph
    from fluoro_perception.nodes.params import (
        SegmentationNodeConfig,
        config_from_flat,
        load_config_yaml,
    )

    spec = load_graph().node("segmentation_node")
    config = SegmentationNodeConfig()
    for path in spec.parameter_file_paths():
        config = load_config_yaml(path, SegmentationNodeConfig, spec.name)
    return config_from_flat(SegmentationNodeConfig, dict(overrides or {}), base=config)


# ----------------------------------------------------------------------------- offline


def replay_offline(
    bag_path: str | Path,
    output_dir: str | Path,
    *,
    model: str | Path | None = None,
    providers: list[str] | None = None,
    topic: str = IMAGE_TOPIC,
    pixel_spacing_m: float | None = None,
    overwrite: bool = False,
    worst: int = 6,
    progress: bool = True,
    namespace: str = DEFAULT_NAMESPACE,
) -> ReplaySummary:
    """Run the pipeline on every frame of a bag and write the output bag and reports.

    Parameters
    ----------
    bag_path : str or Path
        rosbag2 directory, ``.mcap`` or ``.db3`` (simulator or ``ros2 bag record``).
    output_dir : str or Path
        Folder for ``output_bag/`` (MCAP), ``replay.json``, ``replay.md`` and, with
        ground truth, the evaluation report.
    model : str, Path or None
        ONNX model; None = the shipped default (``FileNotFoundError`` if absent).
    providers : list of str or None
        ONNX Runtime providers (names or ``cpu``/``cuda``/``tensorrt``); None = defaults.
    topic : str
        Image topic.
    pixel_spacing_m : float or None
        Spacing [m/px]; None = from the bag (:func:`resolve_pixel_spacing`).
    overwrite : bool
        Replace a previous replay in ``output_dir``.
    worst : int
        Worst-frame thumbnails in the evaluation report.
    progress : bool
        Show a tqdm progress bar on stderr.
    namespace : str
        Namespace of the perception topics (``/fluoro``).

    Returns
    -------
    ReplaySummary
        Also written to ``replay.json`` / ``replay.md``.
    """
    from tqdm import tqdm

    from fluoro_perception.cli.infer import load_engine
    from fluoro_perception.core.engine import DEFAULT_PROVIDERS
    from fluoro_perception.core.pipeline import PerceptionPipeline
    from fluoro_perception.evaluation.frame_metrics import (
        EvaluationAccumulator,
        compute_frame_metrics,
    )
    from fluoro_perception.evaluation.report import RunInfo, WorstFrames, write_report
    from fluoro_perception.nodes import conversions as conv
    from fluoro_perception.nodes.segmentation_node import PerceptionStats

    spacing, spacing_source = resolve_pixel_spacing(bag_path, pixel_spacing_m)
    config = load_node_config({"pixel_spacing_m": spacing})
    engine = load_engine(None if model is None else Path(model), providers or DEFAULT_PROVIDERS)
    out, output_bag = prepare_output_dir(output_dir, overwrite)
    topics = perception_topics(namespace)
    pipeline = PerceptionPipeline(engine, config.pipeline_config())
    stats = PerceptionStats(window_s=math.inf, latency_samples=1_000_000)
    summary = ReplaySummary(
        mode="offline",
        bag_path=str(bag_path),
        output_bag=str(output_bag),
        image_topic=topic,
        pixel_spacing_m=spacing,
        pixel_spacing_source=spacing_source,
    )
    accumulator = EvaluationAccumulator()
    worst_frames = WorstFrames(worst)
    sequence_id = Path(bag_path).name or "bag"
    latencies: list[float] = []
    stamps: list[int] = []
    dropped: dict[str, int] = {}
    last_stamp_ns: int | None = None
    next_diagnostics_ns: int | None = None
    diagnostics_period_ns = int(config.diagnostics_period_s * _NS_PER_S)
    started = time.perf_counter()

    def diagnostics(stamp_ns: int) -> Any:
        values = {
            "state": "offline replay",
            "model": str(engine.model_path),
            "architecture": engine.metadata.architecture,
            "provider": engine.active_provider,
            **stats.snapshot(stamp_ns * 1e-9),
        }
        return conv.diagnostics_msg(
            name=f"{namespace.rstrip('/')}/segmentation_node",
            hardware_id=str(engine.model_path),
            level="ok",
            message="offline replay",
            values=values,
            stamp_ns=stamp_ns,
        )

    with open_bag(bag_path) as bag, BagWriter(output_bag, storage="mcap") as writer:
        summary.frames_in_bag = bag.message_count(topic)
        frames = iter_bag_frames(bag, topic, summary.skipped)
        for frame in tqdm(
            frames,
            total=summary.frames_in_bag,
            desc="replay",
            unit="frame",
            disable=not progress,
            file=sys.stderr,
        ):
            summary.frames_read += 1
            stamp_ns = frame.image.stamp_ns
            stamps.append(stamp_ns)
            stats.note_received(stamp_ns * 1e-9)
            if last_stamp_ns is not None and stamp_ns == last_stamp_ns:
                dropped["duplicate_stamp"] = dropped.get("duplicate_stamp", 0) + 1
                stats.note_drop("duplicate_stamp", f"stamp {stamp_ns} ns seen before")
                continue
            if last_stamp_ns is not None and stamp_ns < last_stamp_ns:
                pipeline.reset_tracking()  # a bag that loops or jumps back in time
            try:
                result = pipeline.process(frame.image.image, stamp_ns, frame.image.encoding)
            except (ValueError, TypeError) as exc:
                dropped["processing_error"] = dropped.get("processing_error", 0) + 1
                stats.note_drop("processing_error", str(exc))
                continue
            last_stamp_ns = stamp_ns
            latency_ms = float(result.timings_ms.get("total", math.nan))
            latencies.append(latency_ms)
            stats.note_processed(stamp_ns * 1e-9, latency_ms, dict(result.timings_ms))
            header = conv.make_header(stamp_ns, frame.image.frame_id)
            for key, message in perception_messages(
                result, frame.image.image, frame.image.encoding, header, config
            ):
                out_topic, msgtype = topics[key]
                write_rclpy_message(writer, out_topic, msgtype, message, stamp_ns)
            summary.frames_processed += 1
            if next_diagnostics_ns is None or stamp_ns >= next_diagnostics_ns:
                write_rclpy_message(
                    writer, DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, diagnostics(stamp_ns), stamp_ns
                )
                next_diagnostics_ns = stamp_ns + diagnostics_period_ns
            truth = truth_from_bag_frame(frame, spacing, summary.frames_read - 1, sequence_id)
            if truth is not None:
                metrics = compute_frame_metrics(result, truth)
                accumulator.add(metrics)
                worst_frames.offer(metrics, frame.image.image, frame.image.encoding, result, truth)
        if last_stamp_ns is not None:
            # the final state, as the node's last periodic diagnostics would carry it
            final_stamp = last_stamp_ns + 1
            write_rclpy_message(
                writer, DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, diagnostics(final_stamp), final_stamp
            )
        for reason, count in bag.skipped.items():
            summary.skipped[reason] = summary.skipped.get(reason, 0) + count
        summary.topics_written = writer.message_counts
    summary.wall_s = time.perf_counter() - started
    summary.frames_dropped = dropped
    summary.latency_ms = summarize_values(latencies)
    summary.rate_hz = summary.frames_processed / summary.wall_s if summary.wall_s > 0 else 0.0
    summary.input_rate_hz = _input_rate_hz(stamps)
    if accumulator.num_frames:
        run_info = RunInfo.for_engine(
            engine, dataset_path=str(bag_path), dataset_frames=summary.frames_in_bag
        )
        skipped_frames = {**summary.skipped, **dropped}
        paths = write_report(
            out, accumulator, run_info, worst_frames=worst_frames.frames(), skipped=skipped_frames
        )
        summary.record_evaluation(paths, accumulator.summary()["summary"])
    engine.close()
    write_summary(out, summary)
    return summary


# ----------------------------------------------------------------------------- recorded outputs


def _decode(message: Any) -> np.ndarray | None:
    try:
        return decode_image(
            message.encoding,
            message.height,
            message.width,
            message.step,
            message.is_bigendian,
            message.data,
        )
    except ImageDecodeError:
        return None


def results_from_output_bag(
    output_bag: str | Path,
    pixel_spacing_m: float,
    namespace: str = DEFAULT_NAMESPACE,
    latencies_ms: dict[int, float] | None = None,
) -> dict[int, FrameResult]:
    """Rebuild one :class:`FrameResult` per stamp from a recorded perception bag.

    A frame counts when its ``labels`` message was recorded. Masks are the recorded
    images; wires come from the tips PoseArray (metres / ``pixel_spacing_m`` -> [px]),
    the first one carrying the recorded primary centerline when the Path starts at its
    tip; stents and tracks are not rebuilt (the metrics do not use them).
    ``timings_ms["total"]`` is ``latencies_ms[stamp]`` when given (the end-to-end time).
    """
    from fluoro_perception.bagio import quaternion_to_yaw

    topics = perception_topics(namespace)
    spacing = float(pixel_spacing_m)
    per_stamp: dict[int, dict[str, Any]] = {}
    with open_bag(output_bag) as bag:
        present = bag.topics
        for key in ("labels", "guidewire_mask", "stent_mask", "tips", "centerline"):
            topic, msgtype = topics[key]
            if present.get(topic) != msgtype:
                continue
            for _, message in bag.iter_messages(topic, msgtype):
                stamp = stamp_to_ns(message.header.stamp)
                per_stamp.setdefault(stamp, {})[key] = message
    results: dict[int, FrameResult] = {}
    for stamp, parts in per_stamp.items():
        if "labels" not in parts:
            continue
        labels = _decode(parts["labels"])
        if labels is None:
            continue
        masks = {}
        for key in ("guidewire_mask", "stent_mask"):
            image = _decode(parts[key]) if key in parts else None
            if image is None:
                class_index = GUIDEWIRE if key == "guidewire_mask" else STENT
                image = np.where(labels == class_index, 255, 0).astype(np.uint8)
            masks[key] = image
        centerline_px = np.zeros((0, 2))
        if "centerline" in parts and parts["centerline"].poses:
            centerline_px = (
                np.array(
                    [[p.pose.position.x, p.pose.position.y] for p in parts["centerline"].poses]
                )
                / spacing
            )
        wires = []
        poses = parts["tips"].poses if "tips" in parts else []
        for index, pose in enumerate(poses):
            tip_px = np.array([pose.position.x, pose.position.y]) / spacing
            q = pose.orientation
            own_centerline = (
                centerline_px
                if index == 0
                and len(centerline_px)
                and np.hypot(*(centerline_px[0] - tip_px)) < 1e-3
                else tip_px.reshape(1, 2)
            )
            wires.append(
                WireDetection(
                    wire_id=index,
                    centerline_px=own_centerline.astype(np.float32),
                    tip_px=tip_px,
                    tip_direction_rad=quaternion_to_yaw(q.x, q.y, q.z, q.w),
                    confidence=1.0,
                    length_px=float(
                        np.sum(np.hypot(*np.diff(own_centerline, axis=0).T))
                        if len(own_centerline) > 1
                        else 0.0
                    ),
                )
            )
        timings = {}
        if latencies_ms is not None and stamp in latencies_ms:
            timings["total"] = float(latencies_ms[stamp])
        results[stamp] = FrameResult(
            stamp_ns=stamp,
            labels=labels,
            guidewire_mask=masks["guidewire_mask"],
            stent_mask=masks["stent_mask"],
            wires=wires,
            timings_ms=timings,
        )
    return results


def evaluate_recorded(
    output_dir: Path,
    truth_bag: str | Path,
    output_bag: str | Path,
    *,
    topic: str,
    pixel_spacing_m: float,
    latencies_ms: dict[int, float],
    run_info: Any,
    namespace: str = DEFAULT_NAMESPACE,
    worst: int = 6,
) -> tuple[dict[str, Path], dict, dict[str, int]]:
    """Score recorded perception outputs against the ground truth of the same stamps.

    Returns the report paths (empty when no frame had both), the evaluation summary and
    the skipped counts. Frames without output (dropped live) are counted under
    ``"no perception output"``.
    """
    from fluoro_perception.evaluation.frame_metrics import (
        EvaluationAccumulator,
        compute_frame_metrics,
    )
    from fluoro_perception.evaluation.report import WorstFrames, write_report

    results = results_from_output_bag(output_bag, pixel_spacing_m, namespace, latencies_ms)
    accumulator = EvaluationAccumulator()
    worst_frames = WorstFrames(worst)
    skipped: dict[str, int] = {}
    sequence_id = Path(truth_bag).name or "bag"
    with open_bag(truth_bag) as bag:
        for index, frame in enumerate(iter_bag_frames(bag, topic, skipped)):
            truth = truth_from_bag_frame(frame, pixel_spacing_m, index, sequence_id)
            if truth is None:
                continue
            result = results.get(frame.image.stamp_ns)
            if result is None or result.labels.shape != truth.labels.shape:
                skipped["no perception output"] = skipped.get("no perception output", 0) + 1
                continue
            metrics = compute_frame_metrics(result, truth)
            accumulator.add(metrics)
            worst_frames.offer(metrics, frame.image.image, frame.image.encoding, result, truth)
        for reason, count in bag.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
    if not accumulator.num_frames:
        return {}, {}, skipped
    paths = write_report(
        output_dir, accumulator, run_info, worst_frames=worst_frames.frames(), skipped=skipped
    )
    return paths, accumulator.summary()["summary"], skipped


# ----------------------------------------------------------------------------- live


def spin_until(
    executor: Any,
    done: Callable[[], bool],
    deadline_s: float,
    on_tick: Callable[[], None] | None = None,
    tick_period_s: float = 0.5,
) -> bool:
    """Spin ``executor`` until ``done()`` or the monotonic ``deadline_s``; True when done."""
    next_tick = time.monotonic()
    while time.monotonic() < deadline_s:
        executor.spin_once(timeout_sec=0.05)
        if on_tick is not None and time.monotonic() >= next_tick:
            on_tick()
            next_tick = time.monotonic() + tick_period_s
        if done():
            return True
    return False


def replay_live(
    bag_path: str | Path,
    output_dir: str | Path,
    *,
    model: str | Path | None = None,
    providers: list[str] | None = None,
    rate: float = 1.0,
    topic: str = IMAGE_TOPIC,
    pixel_spacing_m: float | None = None,
    overwrite: bool = False,
    worst: int = 6,
    timeout_s: float | None = None,
    settle_s: float = 1.0,
    progress: bool = True,
    node_overrides: dict[str, Any] | None = None,
) -> ReplaySummary:
    """Play a bag over DDS into the segmentation node and record its outputs.

    One process, one ``MultiThreadedExecutor``: :class:`BagPlayerNode` publishes the
    bag's topics and ``/clock`` at ``rate`` times the recorded rate, the
    ``segmentation_node`` of ``config/graph.yaml`` runs with ``use_sim_time`` (so its
    staleness check uses bag time) and :class:`BagRecorderNode` writes every perception
    output and ``/diagnostics`` to ``output_dir/output_bag`` (MCAP) with receive stamps.

    Parameters
    ----------
    rate : float
        Playback speed factor (> 0; 2 = twice the recorded rate).
    timeout_s : float or None
        Give up after this wall time [s]; None = bag duration / rate + 60 s.
    settle_s : float
        Wall time to keep recording after the last message was played [s].
    node_overrides : dict or None
        Extra ``segmentation_node`` parameters (``{"model.providers": [...]}``).

    Other parameters as :func:`replay_offline`. Frame accounting: every frame the
    player published either has a ``labels`` output in the output bag or is counted
    under a drop reason (the node's own counters, else :data:`NOT_RECEIVED`).
    """
    if not (math.isfinite(rate) and rate > 0.0):
        raise ValueError(f"--rate {rate!r}; expected a playback factor > 0 (1 = recorded rate)")
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    from fluoro_perception.cli.run import node_cli_args, stop_graph
    from fluoro_perception.evaluation.report import RunInfo
    from fluoro_perception.model_registry import default_model_path
    from fluoro_perception.nodes.bag_player_node import BagPlayerNode
    from fluoro_perception.nodes.bag_recorder_node import BagRecorderNode
    from fluoro_perception.nodes.graph import load_graph

    model_path = Path(model).expanduser().resolve() if model is not None else default_model_path()
    if not model_path.is_file():
        raise FileNotFoundError(f"--model {model_path} not found; pass an exported .onnx file")
    spacing, spacing_source = resolve_pixel_spacing(bag_path, pixel_spacing_m)
    with open_bag(bag_path) as bag:
        if bag.topics.get(topic) != IMAGE_TYPE:
            listing = ", ".join(f"{t} ({k})" for t, k in sorted(bag.topics.items()))
            raise BagError(
                f"bag {bag_path} has no {IMAGE_TYPE} topic {topic}; pass --topic, topics are: "
                f"{listing or 'none'}"
            )
        frames_in_bag = bag.message_count(topic)
        duration_s = max(0.0, (bag.end_time_ns - bag.start_time_ns) * 1e-9)
    out, output_bag = prepare_output_dir(output_dir, overwrite)
    graph = load_graph()
    namespace = "/" + graph.namespace.strip("/")
    spec = graph.node("segmentation_node")
    overrides = {
        "use_sim_time": True,
        "model.path": str(model_path),
        "pixel_spacing_m": spacing,
        **(node_overrides or {}),
    }
    if providers:
        from fluoro_perception.cli.infer import provider_names

        overrides["model.providers"] = provider_names(list(providers))
    absolute_image_topic = f"{namespace}/{graph.image_topic}"
    cli_args = node_cli_args(
        graph,
        spec,
        spec.parameter_file_paths(),
        overrides,
        topic if topic != absolute_image_topic else None,
    )
    deadline_wall_s = timeout_s if timeout_s is not None else duration_s / rate + 60.0
    summary = ReplaySummary(
        mode="live",
        bag_path=str(bag_path),
        output_bag=str(output_bag),
        image_topic=topic,
        frames_in_bag=frames_in_bag,
        rate=float(rate),
        pixel_spacing_m=spacing,
        pixel_spacing_source=spacing_source,
    )

    context = rclpy.Context()
    rclpy.init(args=["fluoro-perception-replay"], context=context)
    nodes: list[Any] = []
    executor = None
    try:
        segmentation_class = spec.load_class()
        recorder = BagRecorderNode(
            output_bag,
            topic_types=recorded_topic_types(namespace),
            input_topic=topic,
            context=context,
            parameter_overrides=[rclpy.parameter.Parameter("use_sim_time", value=True)],
        )
        nodes.append(recorder)
        segmentation = segmentation_class(
            spec.name, namespace=graph.namespace, context=context, cli_args=cli_args
        )
        nodes.append(segmentation)
        if segmentation.configure_error:
            raise RuntimeError(
                f"segmentation_node did not configure: {segmentation.configure_error}"
            )
        player = BagPlayerNode(bag_path, rate=rate, context=context)
        nodes.append(player)
        executor = MultiThreadedExecutor(num_threads=4, context=context)
        for node in nodes:
            executor.add_node(node)
        start = time.monotonic()
        deadline = start + deadline_wall_s
        # discovery: start playing only when the node and the recorder listen
        matched = spin_until(
            executor,
            lambda: player.image_subscribers(topic) >= 2,
            min(deadline, start + 20.0),
        )
        if not matched:
            raise RuntimeError(
                f"the segmentation node and recorder did not subscribe to {topic} within 20 s "
                "(DDS discovery failed; check ROS_DOMAIN_ID / ROS_AUTOMATIC_DISCOVERY_RANGE)"
            )
        # matched on the player's side; give the subscribers' side a moment as well, so
        # the first frames are not lost to one-sided discovery
        spin_until(executor, lambda: False, time.monotonic() + 0.3)
        player.start()
        play_start = time.monotonic()

        def show() -> None:
            if progress:
                print(
                    f"\rreplay (live): {player.frames_published(topic)}/{frames_in_bag} played, "
                    f"{recorder.frames_recorded} recorded",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )

        finished = spin_until(executor, player.finished.is_set, deadline, show)
        # let the last frames through the pipeline: until every played frame is
        # accounted for, or settle_s without a new output
        settle_deadline = min(deadline, time.monotonic() + 30.0)

        def drained() -> bool:
            snapshot = segmentation.stats.snapshot(time.monotonic())
            accounted = recorder.frames_recorded + snapshot["frames_dropped"]
            quiet = time.monotonic() - recorder.last_receive_monotonic > settle_s
            return accounted >= player.frames_published(topic) or quiet

        spin_until(executor, drained, settle_deadline, show)
        # one more diagnostics message with the final counters
        segmentation.publish_diagnostics()
        spin_until(executor, lambda: False, time.monotonic() + 0.3)
        if progress:
            print(file=sys.stderr)
        summary.wall_s = time.monotonic() - play_start
        published = player.frames_published(topic)
        snapshot = segmentation.stats.snapshot(time.monotonic())
        node_provider = segmentation.diagnostics_values()[2]["provider"]
        summary.frames_read = published
        summary.skipped = dict(player.skipped)
        if not finished:
            summary.skipped["not played before the deadline"] = max(0, frames_in_bag - published)
    finally:
        stop_graph(executor, nodes, context)  # the recorder closes its bag here

    record = recorder.frame_records()
    summary.frames_processed = len(record)
    summary.topics_written = recorder.message_counts
    node_drops = {
        key.split(".", 1)[1]: int(count)
        for key, count in snapshot.items()
        if key.startswith("dropped.") and count
    }
    dropped = dict(node_drops)
    lost = published - int(snapshot["frames_received"])
    if lost > 0:
        dropped[NOT_RECEIVED] = lost
    unrecorded = int(snapshot["frames_processed"]) - summary.frames_processed
    if unrecorded > 0:
        dropped["processed but not recorded"] = unrecorded
    summary.frames_dropped = dropped
    end_to_end = {s: r.end_to_end_ms for s, r in record.items() if r.end_to_end_ms is not None}
    summary.latency_ms = summarize_values(list(end_to_end.values()))
    summary.clock_latency_ms = summarize_values(
        [r.clock_latency_ms / rate for r in record.values() if r.clock_latency_ms is not None]
    )
    summary.rate_hz = achieved_rate_hz([r.receive_monotonic_s for r in record.values()])
    with open_bag(bag_path) as bag:
        stamps = [image.stamp_ns for image in _safe_images(bag, topic)]
    summary.input_rate_hz = _input_rate_hz(stamps)
    # the report header names the model the node ran (read from the file)
    run_info = RunInfo.for_model_file(
        model_path,
        f"{node_provider or 'unknown'} (segmentation_node, live)",
        dataset_path=str(bag_path),
        dataset_frames=frames_in_bag,
    )
    paths, accuracy_summary, eval_skipped = evaluate_recorded(
        out,
        bag_path,
        output_bag,
        topic=topic,
        pixel_spacing_m=spacing,
        latencies_ms=end_to_end,
        run_info=run_info,
        namespace=namespace,
        worst=worst,
    )
    if paths:
        summary.record_evaluation(paths, accuracy_summary)
    write_summary(out, summary)
    return summary


def _safe_images(bag: BagReader, topic: str) -> Iterator[Any]:
    images = bag.iter_images(topic)
    while True:
        try:
            yield next(images)
        except (StopIteration, BagError):
            return


__all__ = [
    "DEFAULT_NAMESPACE",
    "FALLBACK_PIXEL_SPACING_M",
    "NOT_RECEIVED",
    "OUTPUT_BAG_DIR",
    "REPLAY_MODES",
    "SUMMARY_JSON",
    "SUMMARY_MD",
    "ReplaySummary",
    "evaluate_recorded",
    "iter_bag_frames",
    "perception_messages",
    "perception_topics",
    "pixel_spacing_from_markers",
    "recorded_topic_types",
    "replay_live",
    "replay_offline",
    "resolve_pixel_spacing",
    "results_from_output_bag",
    "truth_from_bag_frame",
    "write_rclpy_message",
    "write_summary",
]
