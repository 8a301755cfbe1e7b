"""Training-side metrics: the runtime's numpy metrics plus torch/MONAI helpers.

Everything from :mod:`fluoro_perception.metrics` is re-exported unchanged, so validation
during training computes exactly what the evaluation CLI reports. The torch helpers here
turn batched logits into masks and wrap MONAI's ``DiceMetric`` /
``HausdorffDistanceMetric`` behind the project's ``(prediction, target)`` argument order.
"""

from __future__ import annotations

import warnings

import torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric

from fluoro_perception.metrics import *  # noqa: F403 (re-export of the shared numpy metrics)
from fluoro_perception.metrics import __all__ as _numpy_metric_names

_ACTIVATIONS = ("sigmoid", "softmax")


def logits_to_masks(
    logits: torch.Tensor, activation: str = "softmax", threshold: float = 0.5
) -> torch.Tensor:
    """Convert batched logits ``(B, C, H, W)`` to per-class binary masks ``(B, C, H, W)``.

    Parameters
    ----------
    logits : torch.Tensor
        Raw network outputs (no activation applied yet).
    activation : {"softmax", "sigmoid"}
        ``softmax``: one-hot of the arg-max class (exactly one class per pixel).
        ``sigmoid``: each channel independently ``sigmoid(logit) > threshold``.
    threshold : float
        Probability threshold in ``(0, 1)`` for ``sigmoid``.

    Returns
    -------
    torch.Tensor
        bool masks, same shape as ``logits``.
    """
    if not isinstance(logits, torch.Tensor) or logits.ndim != 4:
        raise ValueError(
            f"logits has shape {tuple(getattr(logits, 'shape', ()))}; expected (B, C, H, W)"
        )
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"activation={activation!r} is not supported; expected one of {_ACTIVATIONS}"
        )
    if activation == "sigmoid":
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold={threshold} must be in (0, 1)")
        # sigmoid(x) > t  <=>  x > logit(t): no activation needed.
        return logits > torch.logit(torch.tensor(float(threshold), dtype=torch.float64)).item()
    labels = logits.argmax(dim=1)  # (B, C, H, W) -> (B, H, W)
    return torch.nn.functional.one_hot(labels, logits.shape[1]).permute(0, 3, 1, 2).bool()


def labels_to_masks(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Integer label maps ``(B, H, W)`` / ``(B, 1, H, W)`` -> bool masks ``(B, K, H, W)``."""
    if labels.ndim == 4 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 3:
        raise ValueError(
            f"labels has shape {tuple(labels.shape)}; expected (B, H, W) or (B, 1, H, W)"
        )
    labels = labels.long()
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"labels span [{int(labels.min())}, {int(labels.max())}]; expected 0..{num_classes - 1}"
        )
    return torch.nn.functional.one_hot(labels, num_classes).permute(0, 3, 1, 2).bool()


def _check_masks(prediction: torch.Tensor, target: torch.Tensor) -> None:
    for name, tensor in (("prediction", prediction), ("target", target)):
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4:
            raise ValueError(
                f"{name} has shape {tuple(getattr(tensor, 'shape', ()))}; expected binary masks (B, C, H, W)"
            )
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must have equal shapes; "
            "convert with logits_to_masks / labels_to_masks"
        )


class TorchDiceMetric:
    """Batched per-class Dice with MONAI ``DiceMetric``, called as ``(prediction, target)``.

    Parameters
    ----------
    include_background : bool
        Score channel 0 too.
    ignore_empty : bool
        MONAI's rule: a (sample, class) with an empty target is NaN and left out of the
        mean (True), or scores 1 if the prediction is empty too, else 0 (False).

    Notes
    -----
    ``__call__(prediction, target)`` takes binary masks ``(B, C, H, W)`` and returns the
    ``(B, C)`` Dice of the batch; :meth:`aggregate` returns the mean over all batches
    (per class with ``per_class=True``).
    """

    def __init__(self, include_background: bool = False, ignore_empty: bool = True) -> None:
        self._metric = DiceMetric(
            include_background=include_background, reduction="none", ignore_empty=ignore_empty
        )

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_masks(prediction, target)
        return self._metric(y_pred=prediction.float(), y=target.float())

    def aggregate(self, per_class: bool = False) -> torch.Tensor:
        """Mean Dice over all samples (NaN-ignoring); ``(C,)`` if ``per_class``."""
        values = self._metric.get_buffer()  # (N, C)
        if per_class:
            return torch.nanmean(values, dim=0)
        return torch.nanmean(values)

    def reset(self) -> None:
        """Forget all accumulated batches."""
        self._metric.reset()


class TorchHausdorffMetric:
    """Batched per-class (percentile) Hausdorff distance with MONAI, ``(prediction, target)``.

    Parameters
    ----------
    percentile : float, optional
        ``None`` for the Hausdorff distance, 95 for HD95.
    include_background : bool
        Score channel 0 too.

    Notes
    -----
    MONAI measures between mask *surfaces* (edge pixels) [px]; compare with
    :func:`fluoro_perception.metrics.hausdorff_distance` called with
    ``boundary_only=True``. Empty masks give ``nan``/``inf`` per MONAI's rules; the numpy
    metric documents its own empty-mask values.
    """

    def __init__(self, percentile: float | None = None, include_background: bool = False) -> None:
        if percentile is not None and not 0.0 < float(percentile) <= 100.0:
            raise ValueError(f"percentile={percentile} must be None or in (0, 100]")
        self._metric = HausdorffDistanceMetric(
            include_background=include_background, percentile=percentile, reduction="none"
        )

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_masks(prediction, target)
        with warnings.catch_warnings():
            # MONAI 1.6.1 passes its own deprecated get_mask_edges argument internally;
            # the warning is about MONAI's code, not ours, and would repeat every batch.
            warnings.filterwarnings(
                "ignore", message=".*always_return_as_numpy.*", category=FutureWarning
            )
            return self._metric(y_pred=prediction.float(), y=target.float())

    def aggregate(self, per_class: bool = False) -> torch.Tensor:
        """Mean distance over all samples with a finite value; ``(C,)`` if ``per_class``."""
        values = self._metric.get_buffer().float()  # (N, C)
        values = torch.where(torch.isfinite(values), values, torch.nan)
        return torch.nanmean(values, dim=0) if per_class else torch.nanmean(values)

    def reset(self) -> None:
        """Forget all accumulated batches."""
        self._metric.reset()


__all__ = [
    *_numpy_metric_names,
    "TorchDiceMetric",
    "TorchHausdorffMetric",
    "labels_to_masks",
    "logits_to_masks",
]
