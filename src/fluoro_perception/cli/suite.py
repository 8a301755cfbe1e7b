"""``fluoro-perception suite``: one model on every test set of issue 12, one table.

Makes the test sets once (cached under ``--data``, fixed seeds, never training seeds),
runs ``evaluate`` on each and writes ``suite.md`` and ``suite.json`` under ``--output``
with one row per set, plus each set's own report (``<set>/report.md``):

* ``heldout``: 48 unseen simulator sequences x 3 frames, every scenario (the set of
  ``models/default.md``);
* ``negatives``: hard negatives, no guidewire (``fluoro-sim dataset --negatives``);
* ``vessels``: hard negatives under contrast-filled vessel trees (contrast runs, no
  guidewire, every 10th frame: wash-in, full, wash-out);
* ``contrast_wires``: the same kind of runs with their wires: how much of the predicted
  wire lies on the filled vessels (``vessel confusion``);
* ``style_none`` ... ``style_all``: the style-held-out renders (``fluoro-sim styleset``),
  the same sequences with no held-out factor, each factor alone and all together;
* ``foreign_wires``, ``foreign_negatives``: the independent generator's frames
  (``--foreign``, default ``../shared/data/foreign_check``), when present.

Examples::

    fluoro-perception suite --output out/suite/default
    fluoro-perception suite --model models/best.onnx --output out/suite/best
    fluoro-perception suite --baseline frangi --output out/suite/frangi
    fluoro-perception suite --sets heldout negatives --sequences 4 --output out/suite/quick

Evaluation only: none of these sets is ever used for training or model selection.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fluoro_perception.cli.argtypes import positive_int
from fluoro_perception.cli.infer import add_model_arguments
from fluoro_perception.jsonsafe import json_safe

#: Set name -> (fluoro-sim arguments before OUT is known, sequences, seed). ``{n}`` is
#: the sequence count.
_SIM_SETS: dict[str, tuple[list[str], int, int]] = {
    "heldout": (["dataset"], 48, 424242),
    "negatives": (["dataset", "--negatives"], 24, 515151),
    # every 10th frame (0, 0.67, 1.33 s at 15 frames/s) of contrast runs, so the vessel
    # trees are filling, full and washing out; the consecutive frames of the sets above
    # cover 0-0.13 s, before most boluses have arrived
    "vessels": (
        ["dataset", "--negatives", "--scenario", "contrast", "--frame-step", "10"],
        24,
        717171,
    ),
    "contrast_wires": (["dataset", "--scenario", "contrast", "--frame-step", "10"], 24, 818181),
}
_STYLE_SEQUENCES, _STYLE_SEED = 16, 616161
FRAMES_PER_SEQUENCE = 3
DEFAULT_FOREIGN = Path("../shared/data/foreign_check")
SUITE_FILE = "suite.json"

#: Table columns: (heading, summary key path, digits).
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("frames", "num_frames", 0),
    ("centerline F1", "centerline_f1_mean", 3),
    ("precision", "guidewire_precision", 3),
    ("sensitivity", "guidewire_sensitivity", 3),
    ("primary tip correct", "primary_tip_correct_rate", 3),
    ("tip error median / p95 [px]", "tip_error_px.median|tip_error_px.p95", 1),
    ("tips found", "tip_detection_rate", 3),
    ("both wires", "both_wires_found_rate", 3),
    ("stent Dice", "stent_dice", 3),
    ("wire on negatives", "wire_reported_on_negative_rate", 3),
    ("stents on negatives", "stents_reported_on_negative", 0),
    ("confusion share", "confusion_share", 3),
    ("vessel confusion", "confusion_share_vessel", 3),
    ("latency median [ms]", "latency_ms.median", 1),
)


def set_names(foreign: Path | None) -> list[str]:
    """Every set of the suite, in table order (foreign ones only when present)."""
    from fluoro_perception.sim.styles import STYLE_CHOICES

    names = [*_SIM_SETS, *(f"style_{s}" for s in STYLE_CHOICES)]
    if foreign is not None and (foreign / "wires").is_dir():
        names += ["foreign_wires", "foreign_negatives"]
    return names


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``suite`` on the ``fluoro-perception`` dispatcher."""
    parser = subparsers.add_parser(
        "suite",
        help="evaluate one model on every test set (held-out, negatives, styles, foreign)",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", type=Path, required=True, metavar="DIR", help="report folder")
    add_model_arguments(parser)
    parser.add_argument(
        "--baseline",
        choices=("frangi",),
        default=None,
        help="evaluate the classical baseline instead of the network",
    )
    parser.add_argument("--oracle", action="store_true", help="the ground truth as the network")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("out/suite_data"),
        metavar="DIR",
        help="where the test sets are made once and reused (default out/suite_data)",
    )
    parser.add_argument(
        "--foreign",
        type=Path,
        default=DEFAULT_FOREIGN,
        metavar="DIR",
        help="the foreign check set with wires/ and negatives/ (default %(default)s)",
    )
    parser.add_argument("--sets", nargs="*", default=None, metavar="NAME", help="only these sets")
    parser.add_argument(
        "--sequences",
        type=positive_int,
        default=None,
        metavar="N",
        help="sequences per simulated set (default 48 held-out, 24 negatives, 16 per style)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def make_set(name: str, data: Path, sequences: int | None, foreign: Path, quiet: bool) -> Path:
    """The dataset folder of set ``name``, simulated into ``data`` when missing."""
    from fluoro_perception.sim.cli import main as sim_main

    if name.startswith("foreign_"):
        folder = foreign / name.removeprefix("foreign_")
        if not folder.is_dir():
            raise FileNotFoundError(f"foreign check set {folder} not found; pass --foreign DIR")
        return folder
    count = sequences
    if name in _SIM_SETS:
        command, default_count, seed = _SIM_SETS[name]
    elif name.startswith("style_"):
        command = ["styleset", "--style", name.removeprefix("style_")]
        default_count, seed = _STYLE_SEQUENCES, _STYLE_SEED
    else:
        raise ValueError(f"unknown set {name!r}; expected one of {set_names(foreign)}")
    count = count or default_count
    folder = data / f"{name}_{count}x{FRAMES_PER_SEQUENCE}"
    if (folder / "annotations.jsonl").is_file():
        return folder
    argv = [
        command[0],
        str(folder),
        *command[1:],
        "--sequences",
        str(count),
        "--frames",
        str(FRAMES_PER_SEQUENCE),
        "--seed",
        str(seed),
        "--overwrite",
    ]
    if sim_main([*argv, *(["--quiet"] if quiet else [])]) != 0:
        raise RuntimeError(f"could not make the test set {name} in {folder}")
    return folder


def _cell(summary: dict, path: str, digits: int) -> str:
    from fluoro_perception.evaluation.report import summary_value

    parts = []
    for key in path.split("|"):
        value = summary_value(summary, key)
        if value is None:
            parts.append("n/a")
        elif digits == 0:
            parts.append(f"{int(value)}")
        else:
            parts.append(f"{float(value):.{digits}f}")
    return " / ".join(parts)


def render_table(rows: dict[str, dict], title: str) -> str:
    """Markdown table of the suite: one row per set, :data:`COLUMNS` as columns, and the
    change of centerline F1 against ``style_none`` for the style sets."""
    head = ["set", *(c[0] for c in COLUMNS), "centerline F1 vs style_none"]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    reference = rows.get("style_none", {}).get("centerline_f1_mean")
    for name, summary in rows.items():
        delta = "n/a"
        value = summary.get("centerline_f1_mean")
        if name.startswith("style_") and name != "style_none" and None not in (reference, value):
            delta = f"{value - reference:+.3f}"
        cells = [_cell(summary, path, digits) for _, path, digits in COLUMNS]
        lines.append("| " + " | ".join([name, *cells, delta]) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Run ``suite``; exit code 0, or 3 when any set had frames that failed."""
    from fluoro_perception.cli import evaluate

    if args.baseline and args.oracle:
        raise ValueError("give --baseline or --oracle, not both")
    foreign = args.foreign if args.foreign.is_dir() else None
    names = args.sets or set_names(foreign)
    rows: dict[str, dict] = {}
    worst_code = 0
    for name in names:
        folder = make_set(name, args.data, args.sequences, args.foreign, args.quiet)
        print(f"suite: {name} ({folder})", file=sys.stderr)
        namespace = argparse.Namespace(
            dataset=folder,
            output=args.output / name,
            model=args.model,
            providers=args.providers,
            max_frames=None,
            worst=6,
            oracle=args.oracle,
            baseline=args.baseline,
            overwrite=True,
            quiet=args.quiet,
        )
        worst_code = max(worst_code, evaluate.run(namespace))
        document = json.loads((args.output / name / "metrics.json").read_text("utf-8"))
        rows[name] = document["summary"]
        model = document.get("model", {})
    title = f"Suite: {model.get('architecture', '?')} {model.get('path', '')}".strip()
    (args.output / "suite.md").write_text(render_table(rows, title), "utf-8")
    (args.output / SUITE_FILE).write_text(
        json.dumps(json_safe({"model": model, "sets": rows}), indent=2, allow_nan=False),
        "utf-8",
    )
    print(render_table(rows, title))
    return worst_code


__all__ = ["COLUMNS", "add_parser", "make_set", "render_table", "run", "set_names"]
