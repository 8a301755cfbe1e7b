"""``fluoro-perception demo``: the whole graph on simulated frames, over real DDS, in one command.

Starts the simulator node and the segmentation node (with tracking) of
``config/graph.yaml`` plus the bag recorder in one process on a ``MultiThreadedExecutor``
(real DDS: other processes and RViz see the topics), publishes ``--frames`` frames at
``--fps``, shows a live one-line progress display (frames, processing rate, end-to-end
latency, current tip error against the simulator's ground truth) and writes under
``--output``:

* ``overlay.mp4`` (``mp4v``; ``overlay.avi`` MJPG when the mp4 codec is unavailable):
  the node's overlay images;
* ``contact_sheet.png``: evenly spaced overlay frames in a grid;
* ``output_bag/`` (MCAP): perception outputs, ``/diagnostics``, input frames and ground truth;
* ``report.md`` / ``metrics.json`` + figures: the evaluation report against ground truth;
* ``demo.md`` / ``demo.json``: frame accounting, latency and rate;
* ``errors.jsonl``: frames that failed (the node could not decode or process them, or
  their evaluation failed), one record per failure kind (``docs/results_format.md``).

Exit code 0 when every frame went through, 3 when some failed (the files are written all
the same), 1 when no frame was processed, 2 when the demo could not start.

It is what ``make demo`` runs. See ``docs/demo.md``.

Example::

    fluoro-perception demo --output out/demo --model models/my.onnx --frames 150 --fps 10
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fluoro_perception.cli.argtypes import positive_float, positive_int
from fluoro_perception.nodes.dds_profile import apply_dds_profile

VIDEO_FILE = "overlay.mp4"
VIDEO_FALLBACK_FILE = "overlay.avi"
CONTACT_SHEET_FILE = "contact_sheet.png"
#: Frames shown in the contact sheet and its number of columns.
CONTACT_SHEET_FRAMES = 12
CONTACT_SHEET_COLUMNS = 4
#: Default frame size (H, W) [px] and rate [Hz]. The simulator, the node, its overlay
#: thread and the recorder share one process; on a 2-core CPU 512 x 512 at 15 fps costs
#: more than the cores give (frames are then dropped, and counted; ``--fps 15`` shows it).
#: The shipped model was trained on 512 x 512 simulator frames; at 256 x 256 the simulated
#: wires are half as many pixels wide, the letterbox doubles them back with blur, and the
#: default model found no wire in the default sequence (guidewire F1 0.000 vs 0.727 at
#: 512 x 512, 2026-11-21). 10 Hz keeps the one-process simulator + node + recorder within
#: 2 cores at that size (144-149 of 150 frames processed vs 140 of 150 at 15 Hz).
DEFAULT_SIZE_PX = (512, 512)
DEFAULT_FPS_HZ = 10.0
#: Width of one contact-sheet tile [px].
CONTACT_SHEET_TILE_PX = 256


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``demo`` on the ``fluoro-perception`` dispatcher."""
    from fluoro_perception.cli.infer import add_model_arguments

    parser = subparsers.add_parser(
        "demo",
        help="simulator -> segmentation over DDS; writes a video, contact sheet, bag and report",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--output", type=Path, default=Path("out/demo"), metavar="DIR", help="output folder"
    )
    parser.add_argument("--frames", type=positive_int, default=150, help="frames to simulate")
    parser.add_argument(
        "--fps", type=positive_float, default=DEFAULT_FPS_HZ, help="frame rate [Hz] (default: 10)"
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--size",
        type=positive_int,
        nargs=2,
        default=DEFAULT_SIZE_PX,
        metavar=("H", "W"),
        help="frame size [px] (default: 512 512, the size the shipped model was trained at)",
    )
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    parser.add_argument(
        "--scenario",
        default="",
        help="simulator scenario (mono, dual, stiff, stent, contrast, collimation); "
        "default: drawn from the seed",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        help="give up after this many seconds [s] (default: 2 x frames / fps + 60)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.set_defaults(func=run)
    return parser


# ----------------------------------------------------------------------------- media


def overlay_frames(bag_path: Path, topic: str) -> list[tuple[int, np.ndarray]]:
    """``(stamp_ns, RGB image)`` of every overlay message in the bag, in stamp order."""
    from fluoro_perception.bagio import IMAGE_TYPE, open_bag

    frames = []
    with open_bag(bag_path) as bag:
        if bag.topics.get(topic) != IMAGE_TYPE:
            return []
        for image in bag.iter_images(topic):
            rgb = image.image if image.encoding == "rgb8" else image.image[..., ::-1]
            frames.append((image.stamp_ns, np.ascontiguousarray(rgb)))
    frames.sort(key=lambda item: item[0])
    return frames


def write_video(frames: list[np.ndarray], output_dir: Path, fps: float) -> tuple[Path, str]:
    """Write RGB frames as ``overlay.mp4`` (mp4v), else ``overlay.avi`` (MJPG).

    Returns the path and a note naming the codec used. Raises ``RuntimeError`` when
    neither codec can be opened or nothing was written.
    """
    if not frames:
        raise RuntimeError("no overlay frame was recorded; the video cannot be written")
    height, width = frames[0].shape[:2]
    for name, fourcc, note in (
        (VIDEO_FILE, "mp4v", "mp4 (mp4v)"),
        (VIDEO_FALLBACK_FILE, "MJPG", "avi (MJPG; the mp4v codec is unavailable here)"),
    ):
        path = output_dir / name
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
        if not writer.isOpened():
            writer.release()
            continue
        for rgb in frames:
            if rgb.shape[:2] != (height, width):
                rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        writer.release()
        if path.is_file() and path.stat().st_size > 0:
            return path, note
    raise RuntimeError("cv2.VideoWriter opened neither mp4v nor MJPG; no video written")


def contact_sheet(
    frames: list[tuple[int, np.ndarray]],
    count: int = CONTACT_SHEET_FRAMES,
    columns: int = CONTACT_SHEET_COLUMNS,
    tile_width_px: int = CONTACT_SHEET_TILE_PX,
) -> np.ndarray:
    """A grid of ``count`` evenly spaced frames, each labelled with its index and time.

    Parameters
    ----------
    frames : list of (stamp_ns, RGB image)
        In time order.
    count, columns : int
        Tiles and columns of the grid.
    tile_width_px : int
        Width of one tile [px] (height keeps the aspect ratio).

    Returns
    -------
    np.ndarray
        ``(rows * tile_h, columns * tile_w, 3)`` uint8 RGB; unused tiles stay black.
    """
    if not frames:
        raise ValueError("frames is empty; expected at least one overlay frame")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int))
    first_stamp = frames[0][0]
    height, width = frames[0][1].shape[:2]
    tile_h = max(1, round(tile_width_px * height / width))
    columns = min(columns, len(picks))
    rows = math.ceil(len(picks) / columns)
    sheet = np.zeros((rows * tile_h, columns * tile_width_px, 3), dtype=np.uint8)
    for slot, index in enumerate(picks):
        stamp, rgb = frames[int(index)]
        tile = cv2.resize(rgb, (tile_width_px, tile_h), interpolation=cv2.INTER_AREA)
        label = f"#{int(index)}  t={(stamp - first_stamp) * 1e-9:.2f} s"
        # bottom-left on a dark band: the overlay already writes its own text at the top
        cv2.rectangle(tile, (0, tile_h - 22), (tile_width_px - 1, tile_h - 1), (0, 0, 0), -1)
        cv2.putText(tile, label, (6, tile_h - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        row, column = divmod(slot, columns)
        sheet[
            row * tile_h : (row + 1) * tile_h, column * tile_width_px : (column + 1) * tile_width_px
        ] = tile
    return sheet


# ----------------------------------------------------------------------------- run


def _progress_line(
    published: int, total: int, processed: int, rate_hz: float, latency_ms: float | None,
    tip_error_px: float | None, tip_error_mm: float | None,
) -> str:  # fmt: skip
    latency = "n/a" if latency_ms is None else f"{latency_ms:5.1f} ms"
    tip = "n/a" if tip_error_px is None else f"{tip_error_px:5.1f} px ({tip_error_mm:.2f} mm)"
    return (
        f"demo: frame {published:4d}/{total} published, {processed:4d} processed, "
        f"{rate_hz:5.1f} fps, latency {latency}, tip error {tip}"
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when frames were processed and every file was written, 3 when some
    frames failed (``errors.jsonl``), 1 when none was processed."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    from fluoro_perception.cli.infer import provider_names
    from fluoro_perception.cli.run import node_cli_args, stop_graph
    from fluoro_perception.evaluation.frame_errors import ERRORS_FILE, FrameErrorLog
    from fluoro_perception.evaluation.report import RunInfo
    from fluoro_perception.model_registry import default_model_path
    from fluoro_perception.nodes.bag_recorder_node import BagRecorderNode
    from fluoro_perception.nodes.graph import load_graph
    from fluoro_perception.nodes.params import SimNodeConfig
    from fluoro_perception.nodes.sim_node import GROUND_TRUTH_TOPICS, sim_config_for
    from fluoro_perception.replay import (
        NOT_RECEIVED,
        ReplaySummary,
        achieved_rate_hz,
        evaluate_recorded,
        perception_topics,
        prepare_output_dir,
        record_node_failures,
        recorded_topic_types,
        write_summary,
    )
    from fluoro_perception.sim import SequenceSimulator

    model_path = (
        Path(args.model).expanduser().resolve() if args.model is not None else default_model_path()
    )
    if not model_path.is_file():
        raise FileNotFoundError(f"--model {model_path} not found; pass an exported .onnx file")
    graph = load_graph()
    namespace = "/" + graph.namespace.strip("/")
    segmentation_spec = graph.node("segmentation_node")
    sim_spec = graph.node("fluoro_sim_node")
    sim_parameters: dict[str, Any] = {
        **sim_spec.parameters,
        "fps": float(args.fps),
        "frames": int(args.frames),
        "seed": int(args.seed),
        "scenario": args.scenario,
    }
    sim_parameters["height"], sim_parameters["width"] = args.size
    sim_config = SimNodeConfig(**sim_parameters)  # validates (one-line ValueError)
    # the simulator draws the pixel spacing from the seed; the node must convert to metres
    # with the same spacing, and the evaluation needs it to turn metres back into pixels
    spacing = SequenceSimulator(sim_config.seed, sim_config_for(sim_config)).pixel_spacing_m
    segmentation_overrides: dict[str, Any] = {
        "model.path": str(model_path),
        "pixel_spacing_m": float(spacing),
        "model.providers": provider_names(list(args.providers)),
    }
    out, output_bag = prepare_output_dir(args.output, overwrite=True)
    image_topic = f"{namespace}/{graph.image_topic}"
    truth_topics = {
        f"{namespace}/{relative}": f"{msg_class.__module__.split('.')[0]}/msg/{msg_class.__name__}"
        for relative, msg_class in GROUND_TRUTH_TOPICS.values()
    }
    topic_types = {
        **recorded_topic_types(namespace),
        **truth_topics,
        image_topic: "sensor_msgs/msg/Image",
    }
    truth_tip_topic = f"{namespace}/ground_truth/guidewire/tip"
    timeout_s = args.timeout or 2.0 * args.frames / args.fps + 60.0

    apply_dds_profile()  # before the first participant (dds_profile)
    context = rclpy.Context()
    rclpy.init(args=["fluoro-perception-demo"], context=context)
    nodes: list[Any] = []
    executor = None
    sim = None
    try:
        recorder = BagRecorderNode(
            output_bag,
            topic_types=topic_types,
            input_topic=image_topic,
            truth_tip_topic=truth_tip_topic,
            context=context,
        )
        nodes.append(recorder)
        segmentation = segmentation_spec.load_class()(
            segmentation_spec.name,
            namespace=graph.namespace,
            context=context,
            cli_args=node_cli_args(
                graph,
                segmentation_spec,
                segmentation_spec.parameter_file_paths(),
                segmentation_overrides,
                None,
            ),
        )
        nodes.append(segmentation)
        if segmentation.configure_error:
            raise RuntimeError(
                f"segmentation_node did not configure: {segmentation.configure_error}"
            )
        executor = MultiThreadedExecutor(num_threads=4, context=context)
        for node in nodes:
            executor.add_node(node)
        # the simulator's timer only runs once it is on the executor: add it when both
        # listeners are matched, so that no frame is published into the void
        sim = sim_spec.load_class()(
            sim_spec.name,
            namespace=graph.namespace,
            context=context,
            cli_args=node_cli_args(graph, sim_spec, [], sim_parameters, None),
        )
        nodes.append(sim)
        start = time.monotonic()
        deadline = start + timeout_s
        while sim.count_subscribers(image_topic) < 2:
            executor.spin_once(timeout_sec=0.05)
            if time.monotonic() > start + 20.0:
                raise RuntimeError(
                    f"segmentation_node and recorder did not subscribe to {image_topic} within "
                    "20 s (DDS discovery failed; check ROS_DOMAIN_ID)"
                )
        # matched on the simulator's side; a moment for the subscribers' side too
        settle_end = time.monotonic() + 0.3
        while time.monotonic() < settle_end:
            executor.spin_once(timeout_sec=0.05)
        executor.add_node(sim)
        run_start = time.monotonic()
        next_print = run_start
        interactive = not args.quiet

        def show(final: bool = False) -> None:
            snapshot = segmentation.stats.snapshot(time.monotonic())
            error_m = recorder.latest_tip_error_m()
            line = _progress_line(
                sim.published_frames,
                args.frames,
                int(snapshot["frames_processed"]),
                float(snapshot["processing_rate_hz"]),
                recorder.latest_latency_ms(),
                None if error_m is None else error_m / spacing,
                None if error_m is None else error_m * 1e3,
            )
            print("\r" + line, end="\n" if final else "", file=sys.stderr, flush=True)

        last_activity = time.monotonic()
        last_counts = (-1, -1)
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            now = time.monotonic()
            if interactive and now >= next_print:
                show()
                next_print = now + 0.25
            snapshot = segmentation.stats.snapshot(now)
            counts = (recorder.frames_recorded, int(snapshot["frames_dropped"]))
            if counts != last_counts:
                last_counts, last_activity = counts, now
            if sim.finished.is_set():
                accounted = counts[0] + counts[1]
                if accounted >= sim.published_frames or now - last_activity > 1.5:
                    break
        segmentation.publish_diagnostics()
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        if interactive:
            show(final=True)
        snapshot = segmentation.stats.snapshot(time.monotonic())
        provider = segmentation.diagnostics_values()[2]["provider"]
        published = sim.published_frames
        finished = sim.finished.is_set()
        wall_s = time.monotonic() - run_start
    finally:
        stop_graph(executor, nodes, context)

    records = recorder.frame_records()
    end_to_end = {s: r.end_to_end_ms for s, r in records.items() if r.end_to_end_ms is not None}
    from fluoro_perception.metrics import summarize_values

    summary = ReplaySummary(
        mode="demo",
        bag_path=f"simulator (seed {sim_config.seed}, {sim_config.width}x{sim_config.height}, "
        f"{sim_config.encoding})",
        output_bag=str(output_bag),
        image_topic=image_topic,
        frames_in_bag=int(args.frames),
        frames_read=published,
        frames_processed=len(records),
        latency_ms=summarize_values(list(end_to_end.values())),
        rate_hz=achieved_rate_hz([r.receive_monotonic_s for r in records.values()]),
        input_rate_hz=float(args.fps),
        wall_s=wall_s,
        pixel_spacing_m=float(spacing),
        pixel_spacing_source="simulator (same seed and size as the simulator node)",
        topics_written=recorder.message_counts,
    )
    drops = {
        key.split(".", 1)[1]: int(count)
        for key, count in snapshot.items()
        if key.startswith("dropped.") and count
    }
    lost = published - int(snapshot["frames_received"])
    if lost > 0:
        drops[NOT_RECEIVED] = lost
    summary.frames_dropped = drops
    if not finished:
        summary.skipped["not simulated before the timeout"] = int(args.frames) - published

    run_info = RunInfo.for_model_file(
        model_path,
        f"{provider or 'unknown'} (segmentation_node, live)",
        dataset_path=summary.bag_path,
        dataset_frames=int(args.frames),
    )
    with FrameErrorLog(out / ERRORS_FILE, echo=lambda line: print(line, file=sys.stderr)) as errors:
        record_node_failures(errors, drops, snapshot)
        try:
            paths, accuracy, _ = evaluate_recorded(
                out,
                output_bag,
                output_bag,
                topic=image_topic,
                pixel_spacing_m=float(spacing),
                latencies_ms=end_to_end,
                run_info=run_info,
                namespace=namespace,
                errors=errors,  # a frame whose scoring fails gets its own record
            )
        except Exception as exc:  # the video, sheet and accounting are still written
            reason = f"evaluation of the recorded frames stopped: {type(exc).__name__}: {exc}"
            errors.add(None, "metrics", reason, max(1, len(records)))
            paths, accuracy = {}, {}
    summary.record_errors(errors)
    if paths:
        summary.record_evaluation(paths, accuracy)

    overlay_topic = perception_topics(namespace)["overlay"][0]
    overlays = overlay_frames(output_bag, overlay_topic)
    video_path, codec_note = write_video([rgb for _, rgb in overlays], out, args.fps)
    sheet_path = out / CONTACT_SHEET_FILE
    sheet = contact_sheet(overlays)
    if not cv2.imwrite(str(sheet_path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {sheet_path}; check that {out} is writable")
    json_path, md_path = write_summary(out, summary, stem="demo")

    print(summary.one_line().replace("replay (demo)", "demo"))
    print(f"overlay video ({codec_note}, {len(overlays)} frames): {video_path}")
    print(f"contact sheet: {sheet_path}")
    print(f"output bag: {output_bag}")
    if summary.report:
        print(f"evaluation report: {summary.report['report']}")
    print(f"frame accounting and timing: {md_path} ({json_path.name})")
    print(f"failed frames: {errors.summary()}")
    return errors.exit_code() if summary.frames_processed > 0 else 1
