"""argparse ``type=`` validators shared by every command line of the project.

Each turns a bad value into one line that names it and says what was expected
(argparse prints it and exits with status 2).
"""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too small; expected >= 1")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; expected >= 0")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected > 0") from None
    if not (math.isfinite(value) and value > 0.0):
        raise argparse.ArgumentTypeError(f"{value} is not a finite number > 0")
    return value
