"""Dataset folders: simulated (or user-annotated) frames as PNG files plus JSON annotations.

The exact format is documented in ``docs/dataset_format.md``. In short::

    ROOT/
      dataset.json                      header: format, version, classes, generator, sequences
      annotations.jsonl                 one JSON object per frame (geometry + file paths)
      sequences/<sequence_id>/images/<frame:06d>.png     uint8 or uint16 grey image
      sequences/<sequence_id>/labels/<frame:06d>.png     uint8 class indices
      sequences/<sequence_id>/instances/<frame:06d>.png  uint8 wire instance ids (optional)
      sequences/<sequence_id>/field/<frame:06d>.png      uint8 0/255 exposed field (optional)

Pixel coordinates follow :mod:`fluoro_perception.core.types` (``(x, y)``, x right, y down,
pixel centres at integers); angles ``atan2(dy, dx)`` [rad]. Splits are made by sequence,
never by frame, so consecutive (nearly identical) frames never straddle train and test.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fluoro_perception.core.types import GT_CLASS_NAMES, GUIDEWIRE
from fluoro_perception.sim.types import SimFrame, StentTruth, WireTruth

DATASET_FORMAT = "fluoro_perception.dataset"
DATASET_FORMAT_VERSION = 1
HEADER_FILE = "dataset.json"
ANNOTATIONS_FILE = "annotations.jsonl"
#: Characters allowed in a sequence id (it becomes a folder name).
_SEQUENCE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class DatasetError(ValueError):
    """A dataset folder or one of its files is malformed (one-line message with location)."""


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FrameRecord:
    """One line of ``annotations.jsonl``, parsed and validated (file paths not yet read).

    Attributes
    ----------
    sequence_id : str
        Sequence the frame belongs to.
    frame_index : int
        Index within the sequence (>= 0).
    image_path, labels_path : Path
        Absolute paths of the image and class-index PNGs.
    instances_path, field_path : Path or None
        Absolute paths of the optional wire-instance and field PNGs.
    timestamp_s : float
        Time of the frame within its sequence [s].
    bit_depth : int or None
        Significant bits of the image (8, 12 or 16); None = infer from the PNG dtype.
    pixel_spacing_m : float
        Detector pixel size [m/px]; NaN when neither the record nor the header gives it.
    scenario : str
        Simulator scenario name or a user label (``""`` if unknown).
    wires : list of WireTruth
        Wires, in file order (may be empty).
    stents : list of StentTruth
        Stents (may be empty).
    params : dict
        Free-form generator parameters of this frame.
    line_number : int
        1-based line in ``annotations.jsonl`` (for error messages).
    """

    sequence_id: str
    frame_index: int
    image_path: Path
    labels_path: Path
    instances_path: Path | None
    field_path: Path | None
    timestamp_s: float
    bit_depth: int | None
    pixel_spacing_m: float
    scenario: str
    wires: list[WireTruth] = field(default_factory=list)
    stents: list[StentTruth] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    line_number: int = 0


@dataclass(frozen=True)
class Dataset:
    """A dataset folder read by :func:`read_dataset`.

    Attributes
    ----------
    root : Path
        Folder of ``dataset.json``.
    header : dict
        Parsed ``dataset.json``.
    records : list of FrameRecord
        Every frame, ordered by (sequence, frame index).
    """

    root: Path
    header: dict
    records: list[FrameRecord]

    @property
    def sequence_ids(self) -> list[str]:
        """Distinct sequence ids in order of first appearance."""
        return list(dict.fromkeys(r.sequence_id for r in self.records))

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.header["classes"])

    def records_of(self, sequence_ids: Iterable[str]) -> list[FrameRecord]:
        """Records of the given sequences (in dataset order)."""
        wanted = set(sequence_ids)
        unknown = wanted - set(self.sequence_ids)
        if unknown:
            raise ValueError(
                f"sequence ids {sorted(unknown)} are not in dataset {self.root}; "
                f"known ids start with {self.sequence_ids[:5]}"
            )
        return [r for r in self.records if r.sequence_id in wanted]

    def __len__(self) -> int:
        return len(self.records)


# ----------------------------------------------------------------------------- writing


def _relative_paths(sequence_id: str, frame_index: int) -> dict[str, str]:
    name = f"{frame_index:06d}.png"
    base = f"sequences/{sequence_id}"
    return {
        "image": f"{base}/images/{name}",
        "labels": f"{base}/labels/{name}",
        "instances": f"{base}/instances/{name}",
        "field": f"{base}/field/{name}",
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
    """The ``annotations.jsonl`` object of a simulated frame (all fields written)."""
    paths = _relative_paths(frame.sequence_id, frame.frame_index)
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
        _check_sequence_id(frame.sequence_id, "SimFrame.sequence_id")
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


# ----------------------------------------------------------------------------- reading


def _check_sequence_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _SEQUENCE_ID_PATTERN.match(value):
        raise DatasetError(
            f"{where}: sequence_id={value!r}; expected a non-empty string of letters, digits, "
            "'_', '-', '.' (it names a folder)"
        )
    return value


class _Fields:
    """Typed access to one JSON object with errors that name the file, line and key."""

    def __init__(self, data: Any, where: str):
        if not isinstance(data, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {type(data).__name__}")
        self.data = data
        self.where = where

    def get(self, key: str, kind: str, default: Any = ..., *, allow_none: bool = False) -> Any:
        if key not in self.data or (self.data[key] is None and not allow_none):
            if default is ...:
                raise DatasetError(f"{self.where}: required key {key!r} is missing ({kind})")
            return default
        value = self.data[key]
        if value is None:
            return None
        checks = {
            "str": lambda v: isinstance(v, str),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "bool": lambda v: isinstance(v, bool),
            "list": lambda v: isinstance(v, list),
            "dict": lambda v: isinstance(v, dict),
            "point": lambda v: _is_point_list(v, single=True),
            "points": lambda v: _is_point_list(v, single=False),
        }
        if not checks[kind](value):
            shown = json.dumps(value)[:60]
            raise DatasetError(f"{self.where}: key {key!r} = {shown}; expected {kind}")
        if kind == "float" and not math.isfinite(value):
            raise DatasetError(f"{self.where}: key {key!r} = {value}; expected a finite number")
        if kind in ("point", "points"):
            return np.asarray(value, dtype=np.float32).reshape((2,) if kind == "point" else (-1, 2))
        return float(value) if kind == "float" else value


def _is_point_list(value: Any, *, single: bool) -> bool:
    def is_point(p: Any) -> bool:
        return (
            isinstance(p, list)
            and len(p) == 2
            and all(isinstance(c, int | float) and not isinstance(c, bool) for c in p)
            and all(math.isfinite(c) for c in p)
        )

    if single:
        return is_point(value)
    return isinstance(value, list) and all(is_point(p) for p in value)


def _parse_wire(data: Any, where: str, index: int) -> WireTruth:
    fields = _Fields(data, f"{where} wires[{index}]")
    centerline = fields.get("centerline_px", "points")
    if centerline.shape[0] == 0:
        raise DatasetError(
            f"{fields.where}: centerline_px is empty; expected >= 1 point, tip first"
        )
    tip = fields.get("tip_px", "point", centerline[0].copy())
    direction = fields.get("tip_direction_rad", "float", None)
    if direction is None:
        # derive from the first segment, pointing to the tip (project convention)
        if centerline.shape[0] >= 2:
            delta = centerline[0] - centerline[1]
            direction = math.atan2(float(delta[1]), float(delta[0]))
        else:
            direction = 0.0
    return WireTruth(
        instance_id=fields.get("instance_id", "int", index + 1),
        kind=fields.get("kind", "str", "guidewire"),
        centerline_px=centerline,
        tip_px=np.asarray(tip, dtype=np.float32),
        tip_direction_rad=float(direction),
        tip_visible=fields.get("tip_visible", "bool", True),
        width_px=fields.get("width_px", "float", 0.0),
    )


def _parse_stent(data: Any, where: str, index: int) -> StentTruth:
    fields = _Fields(data, f"{where} stents[{index}]")
    outline = fields.get("outline_px", "points")
    if outline.shape[0] < 3:
        raise DatasetError(
            f"{fields.where}: outline_px has {outline.shape[0]} points; expected >= 3"
        )
    # missing shape figures are measured from the outline (minimum-area rectangle)
    (cx, cy), (side_a, side_b), angle_deg = cv2.minAreaRect(outline.astype(np.float32))
    long_side, short_side = max(side_a, side_b), min(side_a, side_b)
    axis = math.radians(angle_deg if side_a >= side_b else angle_deg + 90.0)
    axis = (axis + math.pi / 2) % math.pi - math.pi / 2  # wrap into [-pi/2, pi/2)
    return StentTruth(
        instance_id=fields.get("instance_id", "int", index + 1),
        kind=fields.get("kind", "str", "unknown"),
        outline_px=outline,
        centroid_px=fields.get("centroid_px", "point", np.array([cx, cy], np.float32)),
        axis_rad=fields.get("axis_rad", "float", axis),
        length_px=fields.get("length_px", "float", float(long_side)),
        diameter_px=fields.get("diameter_px", "float", float(short_side)),
        deployed_fraction=fields.get("deployed_fraction", "float", 1.0),
    )


def _resolve_file(root: Path, value: str | None, where: str, key: str) -> Path | None:
    if value is None:
        return None
    relative = Path(value)
    if relative.is_absolute() or ".." in relative.parts:
        raise DatasetError(
            f"{where}: {key}={value!r} must be a path relative to the dataset folder, inside it"
        )
    path = root / relative
    if not path.is_file():
        raise DatasetError(f"{where}: {key} file {value!r} does not exist in {root}")
    return path


def read_header(root: str | Path) -> dict[str, Any]:
    """Read and check ``dataset.json``; a folder without one gets a minimal header.

    A user's folder that only has ``annotations.jsonl`` is accepted: the header then
    defaults to the project's classes and no generator.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"dataset folder {root} does not exist; expected a folder with {ANNOTATIONS_FILE}"
        )
    path = root / HEADER_FILE
    if not path.exists():
        return {
            "format": DATASET_FORMAT,
            "format_version": DATASET_FORMAT_VERSION,
            "classes": list(GT_CLASS_NAMES),
            "generator": None,
            "sequences": [],
        }
    try:
        data = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    fields = _Fields(data, str(path))
    fmt = fields.get("format", "str", DATASET_FORMAT)
    if fmt != DATASET_FORMAT:
        raise DatasetError(f"{path}: format={fmt!r}; expected {DATASET_FORMAT!r}")
    version = fields.get("format_version", "int", DATASET_FORMAT_VERSION)
    if version > DATASET_FORMAT_VERSION or version < 1:
        raise DatasetError(
            f"{path}: format_version={version}; this reader supports 1..{DATASET_FORMAT_VERSION} "
            "(update fluoro_perception)"
        )
    classes = fields.get("classes", "list", list(GT_CLASS_NAMES))
    if not classes or not all(isinstance(c, str) for c in classes) or classes[0] != "background":
        raise DatasetError(
            f"{path}: classes={classes!r}; expected a list of names starting with 'background'"
        )
    sequences = fields.get("sequences", "list", [])
    pixel_spacing = fields.get("pixel_spacing_m", "float", None)
    return {**data, "classes": classes, "sequences": sequences, "pixel_spacing_m": pixel_spacing}


def _parse_record(root: Path, data: Any, where: str, header: dict, line_number: int) -> FrameRecord:
    fields = _Fields(data, where)
    sequence_id = _check_sequence_id(fields.get("sequence_id", "str"), where)
    frame_index = fields.get("frame_index", "int")
    if frame_index < 0:
        raise DatasetError(f"{where}: frame_index={frame_index}; expected >= 0")
    bit_depth = fields.get("bit_depth", "int", None)
    if bit_depth is not None and bit_depth not in (8, 12, 16):
        raise DatasetError(f"{where}: bit_depth={bit_depth}; expected 8, 12 or 16")
    spacing_default = header.get("pixel_spacing_m")
    spacing = fields.get("pixel_spacing_m", "float", spacing_default)
    spacing = float("nan") if spacing is None else float(spacing)
    if not math.isnan(spacing) and spacing <= 0.0:
        raise DatasetError(f"{where}: pixel_spacing_m={spacing}; expected > 0 [m/px]")
    wires_data = fields.get("wires", "list", [])
    stents_data = fields.get("stents", "list", [])
    return FrameRecord(
        sequence_id=sequence_id,
        frame_index=frame_index,
        image_path=_resolve_file(root, fields.get("image", "str"), where, "image"),
        labels_path=_resolve_file(root, fields.get("labels", "str"), where, "labels"),
        instances_path=_resolve_file(
            root, fields.get("instances", "str", None), where, "instances"
        ),
        field_path=_resolve_file(root, fields.get("field", "str", None), where, "field"),
        timestamp_s=fields.get("timestamp_s", "float", 0.0),
        bit_depth=bit_depth,
        pixel_spacing_m=spacing,
        scenario=fields.get("scenario", "str", ""),
        wires=[_parse_wire(w, where, i) for i, w in enumerate(wires_data)],
        stents=[_parse_stent(s, where, i) for i, s in enumerate(stents_data)],
        params=fields.get("params", "dict", {}),
        line_number=line_number,
    )


def read_dataset(root: str | Path) -> Dataset:
    """Read and validate a dataset folder (headers and annotations; PNGs are read lazily).

    Parameters
    ----------
    root : str or Path
        Folder holding ``annotations.jsonl`` (and usually ``dataset.json``).

    Returns
    -------
    Dataset
        Records sorted by (sequence id, frame index).

    Raises
    ------
    DatasetError
        One line naming the file, line and key for any malformed entry, a missing
        referenced file, or a duplicate ``(sequence_id, frame_index)``.
    """
    root = Path(root)
    header = read_header(root)
    path = root / ANNOTATIONS_FILE
    if not path.exists():
        raise DatasetError(
            f"{root} has no {ANNOTATIONS_FILE}; expected a dataset folder (see docs/dataset_format.md)"
        )
    records: list[FrameRecord] = []
    seen: dict[tuple[str, int], int] = {}
    with path.open("r", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"{where}: invalid JSON at column {exc.colno}: {exc.msg}"
                ) from None
            record = _parse_record(root, data, where, header, line_number)
            key = (record.sequence_id, record.frame_index)
            if key in seen:
                raise DatasetError(
                    f"{where}: frame {key[1]} of sequence {key[0]!r} repeats line {seen[key]}; "
                    "each (sequence_id, frame_index) must be unique"
                )
            seen[key] = line_number
            records.append(record)
    if not records:
        raise DatasetError(f"{path} has no frames; expected one JSON object per line")
    records.sort(key=lambda r: (r.sequence_id, r.frame_index))
    return Dataset(root=root, header=header, records=records)


def _read_png(path: Path, where: str) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"{where}: cannot decode {path}; expected a PNG image")
    return image


def _derive_instances(labels: np.ndarray, wires: Sequence[WireTruth]) -> np.ndarray:
    """Wire instance map for data that has none: each guidewire pixel gets the id of the
    nearest annotated centerline (distance transforms of the drawn polylines)."""
    wire_pixels = labels == GUIDEWIRE
    instances = np.zeros(labels.shape, dtype=np.uint8)
    if not wires or not wire_pixels.any():
        return instances
    if len(wires) == 1:
        instances[wire_pixels] = wires[0].instance_id
        return instances
    distances = []
    for wire in wires:
        canvas = np.full(labels.shape, 255, dtype=np.uint8)
        polyline = np.round(np.reshape(wire.centerline_px, (-1, 1, 2))).astype(np.int32)
        cv2.polylines(canvas, [polyline], isClosed=False, color=0, thickness=1)
        distances.append(cv2.distanceTransform(canvas, cv2.DIST_L2, 3))  # (H, W) float32
    nearest = np.argmin(np.stack(distances), axis=0)  # (H, W) index into wires
    ids = np.array([w.instance_id for w in wires], dtype=np.uint8)
    instances[wire_pixels] = ids[nearest[wire_pixels]]
    return instances


def load_frame(record: FrameRecord) -> SimFrame:
    """Read a record's PNGs and return a :class:`SimFrame` (missing optional parts filled).

    Missing instance map: derived from the labels and the wire centerlines
    (:func:`_derive_instances`); missing field mask: the whole image; missing bit depth:
    8 for uint8 PNGs, 16 for uint16 PNGs.
    """
    where = f"annotations line {record.line_number}"
    image = _read_png(record.image_path, where)
    if image.ndim == 3:
        # user data saved as colour PNG: fluoroscopy is grey, so convert rather than fail
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.dtype not in (np.uint8, np.uint16):
        raise DatasetError(
            f"{where}: image {record.image_path} is {image.dtype}; expected uint8 or uint16"
        )
    labels = _read_png(record.labels_path, where)
    if labels.ndim != 2 or labels.dtype != np.uint8 or labels.shape != image.shape[:2]:
        raise DatasetError(
            f"{where}: labels {record.labels_path} is {labels.dtype}{labels.shape}; expected "
            f"uint8 {image.shape[:2]} class indices like the image"
        )
    if int(labels.max()) >= len(GT_CLASS_NAMES):
        raise DatasetError(
            f"{where}: labels {record.labels_path} holds class {int(labels.max())}; expected "
            f"indices 0..{len(GT_CLASS_NAMES) - 1} ({', '.join(GT_CLASS_NAMES)})"
        )
    if record.instances_path is not None:
        instances = _read_png(record.instances_path, where)
        if instances.shape != labels.shape or instances.dtype != np.uint8:
            raise DatasetError(
                f"{where}: instances {record.instances_path} is {instances.dtype}"
                f"{instances.shape}; expected uint8 {labels.shape}"
            )
    else:
        instances = _derive_instances(labels, record.wires)
    if record.field_path is not None:
        field_mask = _read_png(record.field_path, where)
        if field_mask.shape != labels.shape:
            raise DatasetError(
                f"{where}: field {record.field_path} has shape {field_mask.shape}; expected {labels.shape}"
            )
        field_mask = field_mask > 0
    else:
        field_mask = np.ones(labels.shape, dtype=bool)
    bit_depth = record.bit_depth or (8 if image.dtype == np.uint8 else 16)
    if (bit_depth == 8) != (image.dtype == np.uint8):
        raise DatasetError(
            f"{where}: bit_depth={bit_depth} but image {record.image_path} is {image.dtype}; "
            "fix bit_depth (8 for uint8 PNGs, 12/16 for uint16 PNGs)"
        )
    return SimFrame(
        image=image,
        bit_depth=bit_depth,
        labels=labels,
        wire_instances=instances,
        field_mask=field_mask,
        wires=list(record.wires),
        stents=list(record.stents),
        pixel_spacing_m=record.pixel_spacing_m,
        sequence_id=record.sequence_id,
        frame_index=record.frame_index,
        timestamp_s=record.timestamp_s,
        scenario=record.scenario,
        params=dict(record.params),
    )


def iter_frames(
    dataset: Dataset, records: Iterable[FrameRecord] | None = None
) -> Iterator[SimFrame]:
    """Load the frames of ``records`` (default: all) in order."""
    for record in dataset.records if records is None else records:
        yield load_frame(record)


# ----------------------------------------------------------------------------- splits


def split_sequences(
    sequence_ids: Sequence[str],
    fractions: Mapping[str, float] | None = None,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Split sequence ids into named subsets (default train/val/test 0.8/0.1/0.1).

    Parameters
    ----------
    sequence_ids : sequence of str
        Distinct ids (duplicates are an error).
    fractions : mapping of name -> fraction or None
        Fractions >= 0 summing to 1.
    seed : int
        Shuffle seed; the same ids and seed always give the same split.

    Returns
    -------
    dict of name -> list of str
        Every id in exactly one subset (subset order = shuffled order). Counts are
        ``floor(fraction * n)`` with the remainder handed out by largest fractional
        part (ties to the earlier name); afterwards every subset with a non-zero
        fraction that is still empty takes one id from the largest subset while
        ``n >= number of such subsets``. E.g. 10 ids at 0.8/0.1/0.1 -> 8/1/1; 3 ids ->
        1/1/1.
    """
    fractions = dict(fractions or {"train": 0.8, "val": 0.1, "test": 0.1})
    if not fractions or any(
        not isinstance(v, int | float) or isinstance(v, bool) or v < 0 for v in fractions.values()
    ):
        raise ValueError(f"fractions={fractions!r}; expected names -> numbers >= 0 summing to 1")
    if abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"fractions={fractions!r} sum to {sum(fractions.values())}; expected 1")
    ids = list(sequence_ids)
    if len(set(ids)) != len(ids):
        raise ValueError("sequence_ids contains duplicates; pass each sequence id once")
    n = len(ids)
    names = list(fractions)
    exact = [fractions[name] * n for name in names]
    counts = [math.floor(x) for x in exact]
    remainder = n - sum(counts)
    by_fraction_part = sorted(range(len(names)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_fraction_part[:remainder]:
        counts[i] += 1
    wanted = [i for i in range(len(names)) if fractions[names[i]] > 0]
    if n >= len(wanted):
        for i in wanted:
            if counts[i] == 0:
                donor = max(range(len(names)), key=lambda j: counts[j])
                counts[donor] -= 1
                counts[i] += 1
    order = np.random.default_rng(seed).permutation(n)
    shuffled = [ids[k] for k in order]
    result: dict[str, list[str]] = {}
    start = 0
    for name, count in zip(names, counts, strict=True):
        result[name] = shuffled[start : start + count]
        start += count
    return result


def split_dataset(
    dataset: Dataset, fractions: Mapping[str, float] | None = None, seed: int = 0
) -> dict[str, list[FrameRecord]]:
    """Split a dataset's records by sequence (see :func:`split_sequences`)."""
    split = split_sequences(dataset.sequence_ids, fractions, seed)
    return {name: dataset.records_of(ids) for name, ids in split.items()}


__all__ = [
    "ANNOTATIONS_FILE",
    "DATASET_FORMAT",
    "DATASET_FORMAT_VERSION",
    "HEADER_FILE",
    "Dataset",
    "DatasetError",
    "DatasetWriter",
    "FrameRecord",
    "frame_to_record",
    "iter_frames",
    "load_frame",
    "prepare_output_dir",
    "read_dataset",
    "read_header",
    "split_dataset",
    "split_sequences",
    "write_dataset",
]
