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
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path

import keras
import numpy as np
import polars as pl

from degae_tools import console
from degae_tools.errors import GroundTruthError, ModelError
from degae_tools.models.go_config import AttributeConfig, ValidateConfig
from degae_tools.models.go_head import Predictor, encode, fit_head
from degae_tools.models.go_metrics import jaccard, precision_recall_at_k, relative_gap
from degae_tools.models.integrated_gradients import integrated_gradients, logit_function, top_k
from degae_tools.steps.predict import GENES, SplitData, head_split, open_predictor
from warehouse import Query, Warehouse

VALIDATE_PAIRS = Query("attribute/validate_pairs")
VALIDATE_TOPK = Query("attribute/validate_topk")
GROUND_TRUTH_COLUMNS = (
    "gse",
    "group_a",
    "group_b",
    "contrast_id",
    "go_id",
    "gene_id",
    "true_log2fc",
)

Key = tuple[str, str]  # (contrast_id, go_id)


@dataclass(frozen=True)
class StoredPair:
    """An attributed pair as stored: its enrichment's leading edge and its completeness gap."""

    contrast_id: str
    go_id: str
    leading_edge: list[int]
    gap: float
    delta: float  # F(x) - F(baseline)


@dataclass(frozen=True)
class Check:
    """One row of `ml.validation`."""

    model_id: str
    check_name: str
    method: str
    value: float
    n: int
    detail: str


@dataclass
class Evidence:
    """What the checks read: the model, its test rows, its stored pairs and their top-k genes."""

    predictor: Predictor
    test: SplitData
    pairs: list[StoredPair]
    top_of: dict[Key, np.ndarray]
    gene_index: dict[str, int]
    train: SplitData | None = None
    validation: SplitData | None = None

    @cached_property
    def row_of(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.test.contrast_ids)}

    @cached_property
    def term_of(self) -> dict[str, int]:
        return {g: i for i, g in enumerate(self.predictor.go_ids)}


@dataclass(frozen=True)
class Recompute:
    """How the checks recompute top-k genes: the attribution settings, k, and the stored run's
    description for the `detail` column."""

    attribution: AttributeConfig
    k: int

    @property
    def detail(self) -> str:
        steps = "" if self.attribution.rule == "exact" else f", {self.attribution.steps} steps"
        return f"{self.attribution.rule}{steps}, k={self.k}"


def run(
    wh: Warehouse,
    model: str | Path,
    attribute_config: AttributeConfig = AttributeConfig(),
    config: ValidateConfig = ValidateConfig(),
    ground_truth: Path | None = None,
) -> pl.DataFrame:
    """Run checks (a)-(d) on the stored attributions of `model`; write and return them."""
    predictor = open_predictor(wh, model)
    if config.k > attribute_config.top_k:
        raise ModelError(
            f"--top-k {attribute_config.top_k} stored, cannot check the top {config.k}"
        )
    evidence = read_evidence(wh, predictor, config)
    how = Recompute(attribute_config, config.k)
    checks = [completeness(evidence, how)]
    rng = np.random.default_rng(config.seed)
    f_random = logit_function(
        predictor.preprocessor,
        randomised(predictor.encoder, config.seed),
        randomised(predictor.head, config.seed + 1),
    )
    sample: list[Key] = []
    for name, truth in reference_sets(evidence, ground_truth).items():
        rows, drawn = agreement(name, truth, evidence, f_random, rng, how, config.max_pairs)
        checks += rows
        sample = sample or drawn
    if config.n_seeds > 1 and evidence.train is not None and sample:
        checks.append(seed_stability(evidence, sample, how, config.n_seeds))
    table = pl.DataFrame([asdict(c) for c in checks])
    wh.upsert("ml.validation", table)
    return table


def read_evidence(wh: Warehouse, predictor: Predictor, config: ValidateConfig) -> Evidence:
    """The model's test split, stored pairs and top-k genes (and train/validation rows when the
    seed-stability check refits heads)."""
    model_id = predictor.model_id
    with wh.session():
        test = head_split(wh, predictor, "test")
        pairs = [StoredPair(*row) for row in wh.rows(VALIDATE_PAIRS, {"model_id": model_id})]
        stored = wh.rows(VALIDATE_TOPK, {"model_id": model_id, "k": config.k})
        evidence = Evidence(predictor, test, pairs, {}, dict(wh.rows(GENES)))
        if config.n_seeds > 1:
            evidence.train = head_split(wh, predictor, "train")
            evidence.validation = head_split(wh, predictor, "validation")
    if not pairs:
        raise ModelError(f"no attributions for model {model_id!r}: run `degae-tools attribute`")
    evidence.top_of = {(c, g): np.asarray(genes) for c, g, genes in stored}
    return evidence


def completeness(evidence: Evidence, how: Recompute) -> Check:
    """(0) The share of pairs whose attributions sum to F(x) - F(x0) within 5%."""
    gap = np.array([p.gap for p in evidence.pairs], np.float64)
    delta = np.array([p.delta for p in evidence.pairs], np.float64)
    rel = relative_gap(gap, delta)
    large = np.abs(delta) >= 0.5
    share = np.mean(rel[large] <= 0.05) if large.any() else float("nan")
    note = (
        f"{how.detail}; max |gap| {np.abs(gap).max():.3g} logits; within 5% where "
        f"|F(x) - F(x0)| >= 0.5: {share:.3g} of {int(large.sum())}"
    )
    model_id = evidence.predictor.model_id
    return Check(
        model_id, "completeness_within_5pct", "ig", float(np.mean(rel <= 0.05)), len(rel), note
    )


def reference_sets(evidence: Evidence, ground_truth: Path | None) -> dict[str, dict[Key, set]]:
    """Genes each attributed pair should rank high: its leading edge, and the simulator's
    driver genes when a ground-truth file is given."""
    edges = {(p.contrast_id, p.go_id): set(p.leading_edge) for p in evidence.pairs}
    truths = {"leading_edge": {key: genes for key, genes in edges.items() if genes}}
    if ground_truth is not None:
        drivers = read_ground_truth(Path(ground_truth), evidence.gene_index)
        truths["ground_truth"] = {key: drivers[key] for key in evidence.top_of if key in drivers}
    return truths


def agreement(
    name: str,
    truth: dict[Key, set[int]],
    evidence: Evidence,
    f_random,
    rng: np.random.Generator,
    how: Recompute,
    max_pairs: int,
) -> tuple[list[Check], list[Key]]:
    """(a)-(b) against one reference: precision and recall at k of the stored IG top-k and of
    |log2FC|; then (c) on a sample of at most `max_pairs` pairs. Returns the checks and the
    sample."""
    ev, k, detail = evidence, how.k, how.detail
    keys = [key for key in truth if key in ev.top_of and key[0] in ev.row_of]
    if not keys:
        console.say(f"validation: no attributed pair has {name.replace('_', ' ')} genes")
        return [], []
    model_id = ev.predictor.model_id
    x_rows = ev.test.x[[ev.row_of[c] for c, _ in keys]]
    methods = {"ig": [ev.top_of[key] for key in keys], "abs_log2fc": list(top_k(np.abs(x_rows), k))}
    checks = []
    for method, tops in methods.items():
        p, r = precision_recall_at_k(tops, [truth[key] for key in keys], k)
        checks.append(Check(model_id, f"{name}_precision@{k}", method, p, len(keys), detail))
        checks.append(Check(model_id, f"{name}_recall@{k}", method, r, len(keys), detail))
    chosen = sorted(rng.choice(len(keys), min(max_pairs, len(keys)), replace=False))
    sample = [keys[i] for i in chosen]
    return checks + randomised_weights(name, truth, ev, f_random, sample, how), sample


def randomised_weights(
    name: str, truth: dict[Key, set[int]], evidence: Evidence, f_random, sample, how: Recompute
) -> list[Check]:
    """(c) IG through randomised weights on the sampled pairs: precision and recall at k against
    the reference (the trained model's precision on the same pairs in `detail`), and the Jaccard
    overlap of its top-k with the trained model's."""
    k, model_id, top_of = how.k, evidence.predictor.model_id, evidence.top_of
    random_top = ig_top(f_random, evidence, sample, how)
    sets = [truth[key] for key in sample]
    p, r = precision_recall_at_k(list(random_top), sets, k)
    p_ig, _ = precision_recall_at_k([top_of[key] for key in sample], sets, k)
    note = f"{how.detail}; {len(sample)} sampled pairs, trained model on them: {p_ig:.3g}"
    overlap = np.mean([jaccard(top_of[key], t) for key, t in zip(sample, random_top, strict=True)])
    n = len(sample)
    return [
        Check(model_id, f"{name}_precision@{k}", "ig_random_weights", p, n, note),
        Check(model_id, f"{name}_recall@{k}", "ig_random_weights", r, n, note),
        Check(
            model_id,
            f"random_weights_jaccard@{k}",
            f"ig_vs_random:{name}",
            float(overlap),
            n,
            how.detail,
        ),
    ]


def seed_stability(evidence: Evidence, sample: list[Key], how: Recompute, n_seeds: int) -> Check:
    """(d) Mean Jaccard overlap of the top-k genes of heads refitted with `n_seeds` seeds."""
    predictor, train, val = evidence.predictor, evidence.train, evidence.validation
    z_train = encode(predictor.encoder, predictor.preprocessor.transform(train.x))
    z_val = encode(predictor.encoder, predictor.preprocessor.transform(val.x))
    tops = []
    for i in range(n_seeds):
        head_config = replace(predictor.config, seed=predictor.config.seed + 1 + i)
        head = fit_head(z_train, train.y, z_val, val.y, head_config)
        f = logit_function(predictor.preprocessor, predictor.encoder, head)
        tops.append(ig_top(f, evidence, sample, how))
    values = [
        jaccard(a[j], b[j]) for a, b in itertools.combinations(tops, 2) for j in range(len(sample))
    ]
    return Check(
        predictor.model_id,
        f"seed_stability_jaccard@{how.k}",
        "ig",
        float(np.mean(values)),
        len(sample),
        f"{how.detail}; heads refitted with {n_seeds} seeds",
    )


def ig_top(f, evidence: Evidence, keys: list[Key], how: Recompute) -> np.ndarray:
    """The top-k genes of IG through `f` for the pairs `keys`, recomputed."""
    rows = np.array([evidence.row_of[c] for c, _ in keys])
    terms = np.array([evidence.term_of[g] for _, g in keys])
    config = how.attribution
    attr = integrated_gradients(
        f, evidence.test.x, rows, terms, steps=config.steps, rule=config.rule, batch=config.batch
    )
    return top_k(attr, how.k, config.rank_by)


def randomised(model: keras.Model, seed: int) -> keras.Model:
    """A copy of `model` with every weight re-initialised (the model-randomisation test)."""
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


def read_ground_truth(path: Path, gene_index: dict[str, int]) -> dict[Key, set[int]]:
    """Driver genes (gene_index) per (contrast_id, go_id) from the simulator's perturbations.tsv."""
    truth: dict[Key, set[int]] = {}
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
