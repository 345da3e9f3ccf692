"""The `attribute` step: integrated gradients of every (test contrast, predicted or enriched GO
term) pair, from the term's logit back to every gene, written as tables.

`ml.attribution_pairs` holds each pair with its completeness check, `ml.gene_attributions` its
top-k genes and `ml.term_genes` each term's genes aggregated over its pairs. The gradients are
computed in TensorFlow by `degae_tools.models.integrated_gradients`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from degae_tools import console
from degae_tools.errors import ModelError, NothingToDo
from degae_tools.models.go_config import AttributeConfig
from degae_tools.models.go_head import Predictor
from degae_tools.models.go_metrics import relative_gap
from degae_tools.models.integrated_gradients import (
    iter_integrated_gradients,
    logit_function,
    logits,
    top_k,
)
from degae_tools.steps.predict import SplitData, head_split, open_predictor
from warehouse import Query, Warehouse

GMT = Query("attribute/gmt")


class NoPairs(NothingToDo, ModelError):
    """No test contrast has a predicted or enriched term to attribute."""


@dataclass
class AttributeResult:
    """What `run` stored, with the completeness check and the throughput."""

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


@dataclass
class Attributions:
    """The three tables one attribution run writes, as Arrow tables."""

    pairs: pa.Table
    genes: pa.Table
    terms: pa.Table


def run(
    wh: Warehouse, model: str | Path, config: AttributeConfig = AttributeConfig()
) -> AttributeResult:
    """Attribute every (test contrast, predicted or enriched term) pair; store the three tables."""
    started = time.monotonic()
    predictor = open_predictor(wh, model)
    test = head_split(wh, predictor, "test")
    pairs = select_pairs(predictor, test, config.threshold, config.max_predicted)
    if not len(pairs.rows):
        raise NoPairs(_no_pairs(predictor, test, config))
    console.say(f"attributing {len(pairs.rows)} (contrast, term) pairs, {test.x.shape[1]} genes")
    out = attribute_pairs(predictor, pairs, config)
    with wh.transaction():
        for table, rows in (
            ("ml.attribution_pairs", out.pairs),
            ("ml.gene_attributions", out.genes),
            ("ml.term_genes", out.terms),
        ):
            wh.replace_rows(table, rows, where={"model_id": predictor.model_id})
    rel = relative_gap(out.pairs["completeness_gap"].to_numpy(), pairs.f_x - pairs.f_baseline)
    return AttributeResult(
        model_id=predictor.model_id,
        n_pairs=len(pairs.rows),
        n_terms=len(np.unique(pairs.terms)),
        completeness_ok=float(np.mean(rel <= 0.05)),
        max_relative_gap=float(rel.max()),
        seconds=time.monotonic() - started,
        config=config,
    )


def _no_pairs(predictor: Predictor, test: SplitData, config: AttributeConfig) -> str:
    labels = f"{predictor.config.label_column} < {predictor.config.threshold:g}"
    return (
        f"none of the {len(test.contrast_ids)} test contrasts of {predictor.model_id} has a term "
        f"scored >= {config.threshold:g} by the GO head or enriched ({labels}): lower "
        f"--threshold, or refit the head with `degae-tools predict` (a lower --min-positives)"
    )


def select_pairs(
    predictor: Predictor, test: SplitData, threshold: float, max_predicted: int = 10
) -> PairSet:
    """Every (contrast, term) pair predicted or enriched (label 1).

    Predicted: score >= threshold and among the contrast's `max_predicted` best terms. The head
    is trained class-balanced, so its scores run high; the cap keeps the pair count (and the
    attribution time) proportional to the contrasts, not to contrasts x terms.
    """
    f = logit_function(predictor.preprocessor, predictor.encoder, predictor.head)
    x = test.x
    fx = logits(f, x)
    f0 = logits(f, np.zeros((1, x.shape[1]), np.float32))[0]
    rank = np.argsort(np.argsort(-fx, axis=1, kind="stable"), axis=1)
    predicted = (fx >= np.log(threshold / (1.0 - threshold))) & (rank < max_predicted)
    enriched = test.y.astype(bool)
    terms, rows = np.nonzero((predicted | enriched).T)
    why = np.where(
        predicted[rows, terms] & enriched[rows, terms],
        "both",
        np.where(predicted[rows, terms], "predicted", "enriched"),
    )
    return PairSet(test.contrast_ids, x, rows, terms, why.tolist(), fx[rows, terms], f0[terms])


def attribute_pairs(predictor: Predictor, pairs: PairSet, config: AttributeConfig) -> Attributions:
    """Integrated gradients for every pair; keeps sums, top-k genes and per-term aggregates."""
    f = logit_function(predictor.preprocessor, predictor.encoder, predictor.head)
    n_genes, n = pairs.x.shape[1], len(pairs.rows)
    terms, counts = np.unique(pairs.terms, return_counts=True)
    per_term = {int(t): int(c) for t, c in zip(terms, counts, strict=True)}
    agg = TermAggregator(n_genes, per_term, config.term_top)
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
    model_id, go_ids = predictor.model_id, predictor.go_ids
    return Attributions(
        pair_rows(model_id, go_ids, pairs, sums, config),
        gene_rows(model_id, go_ids, pairs, top_genes, top_values),
        agg.table(model_id, go_ids),
    )


def pair_rows(
    model_id: str, go_ids: list[str], pairs: PairSet, sums: np.ndarray, config: AttributeConfig
) -> pa.Table:
    """Rows of `ml.attribution_pairs`: each pair, why it was chosen, and its completeness gap."""
    n = len(pairs.rows)
    steps = None if config.rule == "exact" else config.steps
    return pa.table(
        {
            "model_id": pa.array([model_id] * n, pa.string()),
            "contrast_id": pa.array(_contrasts(pairs), pa.string()),
            "go_id": pa.array(_terms(pairs, go_ids), pa.string()),
            "why": pa.array(pairs.why, pa.string()),
            "f_x": pa.array(pairs.f_x, pa.float64()),
            "f_baseline": pa.array(pairs.f_baseline, pa.float64()),
            "attribution_sum": pa.array(sums, pa.float64()),
            "completeness_gap": pa.array(sums - (pairs.f_x - pairs.f_baseline), pa.float64()),
            "steps": pa.array([steps] * n, pa.int32()),
            "rule": pa.array([config.rule] * n, pa.string()),
        }
    )


def gene_rows(
    model_id: str, go_ids: list[str], pairs: PairSet, genes: np.ndarray, values: np.ndarray
) -> pa.Table:
    """Rows of `ml.gene_attributions`: the top-k genes of each pair, best first."""
    n, k = genes.shape
    return pa.table(
        {
            "model_id": pa.array([model_id] * (n * k), pa.string()),
            "contrast_id": pa.array(np.repeat(_contrasts(pairs), k).tolist(), pa.string()),
            "go_id": pa.array(np.repeat(_terms(pairs, go_ids), k).tolist(), pa.string()),
            "gene_index": pa.array(genes.ravel(), pa.int32()),
            "attribution": pa.array(values.ravel(), pa.float64()),
            "rank": pa.array(np.tile(np.arange(1, k + 1), n), pa.int32()),
        }
    )


def _contrasts(pairs: PairSet) -> list[str]:
    return np.asarray(pairs.contrast_ids, dtype=object)[pairs.rows].tolist()


def _terms(pairs: PairSet, go_ids: list[str]) -> list[str]:
    return np.asarray(go_ids, dtype=object)[pairs.terms].tolist()


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
        self.closed: list[dict[str, np.ndarray]] = []

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
        """Rank the term's genes; keep the `keep` best and any gene in a pair's top-k."""
        n_pairs = self.total[term]
        mean = self.sums.pop(term) / n_pairs
        counts = self.counts.pop(term)
        ranks = np.empty(self.n_genes, np.int32)
        ranks[np.argsort(-mean, kind="stable")] = np.arange(1, self.n_genes + 1)
        genes = np.nonzero((ranks <= self.keep) | (counts > 0))[0]
        self.closed.append(
            {
                "term": np.full(len(genes), term),
                "gene_index": genes,
                "mean_abs_attribution": mean[genes],
                "n_pairs": np.full(len(genes), n_pairs),
                "n_top_k": counts[genes],
                "frac_top_k": counts[genes] / n_pairs,
                "rank": ranks[genes],
            }
        )

    def table(self, model_id: str, go_ids: list[str]) -> pa.Table:
        """Rows of `ml.term_genes`: the `keep` best genes of each term, and any gene in a top-k."""
        types = {
            "gene_index": pa.int32(),
            "mean_abs_attribution": pa.float64(),
            "n_pairs": pa.int32(),
            "n_top_k": pa.int32(),
            "frac_top_k": pa.float64(),
            "rank": pa.int32(),
        }
        column = {
            name: np.concatenate([c[name] for c in self.closed]) if self.closed else np.zeros(0)
            for name in ("term", *types)
        }
        n = len(column["term"])
        go = np.asarray(go_ids, dtype=object)[column["term"].astype(np.int64)].tolist()
        return pa.table(
            {
                "model_id": pa.array([model_id] * n, pa.string()),
                "go_id": pa.array(go, pa.string()),
                **{name: pa.array(column[name]).cast(t) for name, t in types.items()},
            }
        )


def export_gmt(wh: Warehouse, model_id: str, path: Path, top: int = 50) -> int:
    """Write each term's `top` genes (by mean |attribution|) as GMT lines; returns the term count.

    GMT: `go_id<TAB>description<TAB>symbol<TAB>symbol...`; a gene without symbol is its gene_id.
    """
    rows = wh.rows(GMT, {"model_id": model_id, "top": top})
    if not rows:
        raise ModelError(f"no term genes for model {model_id!r}: run `degae-tools attribute` first")
    with open(path, "w") as fh:
        for go_id, name, genes in rows:
            description = f"{name or go_id} (degae {model_id}, top {top} by mean |IG|)"
            fh.write("\t".join([go_id, description, *genes]) + "\n")
    return len(rows)
