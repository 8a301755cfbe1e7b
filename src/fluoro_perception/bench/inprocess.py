"""End-to-end latency in one process: image message in -> output messages built.

Per frame, timed in order (everything ``segmentation_node`` does for a frame, minus the
DDS transport that :mod:`fluoro_perception.bench.dds` measures):

``msg_decode``
    ``sensor_msgs/Image`` -> numpy (:func:`fluoro_perception.core.decode.decode_image_msg`);
``preprocess`` ... ``masks``
    the pipeline stages, from ``FrameResult.timings_ms``;
``build_messages``
    the output messages the node publishes (tip, tracked tip, tips, centerline, stent
    pose and outline, three mono8 masks, markers) with :mod:`fluoro_perception.nodes.conversions`;
``serialize``
    CDR serialization of those messages (``rclpy.serialization``), the part of
    ``publish`` that runs in the publishing process.

The last two need rclpy; without it they are left out and the result says so. The
overlay image is rendered on its own thread in the node and is not part of the latency.

Frames are rendered before timing starts and played forward then backward (ping-pong)
so the wire moves continuously however many frames are timed. Their content
(:data:`CONTENTS`):

``sim``
    the simulator's own frames (default :class:`~fluoro_perception.sim.SimConfig`);
``distractors``
    distractor-dense simulator frames: ``SimConfig(distractor_scale=4.0,
    contrast_probability=1.0)`` (4x the anatomy distractors, contrast in every run), the
    content that made the geometry slow on real angiograms;
``noise``
    pure uniform noise images (what a broken detector or cable delivers).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fluoro_perception.bench import CONTENTS
from fluoro_perception.bench.report import summarize_ms
from fluoro_perception.core.decode import decode_image_msg, encode_image
from fluoro_perception.core.engine import DEFAULT_PROVIDERS, InferenceEngine
from fluoro_perception.core.geometry import new_caps_hit
from fluoro_perception.core.pipeline import PerceptionPipeline
from fluoro_perception.core.types import FrameResult
from fluoro_perception.nodes.params import SegmentationNodeConfig

#: Pipeline stages reported from ``FrameResult.timings_ms`` (``total`` is left out).
PIPELINE_STAGES: tuple[str, ...] = (
    "preprocess",
    "inference",
    "decode",
    "geometry",
    "tracking",
    "masks",
)
FRAME_ID = "fluoro_detector"
_NS_PER_S = 1_000_000_000


def ping_pong_indices(count: int, distinct: int) -> list[int]:
    """Indices ``0, 1, ..., distinct-1, distinct-2, ..., 1, 0, 1, ...`` of length ``count``.

    Playing rendered frames back and forth keeps the motion continuous (the tracker sees
    no jump) however many frames are timed.

    Examples
    --------
    >>> ping_pong_indices(7, 3)
    [0, 1, 2, 1, 0, 1, 2]
    """
    if distinct < 1 or count < 0:
        raise ValueError(f"count={count}, distinct={distinct}; expected count >= 0, distinct >= 1")
    if distinct == 1:
        return [0] * count
    period = 2 * (distinct - 1)
    return [i % period if i % period < distinct else period - i % period for i in range(count)]


def render_frames(
    count: int, size: int, seed: int = 0, fps: float = 15.0, distractors: bool = False
) -> list[Any]:
    """``count`` consecutive mono8 simulator frames of ``size`` x ``size`` [px] (SimFrame
    list); ``distractors`` renders the distractor-dense configuration (module docstring)."""
    from fluoro_perception.sim import SequenceSimulator, SimConfig

    if count < 1:
        raise ValueError(f"count={count}; expected at least one frame to render")
    config = SimConfig(height=size, width=size, fps=fps, bit_depth=8)
    if distractors:
        config = replace(config, distractor_scale=4.0, contrast_probability=1.0)
    return SequenceSimulator(seed, config).frames(count)


def content_images(
    content: str, count: int, size: int, seed: int = 0, fps: float = 15.0
) -> list[np.ndarray]:
    """``count`` ``(size, size)`` uint8 frames of ``content`` (a :data:`CONTENTS` name)."""
    if content not in CONTENTS:
        raise ValueError(f"content {content!r}; expected one of {list(CONTENTS)}")
    if content == "noise":
        if count < 1:
            raise ValueError(f"count={count}; expected at least one frame to render")
        rng = np.random.default_rng(seed)
        return [rng.integers(0, 256, (size, size), dtype=np.uint8) for _ in range(count)]
    frames = render_frames(count, size, seed, fps, distractors=content == "distractors")
    return [frame.image for frame in frames]


def rclpy_available() -> tuple[bool, str]:
    """(True, "") when rclpy and the message packages import, else (False, the reason)."""
    try:
        import rclpy.serialization  # noqa: F401

        from fluoro_perception.nodes import conversions  # noqa: F401
    except ImportError as exc:  # the PyPI ROS wheels are optional for the pure core
        return False, f"rclpy not importable ({exc})"
    return True, ""


def build_output_messages(
    result: FrameResult, header: Any, config: SegmentationNodeConfig
) -> list[Any]:
    """The messages ``segmentation_node`` publishes for one fresh frame, in its order.

    Poses first (tip when confident, tracked tip, tips, centerline, stent pose, stent
    outline), then the three mono8 images and the markers. Needs rclpy.
    """
    from fluoro_perception.nodes import conversions as conv

    spacing = config.pixel_spacing_m
    messages: list[Any] = []
    primary = result.primary_wire
    if primary is not None and primary.confidence >= config.min_tip_confidence:
        messages.append(conv.tip_pose_msg(primary, spacing, header))
    if config.tracking_enabled and result.tracks:
        # the node publishes the track nearest the primary tip; any one costs the same
        messages.append(conv.track_odometry_msg(result.tracks[0], spacing, header))
    confident = [w for w in result.wires if w.confidence >= config.min_tip_confidence]
    messages.append(conv.tips_pose_array_msg(confident, spacing, header))
    messages.append(
        conv.centerline_path_msg(
            primary.centerline_px if primary is not None else None, spacing, header
        )
    )
    stent = result.stents[0] if result.stents else None
    if stent is not None:
        messages.append(conv.stent_pose_msg(stent, spacing, header))
    messages.append(conv.stent_outline_msg(stent, spacing, header))
    messages.append(conv.image_to_msg(result.guidewire_mask, "mono8", header))
    messages.append(conv.image_to_msg(result.stent_mask, "mono8", header))
    messages.append(conv.image_to_msg(result.labels, "mono8", header))
    if config.markers_enabled:
        messages.append(conv.markers_msg(result, spacing, header))
    return messages


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far [MiB] (``getrusage``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def process_cpu_s() -> float:
    """User + system CPU time of this process, all threads [s] (``os.times``)."""
    times = os.times()
    return times.user + times.system


def bench_inprocess(
    model_path: str | Path,
    *,
    providers: Sequence[str] = DEFAULT_PROVIDERS,
    frames: int = 300,
    warmup_frames: int = 10,
    size: int = 512,
    distinct_frames: int = 60,
    fps: float = 15.0,
    seed: int = 0,
    intra_op_threads: int = 0,
    fp16: bool = False,
    use_messages: bool = True,
    content: str = "sim",
) -> dict[str, Any]:
    """Time the whole per-frame path on simulator (or noise) frames.

    Parameters
    ----------
    model_path : str or Path
        Exported ONNX model.
    providers : sequence of str
        ORT providers in priority order (the engine takes the first available).
    frames : int
        Timed frames.
    warmup_frames : int
        Untimed frames run first (tracker initialised, caches warm).
    size : int
        Frame height and width [px] (mono8).
    distinct_frames : int
        Simulator frames rendered before timing (played ping-pong).
    fps : float
        Frame rate the header stamps advance by [Hz] (the tracker's time step).
    seed : int
        Simulator seed.
    intra_op_threads : int
        ORT intra-op threads (0 = ORT default).
    fp16 : bool
        TensorRT fp16 kernels.
    use_messages : bool
        Build and serialize the output messages when rclpy is importable.
    content : str
        Frame content, one of :data:`CONTENTS` (module docstring).

    Returns
    -------
    dict
        ``frames``, ``warmup_frames``, ``size_px``, ``provider``, ``messages_built``,
        ``messages_note``, ``latency_ms`` (summary over frames), ``stages_ms`` (stage ->
        summary), ``throughput_fps`` (frames / wall time), ``wall_s``, ``cpu_percent``
        (process CPU time / wall time, 100 = one core busy), ``peak_rss_mib`` (process peak
        so far), ``messages_per_frame``, ``frames_with_wire`` and ``implausible_wire_frames``
        (timed frames with a wire / whose wire segmentation was implausible), ``content``,
        ``geometry_caps_hit`` (items each geometry cost cap left out, summed over the timed
        frames) and ``geometry_caps_frames`` (timed frames in which each cap bit).
    """
    for name, value, low in (("frames", frames, 1), ("warmup_frames", warmup_frames, 0),
                             ("size", size, 16), ("distinct_frames", distinct_frames, 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r}; expected an int >= {low}")
    if not fps > 0:
        raise ValueError(f"fps={fps!r}; expected a frame rate > 0 [Hz]")
    have_rclpy, rclpy_reason = rclpy_available()
    build_messages = use_messages and have_rclpy
    if not use_messages:
        messages_note = "message building turned off: latency ends at the FrameResult"
    elif not have_rclpy:
        messages_note = f"{rclpy_reason}: latency ends at the FrameResult, no messages built"
    else:
        messages_note = "overlay rendering (own thread in the node) not included"

    images = content_images(content, distinct_frames, size, seed, fps)
    period_ns = round(_NS_PER_S / fps)
    node_config = SegmentationNodeConfig()
    if build_messages:
        from rclpy.serialization import serialize_message

        from fluoro_perception.nodes import conversions as conv

        # the input messages as the node receives them (built outside the timing)
        inputs = [
            conv.image_to_msg(image, "mono8", conv.make_header(0, FRAME_ID)) for image in images
        ]
    else:
        inputs = [encode_image(image, "mono8") for image in images]

    engine = InferenceEngine(
        model_path, providers=providers, intra_op_threads=intra_op_threads, fp16=fp16
    )
    pipeline = PerceptionPipeline(
        engine, (node_config or SegmentationNodeConfig()).pipeline_config()
    )
    stage_names = ["msg_decode", *PIPELINE_STAGES]
    if build_messages:
        stage_names += ["build_messages", "serialize"]
    stages: dict[str, list[float]] = {name: [] for name in stage_names}
    latencies_ms: list[float] = []
    messages_per_frame: list[int] = []
    frames_with_wire = 0
    caps_hit = new_caps_hit()
    caps_frames = new_caps_hit()
    order = ping_pong_indices(warmup_frames + frames, len(inputs))
    stamp0_ns = 1_000 * _NS_PER_S  # any positive time; only differences matter

    wall_start = cpu_start = 0.0
    implausible_before = 0
    for index, frame_index in enumerate(order):
        if index == warmup_frames:
            wall_start, cpu_start = time.perf_counter(), process_cpu_s()
            implausible_before = pipeline.implausible_wire_frames
        timed = index >= warmup_frames
        stamp_ns = stamp0_ns + index * period_ns
        message = inputs[frame_index]
        if build_messages:
            message.header = conv.make_header(stamp_ns, FRAME_ID)
        start = time.perf_counter()
        image = decode_image_msg(message)
        after_decode = time.perf_counter()
        result = pipeline.process(image, stamp_ns, "mono8")
        after_pipeline = time.perf_counter()
        outputs: list[Any] = []
        after_build = after_pipeline
        if build_messages:
            outputs = build_output_messages(result, message.header, node_config)
            after_build = time.perf_counter()
            for output in outputs:
                serialize_message(output)
        end = time.perf_counter()
        if not timed:
            continue
        latencies_ms.append((end - start) * 1e3)
        stages["msg_decode"].append((after_decode - start) * 1e3)
        for stage in PIPELINE_STAGES:
            stages[stage].append(float(result.timings_ms.get(stage, 0.0)))
        if build_messages:
            stages["build_messages"].append((after_build - after_pipeline) * 1e3)
            stages["serialize"].append((end - after_build) * 1e3)
        messages_per_frame.append(len(outputs))
        frames_with_wire += int(bool(result.wires))
        for name, left_out in result.geometry_caps_hit.items():
            caps_hit[name] += left_out
            caps_frames[name] += int(left_out > 0)
    wall_s = time.perf_counter() - wall_start
    cpu_s = process_cpu_s() - cpu_start
    provider = engine.active_provider
    engine.close()
    return {
        "frames": frames,
        "warmup_frames": warmup_frames,
        "size_px": size,
        "encoding": "mono8",
        "provider": provider,
        "intra_op_threads": intra_op_threads,
        "messages_built": build_messages,
        "messages_note": messages_note,
        "latency_ms": summarize_ms(latencies_ms),
        "stages_ms": {name: summarize_ms(values) for name, values in stages.items()},
        "throughput_fps": frames / wall_s,
        "wall_s": wall_s,
        "cpu_percent": 100.0 * cpu_s / wall_s,
        "peak_rss_mib": peak_rss_mib(),
        "messages_per_frame": float(np.mean(messages_per_frame)),
        "frames_with_wire": frames_with_wire,
        "implausible_wire_frames": pipeline.implausible_wire_frames - implausible_before,
        "content": content,
        "geometry_caps_hit": caps_hit,
        "geometry_caps_frames": caps_frames,
        "skipped": None,
    }
