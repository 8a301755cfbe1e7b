"""``fluoro-perception replay``: run the perception stack on a rosbag2 and report.

``--mode offline`` (default) reads the bag and runs the pipeline frame by frame as fast as
possible (deterministic); ``--mode live`` plays the bag over DDS at the recorded rate
(times ``--rate``) into the segmentation node and records its outputs. Both write, under
``--output DIR``: ``output_bag/`` (MCAP, every perception topic), ``replay.json`` and
``replay.md`` (frames, drops, latency, rate), ``errors.jsonl`` (frames that failed, one
record each; unnamed groups for bag messages that could not be read) and, when the bag has
ground truth, the evaluation report (``metrics.json``, ``report.md``, figures). One frame
never ends a replay. Exit code 0 when every frame went through, 3 when some failed (the
files are written all the same), 1 when no frame was processed, 2 on a usage or fatal
error. See ``docs/replay.md``.

Examples::

    fluoro-perception replay runs/sim_bag --output out/replay --model models/my.onnx
    fluoro-perception replay case.mcap --output out/live --mode live --rate 2 \
        --topic /carm/image
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fluoro_perception.bagio import IMAGE_TOPIC
from fluoro_perception.cli.argtypes import positive_float


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``replay`` on the ``fluoro-perception`` dispatcher."""
    from fluoro_perception.cli.infer import add_model_arguments

    parser = subparsers.add_parser(
        "replay",
        help="run perception on a rosbag2 (offline or live over DDS) and report",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bag", type=Path, metavar="BAG", help="rosbag2 directory, .mcap or .db3")
    parser.add_argument("--output", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--mode",
        choices=("offline", "live"),
        default="offline",
        help="offline: pipeline frame by frame; live: player -> node -> recorder over DDS",
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=1.0,
        help="live playback speed factor (1 = recorded rate)",
    )
    add_model_arguments(parser)
    parser.add_argument("--topic", default=IMAGE_TOPIC, help="image topic of the bag")
    parser.add_argument(
        "--pixel-spacing",
        type=positive_float,
        default=None,
        metavar="M",
        help="detector pixel spacing [m/px]; default: from the bag's ground-truth markers, "
        "else 2e-4",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        help="live: give up after this many seconds [s] (default: bag length / rate + 60)",
    )
    parser.add_argument("--worst", type=int, default=6, help="worst-frame thumbnails in the report")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous replay in DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``replay``; 0 when every frame went through, 3 (``EXIT_FRAMES_FAILED``) when some
    failed (``errors.jsonl``), 1 when none was processed."""
    from fluoro_perception.evaluation.frame_errors import EXIT_FRAMES_FAILED
    from fluoro_perception.replay import replay_live, replay_offline

    if args.worst < 0:
        raise ValueError(f"--worst {args.worst}; expected >= 0")
    common = dict(
        model=args.model,
        providers=args.providers,
        topic=args.topic,
        pixel_spacing_m=args.pixel_spacing,
        overwrite=args.overwrite,
        worst=args.worst,
        progress=not args.quiet,
    )
    if args.mode == "offline":
        summary = replay_offline(args.bag, args.output, **common)
    else:
        summary = replay_live(
            args.bag, args.output, rate=args.rate, timeout_s=args.timeout, **common
        )
    print(summary.one_line())
    for reason, count in summary.skipped.items():
        print(f"skipped: {reason}: {count}")
    print(f"output bag: {summary.output_bag}")
    print(f"summary: {Path(args.output) / 'replay.md'}")
    if summary.report:
        print(f"evaluation report: {summary.report['report']}")
    by_stage = ", ".join(f"{stage}: {n}" for stage, n in summary.frames_failed.items())
    print(f"failed frames: {summary.num_failed}" + (f" ({by_stage})" if by_stage else ""))
    print(f"errors: {summary.errors_file}")
    if summary.frames_processed == 0:
        print("replay: no frame was processed", flush=True)
        return 1
    return EXIT_FRAMES_FAILED if summary.num_failed else 0
