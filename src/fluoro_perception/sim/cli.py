"""``fluoro-sim``: write simulated datasets and rosbags, render previews, benchmark.

Subcommands::

    fluoro-sim dataset OUT --sequences N --frames M --seed S [--size H W] [--scenario NAME]
                           [--bit-depth 8|12|16] [--overwrite]
    fluoro-sim dataset OUT ... --negatives   # hard negatives: no guidewire, dense distractors
    fluoro-sim dataset OUT ... --scenario contrast --frame-step 10   # filled vessel trees
    fluoro-sim styleset OUT --style noise|display|spacing|instrument|anatomy|all
                           --sequences N --frames M --seed S [--size H W] [--overwrite]
    fluoro-sim bag OUT --frames N --fps F [--storage mcap|sqlite3] [--encoding mono8|mono16]
                       [--seed S] [--scenario NAME] [--size H W] [--overwrite]
    fluoro-sim preview OUT.png [--seed S] [--rows R --cols C] [--size H W] [--overwrite]
    fluoro-sim bench [--frames N] [--size H W] [--seed S]

Bad arguments and unwritable outputs end with one line on stderr and exit code 2; an
existing non-empty output is never replaced without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fluoro_perception.cli.argtypes import non_negative_int, positive_float, positive_int

#: Stamp of the first frame of a simulated bag: 2023-11-14T22:13:20Z [ns]. Fixed so
#: that two runs with the same seed produce identical bags.
BAG_EPOCH_NS = 1_700_000_000 * 1_000_000_000
_MIXED = "mixed"
#: ``fluoro-sim dataset --negatives``: the scenes of every scenario without any guidewire
#: (and so without a stent on it), contrast-filled vessel trees in most sequences, three
#: times the distractors (leads, sternal wires, clips, bone edges): issue 12, target 3.
HARD_NEGATIVES = {
    "wire_absent_probability": 1.0,
    "contrast_probability": 0.7,
    "residual_contrast_probability": 0.5,
    "distractor_scale": 3.0,
}


# ----------------------------------------------------------------------------- arg types


def _image_side(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer size [px]") from None
    if not 32 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"{value} px is out of range; expected 32..4096 [px]")
    return value


def _scenario_names() -> list[str]:
    from fluoro_perception.sim import SCENARIOS

    return list(SCENARIOS)


def _scenario(text: str) -> str | None:
    if text == _MIXED:
        return None
    names = _scenario_names()
    if text not in names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {text!r}; expected {_MIXED} or one of {', '.join(names)}"
        )
    return text


# ----------------------------------------------------------------------------- helpers


def sequence_seeds(seed: int, count: int) -> list[int]:
    """Independent per-sequence seeds derived from one user seed (numpy SeedSequence),
    so that datasets made with neighbouring seeds share no sequence."""
    children = np.random.SeedSequence(seed).spawn(count)
    return [int(child.generate_state(1, dtype=np.uint32)[0]) for child in children]


def _config_dict(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config):
        return {
            k: v
            for k, v in dataclasses.asdict(config).items()
            if isinstance(v, str | int | float | bool | type(None) | list | dict | tuple)
        }
    return {"repr": repr(config)}


def _simulate(
    seed: int, config: Any, n_frames: int, sequence_id: str, step: int = 1
) -> Iterator[Any]:
    from fluoro_perception.sim import SequenceSimulator

    simulator = SequenceSimulator(seed, config, sequence_id=sequence_id)
    return (simulator.frames(1, step)[0] for _ in range(n_frames))  # lazy: one at a time


def _progress(iterable: Any, total: int, description: str, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, unit="frame", disable=quiet)


def bag_stamp_ns(frame_number: int, fps: float) -> int:
    """Header stamp of frame ``frame_number`` of a bag at ``fps`` [ns]."""
    return BAG_EPOCH_NS + round(frame_number * 1e9 / fps)


# ----------------------------------------------------------------------------- commands


def _run_dataset(args: argparse.Namespace) -> int:
    from fluoro_perception.sim import SimConfig
    from fluoro_perception.sim.dataset import DatasetWriter

    height, width = args.size
    config = SimConfig(
        height=height,
        width=width,
        scenario=args.scenario,
        bit_depth=args.bit_depth,
        **(HARD_NEGATIVES if args.negatives else {}),
    )
    generator = {
        "tool": "fluoro-sim dataset",
        **({"negatives": True} if args.negatives else {}),
        "seed": args.seed,
        "sequences": args.sequences,
        "frames_per_sequence": args.frames,
        **({"frame_step": args.frame_step} if args.frame_step != 1 else {}),
        "scenario": args.scenario or _MIXED,
        "sim_config": _config_dict(config),
    }
    seeds = sequence_seeds(args.seed, args.sequences)
    total = args.sequences * args.frames
    with DatasetWriter(args.out, generator=generator, overwrite=args.overwrite) as writer:
        frames = itertools.chain.from_iterable(
            _simulate(
                sequence_seed, config, args.frames, f"seq{args.seed}_{index:04d}", args.frame_step
            )
            for index, sequence_seed in enumerate(seeds)
        )
        for frame in _progress(frames, total, "dataset", args.quiet):
            writer.add_frame(frame)
    print(f"wrote {writer.frame_count} frames in {args.sequences} sequences to {args.out}")
    return 0


def _run_styleset(args: argparse.Namespace) -> int:
    from fluoro_perception.sim.dataset import DatasetWriter
    from fluoro_perception.sim.styles import styled_frames

    height, width = args.size
    generator = {
        "tool": "fluoro-sim styleset",
        "style": args.style,
        "seed": args.seed,
        "sequences": args.sequences,
        "frames_per_sequence": args.frames,
        "scenario": args.scenario or _MIXED,
    }
    seeds = sequence_seeds(args.seed, args.sequences)
    total = args.sequences * args.frames
    with DatasetWriter(args.out, generator=generator, overwrite=args.overwrite) as writer:
        frames = itertools.chain.from_iterable(
            styled_frames(
                sequence_seed,
                args.style,
                args.frames,
                f"{args.style}{args.seed}_{index:04d}",
                height=height,
                width=width,
                scenario=args.scenario,
            )
            for index, sequence_seed in enumerate(seeds)
        )
        for frame in _progress(frames, total, f"styleset {args.style}", args.quiet):
            writer.add_frame(frame)
    print(
        f"wrote {writer.frame_count} frames in {args.sequences} sequences of style "
        f"{args.style!r} to {args.out}"
    )
    return 0


def _run_bag(args: argparse.Namespace) -> int:
    from fluoro_perception.bagio import BagWriter
    from fluoro_perception.sim import SimConfig

    height, width = args.size
    # mono16 carries 12-bit detector data (the usual depth of flat-panel fluoroscopy)
    bit_depth = 8 if args.encoding == "mono8" else 12
    config = SimConfig(
        height=height, width=width, fps=args.fps, scenario=args.scenario, bit_depth=bit_depth
    )
    custom = {
        "fluoro_sim.seed": str(args.seed),
        "fluoro_sim.scenario": args.scenario or _MIXED,
        "fluoro_sim.fps": repr(args.fps),
        "fluoro_sim.bit_depth": str(bit_depth),
        "fluoro_sim.epoch_ns": str(BAG_EPOCH_NS),
    }
    frames = _simulate(args.seed, config, args.frames, f"bag{args.seed}")
    with BagWriter(
        args.out,
        storage=args.storage,
        overwrite=args.overwrite,
        custom_data=custom,
        compress=args.compress,
    ) as bag:
        for number, frame in enumerate(_progress(frames, args.frames, "bag", args.quiet)):
            bag.write_sim_frame(
                frame,
                bag_stamp_ns(number, args.fps),
                encoding=args.encoding,
                markers=not args.no_markers,
            )
    counts = bag.message_counts
    print(
        f"wrote {counts.get('/fluoro/image_raw', 0)} frames ({sum(counts.values())} messages on "
        f"{len(counts)} topics) to {args.out} [{args.storage}, {args.encoding}]"
    )
    return 0


def _run_preview(args: argparse.Namespace) -> int:
    from fluoro_perception.sim.preview import write_preview

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"preview output {out} exists; pass --overwrite or choose a new path")
    if out.is_dir():
        raise IsADirectoryError(f"preview output {out} is a folder; expected a .png file path")
    sheet = write_preview(
        out,
        seed=args.seed,
        rows=args.rows,
        cols=args.cols,
        size=tuple(args.size),
        panel_size=args.panel,
    )
    size_kib = out.stat().st_size / 1024.0
    print(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]} px, {size_kib:.0f} KiB)")
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from fluoro_perception.sim.bench import bench

    height, width = args.size
    # bench prints frames/s per scenario itself
    bench(n_frames=args.frames, height=height, width=width, seed=args.seed)
    return 0


# ----------------------------------------------------------------------------- parser


def _add_size(parser: argparse.ArgumentParser, default: tuple[int, int]) -> None:
    parser.add_argument(
        "--size",
        nargs=2,
        type=_image_side,
        default=list(default),
        metavar=("H", "W"),
        help=f"image height and width [px] (default: {default[0]} {default[1]})",
    )


def _add_scenario(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        type=_scenario,
        default=None,
        help=f"simulator scenario, or '{_MIXED}' to draw one per sequence (default: {_MIXED})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluoro-sim",
        description="Fluoroscopy simulator tools: datasets, rosbags, previews, benchmark.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    dataset = sub.add_parser(
        "dataset",
        help="write a dataset folder (PNG frames/masks + annotations.jsonl)",
        description="Write a dataset folder; format in docs/dataset_format.md.",
    )
    dataset.add_argument("out", type=Path, metavar="OUT", help="output folder")
    dataset.add_argument("--sequences", type=positive_int, required=True, help="sequences")
    dataset.add_argument("--frames", type=positive_int, required=True, help="frames per sequence")
    dataset.add_argument("--seed", type=non_negative_int, default=0, help="master seed")
    _add_size(dataset, (512, 512))
    _add_scenario(dataset)
    dataset.add_argument(
        "--bit-depth", type=int, choices=(8, 12, 16), default=8, help="image bit depth"
    )
    dataset.add_argument(
        "--negatives",
        action="store_true",
        help="hard negatives: no guidewire (nor stent), more contrast and distractors",
    )
    dataset.add_argument(
        "--frame-step",
        type=positive_int,
        default=1,
        help="keep every K-th frame of each run (default 1: consecutive; 10 at 15 "
        "frames/s spans a contrast injection's wash-in and wash-out in 3 frames)",
    )
    dataset.set_defaults(func=_run_dataset)

    from fluoro_perception.sim.styles import STYLE_CHOICES

    styleset = sub.add_parser(
        "styleset",
        help="write a style-held-out dataset (settings the training stream never draws)",
        description="Write a dataset rendered in a held-out style (docs/simulator.md, "
        "fluoro_perception.sim.styles): evaluation only, never training.",
    )
    styleset.add_argument("out", type=Path, metavar="OUT", help="output folder")
    styleset.add_argument("--style", choices=STYLE_CHOICES, required=True, help="held-out factor")
    styleset.add_argument("--sequences", type=positive_int, required=True, help="sequences")
    styleset.add_argument("--frames", type=positive_int, required=True, help="frames per sequence")
    styleset.add_argument("--seed", type=non_negative_int, default=0, help="master seed")
    _add_size(styleset, (512, 512))
    _add_scenario(styleset)
    styleset.set_defaults(func=_run_styleset)

    bag = sub.add_parser(
        "bag",
        help="write a rosbag2 of simulated frames with ground truth",
        description="Write a rosbag2 (topics in docs/bag_format.md).",
    )
    bag.add_argument("out", type=Path, metavar="OUT", help="output bag folder")
    bag.add_argument("--frames", type=positive_int, required=True, help="number of frames")
    bag.add_argument("--fps", type=positive_float, required=True, help="frame rate [Hz]")
    bag.add_argument(
        "--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage plugin"
    )
    bag.add_argument(
        "--encoding",
        choices=("mono8", "mono16"),
        default="mono8",
        help="image encoding; mono16 carries 12-bit data",
    )
    bag.add_argument("--seed", type=non_negative_int, default=0, help="simulator seed")
    _add_size(bag, (512, 512))
    _add_scenario(bag)
    bag.add_argument(
        "--no-markers", action="store_true", help="skip the MarkerArray ground-truth topic"
    )
    bag.add_argument(
        "--compress",
        action="store_true",
        help="zstd compression (MCAP chunks / SQLite3 messages)",
    )
    bag.set_defaults(func=_run_bag)

    preview = sub.add_parser(
        "preview",
        help="render a contact sheet of simulated frames with ground-truth overlays",
        description="Contact sheet: raw frame | overlay per tile, one scenario per tile.",
    )
    preview.add_argument("out", type=Path, metavar="OUT.png", help="output PNG")
    preview.add_argument("--seed", type=non_negative_int, default=0, help="first seed")
    preview.add_argument("--rows", type=positive_int, default=3, help="tile rows")
    preview.add_argument("--cols", type=positive_int, default=2, help="tile columns")
    _add_size(preview, (512, 512))
    preview.add_argument(
        "--panel", type=_image_side, default=256, help="panel height in the sheet [px]"
    )
    preview.set_defaults(func=_run_preview)

    bench_parser = sub.add_parser(
        "bench", help="measure simulator speed", description="Print simulator frames/s."
    )
    bench_parser.add_argument("--frames", type=positive_int, default=100, help="frames")
    _add_size(bench_parser, (512, 512))
    bench_parser.add_argument("--seed", type=non_negative_int, default=0, help="seed")
    bench_parser.set_defaults(func=_run_bench)

    for name in ("dataset", "styleset", "bag", "preview"):
        target = sub.choices[name]
        target.add_argument(
            "--overwrite", action="store_true", help="replace an existing output of this tool"
        )
        if name != "preview":
            target.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``fluoro-sim``; returns the exit code (0 ok, 2 usage/output error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argparse error (2, message printed)
        return int(exc.code or 0)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError) as exc:
        # DatasetError and BagError are ValueErrors: one clear line, no traceback
        print(f"fluoro-sim {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
