"""``fluoro-perception infer``: run the perception pipeline offline on recorded frames.

INPUT is a folder of images (PNG, 8/16-bit TIFF, JPEG, BMP), a video file, or a rosbag2
(directory, ``.mcap`` or ``.db3``; ``--topic`` picks the image topic). Writes, under
``--output DIR``:

* ``masks/<frame>_guidewire.png`` and ``masks/<frame>_stent.png``: mono8 0/255 at the
  input resolution;
* ``results.jsonl``: one JSON object per frame (schema in ``docs/results_format.md``);
* ``errors.jsonl``: one JSON object per frame that could not be read, processed or
  written (frame, stage, reason; empty when every frame succeeded).

A failed frame is reported on stderr and the run goes on; the exit code is then 3
(0 when every frame succeeded, 2 when the run could not start or no frame succeeded).

Examples::

    fluoro-perception infer recordings/run3 --output out/run3
    fluoro-perception infer case.mcap --topic /carm/image --output out/case --providers cpu
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fluoro_perception.core.engine import CPU, CUDA, DEFAULT_PROVIDERS, TENSORRT, InferenceEngine

if TYPE_CHECKING:
    from fluoro_perception.core.types import FrameResult
    from fluoro_perception.evaluation.results_io import ResultsWriter

#: Short provider names accepted on the command line, besides ONNX Runtime's own names.
PROVIDER_ALIASES: dict[str, str] = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT, "trt": TENSORRT}
MASKS_DIR = "masks"
MASK_SUFFIXES = ("_guidewire.png", "_stent.png")


def provider_names(values: list[str]) -> list[str]:
    """Command-line provider names (aliases such as ``cpu``, ``cuda``) -> ORT names."""
    return [PROVIDER_ALIASES.get(value.lower(), value) for value in values]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model`` and ``--providers``, shared by ``infer`` and ``evaluate``."""
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="exported ONNX model (default: the shipped models/default.onnx); a model card "
        "<name>.md beside it with a sha256 line is checked when present",
    )
    parser.add_argument(
        "--providers",
        nargs="+",
        default=list(DEFAULT_PROVIDERS),
        metavar="P",
        help="ONNX Runtime execution providers in priority order (cpu, cuda, tensorrt or "
        "full ORT names); unavailable ones are skipped (default: tensorrt cuda cpu)",
    )


def verified_default_model() -> tuple[Path, str]:
    """The shipped ``models/default.onnx`` and its sha256, checked against its card.

    Raises ``FileNotFoundError`` when none is shipped and ``ModelLoadError`` when the card
    is missing or does not match.
    """
    from fluoro_perception.model_registry import default_model_path, verify_model

    model_path = default_model_path()
    return model_path, verify_model(model_path, require_card=True)


def load_engine(model: Path | None, providers: list[str]) -> InferenceEngine:
    """Resolve, verify and load the model.

    The shipped default model must have a model card whose sha256 matches; a user's
    ``--model`` is checked against its card when it has one (a note says when it has
    none).

    Raises
    ------
    FileNotFoundError
        No ``--model`` and no default model shipped.
    ModelLoadError
        Card mismatch, missing card (default model) or a model ONNX Runtime cannot load.
    """
    from fluoro_perception.model_registry import model_card_path, verify_model

    if model is None:
        model_path, digest = verified_default_model()
    else:
        model_path = model.expanduser()
        digest = verify_model(model_path, require_card=False)
        if digest is None:
            print(
                f"note: model {model_path} has no card {model_card_path(model_path).name}; "
                "its integrity is not checked",
                file=sys.stderr,
            )
    return InferenceEngine(model_path, providers=provider_names(providers), expected_sha256=digest)


def prepare_output(output: Path, overwrite: bool, marker: str) -> None:
    """Create ``output``; refuse to replace a previous run's ``marker`` file without overwrite."""
    if output.exists() and not output.is_dir():
        raise ValueError(f"--output {output} is a file; expected a folder (new or empty)")
    if (output / marker).exists() and not overwrite:
        raise ValueError(
            f"--output {output} already holds {marker}; pass --overwrite or choose a new folder"
        )
    output.mkdir(parents=True, exist_ok=True)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``infer`` on the ``fluoro-perception`` dispatcher."""
    parser = subparsers.add_parser(
        "infer",
        help="segment recorded frames (image folder, video, rosbag2) into masks + results.jsonl",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "input", type=Path, metavar="INPUT", help="image folder, video file or rosbag2"
    )
    parser.add_argument("--output", type=Path, required=True, metavar="DIR", help="output folder")
    add_model_arguments(parser)
    parser.add_argument(
        "--topic", default=None, help="image topic of a rosbag2 input (default: /fluoro/image_raw)"
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=15.0,
        help="frame rate that stamps image-folder frames (tracking needs time) [Hz]",
    )
    parser.add_argument(
        "--bit-depth",
        type=int,
        default=None,
        choices=range(1, 17),
        metavar="N",
        help="significant bits of 16-bit images (default: 12 if the maximum <= 4095, else 16)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a previous run in DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def _write_mask(path: Path, mask: np.ndarray) -> None:
    if not cv2.imwrite(str(path), mask):
        raise OSError(f"cannot write {path}; check that the output folder is writable")


def _write_frame(
    writer: ResultsWriter, masks_dir: Path, frame_name: str, result: FrameResult
) -> dict:
    """Masks and results line of one frame: all of them or, on a failure, none.

    The record is validated before anything is written; masks written before a later
    failure of the same frame are removed again.
    """
    from fluoro_perception.evaluation.frame_errors import FrameError

    record = writer.check(frame_name, result)  # ResultsFormatError -> stage "validate"
    paths = [masks_dir / f"{frame_name}{suffix}" for suffix in MASK_SUFFIXES]
    try:
        for path, mask in zip(paths, (result.guidewire_mask, result.stent_mask), strict=True):
            _write_mask(path, mask)
        return writer.write_record(record)
    except Exception as exc:
        for path in paths:
            path.unlink(missing_ok=True)
        raise FrameError("write", f"{type(exc).__name__}: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    """Run ``infer``; returns the exit code.

    0: every frame is in ``results.jsonl``; 3 (``EXIT_FRAMES_FAILED``): the others are,
    the failed ones are in ``errors.jsonl``; errors that end the run raise and exit 2 in
    ``main`` (also when no frame at all could be processed).
    """
    from tqdm import tqdm

    from fluoro_perception.core.pipeline import PerceptionPipeline, PipelineConfig
    from fluoro_perception.evaluation.frame_errors import ERRORS_FILE, FrameErrorLog
    from fluoro_perception.evaluation.results_io import RESULTS_FILE, ResultsWriter
    from fluoro_perception.evaluation.sources import open_source

    if not math.isfinite(args.fps) or args.fps <= 0:
        raise ValueError(f"--fps {args.fps}; expected a frame rate > 0 [Hz]")
    output: Path = args.output
    with open_source(args.input, topic=args.topic, fps=args.fps) as source:
        engine = load_engine(args.model, args.providers)
        prepare_output(output, args.overwrite, RESULTS_FILE)
        masks_dir = output / MASKS_DIR
        masks_dir.mkdir(exist_ok=True)
        if args.overwrite:
            for stale in masks_dir.iterdir():
                if stale.name.endswith(MASK_SUFFIXES):
                    stale.unlink()
        pipeline = PerceptionPipeline(engine, PipelineConfig(bit_depth=args.bit_depth))
        latencies: list[float] = []
        reported = 0
        seen = 0

        def echo(line: str) -> None:
            tqdm.write(line, file=sys.stderr)

        with (
            ResultsWriter(output / RESULTS_FILE) as writer,
            FrameErrorLog(output / ERRORS_FILE, echo=echo) as errors,
        ):

            def record_skips() -> None:
                nonlocal reported
                for item in source.skipped_items[reported:]:
                    if item.count > 0:
                        errors.add(item.frame_name, item.stage, item.message, item.count)
                    else:  # e.g. a bag damaged after its last frame: no frame lost
                        echo(f"note: {item.message}")
                reported = len(source.skipped_items)

            progress = tqdm(
                source,
                total=source.expected_frames(),
                desc="infer",
                unit="frame",
                disable=args.quiet,
                file=sys.stderr,
            )
            frames = iter(progress)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except Exception as exc:  # the source itself broke: keep what was done
                    expected = source.expected_frames()
                    record_skips()
                    lost = max(1, expected - seen - source.num_skipped) if expected else 1
                    reason = f"{args.input}: reading stopped ({type(exc).__name__}: {exc})"
                    errors.add(None, "read", reason, lost)
                    break
                seen += 1
                record_skips()
                try:
                    result = pipeline.process(frame.image, frame.stamp_ns, frame.encoding)
                    record = _write_frame(writer, masks_dir, frame.frame_name, result)
                except Exception as exc:  # one frame never ends the run
                    errors.add_exception(frame.frame_name, exc)
                    continue
                latencies.append(record["latency_ms"])
            progress.close()
            record_skips()
    if writer.count == 0:
        raise ValueError(
            f"no frame of {args.input} could be processed ({errors.summary()}); "
            "check the input and --topic"
        )
    print(
        f"infer: {writer.count} frames -> {output / RESULTS_FILE} (masks in {masks_dir}); "
        f"{errors.summary()}; latency mean {float(np.mean(latencies)):.1f} ms, p95 "
        f"{float(np.percentile(latencies, 95)):.1f} ms on {engine.active_provider}"
    )
    engine.close()
    return errors.exit_code()
