"""Autoencoders on log2FC vectors: their configuration and their Keras graphs."""

from degae_tools.models.autoencoder import build_autoencoder, set_kl_weight
from degae_tools.models.config import AutoencoderConfig

__all__ = ["AutoencoderConfig", "build_autoencoder", "set_kl_weight"]
