"""The simulator as an endless, seeded training stream and a fixed validation set.

Sequence-level splits: every sequence is one simulator seed. Training streams draw
seeds ``train_seed_offset + k`` with ``0 <= k < TRAIN_SEED_SPAN``; the validation set
uses ``val_seed_offset + k`` (at least ``TRAIN_SEED_SPAN`` away, checked by
:class:`fluoro_training.config.DataConfig`), so no frame of a validation sequence is ever
trained on. Each (rank, worker) pair takes every ``n``-th seed so parallel loaders never
duplicate a sequence. The experiment seed does not change WHICH sequences are trained on,
only the per-sequence draws (scenario, bit depth, augmentation, crops).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from fluoro_perception.core.model_metadata import PreprocessSpec
from fluoro_perception.core.preprocess import Preprocessor
from fluoro_perception.sim import SequenceSimulator, SimConfig
from fluoro_perception.sim.types import SimFrame
from fluoro_training.config import DataConfig
from fluoro_training.data.augment import AugmentConfig
from fluoro_training.data.examples import (
    frame_to_sample,
    make_example,
    training_example,
    visible_tips,
)

#: Training sequence seeds are ``train_seed_offset + (k mod TRAIN_SEED_SPAN)``.
TRAIN_SEED_SPAN = 1_000_000


def training_sequence_seeds(
    data: DataConfig, stream: int, n_streams: int, start_index: int = 0
) -> Iterator[int]:
    """Endless simulator seeds of one loader stream (rank * workers + worker).

    Stream ``s`` of ``n`` takes ``k = s, s + n, s + 2n, ...`` starting at its
    ``start_index``-th sequence (a resumed run skips the sequences it already saw).
    """
    if not 0 <= stream < n_streams:
        raise ValueError(f"stream={stream}; expected 0 <= stream < n_streams={n_streams}")
    k = stream + n_streams * int(start_index)
    while True:
        yield data.train_seed_offset + k % TRAIN_SEED_SPAN
        k += n_streams


#: Held-out seed ranges beyond the validation sequences (``val_seed_offset + shift + k``):
#: neither training (>= 1e6 away) nor validation (``val_sequences`` <= 100,000) seeds.
HELD_OUT_SEED_SHIFTS = {"calibration": 500_000, "test": 700_000}


def held_out_data(data: DataConfig, role: str, sequences: int, frames_per_sequence: int = 2):
    """A copy of ``data`` whose validation set is the held-out ``role`` set.

    ``role`` is ``"calibration"`` (INT8 calibration frames) or ``"test"`` (the accuracy of
    exported variants and ``fluoro-train compare``): sequences never trained on, never
    used for model selection, and disjoint from each other.
    """
    if role not in HELD_OUT_SEED_SHIFTS:
        raise ValueError(f"role={role!r}; expected one of {sorted(HELD_OUT_SEED_SHIFTS)}")
    return dataclasses.replace(
        data,
        source="sim",
        val_seed_offset=data.val_seed_offset + HELD_OUT_SEED_SHIFTS[role],
        val_sequences=max(1, int(sequences)),
        val_frames_per_sequence=max(1, int(frames_per_sequence)),
    )


def validation_sequence_seeds(data: DataConfig) -> list[int]:
    """Simulator seeds of the validation sequences."""
    return [data.val_seed_offset + k for k in range(data.val_sequences)]


def _sim_config(data: DataConfig, scenario: str, rng: np.random.Generator) -> SimConfig:
    return data.sim_config(
        height=int(data.sim_size[0]),
        width=int(data.sim_size[1]),
        scenario=scenario,
        bit_depth=int(rng.choice([8, 8, 12, 16])),
    )


class TrainingStream(IterableDataset):
    """Options and (rank, worker) stream split shared by the training streams."""

    def __init__(
        self,
        data: DataConfig,
        preprocessing: PreprocessSpec,
        *,
        num_classes: int = 3,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        start_index: int = 0,
    ) -> None:
        super().__init__()
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank}; expected 0 <= rank < world_size={world_size}")
        self.data = data
        self.preprocessing = preprocessing
        self.num_classes = num_classes
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.start_index = start_index

    def stream_index(self) -> tuple[int, int]:
        """``(stream, n_streams)`` of the calling DataLoader worker on this rank."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        return self.rank * workers + worker, self.world_size * workers


def shuffle_buffered(
    items: Iterator[dict[str, torch.Tensor]], size: int, rng: np.random.Generator
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield ``items`` in a locally random order through a buffer of ``size`` entries.

    Fills the buffer, then repeatedly yields a random entry and puts the next item in its
    place (the scheme of ``tf.data``'s shuffle; torch's ``Shuffler`` datapipe is
    deprecated). ``size`` <= 1 yields the stream unchanged. On an endless stream every
    item is yielded exactly once; a finite one is drained in random order at its end.
    """
    if size <= 1:
        yield from items
        return
    buffer: list[dict[str, torch.Tensor]] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        index = int(rng.integers(size))
        yield buffer[index]
        buffer[index] = item
    order = rng.permutation(len(buffer))
    for index in order:
        yield buffer[int(index)]


class SimulatorStream(TrainingStream):
    """Endless stream of augmented training crops from fresh simulator sequences.

    Parameters
    ----------
    data : DataConfig
        Simulation size, scenarios, crop, augmentation.
    preprocessing : PreprocessSpec
        The runtime preprocessing the model will be served with.
    num_classes : int
        Model classes (higher label indices become background).
    rank, world_size : int
        DDP position; each (rank, worker) stream simulates disjoint sequences.
    seed : int
        Experiment seed (per-sequence random draws).
    start_index : int
        Sequences each stream skips (set on resume so no sequence is seen twice).

    Yields examples of :func:`fluoro_training.data.examples.make_example` at ``crop_size``,
    through :func:`shuffle_buffered` when ``data.shuffle_buffer`` > 0.
    """

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        stream, n_streams = self.stream_index()
        rng = np.random.default_rng([self.seed, stream, self.start_index, 13])
        return shuffle_buffered(self._examples(stream, n_streams), self.data.shuffle_buffer, rng)

    def _examples(self, stream: int, n_streams: int) -> Iterator[dict[str, torch.Tensor]]:
        preprocessor = Preprocessor(self.preprocessing)
        augment_config = AugmentConfig() if self.data.augment else None
        seeds = training_sequence_seeds(self.data, stream, n_streams, self.start_index)
        for rng, frame in _sequence_frames(self.data, seeds, self.seed):
            yield training_example(
                frame,
                preprocessor,
                rng,
                self.data,
                num_classes=self.num_classes,
                augment_config=augment_config,
            )


def _sequence_frames(
    data: DataConfig, seeds: Iterator[int], experiment_seed: int
) -> Iterator[tuple[np.random.Generator, SimFrame]]:
    """``(rng, frame)`` of each training sequence's frames: ``rng`` drew the sequence's
    scenario and bit depth and goes on to draw the augmentation of its frames."""
    for seed in seeds:
        rng = np.random.default_rng([seed, experiment_seed, 7])
        scenario = str(rng.choice(data.scenarios))
        simulator = SequenceSimulator(seed, _sim_config(data, scenario, rng))
        for frame in simulator.frames(data.frames_per_sequence, data.frame_step):
            yield rng, frame


def raw_training_frames(data: DataConfig, n_frames: int, seed: int = 0) -> Iterator[SimFrame]:
    """The first ``n_frames`` simulated frames of the training stream, before augmentation,
    as :class:`SimulatorStream` (stream 0 of 1, experiment ``seed``) draws them: what
    ``fluoro-train visibility`` measures."""
    frames = _sequence_frames(data, training_sequence_seeds(data, 0, 1), seed)
    return (frame for _, frame in itertools.islice(frames, n_frames))


def validation_frames(data: DataConfig) -> list[SimFrame]:
    """The held-out validation frames: unseen seeds, every validation scenario."""
    frames: list[SimFrame] = []
    for k, seed in enumerate(validation_sequence_seeds(data)):
        rng = np.random.default_rng([seed, 7])
        scenario = data.val_scenarios[k % len(data.val_scenarios)]
        simulator = SequenceSimulator(seed, _sim_config(data, scenario, rng))
        frames.extend(simulator.frames(data.val_frames_per_sequence, data.frame_step))
    return frames


def validation_examples(
    frames: list[SimFrame], preprocessing: PreprocessSpec, num_classes: int, tip_sigma_px: float
) -> list[dict[str, torch.Tensor]]:
    """Whole-frame (uncropped, unaugmented) examples for validation."""
    preprocessor = Preprocessor(preprocessing)
    rng = np.random.default_rng(0)
    examples = []
    for frame in frames:
        sample = frame_to_sample(
            frame.image, frame.bit_depth, frame.labels, visible_tips(frame), frame.field_mask
        )
        example = make_example(
            sample, preprocessor, rng, num_classes=num_classes, tip_sigma_px=tip_sigma_px
        )
        example["sequence_id"] = frame.sequence_id
        example["scenario"] = frame.scenario
        examples.append(example)
    return examples
