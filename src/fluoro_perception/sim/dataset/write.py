"""Writing dataset folders: :class:`DatasetWriter` (frame by frame) and
:func:`write_dataset` (all at once).

Each frame becomes its PNGs (image, labels, instances, optional field, and the
contrast-vessel mask when the frame has one) and one line of ``annotations.jsonl``;
``dataset.json`` is written when the writer closes.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fluoro_perception.core.types import GT_CLASS_NAMES
from fluoro_perception.sim.dataset.records import (
    ANNOTATIONS_FILE,
    DATASET_FORMAT,
    DATASET_FORMAT_VERSION,
    HEADER_FILE,
    DatasetError,
    check_sequence_id,
)
from fluoro_perception.sim.types import SimFrame


def _relative_paths(sequence_id: str, frame_index: int) -> dict[str, str]:
    name = f"{frame_index:06d}.png"
    base = f"sequences/{sequence_id}"
    return {
        "image": f"{base}/images/{name}",
        "labels": f"{base}/labels/{name}",
        "instances": f"{base}/instances/{name}",
        "field": f"{base}/field/{name}",
        "vessels": f"{base}/vessels/{name}",
    }


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # PNG level 3: close to the best size of level 9 at a fraction of the time
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
        raise OSError(f"cannot write PNG {path}; check that the folder is writable")


def _points_json(points: np.ndarray, decimals: int = 3) -> list[list[float]]:
    return np.round(np.asarray(points, dtype=np.float64).reshape(-1, 2), decimals).tolist()


def _json_default(value: Any) -> Any:
    """Make numpy scalars/arrays in free-form ``params`` JSON-serializable."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def frame_to_record(frame: SimFrame) -> dict[str, Any]:
    """The ``annotations.jsonl`` object of a simulated frame (all fields written; the
    ``vessels`` path only when the frame has a vessel mask)."""
    paths = _relative_paths(frame.sequence_id, frame.frame_index)
    if frame.vessel_mask is None:
        del paths["vessels"]
    return {
        "sequence_id": frame.sequence_id,
        "frame_index": int(frame.frame_index),
        "timestamp_s": float(frame.timestamp_s),
        **paths,
        "height": int(frame.image.shape[0]),
        "width": int(frame.image.shape[1]),
        "bit_depth": int(frame.bit_depth),
        # NaN (unknown spacing of user data) is not valid JSON: written as null
        "pixel_spacing_m": None
        if math.isnan(float(frame.pixel_spacing_m))
        else float(frame.pixel_spacing_m),
        "scenario": frame.scenario,
        "wires": [
            {
                "instance_id": int(w.instance_id),
                "kind": w.kind,
                "centerline_px": _points_json(w.centerline_px),
                "tip_px": _points_json(w.tip_px)[0],
                "tip_direction_rad": float(w.tip_direction_rad),
                "tip_visible": bool(w.tip_visible),
                "width_px": float(w.width_px),
            }
            for w in frame.wires
        ],
        "stents": [
            {
                "instance_id": int(s.instance_id),
                "kind": s.kind,
                "outline_px": _points_json(s.outline_px),
                "centroid_px": _points_json(s.centroid_px)[0],
                "axis_rad": float(s.axis_rad),
                "length_px": float(s.length_px),
                "diameter_px": float(s.diameter_px),
                "deployed_fraction": float(s.deployed_fraction),
            }
            for s in frame.stents
        ],
        "params": frame.params,
    }


def prepare_output_dir(root: str | Path, *, overwrite: bool = False) -> Path:
    """Create ``root`` for a new dataset; refuse a non-empty folder unless ``overwrite``.

    With ``overwrite`` only a folder that is itself a dataset (has ``dataset.json`` or
    ``annotations.jsonl``) is emptied; any other non-empty folder is refused, so a typo
    can never delete unrelated files.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DatasetError(f"dataset output {root} is a file; expected a folder path")
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise DatasetError(
                f"dataset output {root} exists and is not empty; pass --overwrite or choose a new folder"
            )
        if not ((root / HEADER_FILE).exists() or (root / ANNOTATIONS_FILE).exists()):
            raise DatasetError(
                f"dataset output {root} is not a dataset folder (no {HEADER_FILE}); refusing to "
                "delete it, choose a new folder"
            )
        shutil.rmtree(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create dataset folder {root}: {exc.strerror}") from exc
    return root


class DatasetWriter:
    """Write frames into a dataset folder; use as a context manager.

    Parameters
    ----------
    root : str or Path
        Output folder (created; see :func:`prepare_output_dir` for ``overwrite``).
    generator : Mapping or None
        Description of how the data was made (simulator config, seed, command line),
        stored verbatim in ``dataset.json`` (must be JSON-serializable).
    overwrite : bool
        Replace an existing dataset folder.
    write_field : bool
        Also write the exposed-field PNG of every frame.

    ``dataset.json`` is written on :meth:`close` (so a crashed run leaves no header and
    is recognisable as incomplete); ``annotations.jsonl`` is appended frame by frame.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        generator: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        write_field: bool = True,
    ):
        self.root = prepare_output_dir(root, overwrite=overwrite)
        self.generator = dict(generator) if generator is not None else None
        self.write_field = write_field
        self._sequences: dict[str, dict[str, Any]] = {}
        self._seen: set[tuple[str, int]] = set()
        self._annotations = (self.root / ANNOTATIONS_FILE).open("w", encoding="utf-8")

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self._annotations.close()
        return False

    @property
    def frame_count(self) -> int:
        return len(self._seen)

    def add_frame(self, frame: SimFrame) -> None:
        """Write one frame's PNGs and its annotation line."""
        if not isinstance(frame, SimFrame):
            raise TypeError(f"frame is {type(frame).__name__}; expected a SimFrame")
        check_sequence_id(frame.sequence_id, "SimFrame.sequence_id")
        key = (frame.sequence_id, int(frame.frame_index))
        if key in self._seen:
            raise DatasetError(
                f"frame {frame.frame_index} of sequence {frame.sequence_id!r} was already written; "
                "each (sequence_id, frame_index) must be unique"
            )
        expected_dtype = np.uint8 if frame.bit_depth == 8 else np.uint16
        if frame.image.ndim != 2 or frame.image.dtype != expected_dtype:
            raise ValueError(
                f"frame image is {frame.image.dtype}{frame.image.shape} with bit_depth "
                f"{frame.bit_depth}; expected a 2-D {np.dtype(expected_dtype).name} image"
            )
        record = frame_to_record(frame)
        _write_png(self.root / record["image"], frame.image)
        _write_png(self.root / record["labels"], np.asarray(frame.labels, dtype=np.uint8))
        _write_png(self.root / record["instances"], np.asarray(frame.wire_instances, np.uint8))
        if self.write_field:
            field_png = np.where(np.asarray(frame.field_mask, bool), 255, 0).astype(np.uint8)
            _write_png(self.root / record["field"], field_png)
        else:
            del record["field"]
        if frame.vessel_mask is not None:
            vessels = np.asarray(frame.vessel_mask)
            if vessels.shape != frame.image.shape:
                raise ValueError(
                    f"frame vessel_mask has shape {vessels.shape}; expected the image's "
                    f"{frame.image.shape}"
                )
            _write_png(self.root / record["vessels"], np.where(vessels, 255, 0).astype(np.uint8))
        self._annotations.write(json.dumps(record, default=_json_default) + "\n")
        self._seen.add(key)
        info = self._sequences.setdefault(
            frame.sequence_id,
            {
                "sequence_id": frame.sequence_id,
                "scenario": frame.scenario,
                "n_frames": 0,
                "height": int(frame.image.shape[0]),
                "width": int(frame.image.shape[1]),
                "bit_depth": int(frame.bit_depth),
                "pixel_spacing_m": record["pixel_spacing_m"],
            },
        )
        info["n_frames"] += 1

    def close(self) -> Path:
        """Finish ``annotations.jsonl`` and write ``dataset.json``; returns its path."""
        self._annotations.close()
        header = {
            "format": DATASET_FORMAT,
            "format_version": DATASET_FORMAT_VERSION,
            "classes": list(GT_CLASS_NAMES),
            "coordinates": "pixels (x right, y down, pixel centres at integers); angles "
            "atan2(dy, dx) [rad]",
            "generator": self.generator,
            "sequences": list(self._sequences.values()),
        }
        path = self.root / HEADER_FILE
        path.write_text(json.dumps(header, indent=2, default=_json_default) + "\n", "utf-8")
        return path


def write_dataset(
    root: str | Path,
    frames: Iterable[SimFrame],
    *,
    generator: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write all ``frames`` into a new dataset folder; returns the path of ``dataset.json``."""
    with DatasetWriter(root, generator=generator, overwrite=overwrite) as writer:
        for frame in frames:
            writer.add_frame(frame)
    return Path(root) / HEADER_FILE


__all__ = ["DatasetWriter", "frame_to_record", "prepare_output_dir", "write_dataset"]
