"""`degae-tools reduce`: VarianceThreshold, PCA and t-SNE of a tiny low-rank compendium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from sklearn.decomposition import PCA

from degae_tools.cli import main
from degae_tools.errors import ReduceError
from degae_tools.reduction import ReduceConfig, components_for, variance_spectrum
from degae_tools.steps import reduce as reduce_step
from degae_tools.steps.reduce import contrast_labels
from tests.helpers import rows
from tests.warehouse_fixtures import tiny_warehouse
from warehouse import Warehouse

N_CONTRASTS = 36


def add_latent_code(db: Path, model_id: str, dim: int = 6) -> None:
    """Store a random latent code for every contrast, as a trained autoencoder would."""
    with Warehouse.open(db, write=True) as wh:
        ids = [r[0] for r in wh.rows("SELECT contrast_id FROM core.contrasts")]
        rng = np.random.default_rng(1)
        codes = [rng.normal(size=dim).tolist() for _ in ids]
        wh.insert(
            "ml.embeddings",
            pa.table(
                {
                    "model_id": [model_id] * len(ids),
                    "method": ["latent"] * len(ids),
                    "contrast_id": ids,
                    "split": ["train"] * len(ids),
                    "coords": pa.array(codes, pa.list_(pa.float32())),
                }
            ),
        )


def reduce(db: Path, config: ReduceConfig, out: Path) -> reduce_step.ReduceResult:
    """The reduce step on the warehouse file `db`."""
    with Warehouse.open(db, write=True) as wh:
        return reduce_step.run(wh, config, out)


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    """One reduce run on a 4-factor compendium with a latent code, shared by the checks below."""
    folder = tmp_path_factory.mktemp("reduce")
    db = tiny_warehouse(folder / "w.duckdb", n_contrasts=N_CONTRASTS, n_genes=200)
    add_latent_code(db, "dense-test")
    result = reduce(db, ReduceConfig(color_by="gse"), folder / "figures")
    return db, result


def test_pca_and_tsne_coordinates_are_stored_with_splits_under_the_run_id(reduced):
    db, result = reduced
    found = rows(
        db,
        "SELECT method, count(split), min(len(coords)) FROM ml.embeddings WHERE model_id = $id "
        "GROUP BY method ORDER BY method",
        {"id": result.run_id},
    )
    assert result.run_id.startswith("reduce-")
    assert found == [("pca", N_CONTRASTS, N_CONTRASTS - 1), ("tsne", N_CONTRASTS, 2)]


def test_low_rank_data_needs_few_components_and_the_headline_says_so(reduced):
    _, result = reduced
    assert result.pca.components_for[0.9] <= 5
    assert result.pca.first_two > 0.3
    assert f"{result.pca.first_two:.1%}" in result.headline()
    assert "4.4%" in result.headline()


def test_explained_variance_is_queryable_and_sums_to_one(reduced):
    db, result = reduced
    total, n = rows(
        db,
        "SELECT sum(value), count(*) FROM ml.validation "
        "WHERE model_id = $id AND check_name = 'pca_explained_variance'",
        {"id": result.run_id},
    )[0]
    needed = rows(
        db,
        "SELECT method, n FROM ml.validation "
        "WHERE model_id = $id AND check_name = 'pca_components_for_variance' ORDER BY method",
        {"id": result.run_id},
    )
    assert total == pytest.approx(1.0)
    assert n == N_CONTRASTS - 1
    assert needed == [(f"{k:.0%}", result.pca.components_for[k]) for k in (0.5, 0.8, 0.9)]


def test_variance_threshold_drops_genes_without_signal(reduced):
    _, result = reduced
    # tiny_warehouse gives about half the genes zero loadings: their log2FC variance is ~0.09.
    assert 0.3 * result.n_genes < result.n_genes_kept < 0.7 * result.n_genes


def test_latent_code_is_projected_for_its_model(reduced):
    db, result = reduced
    found = rows(
        db,
        "SELECT method, count(*), any_value(split) FROM ml.embeddings "
        "WHERE model_id = 'dense-test' AND method LIKE 'latent_%' GROUP BY method ORDER BY 1",
    )
    assert result.latent_model == "dense-test"
    assert found == [("latent_pca", N_CONTRASTS, "train"), ("latent_tsne", N_CONTRASTS, "train")]


def test_plots_are_coloured_by_top_go_and_by_the_named_attribute(reduced):
    _, result = reduced
    names = {p.name for p in result.figures}
    assert {"pca_explained_variance.png", "tsne_top_go.png", "tsne_gse.png"} <= names
    assert "dense_test_latent_tsne_top_go.png" in names
    assert all(p.stat().st_size > 5_000 for p in result.figures)


def test_same_data_and_config_give_the_same_run_and_replace_its_rows(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=12, n_genes=60)
    first = reduce(db, ReduceConfig(pca_components=5), tmp_path / "a")
    second = reduce(db, ReduceConfig(pca_components=5, color_by="GO:0000001"), tmp_path / "b")
    n = rows(db, "SELECT count(*) FROM ml.embeddings")[0][0]
    assert first.run_id == second.run_id
    assert n == 2 * 12


def test_unknown_colouring_names_the_attributes_available(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=6, n_genes=40)
    with pytest.raises(ReduceError, match="group_key"):
        reduce(db, ReduceConfig(color_by="tissue"), tmp_path / "out")


def test_colouring_by_an_attribute_of_contrast_and_of_dataset(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=6, n_genes=40)
    with Warehouse.open(db, write=True) as wh:
        wh.execute(
            "INSERT INTO core.datasets (gse, species, group_key) VALUES ('GSE1000', 'mm', 'age')"
        )
        ids = [r[0] for r in wh.rows("SELECT contrast_id FROM core.contrasts ORDER BY 1")]
        by_key, _ = contrast_labels(wh, ids, "group_key")
        by_species, _ = contrast_labels(wh, ids, "species")
    assert by_key == ["treatment"] * 6
    assert by_species == ["mm"] * 3 + [None] * 3


def test_a_threshold_that_keeps_no_gene_says_how_to_fix_it(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=6, n_genes=40)
    with pytest.raises(ReduceError, match="lower --variance-threshold"):
        reduce(db, ReduceConfig(variance_threshold=1e6), tmp_path / "out")


def test_variance_spectrum_matches_scikit_learn_pca():
    z = np.random.default_rng(0).normal(size=(30, 80))
    expected = PCA().fit(z).explained_variance_ratio_
    assert np.allclose(variance_spectrum(z)[:29], expected[:29], atol=1e-10)


def test_components_for_reports_unreached_levels_as_none():
    assert components_for(np.array([0.4, 0.3, 0.1])) == {0.5: 2, 0.8: 3, 0.9: None}


def test_cli_prints_the_first_two_pcs_figure_as_json(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=10, n_genes=60)
    args = ["--json", "reduce", "--db", str(db), "--components", "4", "--umap"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 < record["first_two_pcs_explain"] <= 1
    assert record["contrasts"] == 10


def test_too_few_contrasts_say_why_and_exit_2_only_under_strict(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=2, n_genes=20)
    args = ["reduce", "--db", str(db), "--out", str(tmp_path / "figs")]
    relaxed = CliRunner().invoke(main, args)
    strict = CliRunner().invoke(main, [*args, "--strict"])
    assert relaxed.exit_code == 0 and strict.exit_code == 2
    assert "nothing done: reduce needs at least 3 contrasts" in relaxed.output
    assert "the warehouse has 2" in strict.output
