"""Keras 3 autoencoders on log2FC vectors: dense (the study's), sparse (L1 on the code), denoising
(input noise/dropout), variational (beta-VAE with KL warm-up) and residual.

The residual kind is PCA plus what PCA misses: its code is P^T (x - mu) + r_enc(x) and its
reconstruction mu + P code + r_dec(code), where P (genes x k) and mu are the training split's top-k
principal axes and mean (frozen) and r_enc, r_dec are ReLU networks of the hidden widths whose
last layers start at zero. Training starts at PCA's reconstruction and moves away only where
the validation loss says so; on the real L1000 signatures this beat both PCA and the dense
autoencoder at every latent size (bench/l1000_explore.py, bench/l1000_sequence.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
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


@dataclass(frozen=True)
class LinearPath:
    """The residual kind's frozen linear path: principal axes (k x genes) and the mean (genes),
    of the model's inputs on the training split."""

    components: np.ndarray
    mean: np.ndarray

    def weights(self, n_inputs: int, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """[kernel, bias] of the encoder's projection and of the decoder's map back; axes
        missing (fewer training rows than k) are zero."""
        axes = np.zeros((k, n_inputs), np.float32)
        got = np.asarray(self.components, np.float32)[:k]
        axes[: len(got)] = got
        mean = np.asarray(self.mean, np.float32)
        return [axes.T, -(mean @ axes.T)], [axes, mean]


PCA_ENCODER, PCA_DECODER = "pca_encoder", "pca_decoder"


def build_autoencoder(
    n_inputs: int, config: AutoencoderConfig, linear_path: LinearPath | None = None
) -> tuple[keras.Model, keras.Model]:
    """(autoencoder, encoder) for `n_inputs` genes; the encoder outputs the code (z_mean for a VAE).

    Hidden layers are ReLU (batch-normalised before it with `batch_norm`); the output layer is
    float32 even under mixed precision. The residual kind takes its frozen `linear_path` (zeros
    without one: a checkpoint or a saved model fills them).
    """
    if config.kind == "residual":
        return build_residual(n_inputs, config, linear_path)
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
        x = _hidden(x, width, net, f"encoder_{i}")
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
        x = _hidden(x, width, net, f"decoder_{i}")
    x = layers.Dense(n_inputs, name="reconstruction_logits", dtype="float32")(x)
    outputs = layers.Activation(net.output_activation, dtype="float32", name="reconstruction")(x)
    autoencoder = keras.Model(inputs, outputs, name=f"{net.kind}_autoencoder")
    encoder = keras.Model(inputs, code, name="encoder")
    return autoencoder, encoder


def build_residual(
    n_inputs: int, config: AutoencoderConfig, linear_path: LinearPath | None
) -> tuple[keras.Model, keras.Model]:
    """The residual kind: frozen PCA path plus zero-initialised ReLU residuals (module doc).
    Gaussian input noise (`noise`) and input dropout (`dropout`) corrupt what both paths read
    while training; `hidden_dropout` acts after each hidden layer; the code is linear (a ReLU
    would cut PCA's scores)."""
    net, seed = config.architecture, config.training.seed
    widths = net.widths
    inputs = keras.Input(shape=(n_inputs,), name="log2fc")
    x = inputs
    if net.noise > 0:
        x = layers.GaussianNoise(net.noise, seed=seed, name="input_noise")(x)
    if net.dropout > 0:
        x = layers.Dropout(net.dropout, seed=seed + 1, name="input_dropout")(x)
    h = x
    for i, width in enumerate(widths[:-1]):
        h = _hidden(h, width, net, f"encoder_{i}")
    projection = layers.Dense(widths[-1], trainable=False, name=PCA_ENCODER)(x)
    residual = layers.Dense(widths[-1], kernel_initializer="zeros", name="code_residual")(h)
    code = layers.Add(name="code")([projection, residual])
    h = code
    for i, width in enumerate(reversed(widths[:-1])):
        h = _hidden(h, width, net, f"decoder_{i}")
    back = layers.Dense(n_inputs, trainable=False, name=PCA_DECODER, dtype="float32")(code)
    residual_out = layers.Dense(
        n_inputs, kernel_initializer="zeros", name="reconstruction_residual", dtype="float32"
    )(h)
    y = layers.Add(name="reconstruction_logits", dtype="float32")([back, residual_out])
    outputs = layers.Activation(net.output_activation, dtype="float32", name="reconstruction")(y)
    autoencoder = keras.Model(inputs, outputs, name="residual_autoencoder")
    encoder = keras.Model(inputs, code, name="encoder")
    if linear_path is not None:
        encode, decode = linear_path.weights(n_inputs, widths[-1])
        autoencoder.get_layer(PCA_ENCODER).set_weights(encode)
        autoencoder.get_layer(PCA_DECODER).set_weights(decode)
    return autoencoder, encoder


def _hidden(x, width: int, net, name: str):
    """Dense + ReLU, or Dense (no bias) + BatchNormalization + ReLU; then `hidden_dropout`."""
    if not net.batch_norm:
        x = layers.Dense(width, activation="relu", name=name)(x)
    else:
        x = layers.Dense(width, use_bias=False, name=name)(x)
        x = layers.BatchNormalization(name=f"{name}_norm")(x)
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    if net.hidden_dropout > 0:
        # seeded from Keras' global seed, which fit_autoencoder sets
        x = layers.Dropout(net.hidden_dropout, name=f"{name}_dropout")(x)
    return x


def set_kl_weight(autoencoder: keras.Model, config: AutoencoderConfig, epoch: int) -> None:
    """KL warm-up: the KL weight rises linearly to beta over `kl_warmup_epochs` (0-based epoch)."""
    if config.kind != "variational":
        return
    warmup = config.training.kl_warmup_epochs
    ramp = 1.0 if warmup <= 0 else min(1.0, (epoch + 1) / warmup)
    autoencoder.get_layer("kl").weight.assign(config.architecture.beta * ramp)
