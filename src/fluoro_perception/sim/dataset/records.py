"""Dataset format constants, the parsed record types and the dataset error.

Names shared by the writer (:mod:`~fluoro_perception.sim.dataset.write`) and the
reader (:mod:`~fluoro_perception.sim.dataset.read`); the format is documented in
``docs/dataset_format.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluoro_perception.sim.types import StentTruth, WireTruth

DATASET_FORMAT = "fluoro_perception.dataset"
DATASET_FORMAT_VERSION = 1
HEADER_FILE = "dataset.json"
ANNOTATIONS_FILE = "annotations.jsonl"
#: Characters allowed in a sequence id (it becomes a folder name).
_SEQUENCE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class DatasetError(ValueError):
    """A dataset folder or one of its files is malformed (one-line message with location)."""


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
    vessels_path : Path or None
        Absolute path of the optional contrast-vessel mask PNG (None: no vessel GT).
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
    vessels_path: Path | None = None


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


def check_sequence_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _SEQUENCE_ID_PATTERN.match(value):
        raise DatasetError(
            f"{where}: sequence_id={value!r}; expected a non-empty string of letters, digits, "
            "'_', '-', '.' (it names a folder)"
        )
    return value


__all__ = [
    "ANNOTATIONS_FILE",
    "DATASET_FORMAT",
    "DATASET_FORMAT_VERSION",
    "HEADER_FILE",
    "Dataset",
    "DatasetError",
    "FrameRecord",
    "check_sequence_id",
]
