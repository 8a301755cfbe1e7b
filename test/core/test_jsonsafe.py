"""fluoro_perception.jsonsafe: strict-JSON copies of result structures."""

from __future__ import annotations

import json
import math

import numpy as np

from fluoro_perception.jsonsafe import json_safe


def test_non_finite_numpy_and_nested_values_become_strict_json() -> None:
    value = {
        1: (np.float32(np.nan), np.float64(2.5), math.inf),
        "nested": [{"x": -math.inf, "n": np.int64(3)}, np.bool_(True)],
        "plain": 1.0,
    }
    safe = json_safe(value)
    assert safe == {"1": [None, 2.5, None], "nested": [{"x": None, "n": 3}, True], "plain": 1.0}
    assert type(safe["nested"][0]["n"]) is int
    json.dumps(safe, allow_nan=False)  # raises on any NaN / inf left
