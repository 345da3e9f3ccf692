"""Keras 3 autoencoders on log2FC vectors: dense (the study's), sparse (L1 on the code), denoising
(input noise/dropout) and variational (beta-VAE with KL warm-up)."""

from __future__ import annotations

import keras
from keras import layers, ops

from degae_tools.models.config import AutoencoderConfig


@keras.saving.register_keras_serializable(package="degae")
class Sampling(layers.Layer):
    """z = mean + exp(log_var / 2) * eps while training; the mean otherwise."""

    def __init__(self, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        z_mean, z_log_var = inputs
        if not training:
            return z_mean
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator, dtype=z_mean.dtype)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="degae")
class KLDivergence(layers.Layer):
    """Adds weight * KL(q(z|x) || N(0, I)) per sample, divided by the input width so that it is on
    the scale of the per-gene MSE (Higgins et al. 2017, beta-VAE); passes its inputs through."""

    def __init__(self, n_inputs: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_inputs = n_inputs

    def build(self, input_shape) -> None:
        self.weight = self.add_weight(
            name="kl_weight", shape=(), initializer="zeros", trainable=False, dtype="float32"
        )

    def call(self, inputs):
        z_mean, z_log_var = (ops.cast(t, "float32") for t in inputs)
        kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
        self.add_loss(self.weight * ops.mean(kl) / self.n_inputs)
        return [inputs[0], inputs[1]]

    def get_config(self) -> dict:
        return {**super().get_config(), "n_inputs": self.n_inputs}


def build_autoencoder(n_inputs: int, config: AutoencoderConfig) -> tuple[keras.Model, keras.Model]:
    """(autoencoder, encoder) for `n_inputs` genes; the encoder outputs the code (z_mean for a VAE).

    Hidden layers are ReLU (batch-normalised before it with `batch_norm`); the output layer is
    float32 even under mixed precision.
    """
    net, seed = config.architecture, config.training.seed
    inputs = keras.Input(shape=(n_inputs,), name="log2fc")
    x = inputs
    if net.kind == "denoising":
        if net.noise > 0:
            x = layers.GaussianNoise(net.noise, seed=seed, name="input_noise")(x)
        if net.dropout > 0:
            x = layers.Dropout(net.dropout, seed=seed + 1, name="input_dropout")(x)
    widths = net.widths
    for i, width in enumerate(widths[:-1]):
        x = _hidden(x, width, net.batch_norm, f"encoder_{i}")
    if net.kind == "variational":
        z_mean = layers.Dense(widths[-1], name="z_mean")(x)
        z_log_var = layers.Dense(widths[-1], name="z_log_var", kernel_initializer="zeros")(x)
        code, z_log_var = KLDivergence(n_inputs, name="kl")([z_mean, z_log_var])
        x = Sampling(seed=seed + 2, name="sampling")([code, z_log_var])
    else:
        regularizer = keras.regularizers.L1(net.l1) if net.kind == "sparse" else None
        code = layers.Dense(
            widths[-1],
            activation=net.code_activation,
            activity_regularizer=regularizer,
            name="code",
        )(x)
        x = code
    for i, width in enumerate(reversed(widths[:-1])):
        x = _hidden(x, width, net.batch_norm, f"decoder_{i}")
    x = layers.Dense(n_inputs, name="reconstruction_logits", dtype="float32")(x)
    outputs = layers.Activation(net.output_activation, dtype="float32", name="reconstruction")(x)
    autoencoder = keras.Model(inputs, outputs, name=f"{net.kind}_autoencoder")
    encoder = keras.Model(inputs, code, name="encoder")
    return autoencoder, encoder


def _hidden(x, width: int, batch_norm: bool, name: str):
    """Dense + ReLU, or Dense (no bias) + BatchNormalization + ReLU."""
    if not batch_norm:
        return layers.Dense(width, activation="relu", name=name)(x)
    x = layers.Dense(width, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_norm")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def set_kl_weight(autoencoder: keras.Model, config: AutoencoderConfig, epoch: int) -> None:
    """KL warm-up: the KL weight rises linearly to beta over `kl_warmup_epochs` (0-based epoch)."""
    if config.kind != "variational":
        return
    warmup = config.training.kl_warmup_epochs
    ramp = 1.0 if warmup <= 0 else min(1.0, (epoch + 1) / warmup)
    autoencoder.get_layer("kl").weight.assign(config.architecture.beta * ramp)
