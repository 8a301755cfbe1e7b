"""Reading dataset folders: :func:`read_header`, :func:`read_dataset` (headers and
annotations, validated, with one-line errors naming file, line and key) and
:func:`load_frame` / :func:`iter_frames` (the PNGs of a record as a :class:`SimFrame`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fluoro_perception.core.types import GT_CLASS_NAMES, GUIDEWIRE
from fluoro_perception.sim.dataset.records import (
    ANNOTATIONS_FILE,
    DATASET_FORMAT,
    DATASET_FORMAT_VERSION,
    HEADER_FILE,
    Dataset,
    DatasetError,
    FrameRecord,
    check_sequence_id,
)
from fluoro_perception.sim.types import SimFrame, StentTruth, WireTruth


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
    sequence_id = check_sequence_id(fields.get("sequence_id", "str"), where)
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
        vessels_path=_resolve_file(root, fields.get("vessels", "str", None), where, "vessels"),
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
    (:func:`_derive_instances`); missing field mask: the whole image; missing vessel
    mask: ``vessel_mask`` None (no vessel ground truth); missing bit depth: 8 for uint8
    PNGs, 16 for uint16 PNGs.
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
    vessel_mask = None
    if record.vessels_path is not None:
        vessels = _read_png(record.vessels_path, where)
        if vessels.ndim != 2 or vessels.dtype != np.uint8 or vessels.shape != labels.shape:
            raise DatasetError(
                f"{where}: vessels {record.vessels_path} is {vessels.dtype}{vessels.shape}; "
                f"expected a uint8 {labels.shape} 0/255 mask like the image"
            )
        vessel_mask = vessels > 0
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
        vessel_mask=vessel_mask,
    )


def iter_frames(
    dataset: Dataset, records: Iterable[FrameRecord] | None = None
) -> Iterator[SimFrame]:
    """Load the frames of ``records`` (default: all) in order."""
    for record in dataset.records if records is None else records:
        yield load_frame(record)


__all__ = ["iter_frames", "load_frame", "read_dataset", "read_header"]
