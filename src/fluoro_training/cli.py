"""``fluoro-train``: train, export and compare segmentation models.

Examples::

    fluoro-train train --config config/train/default.yaml
    fluoro-train train --config config/train/default.yaml --set steps=200 --set data.batch_size=4
    torchrun --nproc_per_node 2 -m fluoro_training.cli train --config ...   # DDP
    fluoro-train export runs/default/best.pt --output models/fluoro_default.onnx --int8
    fluoro-train compare --models fra_net lda_net unet --steps 500 --output out/compare
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _cmd_train(args: argparse.Namespace) -> int:
    from fluoro_training.config import load_config
    from fluoro_training.trainer_variants import create_trainer

    config = load_config(args.config, args.set)
    trainer = create_trainer(
        config,
        args.output,
        device=args.device,
        resume=args.resume,
        init=args.init,
        progress=not args.no_progress,
    )
    if trainer.warm_start_report:
        report = trainer.warm_start_report
        print(
            f"warm start from {args.init}: {len(report['loaded'])} tensors loaded, "
            f"{len(report['extended'])} extended (classes added), "
            f"{len(report['skipped'])} skipped (shape changed), {len(report['missing'])} new"
        )
    best = trainer.fit()
    if trainer.rank == 0:
        print(f"best checkpoint: {trainer.output_dir / 'best.pt'}")
        print(
            "best validation metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(best.items()))
        )
        if trainer.timing:
            data_s, step_s = trainer.timing["data_s"], trainer.timing["step_s"]
            print(
                f"timing: {data_s + step_s:.3f} s/step = waiting for data {data_s:.3f} s + "
                f"model {step_s:.3f} s (mean of {int(trainer.timing['steps']) - 1} steps after "
                f"the first; batch {config.data.batch_size}, crop {config.data.crop_size[0]}x"
                f"{config.data.crop_size[1]}, num_workers {config.data.num_workers})"
            )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from fluoro_training.export import export_checkpoint

    report = export_checkpoint(
        args.checkpoint,
        args.output,
        input_size=tuple(args.input_size) if args.input_size else None,
        opset=args.opset,
        fp16=args.fp16,
        int8=args.int8,
        calibration_frames=args.calibration_frames,
        test_frames=args.test_frames,
    )
    print(report.to_json())
    if args.weights:
        from fluoro_training.trainer import write_weights

        print(f"weights: {write_weights(args.checkpoint, args.weights)}")
    return 0


def _cmd_visibility(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    from tqdm import tqdm

    from fluoro_perception.core.decode import to_mono_float
    from fluoro_training.config import load_config
    from fluoro_training.data.sim_stream import raw_training_frames
    from fluoro_training.data.visibility import summarize_cnr, summarize_vessel_cover, wire_cnr

    config = load_config(args.config, args.set)
    by_scenario: dict[str, list[float]] = {}
    vessel_shares: list[float] = []
    frames = raw_training_frames(config.data, args.frames, config.seed)
    for frame in tqdm(frames, total=args.frames, desc="visibility", unit="frame"):
        encoding = "mono8" if frame.image.dtype.itemsize == 1 else "mono16"
        image = to_mono_float(frame.image, encoding, bit_depth=frame.bit_depth)
        value = wire_cnr(image, frame.labels, frame.field_mask)
        by_scenario.setdefault(frame.scenario, []).append(value)
        mask = frame.vessel_mask
        vessel_shares.append(0.0 if mask is None else float(np.count_nonzero(mask)) / mask.size)
    values = [v for scenario in by_scenario.values() for v in scenario]
    report = {
        "config": str(args.config),
        "frames": len(values),
        "all": summarize_cnr(values),
        "per_scenario": {k: summarize_cnr(v) for k, v in sorted(by_scenario.items())},
        # filled vessels in the same frames (data.frame_step spreads them over the bolus)
        "vessel_cover": summarize_vessel_cover(vessel_shares),
    }
    print(json.dumps(report, indent=2))
    if args.output:
        _plot_visibility(values, args.output, str(args.config))
        print(f"histogram: {args.output}")
    return 0


def _plot_visibility(values: list[float], output: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from fluoro_training.data.visibility import CNR_LEVELS

    finite = np.clip([v for v in values if np.isfinite(v)], -2.0, 20.0)
    figure, axis = plt.subplots(figsize=(6.0, 3.4))
    axis.hist(finite, bins=44, range=(-2.0, 20.0), color="#4477aa")
    for level in CNR_LEVELS:
        axis.axvline(level, color="#cc3311", linestyle="--", linewidth=1)
    axis.set_xlabel("wire CNR along the labelled centerline (clipped to [-2, 20])")
    axis.set_ylabel("training frames")
    axis.set_title(f"wire visibility of the training stream ({title})", fontsize=9)
    figure.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=100)
    plt.close(figure)


def _cmd_curves(args: argparse.Namespace) -> int:
    from fluoro_training.curves import DEFAULT_METRICS, plot_curves

    runs = {}
    for item in args.runs:
        name, sep, path = item.partition("=")
        runs[name if sep else Path(item).name] = Path(path if sep else item)
    metrics = tuple(args.metrics) if args.metrics else DEFAULT_METRICS
    print(f"learning curves: {plot_curves(runs, args.output, metrics)}")
    return 0


def _named_paths(items: list[str]) -> dict[str, Path]:
    """``["name=path", ...]`` -> ``{name: Path(path)}``; ValueError names a bad item."""
    named: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--checkpoint {item!r}; expected NAME=PATH (e.g. default=best.pt)")
        if not Path(path).is_file():
            raise FileNotFoundError(f"--checkpoint {name}: {path} not found")
        named[name] = Path(path)
    return named


def _cmd_compare(args: argparse.Namespace) -> int:
    from fluoro_training.compare import compare_models

    table = compare_models(
        args.models,
        config_path=args.config,
        output_dir=Path(args.output),
        steps=args.steps,
        minutes=args.minutes,
        test_sequences=args.test_sequences,
        overrides=args.set,
        recipe=args.recipe,
        checkpoints=_named_paths(args.checkpoint),
        baseline=not args.no_baseline,
    )
    print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fluoro-train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = sub.add_parser("train", help="train one experiment from a YAML config")
    train.add_argument("--config", required=True, help="config/train/<name>.yaml")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set steps=500 (repeatable)")  # fmt: skip
    train.add_argument("--output", default=None, help="run directory (default runs/<name>)")
    train.add_argument("--resume", default=None, help="checkpoint to resume from (last.pt)")
    train.add_argument(
        "--init",
        default=None,
        help="warm start: model weights of a checkpoint or models/<name>.pt "
        "(fresh optimizer and schedule)",
    )
    train.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: auto)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    train.set_defaults(func=_cmd_train)

    export = sub.add_parser("export", help="export a checkpoint to ONNX with metadata")
    export.add_argument("checkpoint")
    export.add_argument("--output", required=True, help="X.onnx")
    export.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"), default=None)
    export.add_argument("--opset", type=int, default=17)
    export.add_argument(
        "--weights",
        default=None,
        help="also write the weights + config (no optimizer) here, e.g. models/default.pt",
    )
    export.add_argument("--fp16", action="store_true", help="also write X_fp16.onnx")
    export.add_argument("--int8", action="store_true", help="also write X_int8.onnx (static)")
    export.add_argument("--calibration-frames", type=int, default=16,
                        help="held-out simulator frames for INT8 calibration")  # fmt: skip
    export.add_argument("--test-frames", type=int, default=16,
                        help="held-out frames for the fp16/INT8 accuracy check")  # fmt: skip
    export.set_defaults(func=_cmd_export)

    visibility = sub.add_parser(
        "visibility",
        help="wire contrast-to-noise (and filled-vessel cover) of the training stream's frames",
    )
    visibility.add_argument("--config", required=True, help="config/train/<name>.yaml")
    visibility.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    visibility.add_argument("--frames", type=int, default=400, help="frames to measure")
    visibility.add_argument("--output", default=None, help="histogram X.png")
    visibility.set_defaults(func=_cmd_visibility)

    curves = sub.add_parser("curves", help="plot validation metrics against training minutes")
    curves.add_argument("runs", nargs="+", help="run folders (with log.csv), NAME=DIR to label")
    curves.add_argument("--output", required=True, help="X.png")
    curves.add_argument("--metrics", nargs="*", default=None, help="validation metric names")
    curves.set_defaults(func=_cmd_curves)

    compare = sub.add_parser("compare", help="train + evaluate several models, same budget")
    compare.add_argument("--models", nargs="*", default=[], help="architectures to train")
    compare.add_argument("--config", default="config/train/default.yaml")
    compare.add_argument("--steps", type=int, default=None, help="training steps per model")
    compare.add_argument("--minutes", type=float, default=None, help="time budget per model")
    compare.add_argument("--test-sequences", type=int, default=12)
    compare.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=BEST_PT",
        help="also measure an already trained checkpoint as row NAME (repeatable), "
        "e.g. default=runs/default/best.pt",
    )
    compare.add_argument(
        "--recipe",
        choices=("paper", "common"),
        default="paper",
        help="paper: each model's own config/train/<model>.yaml (loss, optimizer); "
        "common: each model's architecture with --config's loss, optimizer and data",
    )
    compare.add_argument(
        "--no-baseline",
        action="store_true",
        help="leave out the first row, the classical Frangi baseline on the same test set",
    )
    compare.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    compare.add_argument("--output", default="out/compare")
    compare.set_defaults(func=_cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"fluoro-train {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
