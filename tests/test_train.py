"""degae_tools.preprocess, degae_tools.models.training and the train step: streaming
preprocessing, training, resume, baselines, collections and value kinds, devices, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
from click.testing import CliRunner
from sklearn.feature_selection import VarianceThreshold
from sklearn.preprocessing import StandardScaler

from degae_tools import console
from degae_tools.cli import main
from degae_tools.errors import ModelError
from degae_tools.models import AutoencoderConfig, Runtime, baselines, training
from degae_tools.models.baselines import fit_nmf
from degae_tools.models.bundle import load_bundle
from degae_tools.preprocess import Preprocessor
from degae_tools.steps import train as step
from degae_tools.steps.runs import RunRow, write_de_results
from tests.helpers import REPO, checkout_env, cli_command, rows, tiny_warehouse
from warehouse import Warehouse, export

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


def train(db, config, **options):
    """The train step on the warehouse file `db`, opened as the CLI opens it."""
    with Warehouse.open(db, write=True) as wh:
        return step.train(wh, config, **options)


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


COUNTS = {
    "models": "SELECT count(*) FROM ml.models WHERE model_id = $id",
    "history": "SELECT count(*) FROM ml.history WHERE model_id = $id",
    "embeddings": "SELECT count(*) FROM ml.embeddings WHERE model_id = $id",
    "reconstruction": "SELECT count(*) FROM ml.reconstruction WHERE model_id = $id "
    "AND method IN ('autoencoder', 'pca')",
}


def count(db, table, model_id):
    return rows(db, COUNTS[table], {"id": model_id})[0][0]


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


def test_tf_dataset_streams_every_row_once_per_pass():
    source = [np.full((3, 5), i, dtype=np.float32) for i in range(4)]
    ds = training.tf_dataset(lambda: iter(source), n_inputs=5, n_rows=12, batch_size=5)
    batches = [x.numpy() for x, _ in ds]
    assert [len(b) for b in batches] == [5, 5, 2]
    assert np.concatenate(batches)[:, 0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_preprocessing_is_fit_on_the_training_split_only(db, dense):
    wh = Warehouse.open(db)
    _, train_x = export.load_matrix(wh, "degae", ("train",))
    _, all_x = export.load_matrix(wh, "degae", export.SPLITS)
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
    sql = "SELECT metrics FROM ml.models WHERE model_id = $id"
    stored = json.loads(rows(db, sql, {"id": dense.model_id})[0][0])
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
    real_save = training.save_checkpoint

    def dies_at_epoch_4(folder, autoencoder, state):
        seen.append(state["epochs_done"])
        if state["epochs_done"] == 4:
            raise RuntimeError("killed")
        real_save(folder, autoencoder, state)

    monkeypatch.setattr(training, "save_checkpoint", dies_at_epoch_4)
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
    _, x = export.load_matrix(Warehouse.open(db), "degae", ("train",))
    np.testing.assert_allclose(pre.mean, np.abs(x).mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(pre.transform(-x), pre.transform(x))  # the sign is not read
    assert AutoencoderConfig.from_json(config.to_json()).data.representation == "magnitude"
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
            "--kind",
            "dense",
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
    sql = "SELECT metrics FROM ml.models WHERE path = $path"
    ((metrics,),) = rows(copy, sql, {"path": str(tmp_path / "m")})
    assert json.loads(metrics)["runtime"]["tf_enable_onednn_opts"] == "1"


# --- baselines ------------------------------------------------------------------------------------


def test_pca_fastica_and_nmf_are_scored_beside_the_autoencoder(db, dense):
    by = {(r["method"], r["split"]): r for r in dense.reconstruction}
    assert {m for m, _ in by} == {"autoencoder", "pca", "ica", "nmf_magnitude"}
    for split in ("validation", "test"):
        assert by[("ica", split)]["latent_dim"] == by[("nmf_magnitude", split)]["latent_dim"] == 8
        assert all(np.isfinite(by[(m, split)]["r2"]) for m in ("ica", "nmf_magnitude"))
        # FastICA rotates the whitened PCA subspace: it reconstructs what PCA does
        assert by[("ica", split)]["r2"] == pytest.approx(by[("pca", split)]["r2"], abs=1e-4)
    stored = rows(
        db,
        "SELECT DISTINCT method FROM ml.reconstruction WHERE model_id = $id",
        {"id": dense.model_id},
    )
    assert {m for (m,) in stored} == {"autoencoder", "pca", "ica", "nmf_magnitude"}


def test_nmf_reads_magnitudes_so_a_signature_and_its_reverse_reconstruct_alike():
    x = np.random.default_rng(4).normal(size=(40, 12)).astype(np.float32)
    prep = Preprocessor().fit([x])
    nmf = fit_nmf(x, prep, 3, seed=0)
    assert nmf.method == "nmf_magnitude"
    assert (nmf.view(x) >= 0).all()
    truth, estimate = nmf.reconstruct(x[:5])
    again = nmf.reconstruct(-x[:5])
    np.testing.assert_allclose(again[0], truth)
    np.testing.assert_allclose(again[1], estimate, rtol=1e-5)
    magnitude = Preprocessor(magnitude=True).fit([x])
    assert fit_nmf(x, magnitude, 3, seed=0).method == "nmf"  # the model's own units


def test_iterative_baselines_too_large_are_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(baselines, "ITERATIVE_CELLS", 10)
    x = np.random.default_rng(5).normal(size=(30, 8)).astype(np.float32)
    prep = Preprocessor().fit([x])
    fits = baselines.fit_baselines(lambda: [x], 30, prep, 2, seed=0)
    assert [b.method for b in fits.fitted] == ["pca"]
    assert set(fits.skipped) == {"ica", "nmf"} and "components" in fits.skipped["ica"]


# --- collections and value kinds ------------------------------------------------------------------


@pytest.fixture(scope="module")
def with_signatures(db, tmp_path_factory):
    """The training warehouse plus an imported collection 'sig': 40 signatures of z-scores over
    the same genes (each signature a group of its own)."""
    copy = tmp_path_factory.mktemp("signatures") / "w.duckdb"
    shutil.copy(db, copy)
    rng = np.random.default_rng(7)
    z = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 200)) + 0.3 * rng.normal(size=(40, 200))
    return add_signatures(copy, "sig", z)


def add_signatures(path, collection: str, z: np.ndarray):
    """Store the rows of `z` (signatures x genes) as the collection's imported z-scores."""
    n, n_genes = z.shape
    ids = [f"{collection}:drug{i}" for i in range(n)]
    r, c = np.nonzero(np.ones_like(z, dtype=bool))
    values = pa.table(
        {"contrast_id": [ids[i] for i in r], "gene_index": c.astype(np.int32), "z": z[r, c]}
    )
    signatures = pa.table(
        {
            "contrast_id": ids,
            "collection": [collection] * n,
            "name": [i.split(":")[1] for i in ids],
            "source_file": [f"{collection}.tsv"] * n,
            "line": list(range(2, n + 2)),
            "content_hash": [f"{collection}{i}" for i in range(n)],
            "n_genes": [n_genes] * n,
        }
    )
    runs = [RunRow(i, "done") for i in ids]
    held = {
        "collection": collection,
        "kind": "signatures",
        "value_kinds": [["z"]],
        "score": "z",
        "species": "hsapiens",
        "gene_id_system": "entrez",
        "n_rows": n,
        "n_genes_mapped": n_genes,
        "n_genes_unmapped": 0,
    }
    with Warehouse.open(path, write=True) as wh, wh.transaction():
        wh.insert(
            "core.collections",
            pa.table({k: v if k == "value_kinds" else [v] for k, v in held.items()}),
        )
        wh.insert("core.signatures", signatures)
        write_de_results(
            wh, values, runs, source=f"import:{collection}", config="{}", stage="import"
        )
    return path


def test_a_collection_trains_on_its_chosen_values_split_by_signature(with_signatures, tmp_path):
    config = AutoencoderConfig(collection="sig", value="z", latent=3, epochs=2, **QUICK)
    result = train(with_signatures, config, model_dir=tmp_path / "sig")
    bundle = load_bundle(result.model_dir)
    assert bundle.split_name == "degae-sig" and bundle.encoder.output_shape[-1] == 3
    split = rows(
        with_signatures,
        "SELECT contrast_id, gse, split FROM ml.splits WHERE split_name = 'degae-sig'",
    )
    assert len(split) == 40 and all(c == g and c.startswith("sig:") for c, g, _ in split)
    assert {s for *_, s in split} == set(export.SPLITS)
    _, z_train = export.load_matrix(Warehouse.open(with_signatures), "degae-sig", value="z")
    np.testing.assert_allclose(bundle.preprocessor.mean, z_train.mean(axis=0), atol=1e-5)
    assert sum(result.metrics[f"n_{s}"] for s in export.SPLITS) == 40
    # the compendium's split never takes the collection's signatures
    compendium = export.split_candidates(Warehouse.open(with_signatures))
    assert compendium and not [c for c, _ in compendium if c.startswith("sig:")]


def test_the_moderated_t_is_a_value_kind_of_the_compendium(db, tmp_path):
    result = train(db, AutoencoderConfig(value="t", epochs=1, **QUICK), model_dir=tmp_path / "t")
    _, t_train = export.load_matrix(Warehouse.open(db), "degae", ("train",), value="t")
    _, fc_train = export.load_matrix(Warehouse.open(db), "degae", ("train",))
    np.testing.assert_allclose(t_train, 3 * fc_train, rtol=1e-5)  # tiny_warehouse: t = 3 log2FC
    np.testing.assert_allclose(
        load_bundle(result.model_dir).preprocessor.mean, t_train.mean(axis=0), atol=1e-4
    )


def test_an_unknown_collection_is_one_line_naming_the_fix(db):
    result = CliRunner().invoke(main, ["train", "--db", str(db), "--collection", "nope"])
    assert result.exit_code == 2
    assert "collection 'nope'" in result.output and "import-signatures" in result.output


# --- devices and precision ------------------------------------------------------------------


@pytest.mark.parametrize(
    "runtime", [Runtime(mixed_precision=True), Runtime(xla=True)], ids=["mixed", "xla"]
)
def test_mixed_precision_and_xla_each_train_a_small_model(db, tmp_path, runtime):
    config = AutoencoderConfig(epochs=3, **QUICK)
    result = train(db, config, runtime=runtime, model_dir=tmp_path / "m", baselines=())
    losses = [h["loss"] for h in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    recorded = result.metrics["runtime"]
    assert recorded["mixed_precision"] == runtime.mixed_precision and recorded["xla"] == runtime.xla
    assert recorded["xla_compiled"] == runtime.xla  # Keras compiles only without determinism
    if runtime.mixed_precision:  # no GPU here: bfloat16 on the CPU
        assert recorded["precision_policy"] == "mixed_bfloat16"
    bundle = load_bundle(result.model_dir)  # saved in float32 whatever it trained in
    assert bundle.autoencoder.layers[1].dtype_policy.name == "float32"


def test_mirrored_training_on_two_logical_cpu_devices(db, tmp_path):
    """tf.distribute.MirroredStrategy over the CPU split in two, as CI has no GPU: each replica
    takes half of every batch and the gradients are summed on one device."""
    copy = tmp_path / "w.duckdb"
    shutil.copy(db, copy)
    command = cli_command("--quiet", "--json", "train", "--db", str(copy), "--neurons", "8")
    command += ["--epochs", "2", "--batch-size", "8", "--distribute", "mirrored"]
    command += ["--cpu-devices", "2", "--model-dir", str(tmp_path / "m"), "--baselines", "pca"]
    done = subprocess.run(command, cwd=REPO, env=checkout_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    model_id = json.loads(done.stdout.strip().splitlines()[-1])["model_id"]
    ((metrics,),) = rows(
        copy, "SELECT metrics FROM ml.models WHERE model_id = $id", {"id": model_id}
    )
    recorded = json.loads(metrics)["runtime"]
    assert (recorded["distribute"], recorded["cpu_devices"], recorded["replicas"]) == (
        "mirrored",
        2,
        2,
    )
    assert all(
        np.isfinite(h)
        for (h,) in rows(copy, "SELECT loss FROM ml.history WHERE model_id = $id", {"id": model_id})
    )


# --- positive control -----------------------------------------------------------------------------

MANIFOLD_DIM = 2
# Measured through the train step on seeds 0 and 1 of this manifold: autoencoder test R² 0.82 and
# 0.75, PCA 0.50 and 0.43 (a margin of 0.32 both times; fitted directly, seeds 0-3: 0.77-0.81
# against 0.40-0.47).
MARGIN = 0.2


def manifold_warehouse(path, n_contrasts=400, n_genes=60, noise=0.05, seed=0):
    """A warehouse whose log2FC lie near a known curved 2-D manifold: gene j is
    sin(pi * a_j . u + phase_j) of two latent factors u in [-1, 1]^2, plus noise. Each contrast is
    a series of its own, so the split is by contrast."""
    rng = np.random.default_rng(seed)
    factors = rng.uniform(-1, 1, size=(n_contrasts, MANIFOLD_DIM))
    directions = rng.normal(size=(MANIFOLD_DIM, n_genes))
    directions /= np.linalg.norm(directions, axis=0)
    phases = rng.uniform(0, 2 * np.pi, n_genes)
    log_fc = np.sin(np.pi * factors @ directions + phases)
    log_fc += noise * rng.normal(size=log_fc.shape)
    ids = [f"GSE{i}:b-vs-a" for i in range(n_contrasts)]
    genes = pa.table(
        {
            "gene_index": np.arange(n_genes, dtype=np.int32),
            "gene_id": [f"G{g}" for g in range(n_genes)],
        }
    )
    contrasts = pa.table(
        {
            "contrast_id": ids,
            "gse": [i.split(":")[0] for i in ids],
            "group_a": ["a"] * n_contrasts,
            "group_b": ["b"] * n_contrasts,
            **{
                c: pa.array([[]] * n_contrasts, pa.list_(pa.string()))
                for c in ("samples_a", "samples_b", "runs_a", "runs_b")
            },
            "mode": ["degae"] * n_contrasts,
        }
    )
    rows_, cols = np.nonzero(np.ones_like(log_fc, dtype=bool))
    values = pa.table(
        {
            "contrast_id": [ids[r] for r in rows_],
            "gene_index": cols.astype(np.int32),
            "log_fc": log_fc[rows_, cols],
        }
    )
    with Warehouse.open(path, write=True, create=True) as wh, wh.transaction():
        wh.insert("core.genes", genes)
        wh.insert("core.contrasts", contrasts)
        write_de_results(wh, values, [RunRow(i, "done") for i in ids], source="degae", config="{}")
    return path


CONTROL_SHAPE = {"neurons": 128, "layers": 2, "latent": MANIFOLD_DIM, "epochs": 60}
CONTROL_FIT = {"batch_size": 32, "learning_rate": 5e-3}


@pytest.mark.parametrize(
    "config",
    [
        AutoencoderConfig(**CONTROL_SHAPE, **CONTROL_FIT, code_activation="linear"),
        # the train command's defaults (the residual kind, noise and dropout as for L1000):
        # measured on seeds 0 and 1, 0.73 and 0.69 against PCA's 0.50 and 0.43
        AutoencoderConfig.product(**CONTROL_SHAPE, **CONTROL_FIT),
    ],
    ids=["dense", "product-default"],
)
def test_positive_control_the_autoencoder_finds_a_curved_manifold_pca_cannot(tmp_path, config):
    """With a code as small as the manifold, the autoencoder must beat PCA of the same size by
    MARGIN in held-out R²: a trainer that stopped learning non-linear structure fails here. (A
    ReLU code of two units can die, as it did on one seed in four: the control uses a linear
    code; the residual kind's code is linear.)"""
    db = manifold_warehouse(tmp_path / "manifold.duckdb")
    result = train(db, config, model_dir=tmp_path / "m", baselines=("pca",))
    test = {r["method"]: r for r in result.reconstruction if r["split"] == "test"}
    assert test["pca"]["latent_dim"] == test["autoencoder"]["latent_dim"] == MANIFOLD_DIM
    assert test["autoencoder"]["r2"] > test["pca"]["r2"] + MARGIN, test


# --- clipping and the residual kind ---------------------------------------------------------------


@pytest.fixture(scope="module")
def huge_z(db, tmp_path_factory):
    """A collection 'huge' whose z-scores have a few cells far out of range, as real imported
    z-scores do (L1000's reach ±200) and beyond (1e20, whose square overflows float32)."""
    copy = tmp_path_factory.mktemp("huge") / "w.duckdb"
    shutil.copy(db, copy)
    rng = np.random.default_rng(8)
    z = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 200)) + 0.3 * rng.normal(size=(40, 200))
    for row, gene, value in [(3, 5, 207.0), (11, 9, -1e20), (20, 40, 1e20), (4, 1, -180.0)]:
        z[row, gene] = value
    return add_signatures(copy, "huge", z)


def test_values_are_clipped_before_standardising_so_every_method_stays_finite(huge_z, tmp_path):
    config = AutoencoderConfig(collection="huge", value="z", latent=3, epochs=2, **QUICK)
    assert config.data.clip is None and config.data.clip_limit == 10.0  # the rule for z
    result = train(huge_z, config, model_dir=tmp_path / "m")
    methods = {r["method"] for r in result.reconstruction}
    assert {"autoencoder", "pca", "ica", "nmf_magnitude"} <= methods
    assert all(np.isfinite(r["r2"]) and np.isfinite(r["mse"]) for r in result.reconstruction)
    assert all(np.isfinite(h["loss"]) and np.isfinite(h["val_loss"]) for h in result.history)
    # the three factors survive the outliers (unclipped, PCA's test R² was 0.04, here 0.92)
    r2 = {(r["method"], r["split"]): r["r2"] for r in result.reconstruction}
    assert r2[("pca", "test")] > 0.8 and r2[("ica", "test")] > 0.8, r2
    prep = load_bundle(result.model_dir).preprocessor
    assert prep.clip == 10.0
    row = np.zeros((1, prep.n_genes), np.float32)
    row[0, 9] = -1e20
    assert np.array_equal(prep.transform(row), prep.transform(np.where(row < 0, -10, row)))
    assert AutoencoderConfig(value="log2fc").data.clip_limit == 0.0  # none unless asked
    assert AutoencoderConfig(value="z", clip=0).data.clip_limit == 0.0


def test_the_residual_kind_starts_at_pca_and_saves_its_frozen_path(db, tmp_path):
    """The residual autoencoder's PCA path is fitted on the training split and saved with the
    model; with the initial weights among the candidates it ends no worse than PCA on the
    validation rows it stopped on."""
    config = AutoencoderConfig(
        kind="residual",
        latent=4,
        noise=0.5,
        hidden_dropout=0.2,
        best_weights=True,
        epochs=4,
        **QUICK,
    )
    result = train(db, config, model_dir=tmp_path / "r", baselines=("pca",))
    assert result.model_id.startswith("residual-")
    score = {(r["method"], r["split"]): r["r2"] for r in result.reconstruction}
    assert score[("autoencoder", "validation")] >= score[("pca", "validation")] - 1e-4
    bundle = load_bundle(result.model_dir)
    path = bundle.autoencoder.get_layer("pca_encoder")
    assert not path.trainable
    _, x = export.load_matrix(Warehouse.open(db), "degae", ("train",))
    from sklearn.decomposition import PCA

    axes = PCA(4).fit(bundle.preprocessor.transform(x)).components_
    kernel = np.asarray(path.kernel)  # genes x k: the training split's principal axes
    np.testing.assert_allclose(np.abs(kernel.T @ axes.T), np.eye(4), atol=1e-3)
    assert 0 <= result.metrics["best_epoch"] <= 4


def test_train_defaults_are_the_residual_kind_on_the_collection_own_values(huge_z, tmp_path):
    """`train --collection NAME` with no other choice trains the product's defaults on the
    values the collection holds (z here), and refuses a value kind it does not hold."""
    model_dir = tmp_path / "m"
    args = ["--json", "train", "--db", str(huge_z), "--collection", "huge", "--latent", "3"]
    args += ["--epochs", "2", "--batch-size", "8", "--model-dir", str(model_dir)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["model_id"].startswith("residual-")
    config = load_bundle(model_dir).config
    assert config == AutoencoderConfig.product(
        collection="huge", value="z", latent=3, epochs=2, batch_size=8
    )
    refused = CliRunner().invoke(main, [*args[1:6], "--value", "log2fc"])
    assert refused.exit_code == 2
    assert "holds z, not log2fc" in refused.output and "--value z" in refused.output
