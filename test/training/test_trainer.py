"""Trainer: the loss falls, checkpoints resume exactly, logs and best.pt, L-SNet variant."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fluoro_training.config import TrainConfig, config_from_dict, load_config
from fluoro_training.trainer import Trainer, load_checkpoint
from fluoro_training.trainer_variants import (
    LSNetTrainer,
    create_trainer,
    lnet_cell_centres_px,
    lsnet_targets,
    trainer_class,
)

SIZE = 64


def tiny_config(**top) -> TrainConfig:
    raw = {
        "name": "tiny",
        "seed": 0,
        "steps": 6,
        "val_every": 3,
        "log_every": 1,
        "cpu_threads": 1,  # robust timing on a shared 2-core machine
        "model": {"name": "fra_net", "kwargs": {"width_mult": 0.25, "depth_mult": 0.5}},
        "loss": {"name": "hybrid"},
        "optim": {"optimizer": "adamw", "lr": 0.003, "schedule": "onecycle"},
        "data": {
            "sim_size": [SIZE, SIZE],
            "image_size": [SIZE, SIZE],
            "crop_size": [SIZE, SIZE],
            "frames_per_sequence": 4,
            "batch_size": 2,
            "val_sequences": 1,
            "val_frames_per_sequence": 2,
            "scenarios": ["mono"],
            "val_scenarios": ["mono"],
        },
        "preprocessing": {"input_size": [SIZE, SIZE]},
    }
    for key, value in top.items():
        if isinstance(value, dict):
            raw[key] = {**raw.get(key, {}), **value}
        else:
            raw[key] = value
    return config_from_dict(raw)


def read_log(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def train_losses(rows: list[dict[str, str]]) -> dict[int, float]:
    return {
        int(r["step"]): float(r["value"])
        for r in rows
        if r["split"] == "train" and r["key"] == "total"
    }


def test_loss_falls_on_a_tiny_simulated_set(tmp_path):
    # One long sequence without augmentation and a fixed seed: the network must fit it.
    config = tiny_config(
        steps=40,
        val_every=40,
        data={"frames_per_sequence": 200, "augment": False, "batch_size": 4},
        optim={"lr": 0.01, "schedule": "constant"},
    )
    trainer = Trainer(config, tmp_path, progress=False)
    trainer.fit()
    losses = train_losses(read_log(tmp_path / "log.csv"))
    assert sorted(losses) == list(range(1, 41))
    first = np.mean([losses[s] for s in range(1, 6)])
    last = np.mean([losses[s] for s in range(36, 41)])
    assert last < 0.7 * first, (first, last)
    # the segmentation term itself falls too (not only the large early tip-heatmap term)
    seg = {
        int(r["step"]): float(r["value"])
        for r in read_log(tmp_path / "log.csv")
        if r["key"] == "seg"
    }
    first_seg = np.mean([seg[s] for s in range(1, 6)])
    last_seg = np.mean([seg[s] for s in range(36, 41)])
    assert last_seg < 0.8 * first_seg, (first_seg, last_seg)


class _KeepEveryCheckpoint(Trainer):
    """Keeps a copy of last.pt per validation step (for the resume test)."""

    def on_validation_end(self, metrics):
        super().on_validation_end(metrics)
        shutil.copy(self.output_dir / "last.pt", self.output_dir / f"step{self.step}.pt")


def test_checkpoint_resume_continues_with_identical_state(tmp_path):
    config = tiny_config()
    first = _KeepEveryCheckpoint(config, tmp_path / "a", progress=False)
    first.fit()
    assert (tmp_path / "a" / "best.pt").is_file() and (tmp_path / "a" / "last.pt").is_file()
    checkpoint = load_checkpoint(tmp_path / "a" / "step3.pt")  # weights_only load
    assert checkpoint["step"] == 3
    assert checkpoint["config"] == config.to_dict()

    resumed = Trainer(config, tmp_path / "b", resume=tmp_path / "a" / "step3.pt", progress=False)
    assert resumed.step == 3
    for name, tensor in checkpoint["model"].items():
        assert torch.equal(resumed.model.state_dict()[name], tensor), name
    saved_optimizer = checkpoint["optimizer"]["state"]
    for index, state in resumed.optimizer.state_dict()["state"].items():
        assert torch.equal(state["exp_avg"], saved_optimizer[index]["exp_avg"])
    assert resumed.scheduler.last_epoch == 3
    assert resumed.scheduler.get_last_lr() == checkpoint["scheduler"]["_last_lr"]

    resumed.fit()
    assert resumed.step == 6
    steps = sorted(train_losses(read_log(tmp_path / "b" / "log.csv")))
    assert steps == [4, 5, 6]  # continues after the checkpoint, never repeats steps 1-3
    final = load_checkpoint(tmp_path / "b" / "last.pt")
    assert final["step"] == 6
    assert final["scheduler"]["last_epoch"] == 6


def test_logs_and_best_checkpoint(tmp_path):
    trainer = Trainer(tiny_config(steps=2, val_every=1), tmp_path, progress=False)
    best = trainer.fit()
    rows = read_log(tmp_path / "log.csv")
    keys = {(r["split"], r["key"]) for r in rows}
    for key in ("total", "seg", "tip", "data_s", "step_s", "lr"):
        assert ("train", key) in keys
    for key in ("f1", "precision", "sensitivity", "centerline_f1", "selection_f1"):
        assert ("val", key) in keys
    best_checkpoint = load_checkpoint(tmp_path / "best.pt")
    assert best_checkpoint["metrics"]["selection_f1"] == pytest.approx(best["selection_f1"])
    assert best_checkpoint["best_score"] == pytest.approx(best["selection_f1"])
    assert set(trainer.timing) == {"data_s", "step_s", "steps"}
    assert (tmp_path / "config.json").is_file()


def test_resume_refuses_another_model(tmp_path):
    Trainer(tiny_config(steps=1, val_every=1), tmp_path, progress=False).fit()
    other = tiny_config(model={"name": "unet", "kwargs": {"width_mult": 0.125}})
    with pytest.raises(ValueError, match="model.name"):
        Trainer(other, tmp_path / "x", resume=tmp_path / "last.pt", progress=False)


def test_crop_not_multiple_of_stride_is_rejected(tmp_path):
    config = tiny_config(data={"crop_size": [48, 48]})
    with pytest.raises(ValueError, match=r"data.crop_size=\[48, 48\].*stride 32.*\[64, 64\]"):
        Trainer(config, tmp_path, progress=False)


@pytest.mark.parametrize(
    ("schedule", "extra", "lr_at_end"),
    [
        ("constant", {}, 0.003),
        ("step", {"step_milestones": [0.5], "step_gamma": 0.1}, 0.0003),
        ("poly", {}, 0.003 * (1 - 5 / 6) ** 0.9),
    ],
)
def test_schedules(tmp_path, schedule, extra, lr_at_end):
    config = tiny_config(optim={"schedule": schedule, **extra})
    trainer = Trainer(config, tmp_path, progress=False)
    for _ in range(5):
        trainer.optimizer.step()
        trainer.scheduler.step()
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(lr_at_end)


def test_lsnet_cell_centres_and_targets_hand_computed():
    x, y = lnet_cell_centres_px(2, 3)
    np.testing.assert_allclose(x, [1.5, 5.5, 9.5])
    np.testing.assert_allclose(y, [1.5, 5.5])
    tips = torch.zeros(2, 4, 3)
    tips[0, 0] = torch.tensor([9.5, 5.5, 1.0])  # the centre of cell (row 1, column 2)
    boxes = torch.tensor([[2.5, 1.5, 10.5, 7.5, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    heatmap, distances = lsnet_targets(tips, boxes, (4, 4))
    assert heatmap.shape == (2, 1, 4, 4) and distances.shape == (2, 4, 4, 4)
    assert heatmap[0, 0, 1, 2] == 1.0 and int((heatmap[0] == 1.0).sum()) == 1
    assert heatmap[0, 0, 1, 1] == pytest.approx(np.exp(-0.5))  # one cell away, sigma 1 cell
    assert heatmap[1].sum() == 0  # no tip, no keypoint
    # l = 9.5 - 2.5, t = 5.5 - 1.5, r = 10.5 - 9.5, b = 7.5 - 5.5
    np.testing.assert_allclose(distances[0, :, 1, 2].numpy(), [7.0, 4.0, 1.0, 2.0])
    assert distances[1].abs().sum() == 0  # invalid box: no distances


def test_lsnet_variant_is_selected_and_steps(tmp_path):
    config = tiny_config(
        model={"name": "lsnet", "kwargs": {"width_mult": 0.125}},
        loss={"name": "lsnet", "tip_weight": 0.0},
        optim={"optimizer": "adam", "schedule": "step"},
    )
    assert trainer_class(config) is LSNetTrainer
    assert trainer_class(tiny_config()) is Trainer
    trainer = create_trainer(config, tmp_path, progress=False)
    assert isinstance(trainer, LSNetTrainer)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    batch = next(iter(trainer.train_loader()))
    terms = trainer.train_step(batch)
    assert set(terms) == {"heatmap", "box", "segmentation", "total"}
    assert all(np.isfinite(v) for v in terms.values())
    assert terms["total"] == pytest.approx(
        terms["heatmap"] + terms["box"] + terms["segmentation"], rel=1e-5
    )
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("localization_net") for k in changed)
    assert any(k.startswith("segmentation_body") for k in changed)


def test_lsnet_needs_its_loss(tmp_path):
    config = tiny_config(model={"name": "lsnet", "kwargs": {"width_mult": 0.125}})
    with pytest.raises(ValueError, match="loss.name"):
        create_trainer(config, tmp_path, progress=False)


CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "train"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_takes_a_training_step(tmp_path, path):
    # the paper's loss / optimizer / schedule of each config, at a tiny size
    size = 64  # a multiple of every model's stride (DDR-SAPC-U: 64)
    overrides = [
        f"data.sim_size=[{size}, {size}]",
        f"data.image_size=[{size}, {size}]",
        f"data.crop_size=[{size}, {size}]",
        f"preprocessing.input_size=[{size}, {size}]",
        "data.batch_size=2",
        "data.num_workers=0",
        "cpu_threads=1",
        "steps=4",
    ]
    config = load_config(path, overrides)
    trainer = create_trainer(config, tmp_path, progress=False)
    terms = trainer.train_step(next(iter(trainer.train_loader())))
    assert np.isfinite(terms["total"]) and terms["total"] > 0
    if config.loss.aux_weights:
        assert any(key.startswith("aux") for key in terms)


def test_loader_worker_overlaps_simulation(tmp_path):
    # num_workers=1: the simulator runs in a worker process; the run trains as usual
    config = tiny_config(steps=3, val_every=3, data={"num_workers": 1})
    trainer = Trainer(config, tmp_path, progress=False)
    trainer.fit()
    assert trainer.step == 3
    assert trainer.timing["data_s"] >= 0.0 and trainer.timing["step_s"] > 0.0
    assert (tmp_path / "best.pt").is_file()


@pytest.mark.parametrize("detach", [False, True])
def test_tip_branch_is_clipped_apart_from_segmentation(tmp_path, detach):
    kwargs = {"width_mult": 0.25, "depth_mult": 0.5, "full_res_head": False, "tip_detach": detach}
    trainer = Trainer(tiny_config(model={"kwargs": kwargs}), tmp_path, device="cpu", progress=False)
    groups = trainer._clip_groups()
    every = {id(p) for p in trainer.model.parameters()}
    assert {id(p) for group in groups for p in group} == every
    assert len(groups) == (2 if detach else 1)
    if detach:
        assert {id(p) for p in groups[1]} == {id(p) for p in trainer.model.tip.parameters()}


def test_shipped_weights_warm_start_a_new_run(tmp_path):
    from fluoro_training.trainer import NEW_CLASS_BIAS_MARGIN, write_weights

    Trainer(tiny_config(steps=1, val_every=1), tmp_path / "a", progress=False).fit()
    weights = write_weights(tmp_path / "a" / "last.pt", tmp_path / "models" / "tiny.pt")
    slim = load_checkpoint(weights)
    assert "optimizer" not in slim and slim["config"] == tiny_config(steps=1, val_every=1).to_dict()
    assert weights.stat().st_size < (tmp_path / "a" / "last.pt").stat().st_size

    # same architecture with one more class: every tensor is copied, the class outputs
    # into their leading channels; the new class starts off (zero weights, low bias)
    wider = tiny_config(model={"num_classes": 4})
    warm = Trainer(wider, tmp_path / "b", init=weights, progress=False)
    report = warm.warm_start_report
    assert not report["skipped"] and not report["missing"]
    assert report["extended"] and all("classifier" in name for name in report["extended"])
    state = warm.model.state_dict()
    for name in report["loaded"]:
        assert torch.equal(state[name], slim["model"][name]), name
    for name in report["extended"]:
        old, new = slim["model"][name], state[name]
        axis = next(i for i, (a, b) in enumerate(zip(old.shape, new.shape, strict=True)) if a != b)
        assert (old.shape[axis], new.shape[axis]) == (3, 4), name
        assert torch.equal(new.narrow(axis, 0, 3), old), name
        added = new.narrow(axis, 3, 1)
        if old.dim() == 1:
            assert float(added) == pytest.approx(float(old.min()) - NEW_CLASS_BIAS_MARGIN)
        else:
            assert not added.any(), name
    # so the warm-started model predicts the checkpoint's classes
    from fluoro_training.models import create_model

    narrow = create_model("fra_net", num_classes=3, tip_head=True, **tiny_config().model.kwargs)
    narrow.load_state_dict(slim["model"])
    narrow.eval()
    warm.model.eval()
    image = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before, after = narrow(image)["logits"], warm.model(image)["logits"]
    assert torch.equal(after.argmax(1), before.argmax(1))
    assert warm.step == 0 and warm.optimizer.state_dict()["state"] == {}

    with pytest.raises(ValueError, match="same architecture"):
        Trainer(
            tiny_config(model={"name": "unet", "kwargs": {"width_mult": 0.125}}),
            tmp_path / "c",
            init=weights,
            progress=False,
        )
    with pytest.raises(ValueError, match="not both"):
        Trainer(tiny_config(), tmp_path / "d", init=weights, resume=weights, progress=False)


def test_learning_curves_from_logs_with_and_without_elapsed_minutes(tmp_path):
    from fluoro_training.cli import main as train_main
    from fluoro_training.curves import read_validation_curve

    Trainer(tiny_config(steps=4, val_every=2), tmp_path / "a", progress=False).fit()
    curves, estimated = read_validation_curve(tmp_path / "a")
    assert not estimated and [len(curves["selection_f1"])] == [2]
    minutes = [m for m, _ in curves["selection_f1"]]
    assert 0 < minutes[0] < minutes[1]
    # an old log without elapsed_min: minutes rebuilt from the logged step times
    old = tmp_path / "old"
    old.mkdir()
    rows = [
        "step,split,key,value",
        "1,train,step_s,1.0", "1,train,data_s,0.5",
        "3,train,step_s,2.0", "3,train,data_s,0.0",
        "3,val,selection_f1,0.25", "3,val,stent_dice,nan",
    ]  # fmt: skip
    (old / "log.csv").write_text("\n".join(rows) + "\n")
    curves, estimated = read_validation_curve(old)
    assert estimated
    # step 1: 1.5 s; steps 2-3 at the step-3 cost: 2 x 2.0 s -> 5.5 s
    assert curves["selection_f1"] == [(pytest.approx(5.5 / 60.0), 0.25)]
    assert "stent_dice" not in curves  # NaN left out
    out = tmp_path / "curves.png"
    assert train_main(["curves", f"new={tmp_path / 'a'}", str(old), "--output", str(out)]) == 0
    assert out.stat().st_size > 1000
    with pytest.raises(FileNotFoundError, match="log.csv"):
        read_validation_curve(tmp_path / "missing")


def test_ignored_pixels_pass_no_gradient(tmp_path):
    from fluoro_training.data.examples import IGNORE_INDEX

    trainer = Trainer(tiny_config(), tmp_path, device="cpu", progress=False)
    logits = torch.randn(1, 3, 8, 8, requires_grad=True)
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, 2, :] = 1
    labels[0, 5, :] = IGNORE_INDEX
    batch = {"labels": labels}
    terms = trainer.compute_loss({"logits": logits}, batch)
    terms["total"].backward()
    assert torch.isfinite(terms["total"])
    assert logits.grad[0, :, 5, :].abs().sum() == 0  # the ignored row
    assert logits.grad[0, :, 2, :].abs().sum() > 0 and logits.grad[0, :, 0, :].abs().sum() > 0


def test_train_only_tip_changes_the_tip_head_and_nothing_else(tmp_path):
    from fluoro_training.trainer import write_weights

    Trainer(tiny_config(steps=1, val_every=1), tmp_path / "a", progress=False).fit()
    weights = write_weights(tmp_path / "a" / "last.pt", tmp_path / "tiny.pt")
    kwargs = {"width_mult": 0.25, "depth_mult": 0.5, "full_res_head": False}
    config = tiny_config(
        steps=4,
        val_every=4,
        model={"kwargs": {**kwargs, "tip_detach": True, "tip_context": 2}},
        optim={"train_only": "tip", "lr": 0.01},
        loss={"name": "hybrid", "tip_weight": 1.0},
    )
    # the 3x3 head of the checkpoint does not fit the context head: it starts new
    Trainer(config, tmp_path / "b", init=weights, progress=False)
    config = tiny_config(
        steps=4,
        val_every=4,
        model={"kwargs": {**kwargs, "tip_context": 2}},
        optim={"train_only": "tip", "lr": 0.01},
        loss={"name": "hybrid", "tip_weight": 1.0},
    )
    trainer = Trainer(config, tmp_path / "c", progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    after = trainer.model.state_dict()
    tip_keys = {f"tip.{k}" for k in trainer.model.tip.state_dict()}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # BatchNorm statistics outside the head are frozen as well as the weights
    assert changed and changed <= tip_keys, sorted(changed - tip_keys)
    assert any("weight" in k for k in changed)
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in trainer.model.tip.parameters()}
    # checkpoints are chosen by the heatmap's tip F1, not by the (frozen) segmentation
    assert trainer.score({"tip_f1": 0.25, "selection_f1": 0.9}) == 0.25


def test_train_only_tip_needs_a_tip_head(tmp_path):
    config = tiny_config(model={"tip_head": False}, optim={"train_only": "tip"})
    with pytest.raises(ValueError, match="tip head"):
        Trainer(config, tmp_path, progress=False)


def test_train_only_rejects_unknown_parts():
    with pytest.raises(ValueError, match="optim.train_only"):
        tiny_config(optim={"train_only": "decoder"})
