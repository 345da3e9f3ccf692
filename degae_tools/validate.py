"""Checks of the attributions that any user can rerun, stored in `ml.validation`.

(a) top-k attributed genes against the DE genes annotated to the term in that experiment (the
enrichment's leading edge), beside ranking the experiment's genes by |log2FC| alone; (b) against
the simulator's ground-truth driver genes; (c) the same agreement from a model with randomised
weights (Adebayo et al. 2018's sanity check), which must drop; (d) top-k stability over heads
refitted with three seeds (Jaccard).
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
import polars as pl

from degae_tools import console
from degae_tools.attribute import (
    AttributeConfig,
    integrated_gradients,
    logit_function,
    relative_gap,
    top_k,
)
from degae_tools.errors import GroundTruthError, ModelError
from warehouse.connect import connect
from warehouse.migrate import read_query

GROUND_TRUTH_COLUMNS = (
    "gse",
    "group_a",
    "group_b",
    "contrast_id",
    "go_id",
    "gene_id",
    "true_log2fc",
)


@dataclass(frozen=True)
class ValidateConfig:
    """How many genes count as the top, how many pairs the recomputing checks use, and seeds."""

    k: int = 20
    max_pairs: int = 200
    n_seeds: int = 3
    seed: int = 0


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


def read_ground_truth(path: Path, gene_index: dict[str, int]) -> dict[tuple[str, str], set[int]]:
    """Driver genes (gene_index) per (contrast_id, go_id) from the simulator's perturbations.tsv."""
    truth: dict[tuple[str, str], set[int]] = {}
    with open(path, newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or tuple(header[: len(GROUND_TRUTH_COLUMNS)]) != GROUND_TRUTH_COLUMNS:
            raise GroundTruthError(
                path, 1, f"expected header {' '.join(GROUND_TRUTH_COLUMNS)}, got {header}"
            )
        for number, row in enumerate(reader, start=2):
            if len(row) < len(GROUND_TRUTH_COLUMNS):
                raise GroundTruthError(
                    path,
                    number,
                    f"expected {len(GROUND_TRUTH_COLUMNS)} tab-separated fields, got {len(row)}",
                )
            gene = gene_index.get(row[5])
            if gene is None:
                raise GroundTruthError(path, number, f"gene_id {row[5]!r} is not in core.genes")
            truth.setdefault((row[3], row[4]), set()).add(gene)
    return truth


def randomised(model: keras.Model, seed: int) -> keras.Model:
    """A copy of `model` with every weight re-initialised (the model-randomisation test)."""
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


def abs_log2fc_top(x: np.ndarray, k: int) -> np.ndarray:
    """The k genes with the largest |log2FC| per row: the attribution-free ranking."""
    return top_k(np.abs(x), k)


def _rows(
    model_id: str, check: str, method: str, value: float, n: int, detail: str
) -> dict[str, object]:
    return {
        "model_id": model_id,
        "check_name": check,
        "method": method,
        "value": value,
        "n": n,
        "detail": detail,
    }


def validate(
    db_path: Path | None,
    model: str | Path,
    attribute_config: AttributeConfig | None = None,
    config: ValidateConfig | None = None,
    ground_truth: Path | None = None,
) -> pl.DataFrame:
    """Run checks (a)-(d) on the stored attributions of `model`; write and return them."""
    attribute_config = attribute_config or AttributeConfig()
    config = config or ValidateConfig()
    from degae_tools.predict import (
        encode,
        fit_head,
        load_predictor,
        load_split,
        model_split_name,
        resolve_model_dir,
    )

    predictor = load_predictor(resolve_model_dir(db_path, str(model)))
    model_id, k = predictor.model_id, config.k
    if k > attribute_config.top_k:
        raise ModelError(f"--top-k {attribute_config.top_k} stored, cannot check the top {k}")
    con = connect(db_path)
    try:
        split_name = model_split_name(con, predictor, predictor.config)
        test, _ = load_split(con, split_name, "test", predictor.go_ids, predictor.config)
        pairs = con.execute(read_query("attribute/validate_pairs"), [model_id]).fetchall()
        stored = con.execute(read_query("attribute/validate_topk"), [model_id, k]).fetchall()
        genes = dict(con.execute(read_query("predict/genes")).fetchall())
        train = val = None
        if config.n_seeds > 1:
            train, _ = load_split(con, split_name, "train", predictor.go_ids, predictor.config)
            val, _ = load_split(con, split_name, "validation", predictor.go_ids, predictor.config)
    finally:
        con.close()
    if not pairs:
        raise ModelError(f"no attributions for model {model_id!r}: run `degae-tools attribute`")

    row_of = {c: i for i, c in enumerate(test.contrast_ids)}
    term_of = {g: i for i, g in enumerate(predictor.go_ids)}
    top_of = {(c, g): np.asarray(genes_) for c, g, genes_ in stored}
    out: list[dict[str, object]] = []
    steps = "" if attribute_config.rule == "exact" else f", {attribute_config.steps} steps"
    detail = f"{attribute_config.rule}{steps}, k={k}"

    gap = np.array([p[3] for p in pairs], np.float64)
    delta = np.array([p[4] for p in pairs], np.float64)
    rel = relative_gap(gap, delta)
    large = np.abs(delta) >= 0.5
    note = (
        f"{detail}; max |gap| {np.abs(gap).max():.3g} logits; within 5% where |F(x) - F(x0)| "
        f">= 0.5: {np.mean(rel[large] <= 0.05) if large.any() else float('nan'):.3g} "
        f"of {int(large.sum())}"
    )
    out.append(
        _rows(
            model_id, "completeness_within_5pct", "ig", float(np.mean(rel <= 0.05)), len(rel), note
        )
    )

    truths: dict[str, dict[tuple[str, str], set[int]]] = {
        "leading_edge": {(p[0], p[1]): set(p[2]) for p in pairs if p[2]}
    }
    if ground_truth is not None:
        gt = read_ground_truth(Path(ground_truth), genes)
        truths["ground_truth"] = {key: gt[key] for key in top_of if key in gt}

    rng = np.random.default_rng(config.seed)
    f_random = logit_function(
        predictor.preprocessor,
        randomised(predictor.encoder, config.seed),
        randomised(predictor.head, config.seed + 1),
    )
    sample_keys: list[tuple[str, str]] = []
    for name, truth in truths.items():
        keys = [key for key in truth if key in top_of and key[0] in row_of]
        if not keys:
            console.say(f"validation: no attributed pair has {name.replace('_', ' ')} genes")
            continue
        x_rows = test.x[[row_of[c] for c, _ in keys]]
        sets = [truth[key] for key in keys]
        methods = {
            "ig": [top_of[key] for key in keys],
            "abs_log2fc": list(abs_log2fc_top(x_rows, k)),
        }
        chosen = sorted(rng.choice(len(keys), min(config.max_pairs, len(keys)), replace=False))
        sample = [keys[i] for i in chosen]
        sample_keys = sample_keys or sample
        random_top = _ig_top(f_random, test.x, sample, row_of, term_of, attribute_config, k)
        for method, tops in methods.items():
            p, r = precision_recall_at_k(tops, sets, k)
            out.append(_rows(model_id, f"{name}_precision@{k}", method, p, len(keys), detail))
            out.append(_rows(model_id, f"{name}_recall@{k}", method, r, len(keys), detail))
        sample_sets = [truth[key] for key in sample]
        p, r = precision_recall_at_k(list(random_top), sample_sets, k)
        p_ig, _ = precision_recall_at_k([top_of[key] for key in sample], sample_sets, k)
        note = f"{detail}; {len(sample)} sampled pairs, trained model on them: {p_ig:.3g}"
        out.append(
            _rows(model_id, f"{name}_precision@{k}", "ig_random_weights", p, len(sample), note)
        )
        out.append(_rows(model_id, f"{name}_recall@{k}", "ig_random_weights", r, len(sample), note))
        out.append(
            _rows(
                model_id,
                f"random_weights_jaccard@{k}",
                f"ig_vs_random:{name}",
                float(
                    np.mean(
                        [jaccard(top_of[key], t) for key, t in zip(sample, random_top, strict=True)]
                    )
                ),
                len(sample),
                detail,
            )
        )

    if config.n_seeds > 1 and train is not None and sample_keys:
        z_train = encode(predictor.encoder, predictor.preprocessor.transform(train.x))
        z_val = encode(predictor.encoder, predictor.preprocessor.transform(val.x))
        tops = []
        for i in range(config.n_seeds):
            head_config = replace(predictor.config, seed=predictor.config.seed + 1 + i)
            head = fit_head(z_train, train.y, z_val, val.y, head_config)
            f = logit_function(predictor.preprocessor, predictor.encoder, head)
            tops.append(_ig_top(f, test.x, sample_keys, row_of, term_of, attribute_config, k))
        values = [
            jaccard(a[j], b[j])
            for a, b in itertools.combinations(tops, 2)
            for j in range(len(sample_keys))
        ]
        out.append(
            _rows(
                model_id,
                f"seed_stability_jaccard@{k}",
                "ig",
                float(np.mean(values)),
                len(sample_keys),
                f"{detail}; heads refitted with {config.n_seeds} seeds",
            )
        )

    table = pl.DataFrame(out)
    store_validation(db_path, table)
    return table


def _ig_top(f, x, keys, row_of, term_of, config: AttributeConfig, k: int) -> np.ndarray:
    rows = np.array([row_of[c] for c, _ in keys])
    terms = np.array([term_of[g] for _, g in keys])
    attr = integrated_gradients(
        f, x, rows, terms, steps=config.steps, rule=config.rule, batch=config.batch
    )
    return top_k(attr, k, config.rank_by)


def store_validation(db_path: Path | None, table: pl.DataFrame) -> None:
    """Insert or replace the check rows (keyed on model, check and method)."""
    con = connect(db_path, write=True)
    try:
        con.register("new_validation", table.to_arrow())
        con.execute(read_query("attribute/insert_validation"))
    finally:
        con.close()
