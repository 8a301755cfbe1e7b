"""``results.jsonl``: the per-frame output of ``fluoro-perception infer`` (writer + validator).

Schema (``docs/results_format.md``), one JSON object per line with EXACTLY these keys:

``frame`` : str
    File stem (image folders), ``frame_<index>`` (videos) or header stamp [ns] (bags).
``wires`` : list
    One object per wire, primary first, with exactly ``id`` (int >= 0),
    ``centerline_px`` (``[[x, y], ...]``, >= 1 point, **tip first**), ``tip_px``
    (``[x, y]``, equal to the first centerline point), ``tip_direction_rad`` (float,
    ``atan2(dy, dx)``) and ``confidence`` (float in ``[0, 1]``).
``stents`` : list
    One object per stent with exactly ``centroid_px`` (``[x, y]``), ``axis_rad`` (float),
    ``outline_px`` (closed polygon ``[[x, y], ...]``, >= 3 points) and ``confidence``.
``latency_ms`` : float
    Pipeline time of the frame, preprocessing to masks [ms].

Pixel coordinates are in the input image's grid: x right, y down, pixel centres at
integer coordinates; they are rounded to 0.001 px, angles to 1e-6 rad.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Self, TextIO

import numpy as np

from fluoro_perception.core.types import FrameResult, StentDetection, WireDetection

RESULT_KEYS: tuple[str, ...] = ("frame", "wires", "stents", "latency_ms")
WIRE_KEYS: tuple[str, ...] = ("id", "centerline_px", "tip_px", "tip_direction_rad", "confidence")
STENT_KEYS: tuple[str, ...] = ("centroid_px", "axis_rad", "outline_px", "confidence")
RESULTS_FILE = "results.jsonl"
#: Largest allowed distance between ``tip_px`` and the first centerline point [px]
#: (both are rounded to 0.001 px independently).
TIP_FIRST_TOLERANCE_PX = 2e-3
_POINT_DECIMALS = 3
_ANGLE_DECIMALS = 6


class ResultsFormatError(ValueError):
    """A results record breaks the schema (one line naming the record and the key)."""


def _points(points: np.ndarray) -> list[list[float]]:
    array = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return np.round(array, _POINT_DECIMALS).tolist()


def _point(point: np.ndarray) -> list[float]:
    return _points(np.reshape(point, (1, 2)))[0]


def wire_record(wire: WireDetection) -> dict[str, Any]:
    """The results object of one wire (keys :data:`WIRE_KEYS`)."""
    centerline = _points(wire.centerline_px)
    # tip_px is centerline[0] by the WireDetection contract; write the rounded copy so the
    # file states it exactly
    tip = centerline[0] if centerline else _point(wire.tip_px)
    return {
        "id": int(wire.wire_id),
        "centerline_px": centerline if centerline else [tip],
        "tip_px": tip,
        "tip_direction_rad": round(float(wire.tip_direction_rad), _ANGLE_DECIMALS),
        "confidence": round(float(wire.confidence), _ANGLE_DECIMALS),
    }


def stent_record(stent: StentDetection) -> dict[str, Any]:
    """The results object of one stent (keys :data:`STENT_KEYS`)."""
    return {
        "centroid_px": _point(stent.centroid_px),
        "axis_rad": round(float(stent.axis_rad), _ANGLE_DECIMALS),
        "outline_px": _points(stent.outline_px),
        "confidence": round(float(stent.confidence), _ANGLE_DECIMALS),
    }


def result_record(
    frame_name: str, result: FrameResult, latency_ms: float | None = None
) -> dict[str, Any]:
    """The ``results.jsonl`` object of one frame.

    Parameters
    ----------
    frame_name : str
        Name of the frame (see module docstring).
    result : FrameResult
        Pipeline output (input-grid pixels).
    latency_ms : float or None
        Latency to write [ms]; default ``result.timings_ms["total"]``.
    """
    if not isinstance(result, FrameResult):
        raise TypeError(f"result is {type(result).__name__}; expected a FrameResult")
    if latency_ms is None:
        latency_ms = result.timings_ms.get("total", math.nan)
    return {
        "frame": str(frame_name),
        "wires": [wire_record(w) for w in result.wires],
        "stents": [stent_record(s) for s in result.stents],
        "latency_ms": round(float(latency_ms), 3),
    }


class JsonlWriter:
    """A ``.jsonl`` file written one flushed line at a time (use as a context manager).

    Flushed per line: whatever ends a run, the lines written so far are complete.

    Parameters
    ----------
    path : str or Path
        Output file (replaced, created empty on entry).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stream: TextIO | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stream = self.path.open("w", encoding="utf-8")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _require_open(self) -> TextIO:
        if self._stream is None:
            raise RuntimeError(
                f"{type(self).__name__} for {self.path} is not open; use `with` first"
            )
        return self._stream

    def _write_line(self, record: Mapping[str, Any]) -> None:
        stream = self._require_open()
        # allow_nan=False: the formats promise plain JSON numbers
        stream.write(json.dumps(record, allow_nan=False) + "\n")
        stream.flush()


def iter_jsonl(path: str | Path, error: type[ValueError]) -> Iterator[tuple[str, Any]]:
    """``(where, object)`` of every non-blank line of a ``.jsonl`` file (``where`` is
    ``file:line``); a line that is not JSON raises ``error`` naming the file and line."""
    file_path = Path(path)
    with file_path.open("r", encoding="utf-8") as stream:
        for line_number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            where = f"{file_path}:{line_number}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None


class ResultsWriter(JsonlWriter):
    """Write ``results.jsonl`` one validated line per frame (use as a context manager).

    Parameters
    ----------
    path : str or Path
        Output file (replaced).
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.count = 0
        self._frames: set[str] = set()

    def check(
        self, frame_name: str, result: FrameResult, latency_ms: float | None = None
    ) -> dict[str, Any]:
        """The validated record of one frame, not yet written (see :meth:`write_record`).

        Raises
        ------
        ResultsFormatError
            The record would break the schema (e.g. a frame name already written).
        """
        record = result_record(frame_name, result, latency_ms)
        validate_record(record, where=f"{self.path} frame {frame_name!r}")
        if record["frame"] in self._frames:
            raise ResultsFormatError(
                f"{self.path}: frame {record['frame']!r} written twice; frame names must be unique"
            )
        return record

    def write_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append a record from :meth:`check` as one line, flushed at once; returns it."""
        self._require_open()
        if record["frame"] in self._frames:
            raise ResultsFormatError(
                f"{self.path}: frame {record['frame']!r} written twice; frame names must be unique"
            )
        self._write_line(record)
        self._frames.add(record["frame"])
        self.count += 1
        return record

    def write(self, frame_name: str, result: FrameResult, latency_ms: float | None = None) -> dict:
        """Append one frame (:meth:`check`, then :meth:`write_record`); returns the record.

        Raises
        ------
        ResultsFormatError
            The record would break the schema (e.g. a repeated frame name); nothing is
            written then.
        """
        self._require_open()
        return self.write_record(self.check(frame_name, result, latency_ms))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_point(value: Any, where: str) -> None:
    if not (isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)):
        raise ResultsFormatError(f"{where} = {value!r}; expected [x, y] finite numbers [px]")


def _check_points(value: Any, where: str, minimum: int) -> None:
    if not isinstance(value, list) or len(value) < minimum:
        raise ResultsFormatError(
            f"{where} is {type(value).__name__} of length "
            f"{len(value) if isinstance(value, list) else '-'}; expected a list of >= {minimum} [x, y] points"
        )
    for index, point in enumerate(value):
        _check_point(point, f"{where}[{index}]")


def _check_keys(obj: Any, expected: tuple[str, ...], where: str) -> None:
    if not isinstance(obj, Mapping):
        raise ResultsFormatError(f"{where} is {type(obj).__name__}; expected a JSON object")
    missing = [k for k in expected if k not in obj]
    extra = sorted(k for k in obj if k not in expected)
    if missing or extra:
        raise ResultsFormatError(
            f"{where} has keys {sorted(obj)}; expected exactly {list(expected)} "
            f"(missing {missing}, unexpected {extra})"
        )


def _check_number(value: Any, where: str, low: float = -math.inf, high: float = math.inf) -> None:
    if not _is_number(value) or not low <= value <= high:
        raise ResultsFormatError(
            f"{where} = {value!r}; expected a finite number in [{low}, {high}]"
        )


def validate_record(record: Any, where: str = "record") -> None:
    """Check one ``results.jsonl`` object against the schema (module docstring).

    Raises
    ------
    ResultsFormatError
        One line naming ``where``, the key and what was expected.
    """
    _check_keys(record, RESULT_KEYS, where)
    if not isinstance(record["frame"], str) or not record["frame"]:
        raise ResultsFormatError(
            f"{where}: frame = {record['frame']!r}; expected a non-empty string"
        )
    _check_number(record["latency_ms"], f"{where}: latency_ms", 0.0)
    if not isinstance(record["wires"], list):
        raise ResultsFormatError(
            f"{where}: wires is {type(record['wires']).__name__}; expected a list"
        )
    if not isinstance(record["stents"], list):
        raise ResultsFormatError(
            f"{where}: stents is {type(record['stents']).__name__}; expected a list"
        )
    ids: set[int] = set()
    for index, wire in enumerate(record["wires"]):
        at = f"{where}: wires[{index}]"
        _check_keys(wire, WIRE_KEYS, at)
        wire_id = wire["id"]
        if isinstance(wire_id, bool) or not isinstance(wire_id, int) or wire_id < 0:
            raise ResultsFormatError(f"{at}.id = {wire_id!r}; expected an int >= 0")
        if wire_id in ids:
            raise ResultsFormatError(f"{at}.id = {wire_id} repeats; wire ids must be unique")
        ids.add(wire_id)
        _check_points(wire["centerline_px"], f"{at}.centerline_px", 1)
        _check_point(wire["tip_px"], f"{at}.tip_px")
        first = wire["centerline_px"][0]
        gap = math.hypot(first[0] - wire["tip_px"][0], first[1] - wire["tip_px"][1])
        if gap > TIP_FIRST_TOLERANCE_PX:
            raise ResultsFormatError(
                f"{at}: tip_px {wire['tip_px']} is {gap:.3f} px from centerline_px[0] {first}; "
                "expected the centerline ordered tip first"
            )
        _check_number(
            wire["tip_direction_rad"], f"{at}.tip_direction_rad", -math.pi - 1e-6, math.pi + 1e-6
        )
        _check_number(wire["confidence"], f"{at}.confidence", 0.0, 1.0)
    for index, stent in enumerate(record["stents"]):
        at = f"{where}: stents[{index}]"
        _check_keys(stent, STENT_KEYS, at)
        _check_point(stent["centroid_px"], f"{at}.centroid_px")
        _check_number(stent["axis_rad"], f"{at}.axis_rad", -math.pi, math.pi)
        _check_points(stent["outline_px"], f"{at}.outline_px", 3)
        _check_number(stent["confidence"], f"{at}.confidence", 0.0, 1.0)


def iter_results(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a ``results.jsonl`` file, validating each (blank lines skipped).

    Raises
    ------
    ResultsFormatError
        Invalid JSON, a record that breaks the schema, or a repeated frame name, naming
        the file and line.
    """
    frames: dict[str, str] = {}
    for where, record in iter_jsonl(path, ResultsFormatError):
        validate_record(record, where)
        if record["frame"] in frames:
            raise ResultsFormatError(
                f"{where}: frame {record['frame']!r} repeats line {frames[record['frame']]}; "
                "frame names must be unique"
            )
        frames[record["frame"]] = where.rsplit(":", 1)[1]
        yield record


def validate_results_file(path: str | Path) -> int:
    """Validate every line of a ``results.jsonl`` file; returns the number of records."""
    return sum(1 for _ in iter_results(path))


__all__ = [
    "RESULTS_FILE",
    "RESULT_KEYS",
    "STENT_KEYS",
    "WIRE_KEYS",
    "JsonlWriter",
    "ResultsFormatError",
    "ResultsWriter",
    "iter_jsonl",
    "iter_results",
    "result_record",
    "stent_record",
    "validate_record",
    "validate_results_file",
    "wire_record",
]
