"""Integrated gradients from a GO term's logit back to every input gene, in TensorFlow.

The attributed function is F(x) = head(encoder(preprocessor.tf_transform(x)))[term], with x a raw
log2FC vector over all genes in `core.genes.gene_index` order; the baseline is "no change"
(log2FC = 0 for every gene), which the preprocessor maps through the training scaler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

from degae_tools.errors import ModelError
from degae_tools.models.exact_ig import PiecewiseNetwork, iter_exact_ig
from degae_tools.models.go_config import RULES

LogitFn = Callable[[tf.Tensor], tf.Tensor]


def path_points(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Nodes alpha in [0, 1] and weights of a quadrature rule for the integral over the path.

    Sundararajan et al. 2017 eq. 3 is the Riemann sum; Gauss-Legendre maps `leggauss(steps)`
    from [-1, 1] to [0, 1] (nodes (t + 1) / 2, weights w / 2). Weights sum to 1.
    """
    m = steps
    if rule == "gauss-legendre":
        t, w = np.polynomial.legendre.leggauss(m)
        return (t + 1.0) / 2.0, w / 2.0
    if rule == "riemann-left":
        return np.arange(m) / m, np.full(m, 1.0 / m)
    if rule == "riemann-right":
        return np.arange(1, m + 1) / m, np.full(m, 1.0 / m)
    if rule == "riemann-middle":
        return (np.arange(m) + 0.5) / m, np.full(m, 1.0 / m)
    if rule == "riemann-trapezoid":
        w = np.full(m + 1, 1.0 / m)
        w[[0, -1]] /= 2.0
        return np.arange(m + 1) / m, w
    raise ModelError(f"unknown integration rule {rule!r}: expected one of {RULES}")


class ModelLogits:
    """F(x): raw log2FC (batch, n_genes) -> GO-term logits (batch, n_terms), differentiable; keeps
    its parts so that the exact rule can read the layers."""

    def __init__(self, preprocessor, encoder, head) -> None:
        self.preprocessor, self.encoder, self.head = preprocessor, encoder, head

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        z = self.preprocessor.tf_transform(x)
        return self.head(self.encoder(z, training=False), training=False)


def logit_function(preprocessor, encoder, head) -> ModelLogits:
    """F(x) of a preprocessor, an encoder and a GO head."""
    return ModelLogits(preprocessor, encoder, head)


def _ig_kernel(f: LogitFn) -> Callable[..., tf.Tensor]:
    @tf.function(reduce_retracing=True)
    def kernel(x, x0, alphas, weights, terms):
        # x (P, G), alphas/weights (S,), terms (P,): weighted sum over S path points per pair
        p, s = tf.shape(x)[0], tf.shape(alphas)[0]
        delta = x - x0[None, :]
        points = x0[None, None, :] + alphas[None, :, None] * delta[:, None, :]
        points = tf.reshape(points, (p * s, -1))
        rows = tf.repeat(terms, s)
        with tf.GradientTape() as tape:
            tape.watch(points)
            logits = f(points)
            picked = tf.gather(logits, rows, axis=1, batch_dims=1)
        grads = tf.reshape(tape.gradient(picked, points), (p, s, -1))
        return tf.einsum("psg,s->pg", grads, weights)

    return kernel


def logits(f: LogitFn, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """F(x) for every row of `x`, in batches of `batch` rows."""
    out = [f(tf.constant(x[i : i + batch], tf.float32)).numpy() for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def iter_integrated_gradients(
    f: LogitFn,
    x: np.ndarray,
    rows: np.ndarray,
    terms: np.ndarray,
    baseline: np.ndarray,
    steps: int = 50,
    rule: str = "gauss-legendre",
    batch: int = 256,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (pair indices, attributions) blocks for pairs (x[rows[i]], terms[i]).

    IG_g(x) = (x_g - x0_g) * integral_0^1 dF(x0 + a (x - x0)) / dx_g da (Sundararajan et al. 2017
    eq. 1), approximated by the chosen rule. Each forward pass holds at most `batch` path points
    (pairs x points), so memory is O(batch x n_genes) whatever `steps` is.

    `rule="exact"` walks the linear segments of a piecewise-linear model instead (no steps; see
    `degae_tools.models.exact_ig`); it needs the "no change" baseline and a `ModelLogits` F.
    """
    if rule == "exact":
        yield from _exact(f, x, rows, terms, baseline, batch)
        return
    alphas, weights = path_points(steps, rule)
    n_points = len(alphas)
    pairs_per_pass = max(1, batch // n_points)
    points_per_pass = min(n_points, max(1, batch // pairs_per_pass))
    kernel = _ig_kernel(f)
    x0 = tf.constant(baseline, tf.float32)
    for start in range(0, len(rows), pairs_per_pass):
        idx = np.arange(start, min(start + pairs_per_pass, len(rows)))
        xb = tf.constant(x[rows[idx]], tf.float32)
        tb = tf.constant(terms[idx], tf.int32)
        avg = np.zeros((len(idx), x.shape[1]), np.float64)
        for s in range(0, n_points, points_per_pass):
            a = tf.constant(alphas[s : s + points_per_pass], tf.float32)
            w = tf.constant(weights[s : s + points_per_pass], tf.float32)
            avg += kernel(xb, x0, a, w, tb).numpy()
        yield idx, (x[rows[idx]] - baseline[None, :]) * avg


def _exact(f, x, rows, terms, baseline, batch) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    if not isinstance(f, ModelLogits):
        raise ModelError("the exact rule needs F as logit_function(preprocessor, encoder, head)")
    if np.any(baseline != 0):
        raise ModelError("the exact rule integrates from the 'no change' baseline (log2FC = 0)")
    try:
        net = PiecewiseNetwork(f.preprocessor, f.encoder, f.head)
    except ModelError as error:
        raise ModelError(f"{error}: use a quadrature rule (--rule gauss-legendre)") from error
    if len(rows):
        net.check(x[rows[:8]])
    yield from iter_exact_ig(net, x, rows, terms, batch=batch)


def integrated_gradients(
    f: LogitFn,
    x: np.ndarray,
    rows: np.ndarray,
    terms: np.ndarray,
    baseline: np.ndarray | None = None,
    steps: int = 50,
    rule: str = "gauss-legendre",
    batch: int = 256,
) -> np.ndarray:
    """Attributions (n_pairs, n_genes) of term `terms[i]` for input row `x[rows[i]]`."""
    x = np.asarray(x, np.float32)
    base = np.zeros(x.shape[1], np.float32) if baseline is None else np.asarray(baseline)
    rows, terms = np.asarray(rows), np.asarray(terms)
    out = np.zeros((len(rows), x.shape[1]), np.float64)
    for idx, block in iter_integrated_gradients(f, x, rows, terms, base, steps, rule, batch):
        out[idx] = block
    return out


def top_k(attributions: np.ndarray, k: int, rank_by: str = "signed") -> np.ndarray:
    """Indices (n_pairs, k) of the k genes with the largest attribution per row, best first."""
    key = -attributions if rank_by == "signed" else -np.abs(attributions)
    k = min(k, attributions.shape[1])
    part = np.argpartition(key, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(key, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)
