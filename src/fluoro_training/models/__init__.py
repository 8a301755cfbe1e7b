"""Model registry: ``create_model(name, **kwargs)`` and ``available_models()``.

Architectures are imported lazily so that listing names is cheap.
"""

from __future__ import annotations

import importlib

from fluoro_training.models.base import SegmentationNet, padded_size

# registry name -> "module:factory" (module relative to this package)
_REGISTRY: dict[str, str] = {
    "lda_net": "lda_net:LDANet",
    "fra_net": "fra_net:FRANet",
    "fga_net": "fga_net:FGANet",
    "ddr_sapc_u": "ddr_sapc_u:DDRSAPCU",
    "lsnet": "lsnet:LSNet",
    "unet": "baselines:UNetBaseline",
    "attention_unet": "baselines:AttentionUNetBaseline",
}


def available_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_REGISTRY)


def model_class(name: str) -> type[SegmentationNet]:
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown model {name!r}; available models: {', '.join(available_models())}"
        )
    module_name, attr = _REGISTRY[name].split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, attr)


def create_model(name: str, **kwargs) -> SegmentationNet:
    """Build a registered architecture, e.g. ``create_model("fra_net", width_mult=0.5)``."""
    return model_class(name)(**kwargs)


__all__ = ["SegmentationNet", "available_models", "create_model", "model_class", "padded_size"]
