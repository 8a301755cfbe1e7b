"""Physically grounded fluoroscopy simulator: the project's only data source.

Public API::

    from fluoro_perception.sim import SimConfig, SequenceSimulator, simulate_sequence, SCENARIOS

See ``docs/simulator.md`` for the image-formation model, scenarios, parameter ranges,
ground-truth rules and the speed figure.
"""

from fluoro_perception.sim.config import DEFAULT_SCENARIO_WEIGHTS, SCENARIOS, SimConfig
from fluoro_perception.sim.sequence import SequenceSimulator, simulate_sequence
from fluoro_perception.sim.types import SimFrame, StentTruth, WireTruth

__all__ = [
    "DEFAULT_SCENARIO_WEIGHTS",
    "SCENARIOS",
    "SequenceSimulator",
    "SimConfig",
    "SimFrame",
    "StentTruth",
    "WireTruth",
    "simulate_sequence",
]
