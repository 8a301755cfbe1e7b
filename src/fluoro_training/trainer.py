"""A short trainer with named hooks (nnU-Net style, without the 1,400 lines).

Hooks a variant may override: :meth:`Trainer.build_model`, :meth:`Trainer.build_loss`,
:meth:`Trainer.configure_optimizers`, :meth:`Trainer.train_step`, :meth:`Trainer.validate`,
:meth:`Trainer.on_validation_end`. The loop is step-based (the simulator stream is
endless), validates every ``val_every`` steps on held-out sequences, keeps ``last.pt``
and ``best.pt`` (best by validation F1) with the config inside, resumes from a
checkpoint, logs CSV + TensorBoard, shows a progress bar, and runs under ``torchrun``
(DistributedDataParallel; gloo on CPU, NCCL on CUDA) and AMP on CUDA.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from fluoro_training.config import TrainConfig, config_hash
from fluoro_training.data.examples import IGNORE_INDEX
from fluoro_training.data.sim_stream import SimulatorStream, validation_examples, validation_frames
from fluoro_training.losses import build_loss
from fluoro_training.losses.tip_heatmap import TipHeatmapLoss
from fluoro_training.models import create_model
from fluoro_training.validation import evaluate_examples

LOG = logging.getLogger("fluoro_training")
CHECKPOINT_FORMAT = 1


def seed_everything(seed: int) -> None:
    """Seed Python and torch (CPU and CUDA); numpy draws use explicit seeded Generators."""
    random.seed(seed)
    torch.manual_seed(seed)


def _single_threaded_worker(worker_id: int) -> None:
    """DataLoader worker start-up: OpenCV on one thread (torch already uses one there), so a
    worker simulating on a spare core does not spread onto the cores the model trains on."""
    import cv2

    cv2.setNumThreads(1)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: no pickle code execution)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        raise ValueError(f"checkpoint {path} is not a readable torch checkpoint ({exc})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path} is not a fluoro_training checkpoint (format 1)")
    return checkpoint


def write_weights(checkpoint: str | Path, output: str | Path) -> Path:
    """Write the shippable weights of a run: model state, config and validation metrics of
    ``checkpoint`` without the optimizer state (``models/<name>.pt``, a few MB).

    The file is a format-1 checkpoint that :func:`load_checkpoint` reads; ``fluoro-train
    train --init`` warm-starts from it (``--resume`` needs a full run checkpoint).
    """
    source = load_checkpoint(checkpoint)
    slim = {key: source[key] for key in ("format", "model", "step", "metrics", "config")}
    slim["config_hash"] = source.get("config_hash", "")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    return atomic_save(slim, output)


def atomic_save(checkpoint: dict[str, Any], path: Path) -> Path:
    """``torch.save`` to a temporary file, then rename: a crash never leaves a
    half-written checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(checkpoint, tmp)
    tmp.replace(path)
    return path


#: Warm start into more classes: a new class's bias starts this far below the lowest
#: learned one (a logit margin; e^-4 ~ 2 %).
NEW_CLASS_BIAS_MARGIN = 4.0


def warm_start(model: nn.Module, checkpoint: dict[str, Any]) -> dict[str, list[str]]:
    """Copy every tensor of ``checkpoint["model"]`` whose name and shape match ``model``.

    A tensor that grew along one axis only (the class axis of a classifier after a class
    was added, e.g. 4 -> 5 classes) is *extended*: the checkpoint's values fill the
    leading part of that axis, so the classes both models have keep what they learned,
    and the new class starts off: zero weights and, for a bias, the checkpoint's lowest
    bias minus :data:`NEW_CLASS_BIAS_MARGIN` (its softmax share starts below e^-4 of
    every old class's, so the warm-started model predicts what the checkpoint did).

    Returns ``{"loaded": [...], "extended": [...], "skipped": [...], "missing": [...]}``:
    skipped tensors changed shape otherwise, missing ones are new in ``model`` and keep
    their initialization (``missing`` also lists the skipped ones). Raises
    ``ValueError`` when nothing matches (another architecture).
    """
    state = model.state_dict()
    source = checkpoint["model"]
    loaded = [k for k, v in source.items() if k in state and state[k].shape == v.shape]
    extended = [k for k, v in source.items() if k in state and _grown_along_one_axis(v, state[k])]
    skipped = [
        k
        for k, v in source.items()
        if k in state and state[k].shape != v.shape and k not in extended
    ]
    missing = [k for k in state if k not in source or k in skipped]
    if not loaded:
        raise ValueError(
            "warm start: no tensor of the checkpoint matches this model by name and shape; "
            "expected weights of the same architecture (model.name)"
        )
    state.update({k: source[k] for k in loaded})
    for key in extended:
        old = source[key].to(state[key].dtype)
        if old.dim() == 1:
            target = torch.full_like(state[key], float(old.min()) - NEW_CLASS_BIAS_MARGIN)
        else:
            target = torch.zeros_like(state[key])
        target[tuple(slice(0, n) for n in old.shape)] = old
        state[key] = target
    model.load_state_dict(state)
    return {"loaded": loaded, "extended": extended, "skipped": skipped, "missing": missing}


def _grown_along_one_axis(old: torch.Tensor, new: torch.Tensor) -> bool:
    """``new`` has ``old``'s shape except one axis, which is longer."""
    if old.dim() != new.dim() or old.dim() == 0 or old.shape == new.shape:
        return False
    differ = [i for i, (a, b) in enumerate(zip(old.shape, new.shape, strict=True)) if a != b]
    return len(differ) == 1 and old.shape[differ[0]] < new.shape[differ[0]]


class Trainer:
    """Train one experiment described by a :class:`TrainConfig`.

    Parameters
    ----------
    config : TrainConfig
        The experiment (stored in every checkpoint).
    output_dir : str or Path, optional
        Run folder for ``last.pt``, ``best.pt``, ``log.csv``, ``config.json`` and
        ``tensorboard/``; default ``<config.output_dir>/<config.name>``.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``; default CUDA (the local rank's GPU) when
        available, else CPU.
    resume : str or Path, optional
        Checkpoint to continue from (model, optimizer, scheduler, scaler, step, RNG).
    init : str or Path, optional
        Warm start: model weights only (:func:`warm_start`) from a run checkpoint or the
        shipped ``models/<name>.pt``; optimizer, schedule and step start afresh.
    progress : bool
        Show a tqdm bar (rank 0 only).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is created here (NCCL on
    CUDA, gloo on CPU) and the model is wrapped in ``DistributedDataParallel``; only
    rank 0 validates, logs and writes checkpoints.
    """

    def __init__(
        self,
        config: TrainConfig,
        output_dir: str | Path | None = None,
        *,
        device: str | None = None,
        resume: str | Path | None = None,
        init: str | Path | None = None,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.distributed and not dist.is_initialized():
            if torch.cuda.is_available():  # NCCL needs each rank bound to its own GPU first
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend=backend)
        self.rank = dist.get_rank() if self.distributed else 0
        self.world_size = dist.get_world_size() if self.distributed else 1
        if device is None:
            if torch.cuda.is_available():
                local_rank = int(os.environ.get("LOCAL_RANK", "0"))
                device = f"cuda:{local_rank}"
            else:
                device = "cpu"
        self.device = torch.device(device)
        if self.device.type == "cpu":
            free_cores = (os.cpu_count() or 1) // max(1, self.world_size) - config.data.num_workers
            torch.set_num_threads(config.cpu_threads or max(1, free_cores))
        self.use_amp = config.amp and self.device.type == "cuda"
        self.output_dir = Path(output_dir or Path(config.output_dir) / config.name)
        self.progress = progress and self.rank == 0
        seed_everything(config.seed + self.rank)

        self.model = self.build_model().to(self.device)
        self._check_sizes(self.model)
        if config.optim.train_only == "tip":
            self._freeze_all_but_tip()
        self.loss_fn = self.build_loss()
        self.tip_loss_fn = TipHeatmapLoss()
        self.optimizer, self.scheduler = self.configure_optimizers(self.model)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.step = 0
        self.best_score = -math.inf
        self.best_metrics: dict[str, float] = {}
        if resume is not None and init is not None:
            raise ValueError("give resume (continue a run) or init (warm start), not both")
        self.warm_start_report: dict[str, list[str]] = {}
        if init is not None:
            checkpoint = load_checkpoint(init)
            saved = checkpoint.get("config", {}).get("model", {}).get("name")
            if saved != config.model.name:
                raise ValueError(
                    f"warm start from a {saved!r} checkpoint into model.name="
                    f"{config.model.name!r}; expected the same architecture"
                )
            self.warm_start_report = warm_start(self.model, checkpoint)
            LOG.info(
                "warm start from %s: %d tensors loaded, %d extended (classes added), "
                "%d skipped (shape), %d new",
                init,
                len(self.warm_start_report["loaded"]),
                len(self.warm_start_report["extended"]),
                len(self.warm_start_report["skipped"]),
                len(self.warm_start_report["missing"]),
            )
        if resume is not None:
            self._restore(load_checkpoint(resume))
        self.train_model: nn.Module = self.model
        if self.distributed:
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self._val_examples: list[dict[str, Any]] | None = None
        self.timing: dict[str, float] = {}

    def _check_sizes(self, model: nn.Module) -> None:
        stride = int(getattr(model, "stride", 1))
        for key, size in (
            ("data.crop_size", self.config.data.crop_size),
            ("data.image_size", self.config.data.image_size),
        ):
            if size[0] % stride or size[1] % stride:
                raise ValueError(
                    f"{key}={list(size)} is not a multiple of the {self.config.model.name} stride "
                    f"{stride}; use e.g. {[-(-v // stride) * stride for v in size]}"
                )

    # ------------------------------------------------------------------ hooks
    def build_model(self) -> nn.Module:
        """The network: ``create_model(model.name, num_classes, tip_head, **model.kwargs)``."""
        model_cfg = self.config.model
        return create_model(
            model_cfg.name,
            num_classes=model_cfg.num_classes,
            tip_head=model_cfg.tip_head,
            **model_cfg.kwargs,
        )

    def build_loss(self) -> nn.Module:
        """The segmentation loss: ``build_loss(loss.name, **loss.kwargs)``."""
        return build_loss(self.config.loss.name, **self.config.loss.kwargs)

    def configure_optimizers(self, model: nn.Module):
        """``(optimizer, scheduler)`` from ``config.optim``; the scheduler steps every step."""
        optim = self.config.optim
        params = [p for p in model.parameters() if p.requires_grad]
        if optim.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay
            )
        elif optim.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay)
        else:
            optimizer = torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay)
        steps = self.config.steps
        if optim.schedule == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=optim.lr, total_steps=steps, pct_start=optim.warmup_fraction
            )
        elif optim.schedule == "poly":  # DDRNet / FGA-Net style poly decay
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda s: (1 - min(s, steps - 1) / steps) ** 0.9
            )
        elif optim.schedule == "cosine":  # FGA-Net (seed 002, CosineAnnealingLR)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        elif optim.schedule == "step":  # L-SNet (seed 004): x0.1 at fixed fractions of the run
            milestones = sorted({max(1, int(round(m * steps))) for m in optim.step_milestones})
            scheduler = torch.optim.lr_scheduler.MultiStepLR(
                optimizer, milestones=milestones, gamma=optim.step_gamma
            )
        else:
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
        return optimizer, scheduler

    def compute_loss(
        self, outputs: dict[str, Any], batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The loss hook: named scalar terms and their sum ``"total"``.

        ``seg``: the configured loss on the full-resolution logits; ``aux<i>``: the same
        loss on each deep-supervision output (bilinearly upsampled, coarse to fine, weighted
        by ``loss.aux_weights``, default 0.4 each); ``tip``: the tip-heatmap loss times
        ``loss.tip_weight``.
        """
        labels = batch["labels"]
        ignored = labels == IGNORE_INDEX
        if bool(ignored.any()):
            # no gradient from pixels nobody could label: their logits are detached and
            # their target is background (they still count, detached, in batch Dice sums)
            labels = labels.masked_fill(ignored, 0)
            logits = outputs["logits"]
            outputs = {
                **outputs,
                "logits": torch.where(ignored[:, None], logits.detach(), logits),
            }
        terms = {"seg": self.loss_fn(outputs["logits"], labels)}
        aux = outputs.get("aux_logits") or []
        weights = self.config.loss.aux_weights or (0.4,) * len(aux)
        for index, (aux_logits, weight) in enumerate(zip(aux, weights, strict=False)):
            resized = F.interpolate(
                aux_logits, size=labels.shape[-2:], mode="bilinear", align_corners=False
            )
            if bool(ignored.any()):
                resized = torch.where(ignored[:, None], resized.detach(), resized)
            terms[f"aux{index}"] = weight * self.loss_fn(resized, labels)
        if "tip_heatmap" in outputs and self.config.loss.tip_weight > 0:
            terms["tip"] = self.config.loss.tip_weight * self.tip_loss_fn(
                outputs["tip_heatmap"], batch["tip_heatmap"]
            )
        terms["total"] = sum(terms.values())
        return terms

    def _freeze_all_but_tip(self) -> None:
        """``optim.train_only: tip``: every parameter but the tip head's stops learning."""
        tip = getattr(self.model, "tip", None)
        if tip is None:
            raise ValueError(
                "optim.train_only='tip' needs a model with a tip head (model.tip_head: true)"
            )
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        for parameter in tip.parameters():
            parameter.requires_grad_(True)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimizer step on a batch; returns the loss terms as floats."""
        self.train_model.train()
        if self.config.optim.train_only == "tip":
            # frozen layers keep their BatchNorm statistics: only the tip head trains
            self.model.eval()
            self.model.tip.train()
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
            outputs = self.train_model(batch["image"])
        # losses in float32 (focal/Dice terms underflow in fp16)
        outputs = {
            k: (v.float() if torch.is_tensor(v) else [t.float() for t in v])
            for k, v in outputs.items()
        }
        terms = self.compute_loss(outputs, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        self.scaler.unscale_(self.optimizer)
        if self.config.optim.grad_clip_norm > 0:
            for group in self._clip_groups():
                nn.utils.clip_grad_norm_(group, self.config.optim.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()  # the scaler is updated every step (a common bug is to forget it)
        self.scheduler.step()
        return {k: float(v.detach()) for k, v in terms.items()}

    def _clip_groups(self) -> list[list[nn.Parameter]]:
        """Parameter groups whose gradient norms are clipped separately.

        A tip head on its own branch (``tip_detach``) is clipped apart from the rest, so
        that its large early loss (most crops hold no tip) cannot shrink the segmentation
        gradients through a shared norm; otherwise one group.
        """
        tip = getattr(self.model, "tip", None)
        if tip is None or not getattr(self.model, "tip_detach", False):
            return [list(self.model.parameters())]
        tip_ids = {id(p) for p in tip.parameters()}
        rest = [p for p in self.model.parameters() if id(p) not in tip_ids]
        return [rest, list(tip.parameters())]

    def validation_set(self) -> list[dict[str, Any]]:
        """Whole-frame validation examples (held-out sequences), built once."""
        if self._val_examples is None:
            data = self.config.data
            if data.source == "folder":
                from fluoro_training.data.folder import folder_validation_frames

                frames = folder_validation_frames(data)
            else:
                frames = validation_frames(data)
            self._val_examples = validation_examples(
                frames, self.config.preprocessing, self.config.model.num_classes, data.tip_sigma_px
            )
        return self._val_examples

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The validation hook: metrics of the current model on :meth:`validation_set`."""
        self.model.eval()
        return evaluate_examples(self.model, self.validation_set(), self.device)

    def score(self, metrics: dict[str, float]) -> float:
        """Model selection: validation F1 (mean over foreground classes and centerline);
        the tip heatmap's F1 when only the tip head trains (``optim.train_only: tip``)."""
        if self.config.optim.train_only == "tip":
            return float(metrics.get("tip_f1", 0.0))
        return float(metrics.get("selection_f1", metrics.get("guidewire_dice", 0.0)))

    def on_validation_end(self, metrics: dict[str, float]) -> None:
        """Hook after each validation: write ``last.pt``, and ``best.pt`` when it improved."""
        score = self.score(metrics)
        self.save("last.pt", metrics)
        if score > self.best_score:
            self.best_score = score
            self.best_metrics = dict(metrics)
            self.save("best.pt", metrics)

    # ------------------------------------------------------------------ loop
    def train_loader(self) -> DataLoader:
        """Endless training batches (simulator or folder) for this rank.

        A resumed run starts each stream past the sequences it has already consumed
        (an upper bound: ``step * batch_size / frames_per_sequence``), so no training
        sequence is replayed.
        """
        data = self.config.data
        consumed = -(-self.step * data.batch_size // data.frames_per_sequence)
        options = dict(
            num_classes=self.config.model.num_classes,
            rank=self.rank,
            world_size=self.world_size,
            seed=self.config.seed,
            start_index=consumed,
        )
        if data.source == "folder":
            from fluoro_training.data.folder import FolderTrainStream

            dataset = FolderTrainStream(data, self.config.preprocessing, **options)
        else:
            dataset = SimulatorStream(data, self.config.preprocessing, **options)
        return DataLoader(
            dataset,
            batch_size=data.batch_size,
            num_workers=data.num_workers,
            persistent_workers=data.num_workers > 0,
            pin_memory=self.device.type == "cuda",
            # two batches in flight per worker: the simulator runs while the model trains
            prefetch_factor=2 if data.num_workers > 0 else None,
            worker_init_fn=_single_threaded_worker if data.num_workers > 0 else None,
            # a forked worker inherits OpenMP / OpenCV thread pools mid-state and can
            # deadlock (seen here after earlier training in the same process): spawn
            multiprocessing_context="spawn" if data.num_workers > 0 else None,
        )

    def _out_of_time(self, started: float) -> bool:
        """Whether the time budget is spent; in DDP every rank gets rank 0's answer."""
        budget = self.config.time_budget_min
        if budget <= 0:
            return False
        spent = (time.monotonic() - started) / 60.0 >= budget
        if self.distributed:  # ranks must stop at the same step or the next all-reduce hangs
            flag = torch.tensor([float(spent)], device=self.device)
            dist.broadcast(flag, src=0)
            spent = bool(flag.item() > 0)
        return spent

    def fit(self) -> dict[str, float]:
        """Run the loop to ``config.steps`` (or the time budget); returns the best metrics.

        Besides the loss terms, every logged row has ``data_s`` (time waiting for the
        batch [s]) and ``step_s`` (forward + backward + update [s]); :attr:`timing` holds
        their means over the run (the simulator's share of the wall time is
        ``data_s / (data_s + step_s)``).
        """
        config = self.config
        if self.rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        writer = self._tensorboard()
        csv_path = self.output_dir / "log.csv"
        if self.rank == 0 and self.step == 0:
            csv_path.unlink(missing_ok=True)  # a fresh run never appends to an old run's log
        started = time.monotonic()
        bar = tqdm(
            total=config.steps,
            initial=self.step,
            disable=not self.progress,
            desc=f"train {config.model.name}",
            unit="step",
            dynamic_ncols=True,
        )
        running: dict[str, float] = {}
        data_seconds: list[float] = []
        step_seconds: list[float] = []
        iterator = iter(self.train_loader())
        while self.step < config.steps:
            tick = time.perf_counter()
            batch = next(iterator)
            tock = time.perf_counter()
            losses = self.train_step(batch)
            data_seconds.append(tock - tick)
            step_seconds.append(time.perf_counter() - tock)
            self.step += 1
            for key, value in losses.items():
                running[key] = 0.9 * running.get(key, value) + 0.1 * value
            bar.update(1)
            bar.set_postfix(
                loss=f"{running['total']:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}"
            )
            if self.rank == 0 and (self.step % config.log_every == 0 or self.step == 1):
                row = {**losses, "data_s": data_seconds[-1], "step_s": step_seconds[-1]}
                row["lr"] = self.scheduler.get_last_lr()[0]
                self._log_row(csv_path, {"step": self.step, "split": "train", **row})
                if writer is not None:
                    for key, value in row.items():
                        writer.add_scalar(f"train/{key}", value, self.step)
            out_of_time = self._out_of_time(started)
            if self.step % config.val_every == 0 or self.step == config.steps or out_of_time:
                if self.rank == 0:
                    metrics = self.validate()
                    self.on_validation_end(metrics)
                    # wall minutes of THIS process since its start (a resumed run restarts
                    # at 0): the x axis of the learning curves (fluoro-train curves)
                    elapsed = (time.monotonic() - started) / 60.0
                    row = {"step": self.step, "split": "val", **metrics, "elapsed_min": elapsed}
                    self._log_row(csv_path, row)
                    if writer is not None:
                        for key, value in metrics.items():
                            writer.add_scalar(f"val/{key}", value, self.step)
                    bar.write(
                        f"step {self.step}: "
                        + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
                    )
                if self.distributed:
                    dist.barrier()
            if out_of_time:
                bar.write(
                    f"time budget of {config.time_budget_min} min reached at step {self.step}"
                )
                break
        bar.close()
        if writer is not None:
            writer.close()
        if data_seconds:
            # the first batch includes worker start-up; leave it out of the means
            tail = slice(1, None) if len(data_seconds) > 1 else slice(None)
            self.timing = {
                "data_s": float(np.mean(data_seconds[tail])),
                "step_s": float(np.mean(step_seconds[tail])),
                "steps": float(len(data_seconds)),
            }
        return self.best_metrics

    # ------------------------------------------------------------------ state
    def save(self, name: str, metrics: dict[str, float]) -> Path:
        """Write a checkpoint (model, optimizer, scheduler, scaler, step, config) atomically."""
        path = self.output_dir / name
        checkpoint = {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "best_score": self.best_score,
            "torch_rng_state": torch.get_rng_state(),
            "metrics": {k: float(v) for k, v in metrics.items()},
            "config": self.config.to_dict(),
            "config_hash": config_hash(self.config),
        }
        return atomic_save(checkpoint, path)

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("config", {}).get("model", {})
        if saved.get("name") != self.config.model.name:
            raise ValueError(
                f"checkpoint model {saved.get('name')!r} differs from config model.name="
                f"{self.config.model.name!r}; resume with the checkpoint's own config"
            )
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        self.step = int(checkpoint["step"])
        self.best_score = float(checkpoint["best_score"])
        self.best_metrics = dict(checkpoint.get("metrics", {}))
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])

    def _tensorboard(self):
        if self.rank != 0:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is in [train]; CSV logging still works without it
            LOG.warning("tensorboard not installed: logging to CSV only")
            return None
        return SummaryWriter(str(self.output_dir / "tensorboard"))

    @staticmethod
    def _log_row(path: Path, row: dict[str, Any]) -> None:
        new = not path.exists()
        fields = ["step", "split", "key", "value"]
        with path.open("a", newline="") as handle:
            out = csv.DictWriter(handle, fieldnames=fields)
            if new:
                out.writeheader()
            for key, value in row.items():
                if key in ("step", "split"):
                    continue
                out.writerow(
                    {"step": row["step"], "split": row["split"], "key": key, "value": value}
                )
