"""DistributedDataParallel on CPU: 2 gloo processes train together and stay in sync."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fluoro_training.config import config_from_dict
from fluoro_training.trainer import Trainer

WORLD_SIZE = 2
SIZE = 64
CONFIG = {
    "name": "ddp",
    "steps": 2,
    "val_every": 2,
    "log_every": 1,
    "cpu_threads": 1,
    "model": {"name": "fra_net", "kwargs": {"width_mult": 0.25, "depth_mult": 0.5}},
    "optim": {"optimizer": "adamw", "lr": 0.003, "schedule": "constant"},
    "data": {
        "sim_size": [SIZE, SIZE],
        "image_size": [SIZE, SIZE],
        "crop_size": [SIZE, SIZE],
        "frames_per_sequence": 2,
        "batch_size": 2,
        "val_sequences": 1,
        "val_frames_per_sequence": 1,
    },
    "preprocessing": {"input_size": [SIZE, SIZE]},
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_rank(rank: int, port: int, output_dir: str) -> None:
    """One DDP process (module level so that ``spawn`` can import it)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD_SIZE),
        GLOO_SOCKET_IFNAME="lo",
    )
    trainer = Trainer(config_from_dict(CONFIG), output_dir, progress=False)
    first_batch = next(iter(trainer.train_loader()))
    trainer.fit()
    torch.save(
        {
            "rank": trainer.rank,
            "step": trainer.step,
            "params": [p.detach().clone() for p in trainer.model.parameters()],
            "grads": [p.grad.detach().clone() for p in trainer.model.parameters()],
            "first_image": first_batch["image"],
        },
        Path(output_dir) / f"rank{rank}.pt",
    )
    dist.destroy_process_group()


def test_two_gloo_ranks_finish_with_identical_parameters(tmp_path):
    mp.spawn(_run_rank, args=(_free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]
    assert [r["rank"] for r in results] == [0, 1]
    assert all(r["step"] == CONFIG["steps"] for r in results)
    # each rank simulates its own sequences ...
    assert not torch.equal(results[0]["first_image"], results[1]["first_image"])
    # ... yet gradients are all-reduced, so gradients and parameters agree exactly
    for grad_0, grad_1 in zip(results[0]["grads"], results[1]["grads"], strict=True):
        torch.testing.assert_close(grad_0, grad_1, rtol=0, atol=1e-7)
    for param_0, param_1 in zip(results[0]["params"], results[1]["params"], strict=True):
        torch.testing.assert_close(param_0, param_1, rtol=0, atol=1e-7)
    # only rank 0 writes checkpoints and logs
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "log.csv").is_file()
