"""Autoencoders on log2FC vectors: their configuration and their Keras graphs.

The config imports without TensorFlow (the CLI reads its defaults); the Keras parts load on use.
"""

from typing import Any

from degae_tools.models.config import KINDS, AutoencoderConfig

__all__ = ["KINDS", "AutoencoderConfig", "build_autoencoder", "set_kl_weight"]


def __getattr__(name: str) -> Any:
    if name in ("build_autoencoder", "set_kl_weight", "Sampling", "KLDivergence"):
        from degae_tools.models import autoencoder

        return getattr(autoencoder, name)
    raise AttributeError(name)
