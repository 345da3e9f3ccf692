"""How well GO terms are predicted and how well attributions agree, as plain array functions.

AUROC and AUPRC per term and pooled (macro: mean over terms; micro: over every cell), the
relative completeness gap of an attribution, precision/recall at k and Jaccard overlap.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score


def macro_auprc(y: np.ndarray, scores: np.ndarray) -> float:
    """Mean average precision over terms with a positive and a negative (NaN if none)."""
    ok = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    if not ok:
        return float("nan")
    return float(np.mean([average_precision_score(y[:, j], scores[:, j]) for j in ok]))


def term_metrics(
    predictor: str, go_ids: list[str], y_train: np.ndarray, y_test: np.ndarray, scores: np.ndarray
) -> pl.DataFrame:
    """AUROC and AUPRC per term (NULL where the test split lacks a class), then macro and micro."""
    n_train, n_test = y_train.sum(axis=0), y_test.sum(axis=0)
    auroc, auprc = [], []
    for j in range(len(go_ids)):
        has_both = 0 < n_test[j] < len(y_test)
        auroc.append(_score(roc_auc_score, y_test[:, j], scores[:, j], has_both))
        auprc.append(_score(average_precision_score, y_test[:, j], scores[:, j], has_both))
    per = pl.DataFrame(
        {
            "predictor": predictor,
            "go_id": go_ids,
            "n_pos_train": n_train.astype(np.int32),
            "n_pos_test": n_test.astype(np.int32),
            "auroc": pl.Series(auroc, dtype=pl.Float64),
            "auprc": pl.Series(auprc, dtype=pl.Float64),
        }
    )
    flat_y, flat_s = y_test.ravel(), scores.ravel()
    has_both = 0 < flat_y.sum() < len(flat_y)
    pooled = pl.DataFrame(
        {
            "predictor": [predictor, predictor],
            "go_id": ["macro", "micro"],
            "n_pos_train": [int(n_train.sum())] * 2,
            "n_pos_test": [int(n_test.sum())] * 2,
            "auroc": [per["auroc"].mean(), _score(roc_auc_score, flat_y, flat_s, has_both)],
            "auprc": [
                per["auprc"].mean(),
                _score(average_precision_score, flat_y, flat_s, has_both),
            ],
        },
        schema=per.schema,
    )
    return pl.concat([per, pooled])


def _score(metric, y: np.ndarray, scores: np.ndarray, has_both: bool) -> float | None:
    """`metric(y, scores)`, or None where `y` lacks a class."""
    return float(metric(y, scores)) if has_both else None


def summarise(metrics: pl.DataFrame, min_positives: int = 20) -> dict[str, dict[str, float]]:
    """Macro/micro AUROC and AUPRC per predictor, plus macro over terms with many positives."""
    out: dict[str, dict[str, float]] = {}
    for (name,), rows in metrics.group_by("predictor", maintain_order=True):
        terms = rows.filter(~pl.col("go_id").is_in(["macro", "micro"]))
        big = terms.filter(pl.col("n_pos_train") >= min_positives)
        macro = rows.filter(pl.col("go_id") == "macro").row(0, named=True)
        micro = rows.filter(pl.col("go_id") == "micro").row(0, named=True)
        out[name] = {
            "macro_auroc": macro["auroc"],
            "macro_auprc": macro["auprc"],
            "micro_auroc": micro["auroc"],
            "micro_auprc": micro["auprc"],
            f"macro_auroc_pos{min_positives}": big["auroc"].mean(),
            f"macro_auprc_pos{min_positives}": big["auprc"].mean(),
            f"n_terms_pos{min_positives}": big.height,
            "n_terms_scored": terms["auroc"].drop_nulls().len(),
        }
    return out


def relative_gap(gap: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """|gap| / |F(x) - F(baseline)|, with float32 round-off (1e-4) counted as no gap."""
    return np.where(np.abs(gap) <= 1e-4, 0.0, np.abs(gap) / np.maximum(np.abs(delta), 1e-12))


def precision_recall_at_k(
    top: list[np.ndarray], truth: list[set[int]], k: int
) -> tuple[float, float]:
    """Mean precision@k (hits / k) and recall@k (hits / |truth|) over pairs."""
    hits = np.array([len(set(t[:k].tolist()) & s) for t, s in zip(top, truth, strict=True)])
    sizes = np.array([max(len(s), 1) for s in truth])
    return float(np.mean(hits / k)), float(np.mean(hits / sizes))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|A & B| / |A | B| of two gene sets."""
    sa, sb = set(a.tolist()), set(b.tolist())
    return len(sa & sb) / max(len(sa | sb), 1)
