"""``fluoro-perception soak``: long runs and overload of segmentation_node over real DDS.

Three processes, as ``fluoro-perception bench`` runs them (:mod:`fluoro_perception.bench.dds`):
a publisher of simulator frames -> ``segmentation_node`` (its real ``main``) -> a
subscriber that records every output stamp and the node's ``/diagnostics``. While the
frames flow, the node's resident memory (``VmRSS`` from ``/proc``) is sampled.

* nominal (default): ``--frames`` frames at ``--rate`` Hz. Reports RSS growth after the
  warm-up (target <= 20 MB), exceptions in the node (tracebacks in its log,
  ``processing_error`` drops, a node that died) and dropped frames (published - received
  on ``perception/guidewire/tips``, target 0), plus latency percentiles.
* ``--overload``: first a short calibration at a rate far above what the node can do
  measures its capacity (outputs per second), then frames arrive at twice that capacity
  for ``--overload-s`` seconds (default 60). Reports latency (bounded: the node keeps
  only the newest frame), drops counted by the node (``superseded``) and RSS growth.

Without ``--model`` the shipped default model is used; when none is shipped a one-layer
grey-level ONNX model is written to a temporary folder (the figures are then the node,
pipeline and DDS overhead, not a network's).

Examples::

    fluoro-perception soak --frames 20000 --rate 15 --size 256
    fluoro-perception soak --overload --overload-s 60 --size 256 --json overload.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fluoro_perception.bench.dds import (
    READY_LINE,
    RESULT_PREFIX,
    Processes,
    counter_deltas,
    isolated_dds_env,
    log_tail,
    match_run,
    read_records,
)
from fluoro_perception.bench.report import summarize_ms

#: Targets of a soak run (issue 7): RSS growth after warm-up, exceptions, drops.
TARGET_RSS_GROWTH_MB = 20.0
#: Log fragments that mean an exception escaped somewhere in the node process.
EXCEPTION_MARKERS = ("Traceback (most recent call last)", "processing_error")
_KIB_PER_MB = 1024.0


def rss_kib(pid: int) -> int | None:
    """Resident set size of a process [KiB] from ``/proc/<pid>/status`` (None if unreadable)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


class RssSampler:
    """Samples the RSS of one process every ``period_s`` on a thread.

    Attributes
    ----------
    samples : list of (float, int)
        ``(time.monotonic() [s], RSS [KiB])`` pairs in time order.
    """

    def __init__(self, pid: int, period_s: float = 0.5) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s={period_s}; expected > 0 [s]")
        self.pid = pid
        self.period_s = period_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="soak_rss", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            value = rss_kib(self.pid)
            if value is not None:
                self.samples.append((time.monotonic(), value))
            self._stop.wait(self.period_s)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def rss_growth_mb(
    samples: list[tuple[float, int]], after_s: float, until_s: float | None = None
) -> dict[str, float] | None:
    """RSS figures of the samples taken at or after ``after_s`` (the end of the warm-up).

    Parameters
    ----------
    samples : list of (float, int)
        ``(monotonic time [s], RSS [KiB])`` in time order.
    after_s : float
        Monotonic time at which the warm-up ended [s].
    until_s : float or None
        Ignore samples after this time [s] (e.g. the node's shutdown).

    Returns
    -------
    dict or None
        ``baseline_mb`` (first sample after the warm-up), ``final_mb``, ``peak_mb``,
        ``growth_mb`` (final - baseline), ``peak_growth_mb`` (peak - baseline) [MB], and
        ``samples``; None with fewer than two samples in the window.
    """
    window = [kib for t, kib in samples if t >= after_s and (until_s is None or t <= until_s)]
    if len(window) < 2:
        return None
    baseline, final, peak = window[0], window[-1], max(window)
    return {
        "baseline_mb": baseline / _KIB_PER_MB,
        "final_mb": final / _KIB_PER_MB,
        "peak_mb": peak / _KIB_PER_MB,
        "growth_mb": (final - baseline) / _KIB_PER_MB,
        "peak_growth_mb": (peak - baseline) / _KIB_PER_MB,
        "samples": len(window),
    }


def worker_ms(records: list[dict[str, Any]]) -> float | None:
    """Median worker time per frame [ms] (pipeline total + publish) from the last diagnostics.

    None when no diagnostics message carried both stage medians.
    """
    for record in reversed(records):
        if record.get("t") != "diag":
            continue
        values = record["values"]
        try:
            return float(values["stage_p50_ms.total"]) + float(values["stage_p50_ms.publish"])
        except (KeyError, ValueError):
            continue
    return None


def count_exceptions(log_text: str) -> int:
    """Number of exception markers (tracebacks, ``processing_error`` drops) in a node log."""
    return sum(log_text.count(marker) for marker in EXCEPTION_MARKERS)


def write_grey_level_model(path: Path, size: int) -> Path:
    """Write a one-layer ONNX model (1x1 conv on the grey level) with its metadata.

    Used when no model is given and none is shipped: dark pixels (grey < 0.25) become
    guidewire, mid grey (< 0.6) stent, the rest background, so the node's geometry and
    tracking stages have real work on simulator frames.

    Parameters
    ----------
    path : Path
        Output ``.onnx`` file.
    size : int
        Model input height and width [px].
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from fluoro_perception.core.model_metadata import METADATA_KEY, ModelMetadata, PreprocessSpec

    # logits = w * grey + b: background 40 (x - 0.6), guidewire 40 (0.25 - x), stent 0
    weight = np.array([40.0, -40.0, 0.0], np.float32).reshape(3, 1, 1, 1)
    bias = np.array([-24.0, 10.0, 0.0], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w", "b"], ["logits"])],
        "soak_grey_level",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3, size, size])],
        initializer=[numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    metadata = ModelMetadata(
        architecture="soak_grey_level",
        classes=("background", "guidewire", "stent"),
        heads=("logits",),
        stride=16,
        preprocessing=PreprocessSpec(
            input_size=(size, size), crop_to_field=False, normalization="fixed", mean=0.0, std=1.0
        ),
    )
    helper.set_model_props(model, {METADATA_KEY: json.dumps(asdict(metadata))})
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _wait_for_graph(
    processes: Processes, ready_path: Path, node_log: Path, timeout_s: float
) -> None:
    """Wait until the publisher is up and the subscriber has discovered the node's outputs."""
    deadline = time.monotonic() + timeout_s
    processes.publisher_line(READY_LINE, timeout_s)
    while not ready_path.exists():
        processes.check_alive()
        if "configure failed" in node_log.read_text(errors="replace"):
            raise RuntimeError(f"soak: segmentation_node did not start:\n{log_tail(node_log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"soak: the node's outputs were not discovered in {timeout_s:.0f} s; "
                f"node log:\n{log_tail(node_log)}"
            )
        time.sleep(0.1)


def soak(
    model_path: str | Path,
    *,
    frames: int = 20_000,
    rate_hz: float = 15.0,
    size: int = 256,
    warmup_frames: int | None = None,
    overload: bool = False,
    overload_s: float = 60.0,
    calibration_s: float = 5.0,
    calibration_rate_hz: float = 200.0,
    node_params: dict[str, str] | None = None,
    rss_period_s: float = 0.5,
    drain_s: float = 1.5,
    startup_timeout_s: float = 120.0,
    publisher_qos: str = "sensor_data",
    publisher_depth: int = 1,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Push frames through ``segmentation_node`` over DDS and measure what happens.

    Parameters
    ----------
    model_path : str or Path
        ONNX model the node loads.
    frames : int
        Nominal mode: frames to publish (> 0).
    rate_hz : float
        Nominal mode: publishing rate [Hz], in (0, 500].
    size : int
        Frame height and width [px] (mono8 simulator frames), >= 16.
    warmup_frames : int or None
        Frames after which the RSS baseline is taken; default ``min(500, frames // 10)``
        (nominal) or ``2 * capacity`` frames, i.e. one second (overload).
    overload : bool
        Run the overload mode instead of the nominal one.
    overload_s : float
        Overload mode: seconds at twice the measured capacity [s].
    calibration_s, calibration_rate_hz : float
        Overload mode: duration [s] and rate [Hz] of the capacity measurement.
    node_params : dict of str to str or None
        Extra ``-p name:=value`` parameters of the node (e.g. ``{"max_age_s": "1.0"}``).
    rss_period_s : float
        RSS sampling period [s].
    drain_s : float
        Wait after the last frame before counting what came back [s].
    startup_timeout_s : float
        Time allowed for model load and discovery [s].
    publisher_qos, publisher_depth : str, int
        QoS (``sensor_data`` as a camera driver, or ``reliable``) and history depth of
        the frame publisher. ``reliable`` with a deep history on both ends (node
        ``qos.input: reliable``, ``qos.input_depth``) delivers every frame to the node,
        so each one is either answered or counted by the node as dropped.
    log : callable or None
        Progress lines (e.g. ``print``).

    Returns
    -------
    dict
        ``mode``, ``rate_hz`` (the rate of the measured run), ``published``,
        ``received``, ``dropped`` (published - received on the tips topic),
        ``last_answered`` (the last published frame came back on tips: the newest frame
        is never superseded), ``throughput_hz`` (frames answered per second of the run),
        ``latency_ms`` (tips; ``summarize_ms`` dict or None), ``node_counters``
        (diagnostics deltas over the run), ``rss`` (:func:`rss_growth_mb` or None),
        ``exceptions`` (markers in the node log), ``node_alive`` (the node process was
        still running at the end), ``capacity_hz`` (overload mode: 1000 / the node's median
        worker time per frame [ms], or the calibration output rate if higher),
        ``overload_factor`` (achieved publishing rate / capacity), ``worker_ms`` and
        ``duration_s``.

    Raises
    ------
    ValueError
        A parameter out of range (one line naming it).
    RuntimeError
        A process died or did not come up (with its log tail).
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or frames <= 0:
        raise ValueError(f"frames={frames!r}; expected an int > 0")
    if not 0 < float(rate_hz) <= 500.0:
        raise ValueError(f"rate_hz={rate_hz}; expected a rate in (0, 500] Hz")
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size={size!r}; expected an int >= 16 [px]")
    if overload and overload_s <= 0:
        raise ValueError(f"overload_s={overload_s}; expected > 0 [s]")
    if publisher_qos not in ("sensor_data", "reliable"):
        raise ValueError(f"publisher_qos={publisher_qos!r}; expected 'sensor_data' or 'reliable'")
    if (
        isinstance(publisher_depth, bool)
        or not isinstance(publisher_depth, int)
        or publisher_depth < 1
    ):
        raise ValueError(f"publisher_depth={publisher_depth!r}; expected an int >= 1")
    say = log or (lambda _line: None)
    model_path = Path(model_path).resolve()
    if not model_path.is_file():
        raise FileNotFoundError(f"model {model_path} does not exist; pass --model FILE.onnx")
    env = isolated_dds_env()
    domain_id = int(env["ROS_DOMAIN_ID"])
    module = "fluoro_perception.bench.dds"
    node_arguments = ["-p", f"model.path:={model_path}", "-p",
                      "model.providers:=['CPUExecutionProvider']"]  # fmt: skip
    for name, value in (node_params or {}).items():
        node_arguments += ["-p", f"{name}:={value}"]
    with tempfile.TemporaryDirectory(prefix="fluoro_soak_") as temporary:
        workdir = Path(temporary)
        records_path, ready_path, stop_path = (
            workdir / "records.jsonl",
            workdir / "subscriber.ready",
            workdir / "subscriber.stop",
        )
        node_log = workdir / "segmentation_node.log"
        processes = Processes(workdir, env)
        sampler: RssSampler | None = None
        try:
            processes.start(
                "subscriber",
                [sys.executable, "-m", module, "subscriber", "--records", str(records_path),
                 "--ready", str(ready_path), "--stop", str(stop_path)],
            )  # fmt: skip
            node = processes.start(
                "segmentation_node",
                [sys.executable, "-m", "fluoro_perception.nodes.segmentation_node",
                 "--ros-args", *node_arguments],
            )  # fmt: skip
            processes.start_publisher(
                [sys.executable, "-m", module, "publisher", "--size", str(size),
                 "--qos", publisher_qos, "--depth", str(publisher_depth)]
            )  # fmt: skip
            say(f"soak: ROS_DOMAIN_ID {domain_id}; waiting for the node to load {model_path.name}")
            _wait_for_graph(processes, ready_path, node_log, startup_timeout_s)
            sampler = RssSampler(node.pid, rss_period_s).start()

            def run(run_rate_hz: float, duration_s: float) -> tuple[dict[str, Any], float, float]:
                start_ns, start_s = time.time_ns(), time.monotonic()
                processes.send(
                    {"cmd": "run", "rate_hz": run_rate_hz, "duration_s": duration_s,
                     "warmup_s": 0.0, "wait_s": startup_timeout_s}
                )  # fmt: skip
                result = json.loads(
                    processes.publisher_line(RESULT_PREFIX, duration_s + 2 * startup_timeout_s)
                )
                if "error" in result:
                    raise RuntimeError(f"soak publisher: {result['error']}")
                end_s = time.monotonic()
                time.sleep(drain_s)
                records = read_records(records_path)
                received, latencies = match_run(result["stamps_ns"], records, "tips")
                last_answered, _ = match_run(result["stamps_ns"][-1:], records, "tips")
                row = {
                    "rate_hz": run_rate_hz,
                    "duration_s": duration_s,
                    "achieved_rate_hz": result["achieved_rate_hz"],
                    "published": len(result["stamps_ns"]),
                    "received": received,
                    "dropped": len(result["stamps_ns"]) - received,
                    "last_answered": bool(last_answered),
                    "throughput_hz": received / duration_s,
                    "latency_ms": summarize_ms(latencies) if latencies else None,
                    "node_counters": counter_deltas(records, start_ns, time.time_ns()),
                    "worker_ms": worker_ms(records),
                }
                return row, start_s, end_s

            capacity_hz = None
            if overload:
                say(
                    f"soak: calibrating capacity at {calibration_rate_hz:g} Hz for {calibration_s:g} s"
                )
                calibration, _, _ = run(calibration_rate_hz, calibration_s)
                # the worker's own time per frame is the capacity; the output rate is only
                # a lower bound (it cannot exceed what the publisher managed to send)
                per_frame_ms = calibration["worker_ms"]
                output_hz = calibration["received"] / calibration_s
                capacity_hz = 1e3 / per_frame_ms if per_frame_ms else output_hz
                capacity_hz = max(capacity_hz, output_hz)
                if capacity_hz <= 0:
                    raise RuntimeError("soak: the node produced no output during calibration")
                measured_rate_hz = 2.0 * capacity_hz
                duration_s = float(overload_s)
                warmup_s = (warmup_frames / measured_rate_hz) if warmup_frames else 1.0
                say(f"soak: capacity {capacity_hz:.1f} Hz; overload at {measured_rate_hz:.1f} Hz")
            else:
                measured_rate_hz = float(rate_hz)
                duration_s = frames / measured_rate_hz
                warm = min(500, frames // 10) if warmup_frames is None else warmup_frames
                warmup_s = warm / measured_rate_hz
                say(f"soak: {frames} frames at {rate_hz:g} Hz ({duration_s:.0f} s)")
            row, start_s, end_s = run(measured_rate_hz, duration_s)
            sampler.stop()
            node_alive = node.poll() is None
        finally:
            if sampler is not None:
                sampler.stop()
            stop_path.write_text("stop\n")
            processes.stop()
        log_text = node_log.read_text(errors="replace")
    rss = rss_growth_mb(sampler.samples, start_s + warmup_s, end_s)
    report = {
        "mode": "overload" if overload else "nominal",
        "domain_id": domain_id,
        "size_px": size,
        "capacity_hz": capacity_hz,
        "overload_factor": (
            row["achieved_rate_hz"] / capacity_hz
            if capacity_hz and row["achieved_rate_hz"]
            else None
        ),
        **row,
        "rss": rss,
        "exceptions": count_exceptions(log_text),
        "node_alive": node_alive,
    }
    return report


def check_targets(report: dict[str, Any]) -> list[str]:
    """The targets a soak report misses (empty when all are met), one line each."""
    failures = []
    rss = report["rss"]
    if rss is None:
        failures.append("no RSS samples after the warm-up (run longer)")
    elif rss["growth_mb"] > TARGET_RSS_GROWTH_MB:
        failures.append(
            f"RSS grew {rss['growth_mb']:.1f} MB after warm-up (target <= {TARGET_RSS_GROWTH_MB:g})"
        )
    if report["exceptions"]:
        failures.append(f"{report['exceptions']} exception(s) in the node log")
    processing_errors = (report["node_counters"] or {}).get("dropped.processing_error", 0)
    if processing_errors:
        failures.append(f"{processing_errors} frame(s) dropped as processing_error")
    if not report["node_alive"]:
        failures.append("the node process died")
    if report["mode"] == "nominal" and report["dropped"]:
        failures.append(f"{report['dropped']} frame(s) dropped at the nominal rate (target 0)")
    if report["mode"] == "overload":
        counters = report["node_counters"] or {}
        if not counters.get("dropped.superseded"):
            failures.append("overload: no superseded drops counted by the node")
        factor = report.get("overload_factor")
        if factor is not None and factor < 1.8:
            failures.append(
                f"overload: the publisher reached only {factor:.2f}x the node's capacity "
                "(use a larger --size or a heavier --model)"
            )
    return failures


def format_report(report: dict[str, Any]) -> str:
    """Human-readable lines of a soak report."""
    latency = report["latency_ms"]
    rss = report["rss"]
    lines = [
        f"mode                {report['mode']} ({report['size_px']}x{report['size_px']} mono8)",
        f"rate                {report['rate_hz']:.1f} Hz for {report['duration_s']:.1f} s"
        + (
            f" (capacity {report['capacity_hz']:.1f} Hz; achieved "
            f"{report['overload_factor']:.2f}x capacity)"
            if report["capacity_hz"] and report["overload_factor"]
            else ""
        ),
        f"frames              published {report['published']}, received {report['received']}, "
        f"dropped {report['dropped']}; last frame answered: {report['last_answered']}",
        f"throughput          {report['throughput_hz']:.1f} frames/s answered",
        "latency (tips)      "
        + (
            f"p50 {latency['median']:.1f} ms, p95 {latency['p95']:.1f} ms, "
            f"max {latency['max']:.1f} ms"
            if latency
            else "none received"
        ),
        "node counters       "
        + ", ".join(f"{k} {v}" for k, v in (report["node_counters"] or {}).items()),
        "RSS after warm-up   "
        + (
            f"baseline {rss['baseline_mb']:.1f} MB, final {rss['final_mb']:.1f} MB, "
            f"growth {rss['growth_mb']:+.1f} MB, peak growth {rss['peak_growth_mb']:+.1f} MB "
            f"({rss['samples']} samples)"
            if rss
            else "no samples"
        ),
        f"exceptions          {report['exceptions']}; node alive at the end: {report['node_alive']}",
    ]
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``soak`` on the ``fluoro-perception`` dispatcher."""
    parser = subparsers.add_parser(
        "soak",
        help="long run / overload of segmentation_node over DDS (memory, drops, exceptions)",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--frames", type=int, default=20_000, help="frames (nominal mode)")
    parser.add_argument("--rate", type=float, default=15.0, help="rate [Hz] (nominal mode)")
    parser.add_argument("--size", type=int, default=256, help="frame height and width [px]")
    parser.add_argument("--model", default=None, help="ONNX model; default: shipped or built-in")
    parser.add_argument(
        "--warmup-frames", type=int, default=None, help="frames before the RSS baseline"
    )
    parser.add_argument("--overload", action="store_true", help="2x capacity instead")
    parser.add_argument("--overload-s", type=float, default=60.0, help="overload duration [s]")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY:=VALUE", help="node parameter"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.set_defaults(func=run_soak)
    return parser


def run_soak(args: argparse.Namespace) -> int:
    """Entry of ``fluoro-perception soak``; 0 when every target is met, 1 otherwise."""
    node_params = {}
    for item in args.param:
        key, separator, value = item.partition(":=")
        if not separator or not key:
            raise ValueError(f"--param {item!r}; expected KEY:=VALUE (e.g. max_age_s:=1.0)")
        node_params[key] = value
    with tempfile.TemporaryDirectory(prefix="fluoro_soak_model_") as temporary:
        model = args.model
        if model is None:
            from fluoro_perception.model_registry import default_model_path

            try:
                model = default_model_path()
            except FileNotFoundError:
                model = write_grey_level_model(Path(temporary) / "grey_level.onnx", args.size)
                print(f"soak: no model shipped; using a one-layer grey-level model ({model})")
        report = soak(
            model,
            frames=args.frames,
            rate_hz=args.rate,
            size=args.size,
            warmup_frames=args.warmup_frames,
            overload=args.overload,
            overload_s=args.overload_s,
            node_params=node_params,
            log=print,
        )
    print(format_report(report))
    failures = check_targets(report)
    for failure in failures:
        print(f"FAIL: {failure}")
    if not failures:
        print("PASS: every soak target met")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if failures else 0
