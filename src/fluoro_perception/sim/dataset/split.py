"""Splitting datasets by sequence, never by frame, so consecutive (nearly identical)
frames never straddle train and test."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from fluoro_perception.sim.dataset.records import Dataset, FrameRecord


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


__all__ = ["split_dataset", "split_sequences"]
