"""JSON-safe copies of result structures (shared by every report writer)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """Copy of ``value`` that ``json.dumps`` writes as strict JSON.

    Non-finite floats become ``None`` (JSON has no NaN / inf), numpy scalars Python numbers,
    tuples lists and dict keys strings; nested dicts and lists are converted throughout.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
