"""degae_tools.preprocess and degae_tools.train: streaming preprocessing, training, resume, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import duckdb
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from sklearn.feature_selection import VarianceThreshold
from sklearn.preprocessing import StandardScaler

import warehouse
from degae_tools import console
from degae_tools import train as train_module
from degae_tools.cli import main
from degae_tools.errors import ModelError
from degae_tools.models import AutoencoderConfig
from degae_tools.preprocess import Preprocessor
from degae_tools.train import load_bundle, train
from tests.helpers import REPO, checkout_env, cli_command
from tests.warehouse_fixtures import tiny_warehouse
from warehouse import export

QUICK = {"neurons": 8, "layers": 1, "batch_size": 8, "learning_rate": 1e-2}


@pytest.fixture(scope="module", autouse=True)
def quiet_module():
    """No progress bars, module fixtures included, so that the runs a test compares were all
    trained alike (the quiet fixture is per test and starts after module-scoped ones)."""
    console.mode.quiet = True
    yield
    console.mode.quiet = False


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return tiny_warehouse(
        tmp_path_factory.mktemp("train") / "w.duckdb", n_contrasts=60, n_genes=200
    )


@pytest.fixture(scope="module")
def dense(db, tmp_path_factory):
    """Denoising is the dense autoencoder plus input noise, whose RNG state a resume restores."""
    config = AutoencoderConfig(kind="denoising", epochs=15, **QUICK)
    return train(db, config, model_dir=tmp_path_factory.mktemp("models") / "whole")


@pytest.fixture(scope="module")
def cut(db, tmp_path_factory):
    """The same run stopped after 3 of its 15 epochs, checkpoint kept."""
    config = AutoencoderConfig(kind="denoising", epochs=3, **QUICK)
    model_dir = tmp_path_factory.mktemp("models") / "cut"
    train(db, config, model_dir=model_dir, keep_checkpoint=True)
    return model_dir


def count(db, table, model_id):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            f"SELECT count(*) FROM ml.{table} WHERE model_id = ?", [model_id]
        ).fetchall()[0][0]
    finally:
        con.close()


def test_streamed_preprocessing_equals_sklearn_on_the_whole_matrix():
    x = np.random.default_rng(1).normal(size=(50, 30)) * np.linspace(0.2, 3, 30)
    pre = Preprocessor(variance_threshold=1.0).fit(np.array_split(x, 7))
    selector = VarianceThreshold(1.0).fit(x)
    expected = StandardScaler().fit_transform(selector.transform(x))
    np.testing.assert_array_equal(pre.keep, np.flatnonzero(selector.get_support()))
    np.testing.assert_allclose(pre.transform(x), expected, atol=1e-5)


def test_minmax_maps_training_rows_into_unit_interval_and_back():
    x = np.random.default_rng(2).normal(size=(40, 10)).astype(np.float32)
    pre = Preprocessor(minmax=True).fit([x])
    y = pre.transform(x)
    assert y.min() == pytest.approx(0.0, abs=1e-6) and y.max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(pre.to_standardised(y), pre.standardise(x), atol=1e-5)


def test_tf_transform_matches_numpy_and_passes_gradients_to_every_input_gene(tmp_path):
    x = np.random.default_rng(3).normal(size=(20, 12)).astype(np.float32) * np.arange(12)
    pre = Preprocessor(variance_threshold=5.0).fit([x])
    pre.save(tmp_path / "preprocess.npz")
    pre = Preprocessor.load(tmp_path / "preprocess.npz")
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = pre.tf_transform(xt)
        total = tf.reduce_sum(out)
    np.testing.assert_allclose(out.numpy(), pre.transform(x), atol=1e-5)
    grad = tape.gradient(total, xt).numpy()
    assert grad.shape == x.shape
    assert np.all(grad[:, pre.keep] != 0)
    assert np.all(np.delete(grad, pre.keep, axis=1) == 0)


def test_preprocessing_is_fit_on_the_training_split_only(db, dense):
    con = warehouse.connect(db)
    _, train_x = export.load_matrix(con, "degae", ("train",))
    _, all_x = export.load_matrix(con, "degae", export.SPLITS)
    con.close()
    pre = load_bundle(dense.model_dir).preprocessor
    assert pre.n_samples == len(train_x) < len(all_x)
    np.testing.assert_allclose(pre.mean, train_x.mean(axis=0), atol=1e-5)


def test_autoencoder_explains_held_out_variance(dense):
    test = {r["method"]: r for r in dense.reconstruction if r["split"] == "test"}
    assert test["autoencoder"]["mse"] < 0.95
    assert test["autoencoder"]["r2"] > 0.05
    assert test["pca"]["latent_dim"] == test["autoencoder"]["latent_dim"] == 8


def test_training_writes_model_history_embeddings_and_reconstruction(db, dense):
    assert count(db, "models", dense.model_id) == 1
    assert count(db, "history", dense.model_id) == 15
    assert count(db, "embeddings", dense.model_id) == 60
    assert count(db, "reconstruction", dense.model_id) == 4
    bundle = load_bundle(dense.model_dir)
    assert bundle.gene_count == 200
    code = bundle.encoder(bundle.preprocessor.transform(np.zeros((2, 200), np.float32)))
    assert code.shape == (2, 8)
    assert not (dense.model_dir / "cache").exists()
    con = duckdb.connect(str(db), read_only=True)
    sql = "SELECT metrics FROM ml.models WHERE model_id = ?"
    stored = json.loads(con.execute(sql, [dense.model_id]).fetchone()[0])
    con.close()
    assert stored["runtime"]["tensorflow"] == tf.__version__
    assert stored["runtime"]["tf_enable_onednn_opts"] == os.environ["TF_ENABLE_ONEDNN_OPTS"]
    if os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0":  # tests/conftest.py's default took effect
        assert stored["runtime"]["onednn_ops"] is False


@pytest.mark.parametrize("kind", ["dense", "sparse", "variational"])
def test_each_kind_trains_below_the_variance(db, kind):
    result = train(db, AutoencoderConfig(kind=kind, epochs=6, **QUICK))
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    test_mse = next(
        r["mse"]
        for r in result.reconstruction
        if r == {**r, "method": "autoencoder", "split": "test"}
    )
    assert test_mse < 1.0


def test_the_same_config_trains_the_same_weights_with_progress_output_on(db, dense, tmp_path):
    """A seed fixes the model: a second run, printing Keras' per-epoch lines this time (which
    Keras dispatches on another thread), ends at the same history and weights, bit for bit."""
    console.mode.quiet = False
    try:
        again = train(db, dense.config, model_dir=tmp_path / "again")
    finally:
        console.mode.quiet = True
    assert again.model_id == dense.model_id
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in dense.history]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in again.history] == strip
    for a, b in zip(
        load_bundle(dense.model_dir).autoencoder.weights,
        load_bundle(again.model_dir).autoencoder.weights,
        strict=True,
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(db, dense, cut, tmp_path):
    """15 epochs cross a learning-rate cut, so the scheduler's state must be restored too.
    Compared bit for bit: op determinism makes TensorFlow's own CPU kernels repeat exactly."""
    model_dir = tmp_path / "resumed"
    shutil.copytree(cut, model_dir)
    resumed = train(db, dense.config, model_dir=model_dir, resume=True)
    assert [h["epoch"] for h in resumed.history] == list(range(15))
    rates = [h["learning_rate"] for h in resumed.history]
    assert rates == [h["learning_rate"] for h in dense.history]
    assert rates[-1] < rates[0]
    whole = load_bundle(dense.model_dir).autoencoder.weights
    again = load_bundle(resumed.model_dir).autoencoder.weights
    for a, b in zip(whole, again, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_checkpoints_every_n_epochs_then_resume_to_the_uninterrupted_weights(
    db, tmp_path, monkeypatch
):
    """Saving every 2nd epoch; the run dies while saving epoch 4, so epochs 3-4 are redone."""
    config = AutoencoderConfig(kind="denoising", epochs=7, **QUICK)
    cut_dir = tmp_path / "cut"
    seen = []
    real_save = train_module.save_checkpoint

    def dies_at_epoch_4(folder, autoencoder, state):
        seen.append(state["epochs_done"])
        if state["epochs_done"] == 4:
            raise RuntimeError("killed")
        real_save(folder, autoencoder, state)

    monkeypatch.setattr(train_module, "save_checkpoint", dies_at_epoch_4)
    with pytest.raises(RuntimeError, match="killed"):
        train(db, config, model_dir=cut_dir, checkpoint_every=2)
    monkeypatch.undo()
    assert seen == [2, 4]
    resumed = train(db, config, model_dir=cut_dir, resume=True, checkpoint_every=2)
    assert [h["epoch"] for h in resumed.history] == list(range(7))
    whole = train(db, config, model_dir=tmp_path / "whole")
    for a, b in zip(
        load_bundle(whole.model_dir).autoencoder.weights,
        load_bundle(resumed.model_dir).autoencoder.weights,
        strict=True,
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_the_magnitude_representation_reads_absolute_log2fc_end_to_end(db, tmp_path):
    config = AutoencoderConfig(epochs=2, representation="magnitude", **QUICK)
    result = train(db, config, model_dir=tmp_path / "magnitude")
    pre = load_bundle(result.model_dir).preprocessor
    assert pre.magnitude
    con = warehouse.connect(db)
    _, x = export.load_matrix(con, "degae", ("train",))
    con.close()
    np.testing.assert_allclose(pre.mean, np.abs(x).mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(pre.transform(-x), pre.transform(x))  # the sign is not read
    assert AutoencoderConfig.from_json(config.to_json()).representation == "magnitude"
    # model ids of signed models are what they were before the field existed
    assert "representation" not in AutoencoderConfig().identity_json()
    assert '"representation": "magnitude"' in config.identity_json()
    with pytest.raises(ModelError, match="representation must be one of"):
        AutoencoderConfig(representation="log")


def test_resume_refuses_a_changed_architecture(db, cut):
    config = AutoencoderConfig(kind="denoising", epochs=15, **{**QUICK, "neurons": 4})
    with pytest.raises(ModelError, match="only --epochs may change"):
        train(db, config, model_dir=cut, resume=True)


def test_cli_train_prints_the_table_and_stores_the_model(db, tmp_path):
    model_dir = tmp_path / "cli-model"
    result = CliRunner().invoke(
        main,
        [
            "--json",
            "train",
            "--db",
            str(db),
            "--neurons",
            "32",
            "--layers",
            "2",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--model-dir",
            str(model_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    model_id = summary["model_id"]
    assert model_id.startswith("dense-") and model_id != model_dir.name
    assert {(r["method"], r["split"]) for r in summary["reconstruction"]} >= {
        ("autoencoder", "test"),
        ("pca", "test"),
    }
    assert count(db, "history", model_id) == 3
    assert count(db, "embeddings", model_id) == 60
    assert (model_dir / "history.png").exists()
    assert json.loads((model_dir / "config.json").read_text())["config"]["layers"] == 2
    assert load_bundle(model_dir).split_name == "degae"


def test_training_also_runs_on_onednn_ops_the_default_outside_the_tests(db, tmp_path):
    """The tests run on TensorFlow's own kernels (tests/conftest.py); users get oneDNN's."""
    copy = tmp_path / "w.duckdb"
    shutil.copy(db, copy)
    command = cli_command("--quiet", "train", "--db", str(copy))
    command += ["--neurons", "8", "--epochs", "2", "--model-dir", str(tmp_path / "m")]
    env = checkout_env(TF_ENABLE_ONEDNN_OPTS="1")
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(copy), read_only=True)
    sql = "SELECT metrics FROM ml.models WHERE path = ?"
    (metrics,) = con.execute(sql, [str(tmp_path / "m")]).fetchone()
    con.close()
    assert json.loads(metrics)["runtime"]["tf_enable_onednn_opts"] == "1"
