"""Training and validation data from a dataset folder (``docs/dataset_format.md``).

Used when ``data.source: folder``. The folder is read with the simulator package's own
reader (:mod:`fluoro_perception.sim.dataset`), so user data in that format trains exactly
like simulated data. The train / validation split is by SEQUENCE
(:func:`fluoro_perception.sim.dataset.split_sequences` with ``data.val_fraction`` and
``data.split_seed``): no frame of a validation sequence is ever trained on. Within the
training split, each (rank, DataLoader worker) stream takes every ``n``-th frame, so
parallel loaders never duplicate work.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from fluoro_perception.core.model_metadata import PreprocessSpec
from fluoro_perception.core.preprocess import Preprocessor
from fluoro_perception.sim.dataset import FrameRecord, load_frame, read_dataset, split_sequences
from fluoro_perception.sim.types import SimFrame
from fluoro_training.config import DataConfig
from fluoro_training.data.augment import AugmentConfig
from fluoro_training.data.examples import training_example
from fluoro_training.data.sim_stream import TrainingStream


def folder_split(data: DataConfig) -> dict[str, list[FrameRecord]]:
    """Records of the ``"train"`` and ``"val"`` sequences of the folder ``data.path``.

    Raises
    ------
    ValueError
        When the folder holds fewer than 2 sequences (a sequence-level split needs both
        sides non-empty).
    """
    dataset = read_dataset(data.path)
    sequence_ids = dataset.sequence_ids
    if len(sequence_ids) < 2:
        raise ValueError(
            f"dataset {data.path} has {len(sequence_ids)} sequence(s); a train/validation "
            "split by sequence needs at least 2 (write more sequences)"
        )
    split = split_sequences(
        sequence_ids, {"train": 1.0 - data.val_fraction, "val": data.val_fraction}, data.split_seed
    )
    return {name: dataset.records_of(ids) for name, ids in split.items()}


def folder_validation_frames(data: DataConfig) -> list[SimFrame]:
    """Every frame of the validation sequences of the folder, in dataset order."""
    return [load_frame(record) for record in folder_split(data)["val"]]


class FolderTrainStream(TrainingStream):
    """Endless, shuffled, augmented training crops from the folder's training sequences.

    Same constructor as :class:`fluoro_training.data.sim_stream.SimulatorStream`.
    ``start_index`` skips that many passes' worth of shuffling so a resumed run does not
    replay the exact order of the first pass.
    """

    def __init__(self, data: DataConfig, preprocessing: PreprocessSpec, **options) -> None:
        if data.source != "folder":
            raise ValueError(f"data.source={data.source!r}; FolderTrainStream needs 'folder'")
        super().__init__(data, preprocessing, **options)
        self.records = folder_split(data)["train"]

    def stream_records(self) -> tuple[list[FrameRecord], int]:
        """Training records of the calling (rank, worker) stream, and the stream index."""
        stream, n_streams = self.stream_index()
        mine = self.records[stream::n_streams]
        if not mine:
            raise ValueError(
                f"{len(self.records)} training frames cannot feed {n_streams} loader streams; "
                "lower data.num_workers or add data"
            )
        return mine, stream

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        records, stream = self.stream_records()
        preprocessor = Preprocessor(self.preprocessing)
        augment_config = AugmentConfig() if self.data.augment else None
        rng = np.random.default_rng([self.seed, stream, self.start_index, 11])
        while True:
            for index in rng.permutation(len(records)):
                frame = load_frame(records[index])
                yield training_example(
                    frame,
                    preprocessor,
                    rng,
                    self.data,
                    num_classes=self.num_classes,
                    augment_config=augment_config,
                )
