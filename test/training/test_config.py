"""Training config: YAML -> frozen dataclasses, validation, overrides, hash."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from fluoro_training.config import (
    DataConfig,
    TrainConfig,
    config_from_dict,
    config_hash,
    load_config,
)
from fluoro_training.models import available_models

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "train"

MINIMAL_YAML = """
name: tiny
steps: 10
model:
  name: fra_net
  kwargs: {width_mult: 0.25}
data:
  crop_size: [64, 64]
  image_size: [128, 128]
preprocessing:
  input_size: [128, 128]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return path


def test_yaml_builds_frozen_nested_dataclasses(tmp_path):
    config = load_config(write(tmp_path, MINIMAL_YAML))
    assert isinstance(config, TrainConfig)
    assert isinstance(config.data, DataConfig)
    assert config.steps == 10
    assert config.model.kwargs == {"width_mult": 0.25}
    assert config.data.crop_size == (64, 64)  # YAML list -> tuple
    assert config.preprocessing.input_size == (128, 128)
    assert config.optim.lr == 2e-3  # default kept
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 5


@pytest.mark.parametrize(
    ("dotted_key", "value", "named"),
    [
        ("stepz", 3, "stepz"),
        ("data.crop_sise", [64, 64], "crop_sise"),
        ("optim.learning_rate", 0.1, "learning_rate"),
        ("steps", "ten", "steps"),
        ("steps", 0, "steps"),
        ("optim.lr", -1.0, "optim.lr"),
        ("optim.schedule", "exponential", "optim.schedule"),
        ("optim.optimizer", "rmsprop", "optim.optimizer"),
        ("model.name", "resnet", "model.name"),
        ("model.kwargs", {"num_classes": 2}, "model.kwargs"),
        ("loss.name", "l2", "loss.name"),
        ("data.source", "web", "data.source"),
        ("data.source", "folder", "data.path"),
        ("data.batch_size", 0, "data.batch_size"),
        ("data.shuffle_buffer", -1, "data.shuffle_buffer"),
        ("data.val_fraction", 1.5, "data.val_fraction"),
        ("data.scenarios", ["moon"], "data.scenarios"),
        ("data.crop_size", [256, 256], "data.crop_size"),  # larger than image_size
        ("data.val_seed_offset", 5, "val_seed_offset"),  # overlaps the training seeds
        ("data.augment", "maybe", "data.augment"),
        ("data.crop_size", 64, "data.crop_size"),
        ("data.crop_size", [64, 64, 1], "data.crop_size"),
        ("preprocessing.normalization", "l2", "normalization"),
        ("amp", 1, "amp"),
    ],
)
def test_bad_key_or_value_raises_value_error_naming_it(tmp_path, dotted_key, value, named):
    raw = yaml.safe_load(MINIMAL_YAML)
    node = raw
    *parents, leaf = dotted_key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    with pytest.raises(ValueError, match=re.escape(named)):
        load_config(write(tmp_path, yaml.safe_dump(raw)))


def test_preprocessing_must_match_image_size():
    with pytest.raises(ValueError, match="preprocessing.input_size"):
        config_from_dict({"data": {"image_size": [256, 256], "crop_size": [64, 64]}})


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        (["steps=7"], lambda c: c.steps == 7),
        (["optim.lr=0.5"], lambda c: c.optim.lr == 0.5),
        (["data.batch_size=3"], lambda c: c.data.batch_size == 3),
        (["data.crop_size=[32, 32]"], lambda c: c.data.crop_size == (32, 32)),
        (["model.kwargs={width_mult: 0.5}"], lambda c: c.model.kwargs == {"width_mult": 0.5}),
        (["optim.lr=1"], lambda c: c.optim.lr == 1.0 and isinstance(c.optim.lr, float)),
        (["loss.name=ohem_ce", "steps=3"], lambda c: c.loss.name == "ohem_ce" and c.steps == 3),
    ],
)
def test_overrides(tmp_path, overrides, check):
    assert check(load_config(write(tmp_path, MINIMAL_YAML), overrides))


@pytest.mark.parametrize("override", ["steps", "optim.lr=abc", "data.nope=3", "steps.x=1"])
def test_bad_override_raises(tmp_path, override):
    with pytest.raises(ValueError):
        load_config(write(tmp_path, MINIMAL_YAML), [override])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ValueError, match="YAML"):
        load_config(write(tmp_path, "steps: [1, 2\n"))
    with pytest.raises(ValueError, match="mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_config_hash_stable_and_sensitive(tmp_path):
    path = write(tmp_path, MINIMAL_YAML)
    first, second = load_config(path), load_config(path)
    assert config_hash(first) == config_hash(second)
    assert len(config_hash(first)) == 16
    # a round trip through the checkpoint form keeps the hash
    assert config_hash(config_from_dict(first.to_dict())) == config_hash(first)
    for override in ("steps=11", "optim.lr=0.003", "data.crop_size=[32, 32]", "seed=1"):
        assert config_hash(load_config(path, [override])) != config_hash(first), override


#: Configs that are recipes of an architecture rather than named after one.
RECIPES = {"default", "transfer", "tip_context", "vessel"}


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_load(path):
    config = load_config(path)
    assert config.model.name in available_models()
    if path.stem in available_models():
        assert config.model.name == path.stem
    else:  # a config named after no model must be a known recipe
        assert path.stem in RECIPES, f"{path.name} is neither a model's config nor a recipe"


def test_every_model_has_a_config():
    assert {p.stem for p in CONFIG_DIR.glob("*.yaml")} >= set(available_models()) | {"default"}
