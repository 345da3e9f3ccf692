"""Autoencoders on per-gene values of signatures: their configuration (`config`), their Keras
graphs (`autoencoder`), the training plan (`training`), the linear baselines they are measured
against (`baselines`) and the model folder they are saved in (`bundle`).

The configs import without TensorFlow (the CLI reads their defaults); the Keras parts load on use.
"""

from typing import Any

from degae_tools.models.config import (
    KINDS,
    Architecture,
    AutoencoderConfig,
    DataConfig,
    Runtime,
    Training,
)

__all__ = [
    "KINDS",
    "Architecture",
    "AutoencoderConfig",
    "DataConfig",
    "Runtime",
    "Training",
    "build_autoencoder",
    "set_kl_weight",
]


def __getattr__(name: str) -> Any:
    if name in ("build_autoencoder", "set_kl_weight", "Sampling", "KLDivergence"):
        from degae_tools.models import autoencoder

        return getattr(autoencoder, name)
    raise AttributeError(name)
