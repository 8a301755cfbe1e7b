"""``fluoro-perception bench``: measure the perception stack against its real-time targets.

Runs, in this order, and prints one table each (plus pass/fail against the targets):

1. model only: ONNX Runtime per provider, batch 1, optimized-model cache off/cold/warm;
2. in-process end to end: image message -> decode -> preprocess -> inference ->
   geometry -> tracking -> output messages built, on frames of ``--content`` (sim:
   simulator frames, distractors: distractor-dense simulator frames, noise: pure noise
   images; per-stage p50/p95/p99, throughput, jitter, CPU %, peak RSS, geometry caps);
   then the geometry alone on adversarial probability maps (tiny blobs, crossing lines,
   rings, a huge blob, all ones, noise), against its p99 <= 8 ms target;
3. across processes over real DDS: publisher (frames of ``--content``) ->
   segmentation_node -> subscriber at fixed rates, then a peak-throughput search
   (latency from the header stamp, dropped frames = published - received, answered %);
   with ``--subscribe all`` the subscriber listens to every output topic (overlay and
   markers included) and the report adds per-topic latency, the time until a frame's
   core outputs have all arrived, and the node's core vs overlay/markers time split;
4. torch eager baselines at the same input size (MONAI AttentionUnet, BasicUNet, our
   default model) and the ratio "pipeline throughput / AttentionUnet eager throughput".

Without ``--model`` the shipped ``models/default.onnx`` is used; when none is shipped the
default architecture (``config/train/default.yaml``) is exported with RANDOM weights into
a temporary folder and the report says so (timing does not depend on the weights, but
the geometry stage does: it has little to do on random-weight masks).

Examples::

    fluoro-perception bench --json bench.json
    fluoro-perception bench --quick --skip-dds
    fluoro-perception bench --content distractors --skip-dds --skip-torch
    fluoro-perception bench --content distractors --subscribe all --rates 15 --no-peak-search
    fluoro-perception bench --providers cuda cpu --dds-duration 60 --rates 7.5 15 30
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from fluoro_perception.bench import CONTENTS
from fluoro_perception.bench.dds import SUBSCRIBE_MODES
from fluoro_perception.cli.argtypes import positive_float, positive_int
from fluoro_perception.core.engine import DEFAULT_PROVIDERS

#: Settings of a full run and of ``--quick`` (tiny sizes, for smoke tests and CI).
FULL = {
    "runs": 50,
    "warmup": 5,
    "frames": 300,
    "warmup_frames": 10,
    "distinct_frames": 60,
    "dds_duration_s": 60.0,
    "dds_other_max_s": 20.0,
    "dds_warmup_s": 1.0,
    "peak_step_s": 5.0,
    "peak_max_steps": 5,
    "torch_runs": 20,
    "torch_warmup": 3,
    "geometry_map_repeats": 20,
}
QUICK = {
    "runs": 5,
    "warmup": 1,
    "frames": 20,
    "warmup_frames": 3,
    "distinct_frames": 6,
    "dds_duration_s": 2.0,
    "dds_other_max_s": 2.0,
    "dds_warmup_s": 0.3,
    "peak_step_s": 1.0,
    "peak_max_steps": 2,
    "torch_runs": 2,
    "torch_warmup": 1,
    "geometry_map_repeats": 2,
}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``bench`` on the ``fluoro-perception`` dispatcher."""
    parser = subparsers.add_parser(
        "bench",
        help="measure latency/throughput (model, in-process, DDS, torch baselines) vs targets",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny run counts and durations (smoke test)"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="exported ONNX model (default: shipped models/default.onnx, else the default "
        "architecture exported with random weights)",
    )
    parser.add_argument(
        "--providers",
        nargs="+",
        default=list(DEFAULT_PROVIDERS),
        metavar="P",
        help="ORT providers (cpu, cuda, tensorrt or ORT names): each one is timed model-only "
        "(unavailable ones are listed as skipped); the pipeline runs take the first available",
    )
    parser.add_argument(
        "--size", type=positive_int, default=512, help="frame height and width [px] (mono8)"
    )
    parser.add_argument(
        "--content",
        choices=CONTENTS,
        default="sim",
        help="frames of the in-process and DDS runs: sim (simulator), distractors "
        "(distractor-dense simulator frames with contrast), noise (pure noise images); "
        "default sim",
    )
    parser.add_argument(
        "--subscribe",
        choices=SUBSCRIBE_MODES,
        default="tip",
        help="what the DDS subscriber process listens to: tip (the tips and labels topics, "
        "default) or all (every output topic of the node: masks, labels, poses, overlay, "
        "markers; per-topic latency and the core-outputs latency)",
    )
    parser.add_argument(
        "--subscriber-qos",
        choices=("reliable", "sensor_data"),
        default="reliable",
        help="QoS of the DDS subscriber's readers: reliable (default, as the node publishes) "
        "or sensor_data (best effort: samples lost on the way are counted missing instead "
        "of repaired late)",
    )
    parser.add_argument(
        "--node-param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="extra parameter of the DDS run's segmentation_node (repeatable), e.g. "
        "overlay_enabled:=false",
    )
    parser.add_argument(
        "--geometry-maps",
        type=int,
        default=None,
        metavar="N",
        help="adversarial probability maps per kind for the geometry-only run (default 20, "
        "--quick 2; 0 skips it)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="ORT intra-op threads of every pipeline run (default 0 = ORT's default, as the "
        "node ships); model-only rows also sweep 1 and all logical CPUs",
    )
    parser.add_argument(
        "--torch-threads",
        nargs="+",
        type=positive_int,
        default=None,
        metavar="N",
        help="torch thread counts, each timed (default: 1 and --threads); ratios use the "
        "fastest AttentionUnet row (default: 1 and all logical CPUs)",
    )
    parser.add_argument(
        "--dds-duration",
        type=positive_float,
        default=None,
        metavar="S",
        help="measured seconds at 15 Hz (default 60; other rates run min(S, 20) s)",
    )
    parser.add_argument(
        "--rates",
        nargs="+",
        type=positive_float,
        default=[7.5, 15.0, 30.0],
        metavar="HZ",
        help="DDS publishing rates [Hz]",
    )
    parser.add_argument(
        "--dds-logs",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the DDS processes' logs and the subscriber's records.jsonl in DIR",
    )
    parser.add_argument("--no-peak-search", action="store_true", help="skip the DDS peak search")
    parser.add_argument("--skip-dds", action="store_true", help="skip the DDS runs")
    parser.add_argument("--skip-torch", action="store_true", help="skip the torch baselines")
    parser.add_argument("--frames", type=positive_int, default=None, help="in-process timed frames")
    parser.add_argument(
        "--runs", type=positive_int, default=None, help="model-only timed runs per row"
    )
    parser.add_argument("--fp16", action="store_true", help="TensorRT fp16 engines (GPU only)")
    parser.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="write the JSON here"
    )
    parser.set_defaults(func=run)
    return parser


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cpu_model_name() -> str:
    """The ``model name`` line of ``/proc/cpuinfo`` (else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux
    return platform.processor() or platform.machine()


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def export_random_default_model(directory: Path) -> tuple[Path, dict[str, Any]]:
    """Export the default architecture with random weights to ``directory/default_random.onnx``.

    Needs torch and ``fluoro_training`` (imported lazily: the runtime never needs them).
    """
    try:
        from fluoro_perception.bench.baselines import build_default_model
        from fluoro_perception.core.model_metadata import ModelMetadata
        from fluoro_perception.core.types import MODEL_CLASS_NAMES
        from fluoro_training.onnx_export import export_onnx, output_names
    except ImportError as exc:
        raise FileNotFoundError(
            f"no default model is shipped and the default architecture cannot be exported "
            f"({exc}); pass --model FILE.onnx"
        ) from None
    import torch

    # fixed weights: the same file every run, so the engine's optimized-model cache is reused
    torch.manual_seed(0)
    model, config = build_default_model()
    metadata = ModelMetadata(
        architecture=config.model.name,
        classes=MODEL_CLASS_NAMES[: config.model.num_classes],
        heads=output_names(model),
        stride=int(model.stride),
        preprocessing=config.preprocessing,
        extra={"random_weights": True, "model_kwargs": dict(config.model.kwargs)},
    )
    path = export_onnx(
        model, directory / "default_random.onnx", config.preprocessing.input_size, metadata
    )
    return path, {"architecture": config.model.name, "kwargs": dict(config.model.kwargs)}


def read_model_metadata(path: Path) -> Any:
    """The :class:`ModelMetadata` stored in an ONNX file (weights not loaded)."""
    import onnx

    from fluoro_perception.core.model_metadata import METADATA_KEY, ModelMetadata

    proto = onnx.load(str(path), load_external_data=False)
    props = {prop.key: prop.value for prop in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ValueError(
            f"{path} has no {METADATA_KEY!r} metadata; expected a model from fluoro-train export"
        )
    return ModelMetadata.from_json(props[METADATA_KEY])


def resolve_model(model: Path | None, workdir: Path) -> dict[str, Any]:
    """The model to benchmark and how it was chosen.

    Returns
    -------
    dict
        ``path``, ``source`` (``user`` / ``shipped`` / ``random_export``), ``source_note``,
        ``architecture``, ``input_size`` ``[h, w]`` [px], ``random_weights``.
    """
    from fluoro_perception.model_registry import default_model_path, verify_model

    if model is not None:
        path = model.expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"--model {path}: no such file; expected an exported .onnx")
        verify_model(path, require_card=False)
        info = {"path": str(path), "source": "user", "source_note": "model given with --model"}
    else:
        try:
            path = default_model_path()
        except FileNotFoundError:
            _log(
                "bench: no shipped models/default.onnx: exporting the default architecture "
                "with RANDOM weights"
            )
            path, _ = export_random_default_model(workdir)
            info = {
                "path": str(path),
                "source": "random_export",
                "source_note": "no model shipped: default architecture exported with RANDOM "
                "weights into a temporary folder",
            }
        else:
            verify_model(path, require_card=True)
            info = {"path": str(path), "source": "shipped", "source_note": "shipped default model"}
    metadata = read_model_metadata(path)
    info.update(
        architecture=metadata.architecture,
        input_size=list(metadata.preprocessing.input_size),
        random_weights=info["source"] == "random_export"
        or bool(metadata.extra.get("random_weights")),
    )
    return info


def _ratios(report: dict[str, Any]) -> dict[str, float]:
    """Throughput ratios measured in this run (only those whose two figures exist)."""
    inprocess = report.get("inprocess") or {}
    torch_rows: dict[str, dict[str, Any]] = {}
    for row in (report.get("torch_baselines") or {}).get("rows", []):
        if row.get("skipped"):
            continue
        best = torch_rows.get(row["name"])
        # the fastest thread count of each model: the baseline is given its best chance
        if best is None or row["throughput_fps"] > best["throughput_fps"]:
            torch_rows[row["name"]] = row
    ratios: dict[str, float] = {}
    pipeline_fps = inprocess.get("throughput_fps")
    if pipeline_fps:
        for name, key in (
            ("monai_attention_unet", "pipeline_over_attention_unet_eager"),
            ("monai_basic_unet", "pipeline_over_basic_unet_eager"),
        ):
            if name in torch_rows:
                ratios[key] = pipeline_fps / torch_rows[name]["throughput_fps"]
    model = report["meta"]["model"]
    ort_rows = [
        row
        for row in report.get("model_latency", [])
        if not row.get("skipped") and row["optimized_cache"] == "warm"
    ]
    if "default_model" in torch_rows and ort_rows and model["source"] != "user":
        # same architecture in both: what ONNX Runtime gains over eager torch
        ratios["default_model_ort_over_torch_eager"] = (
            ort_rows[0]["throughput_fps"] / torch_rows["default_model"]["throughput_fps"]
        )
    return ratios


def run(args: argparse.Namespace) -> int:
    """Run ``bench``; returns 0 (pass/fail is reported in the table, it is not an error)."""
    from fluoro_perception.bench.report import evaluate_targets, format_report, write_json
    from fluoro_perception.cli.infer import provider_names

    settings = dict(QUICK if args.quick else FULL)
    if args.frames is not None:
        settings["frames"] = args.frames
    if args.runs is not None:
        settings["runs"] = args.runs
    if args.geometry_maps is not None:
        if args.geometry_maps < 0:
            raise ValueError(f"--geometry-maps {args.geometry_maps}; expected >= 0 (0 skips)")
        settings["geometry_map_repeats"] = args.geometry_maps
    dds_duration = args.dds_duration or settings["dds_duration_s"]
    providers = provider_names(args.providers)
    import onnxruntime as ort

    unknown = [name for name in providers if name not in ort.get_all_providers()]
    if unknown:
        raise ValueError(
            f"--providers {unknown} are not ONNX Runtime providers; expected cpu, cuda, "
            f"tensorrt or names such as {DEFAULT_PROVIDERS}"
        )
    if args.threads < 0:
        raise ValueError(f"--threads {args.threads}; expected >= 0 (0 = ORT default)")
    bad_params = [item for item in args.node_param if ":=" not in item or item.startswith(":=")]
    if bad_params:
        raise ValueError(f"--node-param {bad_params}; expected NAME:=VALUE")
    if args.size % 32 and not args.skip_torch:
        raise ValueError(
            f"--size {args.size}; expected a multiple of 32 for the torch baselines (or "
            "pass --skip-torch)"
        )
    load_start = _load_average()
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fluoro_bench_") as temporary:
        model = resolve_model(args.model, Path(temporary))
        if model["random_weights"]:
            notes.append(
                "random weights: latencies hold for the architecture, but geometry and "
                "tracking have little to do on random masks (a trained model costs more there)"
            )
        report: dict[str, Any] = {
            "schema_version": 1,
            "meta": {
                "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M:%S UTC"
                ),
                "command": "fluoro-perception bench " + shlex.join(sys.argv[2:])
                if len(sys.argv) > 1 and sys.argv[1] == "bench"
                else "fluoro-perception bench (called in-process)",
                "quick": bool(args.quick),
                "size_px": args.size,
                "content": args.content,
                "subscribe": args.subscribe,
                "node_params": list(args.node_param),
                "subscriber_qos": args.subscriber_qos,
                "threads": args.threads,
                "providers_requested": providers,
                "settings": settings,
                "machine": {
                    "cpu_model": cpu_model_name(),
                    "logical_cpus": os.cpu_count(),
                    "load_average_1min_start": load_start,
                    "python": platform.python_version(),
                    "onnxruntime": ort.__version__,
                    "ort_available_providers": ort.get_available_providers(),
                },
                "model": model,
                "notes": notes,
            },
        }
        model_path = Path(model["path"])

        from fluoro_perception.bench.model_latency import bench_model_latency

        _log(f"bench: model-only latency ({', '.join(providers)})")
        report["model_latency"] = bench_model_latency(
            model_path,
            providers,
            runs=settings["runs"],
            warmup=settings["warmup"],
            intra_op_threads=args.threads,
            fp16=args.fp16,
            cpu_thread_sweep=sorted({1, os.cpu_count() or 1}),
        )

        from fluoro_perception.bench.inprocess import bench_inprocess

        _log(f"bench: in-process end to end ({settings['frames']} {args.content} frames)")
        report["inprocess"] = bench_inprocess(
            model_path,
            providers=providers,
            frames=settings["frames"],
            warmup_frames=settings["warmup_frames"],
            size=args.size,
            distinct_frames=settings["distinct_frames"],
            intra_op_threads=args.threads,
            fp16=args.fp16,
            content=args.content,
        )

        if settings["geometry_map_repeats"]:
            from fluoro_perception.bench.geometry_maps import bench_geometry_maps

            _log(
                f"bench: geometry alone on adversarial maps ({settings['geometry_map_repeats']} each)"
            )
            report["geometry_maps"] = bench_geometry_maps(
                size=args.size, repeats=settings["geometry_map_repeats"]
            )
        else:
            report["geometry_maps"] = {"skipped": "--geometry-maps 0"}

        if args.skip_dds:
            report["dds"] = {"skipped": "--skip-dds"}
        else:
            from fluoro_perception.bench.dds import bench_dds
            from fluoro_perception.bench.inprocess import rclpy_available

            have_rclpy, reason = rclpy_available()
            if not have_rclpy:
                report["dds"] = {"skipped": reason}
            else:

                def duration_for_rate(rate: float) -> float:
                    if math.isclose(rate, 15.0):
                        return dds_duration
                    return min(dds_duration, settings["dds_other_max_s"])

                report["dds"] = bench_dds(
                    model_path,
                    rates_hz=args.rates,
                    duration_for_rate=duration_for_rate,
                    warmup_s=settings["dds_warmup_s"],
                    size=args.size,
                    content=args.content,
                    subscribe=args.subscribe,
                    node_params=args.node_param,
                    subscriber_qos=args.subscriber_qos,
                    providers=providers,
                    intra_op_threads=args.threads,
                    peak_search=not args.no_peak_search,
                    peak_step_s=settings["peak_step_s"],
                    peak_max_steps=settings["peak_max_steps"],
                    log=_log,
                    keep_logs=args.dds_logs,
                )

        if args.skip_torch:
            report["torch_baselines"] = {"skipped": "--skip-torch", "rows": []}
        else:
            from fluoro_perception.bench.baselines import bench_torch_baselines

            _log("bench: torch eager baselines")
            report["torch_baselines"] = bench_torch_baselines(
                size=args.size,
                runs=settings["torch_runs"],
                warmup=settings["torch_warmup"],
                threads=args.torch_threads or sorted({1, os.cpu_count() or 1}),
            )

    report["ratios"] = _ratios(report)
    report["meta"]["machine"]["load_average_1min_end"] = _load_average()
    load_end = report["meta"]["machine"]["load_average_1min_end"]
    cpus = os.cpu_count() or 1
    if max(load_start or 0.0, load_end or 0.0) > 0.5 * cpus:
        notes.append(
            f"the 1-min load average was {load_start:.1f} at start and {load_end:.1f} at end on "
            f"{cpus} CPUs: other jobs were running, figures are pessimistic"
        )
    report["targets"] = evaluate_targets(report)
    if args.json is not None:
        written = write_json(report, args.json)
        _log(f"bench: JSON written to {written}")
    print(format_report(report))
    return 0
