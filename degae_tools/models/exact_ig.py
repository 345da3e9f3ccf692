"""Exact integrated gradients for the piecewise-linear models degae builds.

Every model `train` and `predict` make is, at inference, a chain of affine maps and ReLUs: the
preprocessing (gather, |x| on the path from 0, standardise, min-max), the encoder's Dense layers
(noise, dropout and the VAE's sampling are identities at inference), the head's Normalization and
Dense layers. Along the straight path x(a) = a * x from the "no change" baseline, F(x(a)) is then
piecewise linear in a, and its gradient is constant between the points where some ReLU's input
crosses zero. Walking those segments gives the path integral exactly:

    IG(x) = d * sum over segments [a_k, a_k+1] of (a_k+1 - a_k) * dF/dz on that segment,

with d = T(x) - T(0) the path's direction in the model's input space (T is affine on the path, and
diagonal, so the per-feature product maps back to genes one to one). The attributions then sum to
F(x) - F(0) up to float32 round-off: the completeness gap of a quadrature rule, which Gauss-Legendre
leaves at about 0.015 logits after 50 steps on a 256x2 encoder, disappears.

The first layer's input is affine on the whole path, so the two matmuls as wide as the gene count
run once per pair; each segment then costs a pass through the narrower layers only. A pair crosses
at most one segment per first-layer ReLU plus those of deeper layers (a few hundred on the demo's
256x2 model); `bench/attribute.py` measures the rule against 50 Gauss-Legendre steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from degae_tools.errors import ModelError
from degae_tools.models.autoencoder import PCA_ENCODER

# Layers that are the identity at inference (training=False).
IDENTITY_LAYERS = ("InputLayer", "GaussianNoise", "Dropout", "KLDivergence", "Sampling")
# (The residual kind's encoder is a sum of two paths: `_residual_chain` rewrites it as a chain.)
# The VAE's log-variance branch feeds only the KL loss and sampling, never the code at inference.
OFF_PATH_LAYERS = ("z_log_var",)
PROBE = 1e-6  # how far past a segment's start its activation pattern is read


@dataclass
class Affine:
    """One layer as y = act(x @ kernel + bias), act ReLU or identity."""

    kernel: tf.Tensor
    bias: tf.Tensor
    relu: bool


def _layers_of(model: keras.Model) -> list[Affine]:
    if any(layer.name == PCA_ENCODER for layer in model.layers):
        return _residual_chain(model)
    out: list[Affine] = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in IDENTITY_LAYERS or layer.name in OFF_PATH_LAYERS:
            continue
        if kind == "Dense":
            activation = getattr(layer.activation, "__name__", str(layer.activation))
            if activation not in ("relu", "linear"):
                raise ModelError(f"exact IG: layer {layer.name} has activation {activation}")
            # the layer's own variables: no copy of a 48,978-row kernel
            out.append(Affine(layer.kernel.value, layer.bias.value, activation == "relu"))
        elif kind == "Normalization":
            mean = np.asarray(layer.mean, np.float32).reshape(-1)
            # as keras.layers.Normalization: divide by max(sqrt(variance), epsilon)
            variance = np.asarray(layer.variance, np.float32).reshape(-1)
            std = np.maximum(np.sqrt(variance), keras.backend.epsilon())
            scale = tf.linalg.diag(tf.constant(1.0 / std))
            out.append(Affine(scale, tf.constant(-mean / std), False))
        else:
            raise ModelError(f"exact IG: layer {layer.name} ({kind}) is not piecewise linear")
    return out


def _residual_chain(encoder: keras.Model) -> list[Affine]:
    """The residual encoder, code = (x P + b_P) + r(x), as one chain: the linear path p rides
    beside the hidden ReLU layers as relu(p) and relu(-p) (p = relu(p) - relu(-p)), and the
    code layer adds them back. The chain's first layer is [W_1 | P | -P]."""
    dense = {layer.name: layer for layer in encoder.layers if type(layer).__name__ == "Dense"}
    if any(type(layer).__name__ == "BatchNormalization" for layer in encoder.layers):
        raise ModelError("exact IG: a residual encoder with batch normalisation is not read")
    hidden = [dense[f"encoder_{i}"] for i in range(len(dense)) if f"encoder_{i}" in dense]
    path, last = dense[PCA_ENCODER], dense["code_residual"]
    p_w, p_b = tf.convert_to_tensor(path.kernel), tf.convert_to_tensor(path.bias)
    r_w, r_b = tf.convert_to_tensor(last.kernel), tf.convert_to_tensor(last.bias)
    if not hidden:
        return [Affine(r_w + p_w, r_b + p_b, False)]
    k = int(p_w.shape[1])
    eye = tf.eye(k, dtype=p_w.dtype)
    first = hidden[0]
    out = [
        Affine(
            tf.concat([first.kernel, p_w, -p_w], axis=1),
            tf.concat([first.bias, p_b, -p_b], axis=0),
            True,
        )
    ]
    for layer in hidden[1:]:
        w = tf.convert_to_tensor(layer.kernel)
        out.append(
            Affine(_block_diagonal(w, eye), tf.concat([layer.bias, tf.zeros(2 * k)], 0), True)
        )
    out.append(Affine(tf.concat([r_w, eye, -eye], axis=0), r_b, False))
    return out


def _block_diagonal(w: tf.Tensor, eye: tf.Tensor) -> tf.Tensor:
    """[[w, 0, 0], [0, I, 0], [0, 0, I]]: a hidden layer that passes relu(p), relu(-p) along."""
    k = int(eye.shape[0])
    rows, cols = int(w.shape[0]), int(w.shape[1])
    top = tf.concat([w, tf.zeros((rows, 2 * k), w.dtype)], axis=1)
    mid = tf.concat([tf.zeros((k, cols), w.dtype), eye, tf.zeros((k, k), w.dtype)], axis=1)
    bottom = tf.concat([tf.zeros((k, cols + k), w.dtype), eye], axis=1)
    return tf.concat([top, mid, bottom], axis=0)


class PiecewiseNetwork:
    """F(x) = head(encoder(T(x))) as a list of affine+ReLU layers, checked against the models."""

    def __init__(self, preprocessor, encoder: keras.Model, head: keras.Model) -> None:
        self.preprocessor = preprocessor
        self.layers = _layers_of(encoder) + _layers_of(head)
        self.encoder, self.head = encoder, head
        if any(a.relu for a in self.layers[-1:]):
            raise ModelError("exact IG: the last layer must be linear (GO-term logits)")

    def logits(self, z: tf.Tensor) -> tf.Tensor:
        """The chain's output for model inputs z (after the preprocessing)."""
        for a in self.layers:
            z = z @ a.kernel + a.bias
            if a.relu:
                z = tf.nn.relu(z)
        return z

    def check(self, x: np.ndarray, atol: float = 1e-3) -> None:
        """Refuse a model the chain does not reproduce (a layer read wrongly or unknown)."""
        z = self.preprocessor.tf_transform(tf.constant(x, tf.float32))
        expected = self.head(self.encoder(z, training=False), training=False)
        got = self.logits(z)
        scale = 1.0 + float(tf.reduce_max(tf.abs(expected)))
        if float(tf.reduce_max(tf.abs(got - expected))) > atol * scale:
            raise ModelError("exact IG: the layer chain does not reproduce the model's logits")


def _segment(layers_w, layers_b, relu, pu, pv, start, terms):
    """For pairs at path position `start`, given the first layer's pre-activations pu + a * pv:
    the end of their current linear segment and dF/d(first pre-activation) on it (traced into
    `_walk`'s graph)."""
    probe = start + PROBE
    nearest = tf.ones_like(start)
    masks = []
    u, v = pu, pv
    for i, is_relu in enumerate(relu):
        if i > 0:
            pu, pv = u @ layers_w[i - 1] + layers_b[i - 1], v @ layers_w[i - 1]
        if is_relu:
            on = (pu + probe[:, None] * pv) > 0
            crossing = -pu / tf.where(pv == 0, tf.ones_like(pv), pv)
            ahead = (pv != 0) & (crossing > probe[:, None])
            nearest = tf.minimum(
                nearest, tf.reduce_min(tf.where(ahead, crossing, tf.ones_like(crossing)), axis=1)
            )
            mask = tf.cast(on, pu.dtype)
            masks.append(mask)
            u, v = pu * mask, pv * mask
        else:
            masks.append(None)
            u, v = pu, pv
    # backward from the chosen logit to the first layer's pre-activation
    g = tf.one_hot(terms, tf.shape(u)[1], dtype=u.dtype)
    for i in range(len(relu) - 1, -1, -1):
        if masks[i] is not None:
            g = g * masks[i]
        if i > 0:
            g = g @ tf.transpose(layers_w[i - 1])
    return nearest, g


@tf.function(reduce_retracing=True)
def _walk(layers_w, layers_b, relu, pu, pv, terms, max_segments):
    """Sum over every pair's segments of length x dF/d(first pre-activation), in one graph loop;
    a pair that has reached the end of its path adds segments of length 0."""
    position = tf.zeros(tf.shape(pu)[0], pu.dtype)
    total = tf.zeros_like(pu)

    def more(position, total, count):
        return tf.reduce_any(position < 1.0)

    def step(position, total, count):
        tf.debugging.assert_less(
            count, max_segments, message="exact IG: too many linear segments on a path"
        )
        end, g = _segment(layers_w, layers_b, relu, pu, pv, position, terms)
        end = tf.minimum(end, 1.0)
        return end, total + (end - position)[:, None] * g, count + 1

    _, total, _ = tf.while_loop(more, step, (position, total, tf.constant(0)))
    return total


def iter_exact_ig(
    net: PiecewiseNetwork,
    x: np.ndarray,
    rows: np.ndarray,
    terms: np.ndarray,
    batch: int = 64,
    max_segments: int = 1_000_000,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (pair indices, attributions over all genes) blocks of at most `batch` pairs.

    The first layer's input is affine in the path position over all of [0, 1], so its matmuls
    (the only ones as wide as the gene count) run once per pair: its pre-activations are
    pu + a * pv, and the path integral of dF/dz is the integral of dF/d(pre-activation), summed
    over segments in the first layer's width, times its kernel transposed.
    """
    prep = net.preprocessor
    first = net.layers[0]
    rest_w = [a.kernel for a in net.layers[1:]]
    rest_b = [a.bias for a in net.layers[1:]]
    relu = [a.relu for a in net.layers]
    keep = np.asarray(prep.keep)
    c0 = prep.tf_transform(tf.zeros((1, x.shape[1]), tf.float32))
    for start in range(0, len(rows), batch):
        idx = np.arange(start, min(start + batch, len(rows)))
        d = prep.tf_transform(tf.constant(x[rows[idx]], tf.float32)) - c0
        pu = tf.repeat(c0 @ first.kernel + first.bias, len(idx), axis=0)
        pv = d @ first.kernel
        total = _walk(rest_w, rest_b, relu, pu, pv, tf.constant(terms[idx], tf.int32), max_segments)
        grad = tf.matmul(total, first.kernel, transpose_b=True)
        out = np.zeros((len(idx), x.shape[1]))
        out[:, keep] = d.numpy() * grad.numpy()
        yield idx, out
