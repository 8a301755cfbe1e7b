"""Dataset folders: simulated (or user-annotated) frames as PNG files plus JSON annotations.

The exact format is documented in ``docs/dataset_format.md``. In short::

    ROOT/
      dataset.json                      header: format, version, classes, generator, sequences
      annotations.jsonl                 one JSON object per frame (geometry + file paths)
      sequences/<sequence_id>/images/<frame:06d>.png     uint8 or uint16 grey image
      sequences/<sequence_id>/labels/<frame:06d>.png     uint8 class indices
      sequences/<sequence_id>/instances/<frame:06d>.png  uint8 wire instance ids (optional)
      sequences/<sequence_id>/field/<frame:06d>.png      uint8 0/255 exposed field (optional)
      sequences/<sequence_id>/vessels/<frame:06d>.png    uint8 0/255 contrast vessel (optional)

Modules: :mod:`~fluoro_perception.sim.dataset.records` (format constants, record types,
:class:`DatasetError`), :mod:`~fluoro_perception.sim.dataset.write` (writer),
:mod:`~fluoro_perception.sim.dataset.read` (reader, frame loading) and
:mod:`~fluoro_perception.sim.dataset.split` (splits by sequence); every public name is
re-exported here.

Pixel coordinates follow :mod:`fluoro_perception.core.types` (``(x, y)``, x right, y down,
pixel centres at integers); angles ``atan2(dy, dx)`` [rad]. Splits are made by sequence,
never by frame, so consecutive (nearly identical) frames never straddle train and test.
"""

from fluoro_perception.sim.dataset.read import iter_frames, load_frame, read_dataset, read_header
from fluoro_perception.sim.dataset.records import (
    ANNOTATIONS_FILE,
    DATASET_FORMAT,
    DATASET_FORMAT_VERSION,
    HEADER_FILE,
    Dataset,
    DatasetError,
    FrameRecord,
)
from fluoro_perception.sim.dataset.split import split_dataset, split_sequences
from fluoro_perception.sim.dataset.write import (
    DatasetWriter,
    frame_to_record,
    prepare_output_dir,
    write_dataset,
)

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
