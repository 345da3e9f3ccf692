"""GO-term prediction on a tiny trained autoencoder: tables, baselines, scoring one experiment."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from degae_tools.cli import main
from degae_tools.errors import Log2FCTableError, ModelError
from degae_tools.models.config import AutoencoderConfig
from degae_tools.models.go_config import LABEL_COLUMNS, PredictConfig
from degae_tools.models.go_head import ridge_scores
from degae_tools.steps import predict
from degae_tools.steps import train as train_step
from degae_tools.steps.predict import predict_vector
from tests.helpers import rows as warehouse_rows
from tests.warehouse_fixtures import tiny_warehouse
from warehouse import Warehouse
from warehouse.export import LABEL_COLUMNS as WAREHOUSE_LABEL_COLUMNS
from warehouse.export import load_matrix

N_GENES = 200


def on_warehouse(db: Path, step, *args, write: bool = True, **kwargs):
    """`step(wh, *args, **kwargs)` on the warehouse file `db`, opened for this call."""
    with Warehouse.open(db, write=write) as wh:
        return step(wh, *args, **kwargs)


def fit_predictor(db: Path, model_dir: Path, config: PredictConfig = PredictConfig()):
    """The predict step on the warehouse file `db`."""
    return on_warehouse(db, predict.run, model_dir, config)


def log2fc_for_experiment(db: Path, **where) -> np.ndarray:
    return on_warehouse(db, predict.log2fc_for_experiment, write=False, **where)


def trained_compendium() -> tuple[Path, Path]:
    """A tiny warehouse, an autoencoder trained on it and a fitted GO head, built once per test
    process (pytest may import this module twice, so the folder, not a cache, is the memo).

    Tests copy the folder before writing to it.
    """
    folder = Path(tempfile.gettempdir()) / f"degae-predict-{os.getpid()}"
    db, model_dir = folder / "w.duckdb", folder / "model"
    if (folder / "done").exists():
        return db, model_dir
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    tiny_warehouse(db, n_contrasts=120, n_genes=N_GENES, n_terms=8, seed=0)
    config = AutoencoderConfig(neurons=8, epochs=40, batch_size=16, learning_rate=0.01)
    on_warehouse(db, train_step.train, config, model_dir=model_dir)
    fit_predictor(db, model_dir, PredictConfig(min_positives=5))
    (folder / "done").touch()
    return db, model_dir


def copy_compendium(tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the trained compendium: (warehouse file, model folder)."""
    db, model_dir = trained_compendium()
    shutil.copy(db, tmp_path / db.name)
    shutil.copytree(model_dir, tmp_path / model_dir.name, ignore=shutil.ignore_patterns("cache"))
    return tmp_path / db.name, tmp_path / model_dir.name


@pytest.fixture()
def compendium(tmp_path: Path) -> tuple[Path, Path]:
    return copy_compendium(tmp_path)


def query(db: Path, sql: str, params: dict | None = None) -> list[tuple]:
    return warehouse_rows(db, sql, params)


def macro(db: Path, predictor: str, metric: str) -> float:
    sql = f"SELECT {metric} FROM ml.go_metrics WHERE predictor = $p AND go_id = 'macro'"
    return query(db, sql, {"p": predictor})[0][0]


def test_every_predictor_has_metrics_per_term_and_macro_micro(compendium):
    db, _ = compendium
    rows = query(
        db,
        "SELECT predictor, count(*) FILTER (WHERE go_id NOT IN ('macro', 'micro')), "
        "count(*) FILTER (WHERE go_id IN ('macro', 'micro')) FROM ml.go_metrics GROUP BY 1",
    )
    assert {r[0] for r in rows} == {"latent_head", "prior", "pca_logreg", "genes_ridge"}
    assert all(r[1] == 8 and r[2] == 2 for r in rows)


def test_latent_head_beats_the_label_frequency_prior(compendium):
    db, _ = compendium
    assert macro(db, "prior", "auroc") == pytest.approx(0.5)
    assert macro(db, "latent_head", "auroc") > 0.8
    assert macro(db, "latent_head", "auprc") > macro(db, "prior", "auprc") + 0.2


def test_scores_cover_every_test_contrast_and_term_with_labels(compendium):
    db, _ = compendium
    n_test = query(db, "SELECT count(*) FROM ml.splits WHERE split = 'test'")[0][0]
    rows = query(
        db,
        "SELECT predictor, count(*), count(DISTINCT contrast_id), sum(label::INT) "
        "FROM ml.go_predictions GROUP BY 1",
    )
    assert len(rows) == 4
    assert all(r[1] == n_test * 8 and r[2] == n_test and r[3] > 0 for r in rows)


def test_head_and_terms_are_saved_with_a_predictor_model_row(compendium):
    db, model_dir = compendium
    assert (model_dir / "go_head.keras").exists() and (model_dir / "go_terms.json").exists()
    kind, config = query(db, "SELECT kind, config FROM ml.models WHERE model_id LIKE '%.go'")[0]
    assert kind == "predictor" and '"min_positives": 5' in config


def test_predict_vector_scores_every_head_term_best_first(compendium):
    db, model_dir = compendium
    x = log2fc_for_experiment(db, contrast_id="GSE1000:treated0-vs-control")
    scores = predict_vector(model_dir, x)
    assert scores.columns == ["go_id", "score"] and scores.height == 8
    assert scores["score"].is_sorted(descending=True)
    assert scores["score"].min() >= 0.0 and scores["score"].max() <= 1.0


def test_a_tsv_of_a_new_experiment_scores_like_the_stored_contrast(compendium, tmp_path):
    db, model_dir = compendium
    x = log2fc_for_experiment(db, contrast_id="GSE1001:treated3-vs-control")
    tsv = tmp_path / "new.tsv"
    lines = [f"ENSMUSG{g:011d}\t{x[g]:.9g}" for g in range(N_GENES)]
    tsv.write_text("gene_id\tlog2fc\n" + "\n".join(lines) + "\nENSMUSG99999999999\t4.0\n")
    from_file = predict_vector(model_dir, log2fc_for_experiment(db, tsv=tsv))
    stored = predict_vector(model_dir, x)
    np.testing.assert_allclose(from_file["score"], stored["score"], rtol=1e-5)


def test_a_malformed_tsv_names_the_line(compendium, tmp_path):
    db, _ = compendium
    tsv = tmp_path / "bad.tsv"
    tsv.write_text("gene_id\tlog2fc\nENSMUSG00000000001\t0.5\nENSMUSG00000000002\tup\n")
    with pytest.raises(Log2FCTableError, match="bad.tsv line 3: expected a number"):
        log2fc_for_experiment(db, tsv=tsv)


def test_cli_scores_one_contrast_in_one_command(compendium):
    db, model_dir = compendium
    result = CliRunner().invoke(
        main,
        [
            "--json",
            "predict",
            "--model",
            str(model_dir),
            "--db",
            str(db),
            "--top",
            "3",
            "--contrast",
            "GSE1000:treated0-vs-control",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count('"go_id"') == 3


def test_too_few_positives_is_a_clear_error(compendium):
    db, model_dir = compendium
    with pytest.raises(ModelError, match="lower --min-positives"):
        fit_predictor(db, model_dir, PredictConfig(min_positives=10_000))


def test_ridge_recovers_a_linear_signal_and_picks_a_penalty():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 300))
    y = (x[:, :3].sum(axis=1, keepdims=True) > 0).astype(np.uint8)
    scores, penalty = ridge_scores(x[:60], y[:60], x[60:75], y[60:75], x[75:])
    assert penalty > 0
    assert np.corrcoef(scores[:, 0], y[75:, 0])[0, 1] > 0.5


def test_cli_fits_the_head_and_prints_every_predictor(compendium):
    db, model_dir = compendium
    model, limits = ["--model", str(model_dir), "--db", str(db)], ["--min-positives", "5"]
    args = ["--json", "predict", *model, *limits, "--epochs", "10"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    for name in ("latent_head", "prior", "pca_logreg", "genes_ridge"):
        assert f'"predictor": "{name}"' in result.output


def test_the_label_columns_offered_are_the_ones_the_warehouse_reads():
    assert LABEL_COLUMNS == WAREHOUSE_LABEL_COLUMNS


def test_no_term_with_enough_positives_says_why_and_exits_2_only_under_strict(compendium):
    db, model_dir = compendium
    args = ["predict", "--model", str(model_dir), "--db", str(db), "--min-positives", "10000"]
    relaxed = CliRunner().invoke(main, args)
    strict = CliRunner().invoke(main, [*args, "--strict"])
    assert relaxed.exit_code == 0 and strict.exit_code == 2
    assert "nothing done: no GO term has 10000 positive" in relaxed.output
    assert "lower --min-positives" in strict.output


def test_the_head_reads_the_value_kind_its_model_was_trained_on(compendium):
    """A model trained on t (or an imported collection's z) is scored and attributed on t, not
    on log2FC: predict, attribute and validate read the kind in the model's config.json."""
    db, model_dir = compendium
    card = model_dir / "config.json"
    saved = json.loads(card.read_text())
    assert predict.model_value(model_dir) == saved["config"].get("value", "log2fc") == "log2fc"
    saved["config"]["value"] = "t"
    card.write_text(json.dumps(saved))
    assert predict.model_value(model_dir) == "t"
    with Warehouse.open(db) as wh:
        test = predict.head_split(wh, predict.open_predictor(wh, model_dir), "test")
        split_name = predict.choose_split(wh)
        ids, t = load_matrix(wh, split_name, ["test"], "t")
        _, log2fc = load_matrix(wh, split_name, ["test"], "log2fc")
    assert test.contrast_ids == ids
    np.testing.assert_array_equal(test.x, t)
    assert not np.allclose(test.x, log2fc)
