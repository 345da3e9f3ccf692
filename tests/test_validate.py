"""Attribution checks: leading edge, ground truth, randomised weights and seed stability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from degae_tools.errors import GroundTruthError
from degae_tools.models.go_config import AttributeConfig, ValidateConfig
from degae_tools.models.go_metrics import jaccard, precision_recall_at_k
from degae_tools.steps import attribute as attribute_step
from degae_tools.steps import validate as validate_step
from degae_tools.steps.validate import read_ground_truth
from tests.test_predict import N_GENES, copy_compendium, on_warehouse, query
from warehouse import Warehouse

ATTRIBUTION = AttributeConfig(steps=16, top_k=10)


def attribute(db: Path, model_dir: Path, config: AttributeConfig):
    return on_warehouse(db, attribute_step.run, model_dir, config)


def validate(db: Path, model_dir: Path, *args, **kwargs):
    """The validation step on the warehouse file `db`."""
    return on_warehouse(db, validate_step.run, model_dir, *args, **kwargs)


def term_genes(db: Path, n: int = 15) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """Contrast ids, their log2FC matrix, and per term the n genes whose log2FC correlates most
    with the term's enrichment across contrasts: the genes that truly drive each label."""
    with Warehouse.open(db) as wh:
        cells = wh.frame("SELECT contrast_id, gene_index, log_fc FROM core.de_results")
        labels = wh.frame(
            "SELECT contrast_id, go_id, fwer_over < 0.05 AS y FROM core.go_enrichment"
        )
    wide = cells.pivot(on="gene_index", index="contrast_id", values="log_fc").sort("contrast_id")
    ids = wide["contrast_id"].to_list()
    x = wide.select([str(g) for g in range(N_GENES)]).to_numpy()
    drivers = {}
    for (go_id,), rows in labels.sort("contrast_id").group_by("go_id"):
        y = rows["y"].to_numpy().astype(float)
        corr = np.abs(np.corrcoef(np.column_stack([y, x]).T)[0, 1:])
        drivers[go_id] = np.argsort(-corr)[:n]
    return ids, x, drivers


@pytest.fixture()
def attributed(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A trained compendium with attributions, leading edges and a ground-truth file."""
    db, model_dir = copy_compendium(tmp_path)
    attribute(db, model_dir, ATTRIBUTION)
    ids, x, drivers = term_genes(db)
    row = {c: i for i, c in enumerate(ids)}
    pairs = query(db, "SELECT contrast_id, go_id FROM core.go_enrichment WHERE fwer_over < 0.05")
    edges = [[int(g) for g in drivers[go] if abs(x[row[c], g]) > 0.5] for c, go in pairs]
    edge_rows = pa.table(
        {
            "contrast_id": [p[0] for p in pairs],
            "go_id": [p[1] for p in pairs],
            "leading_edge": pa.array(edges, pa.list_(pa.int32())),
        }
    )
    with Warehouse.open(db, write=True) as wh:
        wh.execute(
            "UPDATE core.go_enrichment e SET leading_edge = d.leading_edge FROM edges d "
            "WHERE e.contrast_id = d.contrast_id AND e.go_id = d.go_id",
            tables={"edges": edge_rows},
        )
    truth = tmp_path / "perturbations.tsv"
    lines = ["gse\tgroup_a\tgroup_b\tcontrast_id\tgo_id\tgene_id\ttrue_log2fc"]
    for c, go in pairs:
        gse, rest = c.split(":")
        group_b = rest.split("-vs-")[0]
        lines += [
            f"{gse}\tcontrol\t{group_b}\t{c}\t{go}\tENSMUSG{g:011d}\t{x[row[c], g]:.3f}"
            for g in drivers[go]
        ]
    truth.write_text("\n".join(lines) + "\n")
    return db, model_dir, truth


def test_precision_and_recall_at_k_count_hits():
    top = [np.array([1, 2, 3, 4]), np.array([9, 8, 7, 6])]
    truth = [{1, 2}, {6, 5, 4, 3}]
    precision, recall = precision_recall_at_k(top, truth, k=4)
    assert precision == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert recall == pytest.approx((2 / 2 + 1 / 4) / 2)
    assert jaccard(np.array([1, 2, 3]), np.array([2, 3, 4])) == pytest.approx(0.5)


def test_every_check_is_computed_and_stored(attributed):
    db, model_dir, truth = attributed
    checks = validate(db, model_dir, ATTRIBUTION, ValidateConfig(k=10, max_pairs=12), truth)
    stored = {(r[0], r[1]) for r in query(db, "SELECT check_name, method FROM ml.validation")}
    assert stored == set(zip(checks["check_name"], checks["method"], strict=True))
    names = set(checks["check_name"])
    assert {
        "completeness_within_5pct",
        "leading_edge_precision@10",
        "leading_edge_recall@10",
        "ground_truth_precision@10",
        "random_weights_jaccard@10",
        "seed_stability_jaccard@10",
    } <= names
    assert checks["value"].min() >= 0.0 and checks["value"].max() <= 1.0


def test_randomised_weights_lose_agreement_with_the_drivers(attributed):
    db, model_dir, truth = attributed
    checks = validate(
        db, model_dir, ATTRIBUTION, ValidateConfig(k=10, max_pairs=30, n_seeds=1), truth
    )
    value = {
        m: v
        for c, m, v in checks.select("check_name", "method", "value").rows()
        if c == "ground_truth_precision@10"
    }
    assert value["ig"] > value["ig_random_weights"] + 0.05


def test_a_ground_truth_file_with_an_unknown_gene_names_the_line(tmp_path):
    path = tmp_path / "perturbations.tsv"
    path.write_text(
        "gse\tgroup_a\tgroup_b\tcontrast_id\tgo_id\tgene_id\ttrue_log2fc\n"
        "GSE1\ta\tb\tGSE1:b-vs-a\tGO:1\tENSMUSG1\t2.0\n"
        "GSE1\ta\tb\tGSE1:b-vs-a\tGO:1\tENSMUSG2\t2.0\n"
    )
    with pytest.raises(GroundTruthError, match="perturbations.tsv line 3: gene_id 'ENSMUSG2'"):
        read_ground_truth(path, {"ENSMUSG1": 0})
