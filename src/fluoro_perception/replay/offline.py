"""Offline replay: the pipeline on every frame of a bag, outputs written as the node publishes.

Frames are read with :mod:`fluoro_perception.bagio` and run through
:class:`~fluoro_perception.core.pipeline.PerceptionPipeline` one after the other
(deterministic, as fast as the CPU allows); every perception output is written to an
MCAP bag under the same topic names and types the ROS node publishes, stamped with the
input stamps. No DDS, no ``rclpy.init``.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluoro_perception.bagio import IMAGE_TOPIC, BagFrame, BagWriter, open_bag
from fluoro_perception.evaluation.frame_errors import (
    ERRORS_FILE,
    FrameError,
    FrameErrorLog,
    one_line,
)
from fluoro_perception.metrics import summarize_values
from fluoro_perception.replay.messages import perception_messages, write_rclpy_message
from fluoro_perception.replay.outputs import prepare_output_dir
from fluoro_perception.replay.spacing import resolve_pixel_spacing
from fluoro_perception.replay.summary import ReplaySummary, _input_rate_hz, write_summary
from fluoro_perception.replay.truth import (
    DAMAGE_DETAIL_PREFIX,
    UNREADABLE_AFTER_DAMAGE,
    iter_bag_frames,
    truth_from_bag_frame,
)
from fluoro_perception.topics import (
    DEFAULT_NAMESPACE,
    DIAGNOSTICS_TOPIC,
    DIAGNOSTICS_TYPE,
    perception_topics,
)

_NS_PER_S = 1_000_000_000
#: ``skipped`` reasons of the bag reader that lose no frame of their own: ground truth
#: whose image is missing (the image's loss is counted where it was lost, or the bag never
#: had it).
_NO_FRAME_REASONS = ("ground truth without image",)


def _echo(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def record_bag_skips(errors: FrameErrorLog, skipped: dict[str, int]) -> None:
    """One unnamed ``read`` record per reason the bag reader skipped messages for.

    The frames after a storage damage are one record whose reason carries the damage's
    one-line detail; reasons with a count of 0 (a bag damaged after its last frame) and
    those that lose no frame (:data:`_NO_FRAME_REASONS`) get none.
    """
    prefix = DAMAGE_DETAIL_PREFIX
    details = [reason[len(prefix) :] for reason in skipped if reason.startswith(prefix)]
    for reason, count in skipped.items():
        if count <= 0 or reason.startswith(prefix) or reason in _NO_FRAME_REASONS:
            continue
        text = f"{count} bag message(s) skipped: {reason}"
        if reason == UNREADABLE_AFTER_DAMAGE and details:
            text += f" ({'; '.join(details)})"
        errors.add(None, "read", text, count)


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


@dataclass
class _OfflineRun:
    """What an offline replay keeps from frame to frame, as the node would.

    The pipeline (tracking), the node's statistics (for ``/diagnostics``), the drops and
    the evaluation of the frames that carry ground truth.
    """

    engine: Any
    config: Any
    pipeline: Any
    stats: Any
    accumulator: Any
    worst_frames: Any
    topics: dict[str, tuple[str, str]]
    namespace: str
    spacing: float
    sequence_id: str
    latencies: list[float] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    last_stamp_ns: int | None = None
    next_diagnostics_ns: int | None = None

    def diagnostics(self, stamp_ns: int) -> Any:
        """The node's ``/diagnostics`` message at ``stamp_ns`` [ns]."""
        from fluoro_perception.nodes import conversions as conv

        values = {
            "state": "offline replay",
            "model": str(self.engine.model_path),
            "architecture": self.engine.metadata.architecture,
            "provider": self.engine.active_provider,
            **self.stats.snapshot(stamp_ns * 1e-9),
        }
        return conv.diagnostics_msg(
            name=f"{self.namespace.rstrip('/')}/segmentation_node",
            hardware_id=str(self.engine.model_path),
            level="ok",
            message="offline replay",
            values=values,
            stamp_ns=stamp_ns,
        )

    def process(
        self, frame: BagFrame, frame_index: int, writer: BagWriter, errors: FrameErrorLog
    ) -> bool:
        """Run one frame, write its outputs (and due diagnostics); False when dropped.

        A frame that fails anywhere (pipeline, messages, ground truth, scoring, writing)
        gets one ``errors`` record (named by its stamp [ns]), is counted as dropped
        (``processing_error``) and leaves no output and no score behind; the next frame
        goes on.
        """
        stamp_ns = frame.image.stamp_ns
        self.stamps.append(stamp_ns)
        self.stats.note_received(stamp_ns * 1e-9)
        if self.last_stamp_ns is not None and stamp_ns == self.last_stamp_ns:
            self.dropped["duplicate_stamp"] = self.dropped.get("duplicate_stamp", 0) + 1
            self.stats.note_drop("duplicate_stamp", f"stamp {stamp_ns} ns seen before")
            return False
        if self.last_stamp_ns is not None and stamp_ns < self.last_stamp_ns:
            self.pipeline.reset_tracking()  # a bag that loops or jumps back in time
        try:
            self._process(frame, frame_index, writer)
        except Exception as exc:  # one frame never ends the replay
            record = errors.add_exception(str(stamp_ns), exc)
            self.dropped["processing_error"] = self.dropped.get("processing_error", 0) + 1
            self.stats.note_drop("processing_error", record["reason"])
            return False
        return True

    def _process(self, frame: BagFrame, frame_index: int, writer: BagWriter) -> None:
        """:meth:`process` of a frame that is not a duplicate; raises what fails.

        Scoring fails as a ``metrics`` :class:`FrameError`, writing as a ``write`` one.
        Everything that can fail on a bad frame runs before the first write, so a failed
        frame leaves no output behind (a write that fails half-way may leave a part).
        """
        from fluoro_perception.evaluation.frame_metrics import compute_frame_metrics
        from fluoro_perception.nodes import conversions as conv

        image = frame.image
        stamp_ns = image.stamp_ns
        result = self.pipeline.process(image.image, stamp_ns, image.encoding)
        self.last_stamp_ns = stamp_ns  # the pipeline (its tracking) has seen this stamp
        header = conv.make_header(stamp_ns, image.frame_id)
        messages = perception_messages(result, image.image, image.encoding, header, self.config)
        try:
            truth = truth_from_bag_frame(frame, self.spacing, frame_index, self.sequence_id)
            metrics = None if truth is None else compute_frame_metrics(result, truth)
            if metrics is not None:
                self.worst_frames.offer(metrics, image.image, image.encoding, result, truth)
        except Exception as exc:
            raise FrameError("metrics", one_line(exc)) from exc
        latency_ms = float(result.timings_ms.get("total", math.nan))
        try:
            for key, message in messages:
                out_topic, msgtype = self.topics[key]
                write_rclpy_message(writer, out_topic, msgtype, message, stamp_ns)
            self.stats.note_processed(stamp_ns * 1e-9, latency_ms, dict(result.timings_ms))
            if self.next_diagnostics_ns is None or stamp_ns >= self.next_diagnostics_ns:
                diagnostics = self.diagnostics(stamp_ns)
                write_rclpy_message(
                    writer, DIAGNOSTICS_TOPIC, DIAGNOSTICS_TYPE, diagnostics, stamp_ns
                )
                period_ns = int(self.config.diagnostics_period_s * _NS_PER_S)
                self.next_diagnostics_ns = stamp_ns + period_ns
        except Exception as exc:
            raise FrameError("write", one_line(exc)) from exc
        self.latencies.append(latency_ms)
        if metrics is not None:
            self.accumulator.add(metrics)

    def write_final_diagnostics(self, writer: BagWriter) -> None:
        """The final state, as the node's last periodic diagnostics would carry it."""
        if self.last_stamp_ns is not None:
            final_stamp = self.last_stamp_ns + 1
            write_rclpy_message(
                writer,
                DIAGNOSTICS_TOPIC,
                DIAGNOSTICS_TYPE,
                self.diagnostics(final_stamp),
                final_stamp,
            )

    def write_evaluation(self, out: Path, bag_path: str | Path, summary: ReplaySummary) -> None:
        """Write the evaluation report of the frames with ground truth into ``out``."""
        from fluoro_perception.evaluation.report import RunInfo, write_report

        run_info = RunInfo.for_engine(
            self.engine, dataset_path=str(bag_path), dataset_frames=summary.frames_in_bag
        )
        skipped_frames = {**summary.skipped, **self.dropped}
        paths = write_report(
            out,
            self.accumulator,
            run_info,
            worst_frames=self.worst_frames.frames(),
            skipped=skipped_frames,
        )
        summary.record_evaluation(paths, self.accumulator.summary()["summary"])


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
    # Over 80 lines by its signature and docstring (~45); the per-frame work is _OfflineRun.
    from tqdm import tqdm

    from fluoro_perception.cli.infer import load_engine
    from fluoro_perception.core.engine import DEFAULT_PROVIDERS
    from fluoro_perception.core.pipeline import PerceptionPipeline
    from fluoro_perception.evaluation.frame_metrics import EvaluationAccumulator
    from fluoro_perception.evaluation.report import WorstFrames
    from fluoro_perception.nodes.segmentation_node import PerceptionStats

    spacing, spacing_source = resolve_pixel_spacing(bag_path, pixel_spacing_m)
    config = load_node_config({"pixel_spacing_m": spacing})
    engine = load_engine(None if model is None else Path(model), providers or DEFAULT_PROVIDERS)
    out, output_bag = prepare_output_dir(output_dir, overwrite)
    run = _OfflineRun(
        engine=engine,
        config=config,
        pipeline=PerceptionPipeline(engine, config.pipeline_config()),
        stats=PerceptionStats(window_s=math.inf, latency_samples=1_000_000),
        accumulator=EvaluationAccumulator(),
        worst_frames=WorstFrames(worst),
        topics=perception_topics(namespace),
        namespace=namespace,
        spacing=spacing,
        sequence_id=Path(bag_path).name or "bag",
    )
    summary = ReplaySummary(
        mode="offline",
        bag_path=str(bag_path),
        output_bag=str(output_bag),
        image_topic=topic,
        pixel_spacing_m=spacing,
        pixel_spacing_source=spacing_source,
    )
    started = time.perf_counter()
    with (
        open_bag(bag_path) as bag,
        BagWriter(output_bag, storage="mcap") as writer,
        FrameErrorLog(out / ERRORS_FILE, echo=_echo) as errors,
    ):
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
            if run.process(frame, summary.frames_read - 1, writer, errors):
                summary.frames_processed += 1
        run.write_final_diagnostics(writer)
        for reason, count in bag.skipped.items():
            summary.skipped[reason] = summary.skipped.get(reason, 0) + count
        record_bag_skips(errors, summary.skipped)
        summary.topics_written = writer.message_counts
    summary.record_errors(errors)
    summary.wall_s = time.perf_counter() - started
    summary.frames_dropped = run.dropped
    summary.latency_ms = summarize_values(run.latencies)
    summary.rate_hz = summary.frames_processed / summary.wall_s if summary.wall_s > 0 else 0.0
    summary.input_rate_hz = _input_rate_hz(run.stamps)
    if run.accumulator.num_frames:
        run.write_evaluation(out, bag_path, summary)
    engine.close()
    write_summary(out, summary)
    return summary
