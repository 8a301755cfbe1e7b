"""Speed benchmark of the simulator (frames/s with full ground truth).

Run ``python -m fluoro_perception.sim.bench`` (or call :func:`bench`). OpenCV is limited to
one thread so the figure is the single-core rate the task asks for.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from fluoro_perception.sim.physics import image_statistics
from fluoro_perception.sim.sequence import SCENARIOS, SequenceSimulator, SimConfig


def bench(n_frames: int = 100, height: int = 512, width: int = 512, seed: int = 0) -> dict:
    """Time ``n_frames`` frames per scenario on one core and print frames/s.

    Parameters
    ----------
    n_frames : int
        Frames timed per scenario (after construction, which is timed separately).
    height, width : int
        Frame size [px].
    seed : int
        Base seed; scenario k uses ``seed + k``.

    Returns
    -------
    dict
        ``frames_per_s`` (all scenarios together), ``per_scenario`` (frames/s),
        ``setup_s`` (mean sequence construction time [s]) and ``appearance`` (mean
        p1 / p99 / mean / high-pass std of the images, 0-255 scale).
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
        raise ValueError(f"n_frames={n_frames!r} must be a positive int")
    previous_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        per_scenario: dict[str, float] = {}
        setup: list[float] = []
        stats: list[dict] = []
        total_time = 0.0
        for k, scenario in enumerate(SCENARIOS):
            config = SimConfig(height=height, width=width, scenario=scenario)
            start = time.perf_counter()
            simulator = SequenceSimulator(seed + k, config)
            setup.append(time.perf_counter() - start)
            start = time.perf_counter()
            frames = simulator.frames(n_frames)
            elapsed = time.perf_counter() - start
            total_time += elapsed
            per_scenario[scenario] = n_frames / elapsed
            stats += [image_statistics(f.image, f.field_mask, f.bit_depth) for f in frames[::10]]
    finally:
        cv2.setNumThreads(previous_threads)
    result = {
        "frames_per_s": len(SCENARIOS) * n_frames / total_time,
        "per_scenario": per_scenario,
        "setup_s": float(np.mean(setup)),
        "appearance": {key: float(np.mean([s[key] for s in stats])) for key in stats[0]},
        "height": height,
        "width": width,
    }
    print(
        f"simulator {width}x{height}, 1 OpenCV thread: {result['frames_per_s']:.1f} frames/s "
        f"(sequence setup {result['setup_s'] * 1e3:.0f} ms)"
    )
    for scenario, fps in per_scenario.items():
        print(f"  {scenario:12s} {fps:6.1f} frames/s")
    print(
        "  appearance (mean over frames): "
        + ", ".join(f"{k} {v:.1f}" for k, v in result["appearance"].items())
    )
    return result


def appearance_survey(
    seeds: range = range(500, 530), frame_index: int = 2, size: int = 512
) -> dict[str, dict[str, list[float]]]:
    """Appearance statistics over many sequences (default scenario mix), split by look.

    Renders frames ``0..frame_index`` of each seed and measures the last one with
    :func:`~fluoro_perception.sim.physics.image_statistics`; prints and returns the 10th /
    50th / 90th percentiles of each statistic for ``"processed"``, ``"raw"`` and
    ``"all"`` sequences (0-255 scale).
    """
    if isinstance(frame_index, bool) or not isinstance(frame_index, int) or frame_index < 0:
        raise ValueError(f"frame_index={frame_index!r} must be a non-negative int")
    by_look: dict[str, list[dict]] = {"processed": [], "raw": []}
    for seed in seeds:
        simulator = SequenceSimulator(seed, SimConfig(height=size, width=size))
        frame = simulator.frames(frame_index + 1)[-1]
        look = "raw" if simulator.imaging.raw else "processed"
        by_look[look].append(image_statistics(frame.image, frame.field_mask, frame.bit_depth))
    by_look["all"] = by_look["processed"] + by_look["raw"]
    result: dict[str, dict[str, list[float]]] = {}
    for look, stats in by_look.items():
        if not stats:
            continue
        result[look] = {
            key: [float(v) for v in np.percentile([s[key] for s in stats], [10, 50, 90])]
            for key in stats[0]
        }
        print(
            f"  {look:9s} ({len(stats):2d} sequences) 10/50/90th percentiles: "
            + "; ".join(
                f"{k} " + "/".join(f"{v:.1f}" for v in vals) for k, vals in result[look].items()
            )
        )
    return result


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: ``python -m fluoro_perception.sim.bench [--frames N] ...``."""
    parser = argparse.ArgumentParser(description="Simulator speed benchmark (frames/s, one core).")
    parser.add_argument("--frames", type=int, default=100, help="frames per scenario")
    parser.add_argument("--height", type=int, default=512, help="frame height [px]")
    parser.add_argument("--width", type=int, default=512, help="frame width [px]")
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument(
        "--survey",
        type=int,
        default=0,
        help="also print appearance percentiles over this many sequences (seeds 500...)",
    )
    args = parser.parse_args(argv)
    bench(args.frames, args.height, args.width, args.seed)
    if args.survey > 0:
        appearance_survey(range(500, 500 + args.survey), 2, max(args.height, args.width))


if __name__ == "__main__":
    main()
