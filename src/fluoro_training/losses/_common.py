"""Shared input handling for the segmentation losses (private to ``fluoro_training.losses``).

Every segmentation loss in this package takes raw network **logits** ``(B, C, H, W)`` and
applies its activation exactly once inside (never pass probabilities). Targets are either
an integer label map ``(B, H, W)`` / ``(B, 1, H, W)`` or a float one-hot / binary tensor
with the same shape as the prediction.

Multi-class extension of the binary papers (one rule for every loss here): the loss of a
binary paper is applied **one-vs-rest per channel** to the channel's probability
(``sigmoid`` per channel, or ``softmax`` across channels), then averaged over channels
with configurable ``class_weights``. With ``softmax`` channel 0 is background and its
default weight is 0, so a 2-channel softmax model gets exactly the binary paper's loss on
the foreground channel.

``activation="auto"`` (the default of every loss) means ``softmax`` for ``C >= 2`` and
``sigmoid`` for ``C == 1``, matching the model contract in
:mod:`fluoro_training.models.base` (``logits`` are pre-softmax class scores).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

ACTIVATIONS = ("auto", "sigmoid", "softmax")
REDUCTIONS = ("mean", "sum", "none")


def check_activation(activation: str) -> str:
    """Return ``activation`` if it is one of :data:`ACTIVATIONS`, else raise ValueError."""
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation={activation!r} is not supported; expected one of {ACTIVATIONS} "
            "(sigmoid: independent channels, softmax: mutually exclusive classes, "
            "auto: softmax if C >= 2 else sigmoid)"
        )
    return activation


def resolve_activation(activation: str, num_channels: int) -> str:
    """Turn ``"auto"`` into ``"softmax"`` (``C >= 2``) or ``"sigmoid"`` (``C == 1``)."""
    if activation == "auto":
        return "softmax" if num_channels >= 2 else "sigmoid"
    return activation


def check_reduction(reduction: str) -> str:
    """Return ``reduction`` if it is one of :data:`REDUCTIONS`, else raise ValueError."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not supported; expected one of {REDUCTIONS}")
    return reduction


def check_non_negative(name: str, value: float) -> float:
    """Return ``float(value)`` if it is a finite number >= 0, else raise ValueError."""
    value = float(value)
    if not (value >= 0.0 and value != float("inf")):
        raise ValueError(f"{name}={value} must be a finite number >= 0")
    return value


def check_prediction(prediction: torch.Tensor, activation: str | None = None) -> None:
    """Raise TypeError/ValueError unless ``prediction`` is a float ``(B, C, H, W)`` tensor."""
    if not isinstance(prediction, torch.Tensor):
        raise TypeError(
            f"prediction is a {type(prediction).__name__}; expected a torch.Tensor of logits (B, C, H, W)"
        )
    if prediction.ndim != 4 or not prediction.is_floating_point():
        raise ValueError(
            f"prediction has shape {tuple(prediction.shape)} and dtype {prediction.dtype}; "
            "expected float logits of shape (B, C, H, W)"
        )
    if activation == "softmax" and prediction.shape[1] < 2:
        raise ValueError(
            f"activation='softmax' needs at least 2 channels, prediction has {prediction.shape[1]}; "
            "use activation='sigmoid' for a single-channel binary model"
        )


def target_as_one_hot(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return ``target`` as a float tensor shaped like ``prediction`` ``(B, C, H, W)``.

    Parameters
    ----------
    prediction : torch.Tensor
        ``(B, C, H, W)`` logits (only the shape, dtype and device are used).
    target : torch.Tensor
        Either the same shape as ``prediction`` (one-hot or binary, values in ``[0, 1]``),
        or an integer label map ``(B, H, W)`` / ``(B, 1, H, W)``. For ``C == 1`` a label
        map must be binary (0/1); for ``C > 1`` its values must lie in ``[0, C)``.

    Returns
    -------
    torch.Tensor
        ``(B, C, H, W)`` float tensor on ``prediction``'s device and dtype.
    """
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target is a {type(target).__name__}; expected a torch.Tensor")
    num_channels = prediction.shape[1]
    if target.shape == prediction.shape:
        return target.to(dtype=prediction.dtype)
    labels = target
    if labels.ndim == 4 and labels.shape[1] == 1:
        labels = labels[:, 0]  # (B, 1, H, W) -> (B, H, W)
    expected_hw = (prediction.shape[0], *prediction.shape[2:])
    if labels.ndim != 3 or tuple(labels.shape) != expected_hw:
        raise ValueError(
            f"target has shape {tuple(target.shape)}; expected {tuple(prediction.shape)} (one-hot) "
            f"or a label map {expected_hw} / (B, 1, H, W) matching prediction {tuple(prediction.shape)}"
        )
    if labels.is_floating_point():
        labels = labels.round()
    labels = labels.long()
    if labels.numel() > 0:
        low, high = int(labels.min()), int(labels.max())
        upper = 1 if num_channels == 1 else num_channels - 1
        if low < 0 or high > upper:
            raise ValueError(
                f"target labels span [{low}, {high}] but prediction has {num_channels} channel(s) "
                f"(valid labels 0..{upper}); map extra classes (e.g. catheter=3) before the loss"
            )
    if num_channels == 1:
        return labels.unsqueeze(1).to(dtype=prediction.dtype)  # (B, H, W) -> (B, 1, H, W)
    # (B, H, W) -> (B, H, W, C) -> (B, C, H, W)
    return F.one_hot(labels, num_channels).permute(0, 3, 1, 2).to(dtype=prediction.dtype)


def resolve_class_weights(
    class_weights: Sequence[float] | None, num_channels: int, activation: str, device, dtype
) -> torch.Tensor:
    """Return the per-channel weights ``(C,)``.

    ``None`` means 1 for every channel with ``sigmoid`` and ``[0, 1, ..., 1]`` with
    ``softmax`` (background channel 0 excluded, as in the binary papers).
    """
    if class_weights is None:
        weights = torch.ones(num_channels, device=device, dtype=dtype)
        if activation == "softmax":
            weights[0] = 0.0
        return weights
    weights = torch.as_tensor(list(class_weights), device=device, dtype=dtype)
    if weights.ndim != 1 or weights.numel() != num_channels:
        raise ValueError(
            f"class_weights has {weights.numel()} value(s) but prediction has {num_channels} channel(s); "
            "give one weight per channel"
        )
    if bool((weights < 0).any()) or float(weights.sum()) <= 0.0:
        raise ValueError(f"class_weights={list(class_weights)} must be >= 0 with a positive sum")
    return weights


def validate_class_weights(class_weights: Sequence[float] | None) -> tuple[float, ...] | None:
    """Check ``class_weights`` at construction (the channel count is checked at call time)."""
    if class_weights is None:
        return None
    values = tuple(float(w) for w in class_weights)
    if not values or any(w < 0 for w in values) or sum(values) <= 0:
        raise ValueError(
            f"class_weights={class_weights} must be a non-empty sequence of values >= 0 with a positive sum"
        )
    return values


def log_probabilities(
    prediction: torch.Tensor, activation: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Activate logits once; return ``(p, log p, log(1 - p))``, each ``(B, C, H, W)``.

    The logarithms come from ``logsigmoid`` / ``log_softmax`` rather than ``log(p)`` so
    that saturated logits give finite losses and gradients.
    """
    if activation == "sigmoid":
        log_p = F.logsigmoid(prediction)
        log_not_p = F.logsigmoid(-prediction)
        return log_p.exp(), log_p, log_not_p
    log_p = F.log_softmax(prediction, dim=1)
    probability = log_p.exp()
    # log(1 - p_c) = log(sum_{k != c} exp(x_k)) - logsumexp(x): exact and stable, no clamp.
    num_channels = prediction.shape[1]
    others = prediction.unsqueeze(1).expand(-1, num_channels, -1, -1, -1)  # (B, C, C, H, W)
    eye = torch.eye(num_channels, dtype=torch.bool, device=prediction.device).view(
        1, num_channels, num_channels, 1, 1
    )
    masked = others.masked_fill(eye, float("-inf"))
    log_not_p = torch.logsumexp(masked, dim=2) - torch.logsumexp(prediction, dim=1, keepdim=True)
    return probability, log_p, log_not_p


def weighted_channel_mean(per_channel: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean over the last axis ``C`` of ``per_channel`` (``(..., C)`` -> ``(...)``)."""
    return (per_channel * weights).sum(dim=-1) / weights.sum()


def reduce_pixelwise(
    pixel_loss: torch.Tensor, weights: torch.Tensor, reduction: str
) -> torch.Tensor:
    """Reduce a ``(B, C, H, W)`` pixel loss: mean over pixels and batch per channel, then
    the weighted channel mean (``"mean"``); ``"sum"`` sums the weighted pixel losses;
    ``"none"`` returns the weighted ``(B, C, H, W)`` map."""
    weight_map = weights.view(1, -1, 1, 1)
    if reduction == "none":
        return pixel_loss * weight_map
    if reduction == "sum":
        return (pixel_loss * weight_map).sum()
    per_channel = pixel_loss.mean(dim=(0, 2, 3))  # (B, C, H, W) -> (C,)
    return weighted_channel_mean(per_channel, weights)
