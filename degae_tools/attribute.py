"""Integrated gradients from a GO term's logit back to every input gene, in TensorFlow.

The attributed function is F(x) = head(encoder(preprocessor.tf_transform(x)))[term], with x a raw
log2FC vector over all genes in `core.genes.gene_index` order; the baseline is "no change"
(log2FC = 0 for every gene), which the preprocessor maps through the training scaler.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import tensorflow as tf

from degae_tools import console
from degae_tools.attribute_config import RULES, AttributeConfig
from degae_tools.errors import ModelError
from warehouse.connect import connect, transaction
from warehouse.migrate import read_query

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
    `degae_tools.exact_ig`); it needs the "no change" baseline and a `ModelLogits` F.
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
    from degae_tools.exact_ig import PiecewiseNetwork, iter_exact_ig

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


@dataclass
class AttributeResult:
    """What `attribute` stored, with the completeness check and the throughput."""

    model_id: str
    n_pairs: int
    n_terms: int
    completeness_ok: float
    max_relative_gap: float
    seconds: float
    config: AttributeConfig

    @property
    def pairs_per_second(self) -> float:
        """Attributed (contrast, term) pairs per second of wall time."""
        return self.n_pairs / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class PairSet:
    """The (test contrast, GO term) pairs to attribute, ordered by term then contrast."""

    contrast_ids: list[str]
    x: np.ndarray
    rows: np.ndarray
    terms: np.ndarray
    why: list[str]
    f_x: np.ndarray
    f_baseline: np.ndarray


def select_pairs(
    predictor,
    contrast_ids: list[str],
    x: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    max_predicted: int = 10,
) -> PairSet:
    """Every (contrast, term) pair predicted or enriched (label 1).

    Predicted: score >= threshold and among the contrast's `max_predicted` best terms. The head
    is trained class-balanced, so its scores run high; the cap keeps the pair count (and the
    attribution time) proportional to the contrasts, not to contrasts x terms.
    """
    f = logit_function(predictor.preprocessor, predictor.encoder, predictor.head)
    fx = logits(f, x)
    f0 = logits(f, np.zeros((1, x.shape[1]), np.float32))[0]
    rank = np.argsort(np.argsort(-fx, axis=1, kind="stable"), axis=1)
    predicted = (fx >= np.log(threshold / (1.0 - threshold))) & (rank < max_predicted)
    enriched = labels.astype(bool)
    terms, rows = np.nonzero((predicted | enriched).T)
    why = np.where(
        predicted[rows, terms] & enriched[rows, terms],
        "both",
        np.where(predicted[rows, terms], "predicted", "enriched"),
    )
    return PairSet(contrast_ids, x, rows, terms, why.tolist(), fx[rows, terms], f0[terms])


def relative_gap(gap: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """|gap| / |F(x) - F(baseline)|, with float32 round-off (1e-4) counted as no gap."""
    return np.where(np.abs(gap) <= 1e-4, 0.0, np.abs(gap) / np.maximum(np.abs(delta), 1e-12))


class TermAggregator:
    """Per-term sums over pairs streamed in term order: mean |attribution| and top-k counts.

    A term is closed (its genes ranked and the sums freed) after its last pair, so memory holds
    only the terms of the current block.
    """

    def __init__(self, n_genes: int, pairs_per_term: dict[int, int], keep: int) -> None:
        self.n_genes, self.total, self.keep = n_genes, pairs_per_term, keep
        self.seen: dict[int, int] = {}
        self.sums: dict[int, np.ndarray] = {}
        self.counts: dict[int, np.ndarray] = {}
        self.closed: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, term: int, attribution: np.ndarray, top: np.ndarray) -> None:
        """Add one pair's attributions and its top-k genes."""
        if term not in self.sums:
            self.sums[term] = np.zeros(self.n_genes, np.float64)
            self.counts[term] = np.zeros(self.n_genes, np.int32)
            self.seen[term] = 0
        self.sums[term] += np.abs(attribution)
        self.counts[term][top] += 1
        self.seen[term] += 1
        if self.seen[term] == self.total[term]:
            self._close(term)

    def _close(self, term: int) -> None:
        mean = self.sums.pop(term) / self.total[term]
        counts = self.counts.pop(term)
        ranks = np.empty(self.n_genes, np.int32)
        ranks[np.argsort(-mean, kind="stable")] = np.arange(1, self.n_genes + 1)
        genes = np.nonzero((ranks <= self.keep) | (counts > 0))[0]
        self.closed.append((term, genes, mean[genes], counts[genes], ranks[genes]))

    def table(self, model_id: str, go_ids: list[str]) -> pa.Table:
        """Rows of `ml.term_genes`: the `keep` best genes of each term, and any gene in a top-k."""
        parts = [
            {
                "go_id": np.full(len(genes), go_ids[term], dtype=object),
                "gene_index": genes.astype(np.int32),
                "mean_abs_attribution": mean,
                "n_pairs": np.full(len(genes), self.total[term], np.int32),
                "n_top_k": counts.astype(np.int32),
                "frac_top_k": counts / self.total[term],
                "rank": ranks.astype(np.int32),
            }
            for term, genes, mean, counts, ranks in self.closed
        ]
        columns = {
            k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)
            for k in (
                "go_id",
                "gene_index",
                "mean_abs_attribution",
                "n_pairs",
                "n_top_k",
                "frac_top_k",
                "rank",
            )
        }
        n = len(columns["go_id"])
        return pa.table(
            {
                "model_id": pa.array([model_id] * n, pa.string()),
                "go_id": pa.array(columns["go_id"].tolist(), pa.string()),
                "gene_index": pa.array(columns["gene_index"], pa.int32()),
                "mean_abs_attribution": pa.array(columns["mean_abs_attribution"], pa.float64()),
                "n_pairs": pa.array(columns["n_pairs"], pa.int32()),
                "n_top_k": pa.array(columns["n_top_k"], pa.int32()),
                "frac_top_k": pa.array(columns["frac_top_k"], pa.float64()),
                "rank": pa.array(columns["rank"], pa.int32()),
            }
        )


@dataclass
class Attributions:
    """The three tables one attribution run writes, as Arrow tables."""

    pairs: pa.Table
    genes: pa.Table
    terms: pa.Table


def attribute_pairs(predictor, pairs: PairSet, config: AttributeConfig) -> Attributions:
    """Integrated gradients for every pair; keeps sums, top-k genes and per-term aggregates."""
    f = logit_function(predictor.preprocessor, predictor.encoder, predictor.head)
    n_genes, n = pairs.x.shape[1], len(pairs.rows)
    terms, counts = np.unique(pairs.terms, return_counts=True)
    agg = TermAggregator(
        n_genes, {int(t): int(c) for t, c in zip(terms, counts, strict=True)}, config.term_top
    )
    sums = np.zeros(n)
    top_genes = np.zeros((n, min(config.top_k, n_genes)), np.int32)
    top_values = np.zeros(top_genes.shape)
    baseline = np.zeros(n_genes, np.float32)
    blocks = iter_integrated_gradients(
        f, pairs.x, pairs.rows, pairs.terms, baseline, config.steps, config.rule, config.batch
    )
    for idx, block in console.progress(blocks, description="integrated gradients"):
        sums[idx] = block.sum(axis=1)
        top = top_k(block, config.top_k, config.rank_by)
        top_genes[idx], top_values[idx] = top, np.take_along_axis(block, top, axis=1)
        for j, i in enumerate(idx):
            agg.add(int(pairs.terms[i]), block[j], top[j])

    go_ids, model_id = predictor.go_ids, predictor.model_id
    contrast = np.asarray(pairs.contrast_ids, dtype=object)[pairs.rows]
    go = np.asarray(go_ids, dtype=object)[pairs.terms]
    k = top_genes.shape[1]
    pair_table = pa.table(
        {
            "model_id": pa.array([model_id] * n, pa.string()),
            "contrast_id": pa.array(contrast.tolist(), pa.string()),
            "go_id": pa.array(go.tolist(), pa.string()),
            "why": pa.array(pairs.why, pa.string()),
            "f_x": pa.array(pairs.f_x, pa.float64()),
            "f_baseline": pa.array(pairs.f_baseline, pa.float64()),
            "attribution_sum": pa.array(sums, pa.float64()),
            "completeness_gap": pa.array(sums - (pairs.f_x - pairs.f_baseline), pa.float64()),
            "steps": pa.array([None if config.rule == "exact" else config.steps] * n, pa.int32()),
            "rule": pa.array([config.rule] * n, pa.string()),
        }
    )
    gene_table = pa.table(
        {
            "model_id": pa.array([model_id] * (n * k), pa.string()),
            "contrast_id": pa.array(np.repeat(contrast, k).tolist(), pa.string()),
            "go_id": pa.array(np.repeat(go, k).tolist(), pa.string()),
            "gene_index": pa.array(top_genes.ravel(), pa.int32()),
            "attribution": pa.array(top_values.ravel(), pa.float64()),
            "rank": pa.array(np.tile(np.arange(1, k + 1), n), pa.int32()),
        }
    )
    return Attributions(pair_table, gene_table, agg.table(model_id, go_ids))


def attribute(
    db_path: Path | None, model: str | Path, config: AttributeConfig | None = None
) -> AttributeResult:
    """Attribute every (test contrast, predicted or enriched term) pair; store the three tables."""
    config = config or AttributeConfig()
    from degae_tools.predict import load_predictor, load_split, model_split_name, resolve_model_dir

    started = time.monotonic()
    predictor = load_predictor(resolve_model_dir(db_path, str(model)))
    con = connect(db_path)
    try:
        split_name = model_split_name(con, predictor, predictor.config)
        test, _ = load_split(con, split_name, "test", predictor.go_ids, predictor.config)
    finally:
        con.close()
    pairs = select_pairs(
        predictor, test.contrast_ids, test.x, test.y, config.threshold, config.max_predicted
    )
    console.say(f"attributing {len(pairs.rows)} (contrast, term) pairs, {test.x.shape[1]} genes")
    out = attribute_pairs(predictor, pairs, config)
    store_attributions(db_path, predictor.model_id, out)
    gap = out.pairs["completeness_gap"].to_numpy()
    rel = relative_gap(gap, pairs.f_x - pairs.f_baseline)
    return AttributeResult(
        model_id=predictor.model_id,
        n_pairs=len(pairs.rows),
        n_terms=len(np.unique(pairs.terms)),
        completeness_ok=float(np.mean(rel <= 0.05)) if len(rel) else float("nan"),
        max_relative_gap=float(rel.max()) if len(rel) else float("nan"),
        seconds=time.monotonic() - started,
        config=config,
    )


def store_attributions(db_path: Path | None, model_id: str, out: Attributions) -> None:
    """Replace the model's rows in ml.attribution_pairs, ml.gene_attributions, ml.term_genes."""
    con = connect(db_path, write=True)
    try:
        con.register("new_pairs", out.pairs)
        con.register("new_genes", out.genes)
        con.register("new_terms", out.terms)
        with transaction(con):
            for table in ("pairs", "genes", "terms"):
                con.execute(read_query(f"attribute/delete_{table}"), [model_id])
                con.execute(read_query(f"attribute/insert_{table}"))
    finally:
        con.close()


def export_gmt(db_path: Path | None, model_id: str, path: Path, top: int = 50) -> int:
    """Write each term's `top` genes (by mean |attribution|) as GMT lines; returns the term count.

    GMT: `go_id<TAB>description<TAB>symbol<TAB>symbol...`; a gene without symbol is its gene_id.
    """
    con = connect(db_path)
    try:
        rows = con.execute(read_query("attribute/gmt"), [model_id, top]).fetchall()
    finally:
        con.close()
    if not rows:
        raise ModelError(f"no term genes for model {model_id!r}: run `degae-tools attribute` first")
    with open(path, "w") as fh:
        for go_id, name, genes in rows:
            description = f"{name or go_id} (degae {model_id}, top {top} by mean |IG|)"
            fh.write("\t".join([go_id, description, *genes]) + "\n")
    return len(rows)
