"""Training experiment configuration: YAML files validated into frozen dataclasses.

An experiment is a config file (``config/train/<name>.yaml``), never a copy of the
training script. Unknown keys and out-of-range values raise ``ValueError`` naming the
key, so a typo cannot silently fall back to a default. Checkpoints store the config, and
the exported ONNX model carries :func:`config_hash` of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from fluoro_perception.core.model_metadata import PreprocessSpec
from fluoro_perception.sim import SCENARIOS, SimConfig


@dataclass(frozen=True)
class DataConfig:
    """Where training/validation frames come from.

    ``source="sim"`` streams the simulator on the fly; ``source="folder"`` reads a dataset
    in the simulator's folder format (``docs/dataset_format.md``) from ``path``. Splits
    are by SEQUENCE: simulator training sequences use seeds ``train_seed_offset + k``,
    validation sequences ``val_seed_offset + k`` (disjoint ranges), and validation can
    use scenarios not seen in training (``val_scenarios``). A folder is split by its
    sequence ids: a ``val_fraction`` of them (shuffled with ``split_seed``) validates.

    ``frames_per_sequence`` consecutive frames are taken from each training sequence
    before a new one is simulated; ``shuffle_buffer`` > 0 passes the simulated examples
    through a random buffer of that many, so a batch mixes several sequences instead of
    being ``batch_size`` near-identical frames of one (0: stream order); ``num_workers``
    DataLoader processes simulate while the main process trains; ``tip_sigma_px`` [px] is
    the Gaussian width of the tip heatmap targets. ``sim`` holds keyword overrides of
    :class:`fluoro_perception.sim.SimConfig` for the simulated training AND validation
    sequences (e.g. ``wire_absent_probability`` for hard negatives, more contrast or
    distractors, a wider pixel-spacing range); ranges are given as ``[low, high]`` lists.
    What the training stream never draws is what the style-held-out test set uses
    (``fluoro-sim styleset``). ``wire_visibility_floor`` > 0: a training wire whose
    contrast-to-noise ratio along its centerline is below it is ignored (no gradient from
    its pixels, no tip target), since nobody could draw it (``fluoro-train visibility``);
    validation always scores every wire. ``tip_crop_fraction``: share of training crops
    centred on a visible tip (jittered by up to a quarter of the crop); at 0 about a
    quarter of the crops hold a tip, too few for a tip head to learn from.
    ``frame_step``: simulated training and validation sequences keep every
    ``frame_step``-th frame (1: consecutive). Consecutive frames at 15 frames/s cover
    the first 0.5 s of a run, before most contrast boluses have filled their vessel
    tree; a step of 4 spreads 8 frames over 2 s (wash-in, full, wash-out).

    Frames are simulated at ``sim_size``, preprocessed to the model grid ``image_size``
    (= ``preprocessing.input_size``, what the runtime feeds the network) and training
    takes random ``crop_size`` patches of that grid: fully convolutional models then see
    instruments at the same pixel scale in training and in serving, at a fraction of the
    cost of full frames. Validation runs on whole model-grid frames.
    """

    source: str = "sim"
    path: str = ""
    sim_size: tuple[int, int] = (512, 512)
    image_size: tuple[int, int] = (512, 512)
    crop_size: tuple[int, int] = (256, 256)
    scenarios: tuple[str, ...] = SCENARIOS
    val_scenarios: tuple[str, ...] = SCENARIOS
    frames_per_sequence: int = 8
    shuffle_buffer: int = 0
    train_seed_offset: int = 0
    val_seed_offset: int = 10_000_000
    val_sequences: int = 12
    val_frames_per_sequence: int = 4
    val_fraction: float = 0.15
    split_seed: int = 0
    batch_size: int = 8
    num_workers: int = 0
    augment: bool = True
    tip_sigma_px: float = 2.0
    sim: dict = dataclasses.field(default_factory=dict)
    wire_visibility_floor: float = 0.0
    tip_crop_fraction: float = 0.0
    frame_step: int = 1

    def sim_config(self, **fixed: Any) -> SimConfig:
        """The :class:`SimConfig` of one simulated sequence: ``fixed`` (size, scenario, bit
        depth) plus the ``sim`` overrides (lists become tuples)."""
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in self.sim.items()}
        return SimConfig(**fixed, **overrides)

    def __post_init__(self) -> None:
        if self.source not in ("sim", "folder"):
            raise ValueError(f"data.source={self.source!r}; expected 'sim' or 'folder'")
        if self.source == "folder" and not self.path:
            raise ValueError("data.source='folder' needs data.path (a dataset directory)")
        for name in ("scenarios", "val_scenarios"):
            bad = [s for s in getattr(self, name) if s not in SCENARIOS]
            if bad:
                raise ValueError(f"data.{name} has unknown scenarios {bad}; expected {SCENARIOS}")
        if len(self.image_size) != 2 or min(self.image_size) < 32:
            raise ValueError(f"data.image_size={self.image_size}; expected [height, width] >= 32")
        if any(c > i for c, i in zip(self.crop_size, self.image_size, strict=True)):
            raise ValueError(
                f"data.crop_size={self.crop_size} exceeds data.image_size={self.image_size}"
            )
        if len(self.sim_size) != 2 or min(self.sim_size) < 32:
            raise ValueError(f"data.sim_size={self.sim_size}; expected [height, width] >= 32")
        if len(self.crop_size) != 2 or min(self.crop_size) < 16:
            raise ValueError(f"data.crop_size={self.crop_size}; expected [height, width] >= 16")
        for name in (
            "batch_size",
            "frame_step",
            "frames_per_sequence",
            "val_sequences",
            "val_frames_per_sequence",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name}={getattr(self, name)}; expected an integer >= 1")
        if self.shuffle_buffer < 0:
            raise ValueError(
                f"data.shuffle_buffer={self.shuffle_buffer}; expected >= 0 (0 = stream order)"
            )
        if self.num_workers < 0:
            raise ValueError(
                f"data.num_workers={self.num_workers}; expected >= 0 (0 = main process)"
            )
        if min(self.train_seed_offset, self.val_seed_offset) < 0:
            raise ValueError("data.train_seed_offset and data.val_seed_offset must be >= 0")
        if self.wire_visibility_floor < 0:
            raise ValueError(
                f"data.wire_visibility_floor={self.wire_visibility_floor}; expected >= 0 "
                "(a CNR, 0 = off)"
            )
        if not 0.0 <= self.tip_crop_fraction <= 1.0:
            raise ValueError(f"data.tip_crop_fraction={self.tip_crop_fraction}; expected in [0, 1]")
        if self.tip_sigma_px <= 0:
            raise ValueError(f"data.tip_sigma_px={self.tip_sigma_px}; expected > 0 [px]")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction={self.val_fraction}; expected in (0, 1)")
        if abs(self.val_seed_offset - self.train_seed_offset) < 1_000_000:
            raise ValueError("data.val_seed_offset must be >= 1e6 away from train_seed_offset")
        reserved = sorted({"height", "width", "scenario", "bit_depth"} & set(self.sim))
        if reserved:
            raise ValueError(
                f"data.sim sets {reserved}; use data.sim_size / data.scenarios instead "
                "(bit depth is drawn per sequence)"
            )
        try:  # fail at load, naming the key, not in a loader worker an hour later
            self.sim_config()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"data.sim: {exc}") from None


@dataclass(frozen=True)
class ModelConfig:
    """Registry name and constructor keyword arguments (``create_model(name, **kwargs)``)."""

    name: str = "fra_net"
    kwargs: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 3
    tip_head: bool = True

    def __post_init__(self) -> None:
        from fluoro_training.models import available_models

        if self.name not in available_models():
            raise ValueError(f"model.name={self.name!r}; expected one of {available_models()}")
        if self.num_classes not in (2, 3, 4, 5):
            raise ValueError(
                f"model.num_classes={self.num_classes}; expected 2 (wire), 3 (+stent), "
                "4 (+catheter) or 5 (+contrast vessel)"
            )
        reserved = sorted({"num_classes", "tip_head", "in_channels"} & set(self.kwargs))
        if reserved:
            raise ValueError(f"model.kwargs sets {reserved}; set them as model.<key> instead")


@dataclass(frozen=True)
class LossConfig:
    """Segmentation loss (``build_loss(name, **kwargs)``) plus the weighted tip-heatmap loss."""

    name: str = "hybrid"
    kwargs: dict[str, Any] = field(default_factory=dict)
    tip_weight: float = 1.0
    aux_weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        from fluoro_training.losses import LOSSES

        if self.name not in LOSSES:
            raise ValueError(f"loss.name={self.name!r}; expected one of {sorted(LOSSES)}")
        if self.tip_weight < 0 or any(w < 0 for w in self.aux_weights):
            raise ValueError("loss.tip_weight and loss.aux_weights must be >= 0")


SCHEDULES = ("onecycle", "poly", "cosine", "step", "constant")
#: ``optim.train_only``: ``""`` trains every parameter; ``"tip"`` only the tip head (the
#: rest frozen, BatchNorm statistics included; checkpoints are selected by the heatmap's
#: tip F1), for a new tip head on warm-started segmentation weights.
TRAIN_ONLY = ("", "tip")


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and learning-rate schedule over ``steps``.

    The seeds use SGD (momentum 0.9, weight decay 5e-4) with poly / plateau decay
    (seeds 000, 001, 003), SGD with cosine annealing (seed 002) and Adam with a step
    decay of 0.1 (seed 004). ``step`` multiplies the rate by ``step_gamma`` at each
    ``step_milestones`` fraction of the run. ``train_only``: see :data:`TRAIN_ONLY`.
    """

    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: str = "onecycle"
    warmup_fraction: float = 0.05
    grad_clip_norm: float = 5.0
    step_milestones: tuple[float, ...] = (0.42, 0.83)
    step_gamma: float = 0.1
    train_only: str = ""

    def __post_init__(self) -> None:
        if self.train_only not in TRAIN_ONLY:
            raise ValueError(f"optim.train_only={self.train_only!r}; expected one of {TRAIN_ONLY}")
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"optim.optimizer={self.optimizer!r}; expected adam, adamw or sgd")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule={self.schedule!r}; expected one of {SCHEDULES}")
        if self.lr <= 0:
            raise ValueError(f"optim.lr={self.lr}; expected > 0")
        if self.weight_decay < 0 or self.grad_clip_norm < 0 or not 0 <= self.momentum < 1:
            raise ValueError(
                "optim.weight_decay and optim.grad_clip_norm must be >= 0, optim.momentum in [0, 1)"
            )
        if not 0.0 < self.warmup_fraction < 1.0:
            raise ValueError(f"optim.warmup_fraction={self.warmup_fraction}; expected in (0, 1)")
        if any(not 0.0 < m < 1.0 for m in self.step_milestones) or not 0 < self.step_gamma <= 1:
            raise ValueError(
                f"optim.step_milestones={self.step_milestones} must lie in (0, 1) (fractions of "
                f"steps) and optim.step_gamma={self.step_gamma} in (0, 1]"
            )


@dataclass(frozen=True)
class TrainConfig:
    """One experiment: data, model, loss, optimizer and the loop's budget.

    ``time_budget_min`` > 0 stops the run (after a final validation) once that many
    minutes have passed. ``cpu_threads`` sets torch's intra-op threads when training on
    the CPU; 0 gives the cores not used by DataLoader workers (at least 1): more threads
    than free cores make OpenMP threads spin-wait for each other, which on a 2-core machine
    costs several times the compute itself.
    """

    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    preprocessing: PreprocessSpec = field(default_factory=PreprocessSpec)
    steps: int = 2000
    val_every: int = 250
    seed: int = 0
    amp: bool = True
    output_dir: str = "runs"
    log_every: int = 20
    time_budget_min: float = 0.0
    cpu_threads: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "val_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected an integer >= 1")
        if self.cpu_threads < 0:
            raise ValueError(
                f"cpu_threads={self.cpu_threads}; expected >= 0 (0 = CPU cores minus loader workers)"
            )
        if self.time_budget_min < 0:
            raise ValueError(f"time_budget_min={self.time_budget_min}; expected >= 0 (0 = none)")
        if tuple(self.preprocessing.input_size) != tuple(self.data.image_size):
            raise ValueError(
                f"preprocessing.input_size={self.preprocessing.input_size} differs from "
                f"data.image_size={self.data.image_size}; make them equal"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (tuples become lists); :func:`config_from_dict` inverts it."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the field type ``hint``; return it converted (lists -> tuples).

    YAML gives ints where floats are meant (``lr: 1`` ) and lists where tuples are meant;
    both are accepted. Anything else of the wrong type is a ``ValueError`` naming the key.
    """
    origin = get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}={value!r}; expected a list, e.g. [256, 256]")
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{where}={list(value)}; expected a list of {len(args)} values")
        return tuple(
            _coerce(a, item, f"{where}[{i}]")
            for i, (a, item) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}={value!r}; expected a mapping of keyword arguments")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}={value!r}; expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}={value!r}; expected an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}={value!r}; expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}={value!r}; expected a string")
        return value
    return value


def _build(cls: type, raw: Any, where: str) -> Any:
    """Recursively build dataclass ``cls`` from a mapping, rejecting unknown keys."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where or 'config'} must be a mapping, got {type(raw).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where or 'config'}; valid: {sorted(names)}")
    values = {}
    for key, value in raw.items():
        hint = hints[key]
        path = f"{where}.{key}" if where else key
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, path)
        else:
            values[key] = _coerce(hint, value, path)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        if where and not str(exc).startswith(where):
            raise ValueError(f"{where}: {exc}") from None
        raise ValueError(str(exc)) from None


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Validated :class:`TrainConfig` from a plain mapping (YAML document or checkpoint)."""
    return _build(TrainConfig, raw, "")


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Load a YAML experiment; ``overrides`` are ``dotted.key=value`` strings (YAML values)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config {path} not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"training config {path} is not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"training config {path} must be a YAML mapping at the top level")
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r}; expected dotted.key=value")
        key, value = item.split("=", 1)
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section of the config")
        node[parts[-1]] = yaml.safe_load(value)
    return config_from_dict(raw)


def config_hash(config: TrainConfig) -> str:
    """Short sha256 of the canonical JSON of the config (stored in exported models)."""
    canonical = json.dumps(config.to_dict(), sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]
