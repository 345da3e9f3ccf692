"""The study step and compare-study: study mode really is the reference study's recipe."""

from __future__ import annotations

import gzip
import math

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from sklearn.feature_selection import VarianceThreshold
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from degae_tools.cli import main
from degae_tools.models.bundle import load_bundle
from degae_tools.sources.simulate import SimulationConfig, simulate
from degae_tools.steps.ingest import IngestConfig, ingest
from degae_tools.steps.report import study_section
from degae_tools.steps.study import (
    STUDY_SPLIT,
    StudyPreset,
    genes_in_every_series,
    train_study,
    write_study_split,
)
from tests.helpers import rows as read_rows
from tests.helpers import run_de, run_go
from warehouse import Warehouse, export

DROPPED_ROWS = slice(10, 15)  # data rows of one series' count matrix removed before ingest


pytestmark = pytest.mark.usefixtures("quiet")  # no progress bars in test output


@pytest.fixture(scope="module")
def compendium(tmp_path_factory):
    """A tiny simulated compendium whose first series' counts lack five genes."""
    root = tmp_path_factory.mktemp("study") / "compendium"
    simulate(root, SimulationConfig(datasets=30, genes=200, go_terms=40, seed=7))
    path = sorted((root / "counts").glob("*_GeneCountMatrix.tsv.gz"))[0]
    lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
    dropped = [line.split("\t", 1)[0] for line in lines[1:][DROPPED_ROWS]]
    kept = lines[:1] + [line for line in lines[1:] if line.split("\t", 1)[0] not in dropped]
    path.write_bytes(gzip.compress("".join(kept).encode()))
    return root, path.name.split("_", 1)[0], dropped


@pytest.fixture(scope="module")
def study_db(compendium, tmp_path_factory):
    """The compendium through the study's ingest, raw-count limma and GO enrichment."""
    root, _, _ = compendium
    db = tmp_path_factory.mktemp("wh") / "study.duckdb"
    preset = StudyPreset()
    ingest(root, db, IngestConfig(mode=preset.group_mode))
    run_de(db, preset.de_config())
    run_go(db, preset.enrichment_config())
    return db


@pytest.fixture(scope="module")
def model(study_db, tmp_path_factory):
    with Warehouse.open(study_db, write=True) as wh:
        return train_study(wh, model_dir=tmp_path_factory.mktemp("m") / "s", neurons=16, epochs=2)


def query(db, sql, params=None):
    """A query's rows, read through the warehouse handle; `?` parameters are given in order."""
    for i in range(len(params or [])):
        sql = sql.replace("?", f"$p{i}", 1)
    return read_rows(db, sql, {f"p{i}": v for i, v in enumerate(params or [])})


def test_study_model_has_a_sigmoid_output_and_is_recorded_as_study_mode(model, study_db):
    bundle = load_bundle(model.model_dir)
    assert bundle.autoencoder.get_layer("reconstruction").activation.__name__ == "sigmoid"
    config = bundle.config
    assert config.architecture.output_activation == "sigmoid" and not config.data.minmax
    assert query(
        study_db, "SELECT study_mode FROM ml.models WHERE model_id = ?", [model.model_id]
    ) == [(True,)]


def test_study_de_log_fc_is_the_difference_of_raw_count_means(compendium, study_db):
    root, _, _ = compendium
    (cid, gse, runs_a, runs_b, mode), *_ = query(
        study_db,
        "SELECT contrast_id, gse, runs_a, runs_b, mode FROM core.contrasts "
        "JOIN core.de_runs USING (contrast_id) WHERE status = 'done' ORDER BY contrast_id",
    )
    counts = pl.read_csv(root / "counts" / f"{gse}_GeneCountMatrix.tsv.gz", separator="\t")
    de = query(
        study_db,
        "SELECT g.gene_id, d.log_fc FROM core.de_results d JOIN core.genes g USING (gene_index) "
        "WHERE d.contrast_id = ? ORDER BY d.gene_index",
        [cid],
    )
    log_fc = dict(de)
    by_gene = counts.with_columns(
        (pl.mean_horizontal(runs_b) - pl.mean_horizontal(runs_a)).alias("diff")
    )
    expected = dict(zip(by_gene["GeneID"], by_gene["diff"], strict=True))
    genes = [g for g in expected if g in log_fc]
    assert mode == "study" and len(genes) > 100
    np.testing.assert_allclose([log_fc[g] for g in genes], [expected[g] for g in genes], rtol=1e-9)


def test_dropped_genes_are_exactly_those_missing_in_some_series(compendium, study_db, model):
    _, gse, dropped = compendium
    assert query(
        study_db,
        "SELECT count(*) FROM core.contrasts JOIN core.de_runs USING (contrast_id) "
        "WHERE gse = ? AND status = 'done'",
        [gse],
    ) != [(0,)], f"{gse} (the edited series) must have a fitted contrast"
    all_genes = dict(query(study_db, "SELECT gene_id, gene_index FROM core.genes"))
    present = genes_in_every_series(Warehouse.open(study_db))
    assert sorted(set(all_genes.values()) - set(present)) == sorted(all_genes[g] for g in dropped)
    keep = load_bundle(model.model_dir).preprocessor.keep
    assert not set(keep) & {all_genes[g] for g in dropped}
    assert model.metrics["n_genes_in_every_series"] == len(all_genes) - len(dropped)
    assert model.metrics["runtime"]["tensorflow"]


def test_split_is_64_16_20_of_contrasts_at_random_with_seed_69(study_db):
    wh = Warehouse.open(study_db, write=True)
    sizes = write_study_split(wh)
    n = sum(sizes.values())
    n_test = math.ceil(0.2 * n)
    n_validation = math.ceil(0.2 * (n - n_test))
    assert sizes == {"train": n - n_test - n_validation, "validation": n_validation, "test": n_test}
    rows = query(
        study_db, "SELECT contrast_id, split FROM ml.splits WHERE split_name = ?", [STUDY_SPLIT]
    )
    rest, test = train_test_split(sorted(c for c, _ in rows), test_size=0.2, random_state=69)
    assert sorted(c for c, s in rows if s == "test") == sorted(test)
    assert write_study_split(wh) == sizes  # the same seed gives the same split


def test_preprocessing_is_standard_scaler_then_variance_threshold_1(study_db, model):
    wh = Warehouse.open(study_db)
    genes = genes_in_every_series(wh)
    _, x = export.load_matrix(wh, STUDY_SPLIT, ["train"])
    _, x_test = export.load_matrix(wh, STUDY_SPLIT, ["test"])
    study = make_pipeline(StandardScaler(), VarianceThreshold(1.0)).fit(x.astype(float)[:, genes])
    prep = load_bundle(model.model_dir).preprocessor
    np.testing.assert_array_equal(prep.keep, genes[study[-1].get_support()])
    np.testing.assert_allclose(
        prep.standardise(x_test), study.transform(x_test.astype(float)[:, genes]), atol=1e-4
    )
    threshold_first = VarianceThreshold(1.0).fit(x.astype(float)[:, genes]).get_support()
    assert not np.array_equal(prep.keep, genes[threshold_first])


def test_compare_study_stores_both_pipelines_side_by_side(compendium, tmp_path):
    root, _, _ = compendium
    args = ["compare-study", str(root), "--work", str(tmp_path), "--epochs", "1"]
    args += ["--layers", "1,2", "--neurons", "8", "--no-predict", "--run-id", "t"]
    result = CliRunner().invoke(main, ["--quiet", *args])
    assert result.exit_code == 0, result.output
    rows = query(
        tmp_path / "degae.duckdb",
        "SELECT metric, layers, pipeline, value FROM ml.study_comparison WHERE run_id = 't' "
        "AND metric IN ('test_mse', 'test_r2') ORDER BY ALL",
    )
    assert {(m, layers, p) for m, layers, p, _ in rows} == {
        (m, layers, p)
        for m in ("test_mse", "test_r2")
        for layers in (1, 2)
        for p in ("degae", "study")
    }
    assert all(v is not None and math.isfinite(v) for *_, v in rows)
    assert "test_mse" in result.output
    with Warehouse.open(tmp_path / "degae.duckdb") as wh:
        section = study_section(wh)
    table = section.content.table
    assert section.title == "The reference study, side by side" and "test_r2" in table
