"""The output folder of a replay: created once, never clobbering an earlier run."""

from __future__ import annotations

from pathlib import Path

from fluoro_perception.replay.summary import SUMMARY_JSON

#: Output bag folder inside the replay output directory.
OUTPUT_BAG_DIR = "output_bag"


def prepare_output_dir(output_dir: str | Path, overwrite: bool) -> tuple[Path, Path]:
    """Create ``output_dir``; return it and the output bag path (never clobbering a run)."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {out} is a file; expected a folder (new or empty)")
    bag_path = out / OUTPUT_BAG_DIR
    if (out / SUMMARY_JSON).exists() and not overwrite:
        raise ValueError(
            f"--output {out} already holds {SUMMARY_JSON}; pass --overwrite or choose a new folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    if bag_path.exists():
        if not overwrite:
            raise ValueError(
                f"--output {out} already holds {OUTPUT_BAG_DIR}; pass --overwrite or choose a "
                "new folder"
            )
        import shutil

        shutil.rmtree(bag_path)
    return out, bag_path
