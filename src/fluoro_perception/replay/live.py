"""Live replay: bag player -> segmentation node -> recorder over real DDS, in one process.

The bag player node, the segmentation node (with ``use_sim_time``) and the recorder node
run on ONE ``MultiThreadedExecutor``; the bag is played at its recorded rate (or ``rate``
times it) and dropped frames, end-to-end latency and the achieved rate are reported.
rclpy and the nodes are imported when a live replay runs, not at module import.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fluoro_perception.bagio import IMAGE_TOPIC, IMAGE_TYPE, BagError, BagReader, open_bag
from fluoro_perception.evaluation.frame_errors import ERRORS_FILE, FrameErrorLog
from fluoro_perception.metrics import summarize_values
from fluoro_perception.replay.outputs import prepare_output_dir
from fluoro_perception.replay.recorded import evaluate_recorded
from fluoro_perception.replay.spacing import resolve_pixel_spacing
from fluoro_perception.replay.summary import (
    ReplaySummary,
    _input_rate_hz,
    achieved_rate_hz,
    write_summary,
)
from fluoro_perception.topics import recorded_topic_types

#: Drop reason of frames a player / simulator published that the node never received: its
#: best-effort input of depth 1 keeps only the newest sample, so a frame the executor did
#: not take in time is overwritten in the DDS reader queue (or, over a network, lost).
NOT_RECEIVED = "not received by the node (overwritten in its DDS input queue or lost)"
#: Drop reasons of the segmentation node that are failed frames (the others, such as
#: ``superseded`` or ``stale``, shed load on purpose) -> their errors.jsonl stage.
FAILED_DROP_STAGES = {"decode_error": "decode", "processing_error": "pipeline"}


def record_node_failures(
    errors: Any, drops: dict[str, int], last_drop: str | Mapping[str, Any]
) -> None:
    """One ``errors.jsonl`` record per failure kind the segmentation node counted.

    The node drops a frame it cannot decode or process and goes on; it keeps counts and
    the last drop's detail per reason, not the stamps, so the records are unnamed groups.
    ``last_drop`` is the node's stats snapshot (its ``last_drop.<reason>`` details) or
    the ``"reason: detail"`` text of the last drop alone.
    """
    for reason, stage in FAILED_DROP_STAGES.items():
        count = int(drops.get(reason, 0))
        if count <= 0:
            continue
        text = f"segmentation_node dropped {count} frame(s) ({reason})"
        if isinstance(last_drop, Mapping):
            detail = str(last_drop.get(f"last_drop.{reason}", ""))
        else:
            detail = last_drop.split(": ", 1)[1] if last_drop.startswith(f"{reason}: ") else ""
        if detail:
            text += f"; last: {detail}"
        errors.add(None, stage, text, count)


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
    # Over 80 lines by its signature and docstring (~40); the steps are the helpers below.
    if not (math.isfinite(rate) and rate > 0.0):
        raise ValueError(f"--rate {rate!r}; expected a playback factor > 0 (1 = recorded rate)")
    import rclpy

    from fluoro_perception.evaluation.report import RunInfo
    from fluoro_perception.model_registry import default_model_path
    from fluoro_perception.nodes.graph import load_graph

    model_path = Path(model).expanduser().resolve() if model is not None else default_model_path()
    if not model_path.is_file():
        raise FileNotFoundError(f"--model {model_path} not found; pass an exported .onnx file")
    spacing, spacing_source = resolve_pixel_spacing(bag_path, pixel_spacing_m)
    frames_in_bag, duration_s = _image_topic_facts(bag_path, topic)
    out, output_bag = prepare_output_dir(output_dir, overwrite)
    graph = load_graph()
    namespace = "/" + graph.namespace.strip("/")
    spec = graph.node("segmentation_node")
    cli_args = _segmentation_cli_args(
        graph, spec, topic, model_path, spacing, providers, node_overrides
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

    from fluoro_perception.nodes.dds_profile import apply_dds_profile

    apply_dds_profile()  # before the first participant (dds_profile)
    context = rclpy.Context()
    rclpy.init(args=["fluoro-perception-replay"], context=context)
    recorder, snapshot, published, node_provider = _run_graph(
        context,
        graph,
        spec,
        cli_args,
        bag_path=bag_path,
        output_bag=output_bag,
        topic=topic,
        rate=rate,
        deadline_wall_s=deadline_wall_s,
        settle_s=settle_s,
        progress=progress,
        summary=summary,
    )
    end_to_end = _account_frames(summary, recorder, snapshot, published, rate)
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
    with FrameErrorLog(out / ERRORS_FILE, echo=_echo) as errors:
        _record_live_failures(errors, summary, snapshot)
        paths, accuracy_summary, _ = evaluate_recorded(
            out,
            bag_path,
            output_bag,
            topic=topic,
            pixel_spacing_m=spacing,
            latencies_ms=end_to_end,
            run_info=run_info,
            namespace=namespace,
            worst=worst,
            errors=errors,
        )
    summary.record_errors(errors)
    if paths:
        summary.record_evaluation(paths, accuracy_summary)
    write_summary(out, summary)
    return summary


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _record_live_failures(errors: Any, summary: ReplaySummary, snapshot: Mapping[str, Any]) -> None:
    """``errors.jsonl`` records of a live run (unnamed groups: the node keeps no stamps).

    The frames the node could not decode or process (:func:`record_node_failures`) and
    the image messages of the bag the player did not publish (storage damage, deadline).
    """
    record_node_failures(errors, summary.frames_dropped, snapshot)
    unplayed = summary.frames_in_bag - summary.frames_read
    if unplayed > 0:
        reasons = "; ".join(summary.skipped) or "playback ended early"
        errors.add(None, "read", f"{unplayed} image(s) of the bag not played ({reasons})", unplayed)


def _image_topic_facts(bag_path: str | Path, topic: str) -> tuple[int, float]:
    """Frames on image ``topic`` and the bag's duration [s]; BagError if it is no image topic."""
    with open_bag(bag_path) as bag:
        if bag.topics.get(topic) != IMAGE_TYPE:
            listing = ", ".join(f"{t} ({k})" for t, k in sorted(bag.topics.items()))
            raise BagError(
                f"bag {bag_path} has no {IMAGE_TYPE} topic {topic}; pass --topic, topics are: "
                f"{listing or 'none'}"
            )
        frames_in_bag = bag.message_count(topic)
        duration_s = max(0.0, (bag.end_time_ns - bag.start_time_ns) * 1e-9)
    return frames_in_bag, duration_s


def _segmentation_cli_args(
    graph: Any,
    spec: Any,
    topic: str,
    model_path: Path,
    spacing: float,
    providers: list[str] | None,
    node_overrides: dict[str, Any] | None,
) -> list[str]:
    """ROS arguments of the segmentation node: graph parameters, sim time, model, spacing."""
    from fluoro_perception.cli.run import node_cli_args

    namespace = "/" + graph.namespace.strip("/")
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
    return node_cli_args(
        graph,
        spec,
        spec.parameter_file_paths(),
        overrides,
        topic if topic != absolute_image_topic else None,
    )


def _run_graph(
    context: Any,
    graph: Any,
    spec: Any,
    cli_args: list[str],
    *,
    bag_path: str | Path,
    output_bag: Path,
    topic: str,
    rate: float,
    deadline_wall_s: float,
    settle_s: float,
    progress: bool,
    summary: ReplaySummary,
) -> tuple[Any, dict[str, Any], int, str | None]:
    """Run recorder, segmentation node and player until the bag is played and drained.

    Nodes are created one by one so that a failure stops those already made. Sets
    ``summary.wall_s``, ``frames_read`` and ``skipped``; returns the recorder (its bag
    closed), the node's final counters, the frames played and the node's provider.
    """
    import rclpy

    from fluoro_perception.cli.run import stop_graph

    namespace = "/" + graph.namespace.strip("/")
    frames_in_bag = summary.frames_in_bag
    nodes: list[Any] = []
    executor = None
    try:
        # imported inside the try: ``context`` is initialised, so a failed import must
        # still shut it down
        from rclpy.executors import MultiThreadedExecutor

        from fluoro_perception.nodes.bag_player_node import BagPlayerNode
        from fluoro_perception.nodes.bag_recorder_node import BagRecorderNode

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
        finished, play_start = _play(
            executor,
            player,
            recorder,
            segmentation,
            topic=topic,
            frames_in_bag=frames_in_bag,
            deadline_wall_s=deadline_wall_s,
            settle_s=settle_s,
            progress=progress,
        )
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
    return recorder, snapshot, published, node_provider


def _play(
    executor: Any,
    player: Any,
    recorder: Any,
    segmentation: Any,
    *,
    topic: str,
    frames_in_bag: int,
    deadline_wall_s: float,
    settle_s: float,
    progress: bool,
) -> tuple[bool, float]:
    """Wait for discovery, play the bag and let the last frames through.

    Returns whether the player finished before the deadline and the monotonic time
    playback started [s].
    """
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
    return finished, play_start


def _account_frames(
    summary: ReplaySummary, recorder: Any, snapshot: dict[str, Any], published: int, rate: float
) -> dict[int, float]:
    """Frames processed / dropped, latency and rate of a live run; returns the end-to-end
    latency per stamp [ms]."""
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
    return end_to_end


def _safe_images(bag: BagReader, topic: str) -> Iterator[Any]:
    images = bag.iter_images(topic)
    while True:
        try:
            yield next(images)
        except (StopIteration, BagError):
            return
