"""``fluoro-perception evaluate``: score a model on a dataset with ground truth.

DATASET is a folder in the dataset format of ``docs/dataset_format.md`` (written by
``fluoro-sim dataset``, or your own annotated frames). Runs the pipeline on every frame
(tracking restarts at each sequence) and writes, under ``--output DIR``,
``metrics.json``, ``report.md`` and its figures (``docs/evaluation.md``), and
``errors.jsonl``: one record per frame that could not be read, processed or scored.
A failed frame is left out of the scores and the run goes on; the exit code is then 3
(0 when every frame was scored, 2 when the run could not start or no frame was scored).

Examples::

    fluoro-perception evaluate data/sim_test --output reports/default
    fluoro-perception evaluate data/mine --model models/fra_net.onnx --output reports/fra
    fluoro-perception evaluate data/mine --max-frames 200 --providers cuda cpu --output r/gpu
    fluoro-perception evaluate data/sim_test --oracle --output reports/ceiling
    fluoro-perception evaluate data/sim_test --baseline frangi --output reports/frangi
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fluoro_perception.cli.argtypes import non_negative_int, positive_int
from fluoro_perception.cli.infer import (
    add_model_arguments,
    load_engine,
    prepare_output,
    verified_default_model,
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``evaluate`` on the ``fluoro-perception`` dispatcher."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a model on a dataset folder; writes metrics.json + report.md",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", type=Path, metavar="DATASET", help="dataset folder")
    parser.add_argument("--output", type=Path, required=True, metavar="DIR", help="report folder")
    add_model_arguments(parser)
    parser.add_argument(
        "--max-frames",
        type=positive_int,
        default=None,
        metavar="N",
        help="evaluate only the first N frames (dataset order: by sequence, then frame)",
    )
    parser.add_argument(
        "--worst",
        type=non_negative_int,
        default=6,
        metavar="K",
        help="worst frames shown as thumbnails in the report (default 6)",
    )
    parser.add_argument(
        "--oracle",
        action="store_true",
        help="replace the network by each frame's ground truth on the model's grid: the "
        "ceiling of geometry, tip choice and tracking (what a perfect segmentation would score)",
    )
    parser.add_argument(
        "--baseline",
        choices=("frangi",),
        default=None,
        help="replace the network by a classical baseline on the model's grid: a "
        "thresholded Frangi vesselness filter (fluoro_perception.evaluation.baseline)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a previous report in DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def oracle_engine(model: Path | None):
    """:class:`GroundTruthEngine` on the grid (classes, heads, preprocessing) of ``model``
    (default: the shipped default model, checked against its card)."""
    from fluoro_perception.core.engine import read_model_metadata
    from fluoro_perception.evaluation.oracle import GroundTruthEngine

    if model is None:
        model, _ = verified_default_model()
    return GroundTruthEngine(read_model_metadata(model.expanduser()))


def stand_in_engine(args: argparse.Namespace):
    """The engine that replaces the network (``--oracle``, ``--baseline``), or None."""
    baseline = getattr(args, "baseline", None)
    if args.oracle:
        return oracle_engine(args.model)
    if baseline == "frangi":
        from fluoro_perception.core.engine import read_model_metadata
        from fluoro_perception.evaluation.baseline import FrangiEngine

        model = args.model if args.model is not None else verified_default_model()[0]
        return FrangiEngine(read_model_metadata(model.expanduser()))
    return None


def frame_id(record) -> str:
    """``<sequence_id>/<frame_index:06d>``: a dataset frame's name in ``errors.jsonl``."""
    return f"{record.sequence_id}/{int(record.frame_index):06d}"


def run(args: argparse.Namespace) -> int:
    """Run ``evaluate``; returns the exit code (0 ok, 3 some frames failed; errors that end
    the run raise and exit 2 in ``main``)."""
    from tqdm import tqdm

    from fluoro_perception.evaluation.frame_errors import ERRORS_FILE, FrameErrorLog
    from fluoro_perception.evaluation.report import METRICS_FILE, RunInfo, WorstFrames, write_report
    from fluoro_perception.evaluation.runner import FrameEvaluator, frame_encoding
    from fluoro_perception.sim.dataset import load_frame, read_dataset

    if args.oracle and getattr(args, "baseline", None):
        raise ValueError("give --oracle or --baseline, not both")
    dataset = read_dataset(args.dataset)
    records = dataset.records[: args.max_frames] if args.max_frames else dataset.records
    engine = stand_in_engine(args) or load_engine(args.model, args.providers)
    prepare_output(args.output, args.overwrite, METRICS_FILE)
    run_info = RunInfo.for_engine(
        engine,
        dataset_path=str(dataset.root),
        dataset_frames=len(dataset),
        max_frames=args.max_frames,
    )
    evaluator = FrameEvaluator(engine)
    accumulator = evaluator.accumulator
    worst = WorstFrames(args.worst)

    def echo(line: str) -> None:
        tqdm.write(line, file=sys.stderr)

    with FrameErrorLog(args.output / ERRORS_FILE, echo=echo) as errors:
        for record in tqdm(
            records, desc="evaluate", unit="frame", disable=args.quiet, file=sys.stderr
        ):
            try:
                truth = load_frame(record)
            except Exception as exc:  # one broken frame does not end the evaluation
                errors.add_exception(frame_id(record), exc, default_stage="read")
                continue
            try:
                result, metrics = evaluator.evaluate(truth)
                worst.offer(metrics, truth.image, frame_encoding(truth), result, truth)
            except Exception as exc:
                errors.add_exception(frame_id(record), exc)
    if accumulator.num_frames == 0:
        raise ValueError(f"no frame of {args.dataset} could be evaluated ({errors.summary()})")
    paths = write_report(
        args.output, accumulator, run_info, worst_frames=worst.frames(), skipped=errors.by_stage
    )
    summary = accumulator.summary()["summary"]

    def fmt(value: float | None, digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    print(
        f"evaluate: {accumulator.num_frames} frames on {engine.active_provider}; guidewire F1 "
        f"{fmt(summary['guidewire_f1'])}, centerline F1 {fmt(summary['centerline_f1_mean'])}, "
        f"tip error median {fmt(summary['tip_error_px']['median'], 2)} px, stent Dice "
        f"{fmt(summary['stent_dice'])}, latency p95 {fmt(summary['latency_ms']['p95'], 1)} ms; "
        f"{errors.summary()}; report {paths['report']}"
    )
    engine.close()
    return errors.exit_code()
