"""Exploratory research script (not a product benchmark): which autoencoder earns its place
against PCA on the real LINCS L1000 consensus signatures.

Reads ``../shared/data/real/l1000_drugbank_consensus_signatures.tsv.gz`` (1,170 DrugBank
compounds × 978 landmark genes, moderated z-scores) where it lies, clips to ±10, standardises each
gene on the training rows, and splits signatures with a seed into train / validation / test
(70/10/20). Every choice is made on train + validation only: hyper-parameters by 3-fold CV on the
training split (early stopping on the validation split), and the test split is scored once per
final configuration. The metric is ``degae_tools.models.baselines.ReconstructionScores``'s pooled R²
(1 - SSE/SST, SST about each gene's mean on the scored split, standardised units).

Stages (``--stages``, all by default; results merge into the JSON, fits are cached):
  baselines  PCA, FastICA and NMF (on the split representation [z⁺, z⁻]) at k = 4 … 128
  screen     3-fold CV of many autoencoder variants at k = 8 and 64
  search     3-fold CV of the best variants at every k
  final      per k, the CV-best variant refit on the training split and scored on test once,
             beside the issue's plain autoencoder and seed ensembles
  curve      learning curve (training rows) of PCA and the best variant, inside the training split
  go         GO BP labels per signature and macro AUROC/AUPRC of logistic heads on codes vs ridge

This is a research record for the product trainer's defaults, not code the product imports.
Run: ``nice -n 10 .venv/bin/python bench/l1000_explore.py [--stages screen,search]`` from the
repository root; writes ``bench/results/l1000_explore.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
SIGNATURES = DATA / "real" / "l1000_drugbank_consensus_signatures.tsv.gz"
RESULT = Path(__file__).parent / "results" / "l1000_explore.json"
CACHE = Path("/tmp/l1000_explore_cache.json")
LATENTS = (4, 8, 16, 32, 64, 128)
CLIP = 10.0
SPLIT_SEED = 0
FOLDS = 3


# Data ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signatures:
    """The L1000 matrix, its split and the standardised blocks (clip ±10, train mean/sd)."""

    ids: np.ndarray
    genes: np.ndarray
    raw: np.ndarray
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    @classmethod
    def load(cls, seed: int = SPLIT_SEED) -> Signatures:
        import pandas as pd

        frame = pd.read_csv(SIGNATURES, sep="\t", index_col=0)
        order = np.random.default_rng(seed).permutation(len(frame))
        n_train, n_val = round(0.7 * len(frame)), round(0.1 * len(frame))
        return cls(
            ids=frame.index.to_numpy(),
            genes=frame.columns.to_numpy().astype(int),
            raw=frame.to_numpy(np.float64),
            train=np.sort(order[:n_train]),
            validation=np.sort(order[n_train : n_train + n_val]),
            test=np.sort(order[n_train + n_val :]),
        )

    def standardised(self, fit_rows: np.ndarray) -> np.ndarray:
        """All rows clipped to ±CLIP and standardised per gene on ``fit_rows`` (float32)."""
        clipped = np.clip(self.raw, -CLIP, CLIP)
        mean, sd = clipped[fit_rows].mean(0), clipped[fit_rows].std(0)
        return ((clipped - mean) / np.where(sd > 0, sd, 1.0)).astype(np.float32)

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "test": len(self.test),
        }


def pooled_r2(truth: np.ndarray, estimate: np.ndarray) -> float:
    """ReconstructionScores' R²: 1 - SSE / SST, SST about each gene's mean on this split."""
    truth = truth.astype(np.float64)
    sse = float(((truth - estimate) ** 2).sum())
    sst = float(((truth - truth.mean(0)) ** 2).sum())
    return 1.0 - sse / sst


def cv_folds(n_rows: int, seed: int = SPLIT_SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, held-out) positions of FOLDS folds over ``n_rows`` training rows."""
    order = np.random.default_rng(seed + 1).permutation(n_rows)
    parts = np.array_split(order, FOLDS)
    return [
        (np.sort(np.concatenate([p for j, p in enumerate(parts) if j != i])), np.sort(parts[i]))
        for i in range(FOLDS)
    ]


# Linear baselines ------------------------------------------------------------------------------


def pca_reconstruction(fit: np.ndarray, k: int):
    """A function that reconstructs rows from the top-k principal subspace of ``fit``."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=k, random_state=0).fit(fit)
    return lambda z: pca.inverse_transform(pca.transform(z)), pca


def ica_reconstruction(fit: np.ndarray, k: int):
    """FastICA (unit-variance whitening): an unmixing of PCA's subspace, so the same R²."""
    from sklearn.decomposition import FastICA

    ica = FastICA(n_components=k, whiten="unit-variance", max_iter=1000, tol=1e-3, random_state=0)
    ica.fit(fit)
    return lambda z: ica.inverse_transform(ica.transform(z))


def split_sign(z: np.ndarray) -> np.ndarray:
    """The non-negative split representation [max(z, 0), max(-z, 0)] (2 × genes columns)."""
    return np.concatenate([np.maximum(z, 0), np.maximum(-z, 0)], axis=1)


def nmf_reconstruction(fit: np.ndarray, k: int):
    """NMF on the split representation; the signed reconstruction is z⁺ - z⁻."""
    from sklearn.decomposition import NMF

    nmf = NMF(n_components=k, init="nndsvda", max_iter=400, random_state=0).fit(split_sign(fit))
    n = fit.shape[1]

    def reconstruct(z):
        both = nmf.inverse_transform(nmf.transform(split_sign(z)))
        return both[:, :n] - both[:, n:]

    return reconstruct


def nmf_magnitude_r2(fit: np.ndarray, held_out: np.ndarray, k: int) -> float:
    """NMF on |z| (the issue's magnitude representation), R² of |z| itself (not comparable)."""
    from sklearn.decomposition import NMF

    nmf = NMF(n_components=k, init="nndsvda", max_iter=400, random_state=0).fit(np.abs(fit))
    return pooled_r2(np.abs(held_out), nmf.inverse_transform(nmf.transform(np.abs(held_out))))


# Autoencoders ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AEConfig:
    """One autoencoder variant. ``pca_path``: none, or a linear PCA path (encoder Pᵀx, decoder
    Pz, initialised from the fit rows' top-k loadings; ``frozen`` or ``trainable``) to which a
    non-linear residual of the same hidden shape is added, zero-initialised, so training starts
    at PCA's reconstruction. ``stop_on``: early stopping on the validation split, or on 10% of
    the fit rows (the issue's protocol)."""

    name: str
    pca_path: str = "none"
    hidden: tuple[int, ...] = (512,)
    activation: str = "relu"
    noise: float = 0.0
    input_dropout: float = 0.0
    dropout: float = 0.0
    l2: float = 0.0
    batch_norm: bool = False
    tied: bool = False
    vae_beta: float | None = None
    learning_rate: float = 1e-3
    schedule: str = "none"
    batch_size: int = 64
    max_epochs: int = 400
    patience: int = 20
    stop_on: str = "validation"

    def key(self) -> str:
        values = dataclasses.asdict(self)
        values.pop("name")
        return hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]

    def describe(self) -> dict:
        return {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if v != getattr(AEConfig, k, None) or k == "name"
        }


def _keras():
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return keras


def _layers(config: AEConfig):
    keras = _keras()
    from keras import layers, ops

    class TiedDense(layers.Layer):
        """A dense layer whose kernel is the transpose of another's (tied weights)."""

        def __init__(self, source, units, **kwargs):
            super().__init__(**kwargs)
            self.source, self.units = source, units

        def build(self, input_shape):
            self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

        def call(self, x):
            return ops.matmul(x, ops.transpose(self.source.kernel)) + self.bias

    class Sampling(layers.Layer):
        """z = mean + exp(logvar / 2) ε when training, the mean otherwise; adds β·KL / genes."""

        def __init__(self, beta, n_genes, **kwargs):
            super().__init__(**kwargs)
            self.beta, self.n_genes = beta, n_genes
            self.generator = keras.random.SeedGenerator(0)

        def call(self, inputs, training=None):
            mean, logvar = inputs
            kl = -0.5 * ops.sum(1 + logvar - mean**2 - ops.exp(logvar), axis=1)
            self.add_loss(self.beta * ops.mean(kl) / self.n_genes)
            if not training:
                return mean
            eps = keras.random.normal(ops.shape(mean), seed=self.generator)
            return mean + ops.exp(0.5 * logvar) * eps

    regulariser = keras.regularizers.L2(config.l2) if config.l2 else None

    def hidden(x, width):
        x = layers.Dense(width, kernel_regularizer=regulariser)(x)
        if config.batch_norm:
            x = layers.BatchNormalization()(x)
        x = layers.Activation(config.activation)(x)
        return layers.Dropout(config.dropout)(x) if config.dropout else x

    return keras, layers, TiedDense, Sampling, regulariser, hidden


def build_autoencoder(config: AEConfig, n_genes: int, k: int, loadings: np.ndarray | None):
    """The Keras model for ``config`` at latent size k (``loadings``: genes × k, for pca_path)."""
    keras, layers, TiedDense, Sampling, regulariser, hidden = _layers(config)
    x = keras.Input((n_genes,))
    h = layers.GaussianNoise(config.noise)(x) if config.noise else x
    h = layers.Dropout(config.input_dropout)(h) if config.input_dropout else h
    corrupted = h
    encoders = []
    for width in config.hidden:
        dense = layers.Dense(width, kernel_regularizer=regulariser)
        encoders.append(dense)
        h = dense(h)
        if config.batch_norm:
            h = layers.BatchNormalization()(h)
        h = layers.Activation(config.activation)(h)
        h = layers.Dropout(config.dropout)(h) if config.dropout else h
    if config.vae_beta is not None:
        mean = layers.Dense(k, name="z_mean")(h)
        logvar = layers.Dense(k, name="z_logvar", kernel_initializer="zeros")(h)
        code = Sampling(config.vae_beta, n_genes, name="code")([mean, logvar])
    elif config.pca_path != "none":
        trainable = config.pca_path == "trainable"
        linear = layers.Dense(k, use_bias=False, trainable=trainable, name="pca_encoder")
        residual = layers.Dense(k, kernel_initializer="zeros", kernel_regularizer=regulariser)
        code = layers.Add(name="code")([linear(corrupted), residual(h)])
    else:
        code_layer = layers.Dense(k, kernel_regularizer=regulariser, name="code")
        encoders.append(code_layer)
        code = code_layer(h)
    h = code
    if config.tied:
        for dense, units in zip(
            reversed(encoders), [*reversed(config.hidden), n_genes], strict=True
        ):
            h = TiedDense(dense, units)(h)
            if units != n_genes:
                h = layers.Activation(config.activation)(h)
        model = keras.Model(x, h)
    else:
        for width in reversed(config.hidden):
            h = hidden(h, width)
        if config.pca_path != "none":
            linear_out = layers.Dense(
                n_genes,
                use_bias=False,
                trainable=config.pca_path == "trainable",
                name="pca_decoder",
            )
            residual_out = layers.Dense(
                n_genes, kernel_initializer="zeros", kernel_regularizer=regulariser
            )
            y = layers.Add()([linear_out(code), residual_out(h)])
        else:
            y = layers.Dense(n_genes, kernel_regularizer=regulariser)(h)
        model = keras.Model(x, y)
    if config.pca_path != "none":
        model.get_layer("pca_encoder").set_weights([loadings.astype(np.float32)])
        model.get_layer("pca_decoder").set_weights([loadings.T.astype(np.float32)])
    model.compile(keras.optimizers.Adam(config.learning_rate), "mse")
    return model


@dataclass
class Trained:
    """A fitted autoencoder with how long it ran."""

    model: object
    epochs: int
    best_epoch: int
    seconds: float

    def reconstruct(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(z, training=False), dtype=np.float64)


def _best_weights_callback(keras, stop: np.ndarray, patience: int):
    """Early stopping that counts the initial weights (epoch 0) as a candidate, so a model
    initialised at PCA never ends worse than PCA on the stopping rows."""

    class BestWeights(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.best = float(self.model.evaluate(stop, stop, verbose=0, batch_size=512))
            self.best_weights, self.best_epoch, self.wait = self.model.get_weights(), 0, 0

        def on_epoch_end(self, epoch, logs=None):
            loss = logs["val_loss"]
            if loss < self.best - 1e-6:
                self.best, self.best_weights, self.best_epoch = (
                    loss,
                    self.model.get_weights(),
                    epoch + 1,
                )
                self.wait = 0
            else:
                self.wait += 1
                if self.wait >= patience:
                    self.model.stop_training = True

        def on_train_end(self, logs=None):
            self.model.set_weights(self.best_weights)

    return BestWeights()


def train_autoencoder(
    config: AEConfig, k: int, fit: np.ndarray, validation: np.ndarray, seed: int
) -> Trained:
    """Train on ``fit`` rows; early stopping on ``validation`` or on 10% of ``fit``."""
    keras = _keras()
    keras.utils.set_random_seed(seed)
    if config.stop_on == "train10":
        order = np.random.default_rng(seed).permutation(len(fit))
        n_stop = len(fit) // 10
        fit, stop = fit[order[n_stop:]], fit[order[:n_stop]]
    else:
        stop = validation
    loadings = None
    if config.pca_path != "none":
        loadings = pca_reconstruction(fit, k)[1].components_.T
    model = build_autoencoder(config, fit.shape[1], k, loadings)
    best = _best_weights_callback(keras, stop, config.patience)
    callbacks = [best]
    if config.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=5, min_lr=1e-5, verbose=0)
        )
    started = time.perf_counter()
    history = model.fit(
        fit,
        fit,
        validation_data=(stop, stop),
        epochs=config.max_epochs,
        batch_size=config.batch_size,
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    return Trained(model, len(history.history["loss"]), best.best_epoch, seconds)


# Cached cross-validation -----------------------------------------------------------------------


class Cache:
    """Fit results keyed by config, latent size, fold and seed, kept across runs in a file."""

    def __init__(self, path: Path):
        self.path = path
        self.values = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str, compute):
        if key not in self.values:
            self.values[key] = compute()
            self.path.write_text(json.dumps(self.values))
        return self.values[key]


def cv_fold(config: AEConfig, k: int, z: np.ndarray, sig: Signatures, fold: int, seed: int):
    """R² of the autoencoder and of PCA on one held-out training fold."""
    fit_pos, held_pos = cv_folds(len(sig.train))[fold]
    fit, held = z[sig.train[fit_pos]], z[sig.train[held_pos]]
    trained = train_autoencoder(config, k, fit, z[sig.validation], seed)
    return {
        "ae": pooled_r2(held, trained.reconstruct(held)),
        "pca": pooled_r2(held, pca_reconstruction(fit, k)[0](held)),
        "epochs": trained.epochs,
        "best_epoch": trained.best_epoch,
        "seconds": trained.seconds,
    }


def cv_score(config: AEConfig, k: int, z: np.ndarray, sig: Signatures, cache: Cache) -> dict:
    """Mean over folds of the autoencoder's and PCA's held-out R² (3-fold CV on train)."""
    folds = [
        cache.get(
            f"{config.key()}|k={k}|fold={f}|seed=0", lambda f=f: cv_fold(config, k, z, sig, f, 0)
        )
        for f in range(FOLDS)
    ]
    ae, pca = np.mean([f["ae"] for f in folds]), np.mean([f["pca"] for f in folds])
    result = {
        "config": config.name,
        "k": k,
        "cv_r2": round(float(ae), 4),
        "cv_pca_r2": round(float(pca), 4),
        "cv_ratio": round(float(ae / pca), 4),
        "fold_r2": [round(f["ae"], 4) for f in folds],
        "best_epochs": [f["best_epoch"] for f in folds],
        "seconds_per_fit": round(float(np.mean([f["seconds"] for f in folds])), 1),
    }
    print(json.dumps(result), flush=True)
    return result


# Variants --------------------------------------------------------------------------------------

PLAIN_ISSUE = AEConfig("plain 512 (issue: ES on 10% of train)", stop_on="train10")
PLAIN = AEConfig("plain 512")
PCA_FROZEN = AEConfig("PCA path frozen + residual 512", pca_path="frozen")
# (variant, latent sizes screened): plain-family variants at k = 8 (where a plain autoencoder
# already beats PCA) and, for the two regularisers most likely to help, at k = 64 too.
SCREEN = (
    (PLAIN, (8, 64)),
    (AEConfig("plain 512, noise 0.5", noise=0.5), (8, 64)),
    (AEConfig("plain 512, dropout 0.2", dropout=0.2), (8, 64)),
    (AEConfig("plain 512, L2 1e-4", l2=1e-4), (8,)),
    (AEConfig("plain 512, batch norm", batch_norm=True), (8,)),
    (AEConfig("plain 512, tied", tied=True), (8,)),
    (AEConfig("VAE 512, beta 0.01", vae_beta=0.01), (8,)),
    (AEConfig("PCA path trainable + residual 512", pca_path="trainable"), (8, 64)),
    (PCA_FROZEN, (8, 64)),
    (AEConfig("PCA path frozen + residual 512, noise 0.5", pca_path="frozen", noise=0.5), (8, 64)),
    (
        AEConfig("PCA path frozen + residual 512, dropout 0.2", pca_path="frozen", dropout=0.2),
        (8, 64),
    ),
    (AEConfig("PCA path frozen + residual 512, L2 1e-4", pca_path="frozen", l2=1e-4), (8, 64)),
    (AEConfig("PCA path frozen + residual 256", pca_path="frozen", hidden=(256,)), (8, 64)),
)


def stage_screen(sig: Signatures, z: np.ndarray, cache: Cache) -> list[dict]:
    """3-fold CV of each variant at its screened latent sizes."""
    return [cv_score(c, k, z, sig, cache) for k in (8, 64) for c, ks in SCREEN if k in ks]


# Search, final fits and learning curve ---------------------------------------------------------

# Combinations tried after reading the screen (hand-chosen, from CV results only).
SEARCH_EXTRA: tuple[AEConfig, ...] = (
    AEConfig(
        "PCA path frozen + residual 512, dropout 0.2, noise 0.5",
        pca_path="frozen",
        dropout=0.2,
        noise=0.5,
    ),
    AEConfig("PCA path frozen + residual 512, dropout 0.5", pca_path="frozen", dropout=0.5),
)


def screen_top(screen: list[dict], n: int) -> list[AEConfig]:
    """The n variants screened at both k = 8 and 64 with the best mean CV ratio to PCA."""
    by_name = {c.name: c for c, ks in SCREEN if len(ks) == 2}
    ratios: dict[str, list[float]] = {}
    for row in screen:
        if row["config"] in by_name:
            ratios.setdefault(row["config"], []).append(row["cv_ratio"])
    ranked = sorted(ratios, key=lambda name: -np.mean(ratios[name]))
    return [by_name[name] for name in ranked[:n]]


# A slower learning rate for the residual at large k, where it overfits within an epoch at 1e-3
# (best epoch 0 at k = 128 in the search above).
SEARCH_LARGE_K = (
    AEConfig(
        "PCA path frozen + residual 512, dropout 0.5, lr 1e-4",
        pca_path="frozen",
        dropout=0.5,
        learning_rate=1e-4,
    ),
)


def stage_search(sig: Signatures, z: np.ndarray, cache: Cache, screen: list[dict]) -> list[dict]:
    """3-fold CV at every latent size of PLAIN, the screen's top 3 and SEARCH_EXTRA, and of
    SEARCH_LARGE_K at k = 32, 64, 128."""
    variants = {c.name: c for c in [PLAIN, *screen_top(screen, 3), *SEARCH_EXTRA]}
    rows = [cv_score(c, k, z, sig, cache) for k in LATENTS for c in variants.values()]
    return rows + [cv_score(c, k, z, sig, cache) for k in (32, 64, 128) for c in SEARCH_LARGE_K]


def all_variants() -> dict[str, AEConfig]:
    return {
        c.name: c for c in [PLAIN_ISSUE, *(c for c, _ in SCREEN), *SEARCH_EXTRA, *SEARCH_LARGE_K]
    }


def per_k_best(cv_rows: list[dict]) -> dict[int, AEConfig]:
    """Per latent size, the variant with the best mean CV R² (train split only)."""
    variants, best = all_variants(), {}
    for row in cv_rows:
        if row["k"] not in best or row["cv_r2"] > best[row["k"]]["cv_r2"]:
            best[row["k"]] = row
    return {k: variants[row["config"]] for k, row in sorted(best.items())}


def cv_ranking(cv_rows: list[dict]) -> list[dict]:
    """Variants CV-scored at every latent size, by their mean CV ratio to PCA over the sizes."""
    ratios: dict[str, dict[int, float]] = {}
    for row in cv_rows:
        ratios.setdefault(row["config"], {})[row["k"]] = row["cv_ratio"]
    ranked = [
        {"config": name, "mean_cv_ratio": float(np.mean(list(r.values()))), "cv_ratio_by_k": r}
        for name, r in ratios.items()
        if set(r) == set(LATENTS)
    ]
    return sorted(ranked, key=lambda row: -row["mean_cv_ratio"])


def default_variant(cv_rows: list[dict]) -> AEConfig:
    """One recipe for every k: the best mean CV ratio to PCA over the six latent sizes."""
    return all_variants()[cv_ranking(cv_rows)[0]["config"]]


def encoder_of(model):
    keras = _keras()
    return keras.Model(model.inputs, model.get_layer("code").output)


def stage_final(sig: Signatures, z: np.ndarray, cv_rows: list[dict], ensemble: int) -> dict:
    """Per k, refit on the training split and scored once on test: the default recipe (seed 0,
    and the mean reconstruction of ``ensemble`` seeds), the per-k CV winner where it differs,
    the issue's plain autoencoder and PCA."""
    train, val, test = z[sig.train], z[sig.validation], z[sig.test]
    default, best = default_variant(cv_rows), per_k_best(cv_rows)
    rows, codes = [], {}
    for k in LATENTS:
        fits = [train_autoencoder(default, k, train, val, seed) for seed in range(ensemble)]
        issue = train_autoencoder(PLAIN_ISSUE, k, train, val, 0)
        pca = pca_reconstruction(train, k)
        mean_test = np.mean([f.reconstruct(test) for f in fits], axis=0)
        row = {
            "k": k,
            "default": default.name,
            "pca_test_r2": pooled_r2(test, pca[0](test)),
            "ae_test_r2": pooled_r2(test, fits[0].reconstruct(test)),
            "ae_seed_test_r2": [pooled_r2(test, f.reconstruct(test)) for f in fits],
            "ae_val_r2": pooled_r2(val, fits[0].reconstruct(val)),
            "ensemble_test_r2": pooled_r2(test, mean_test),
            "ensemble_size": ensemble,
            "plain_issue_test_r2": pooled_r2(test, issue.reconstruct(test)),
            "epochs_run": [f.epochs for f in fits],
            "best_epochs": [f.best_epoch for f in fits],
            "seconds_per_fit": float(np.mean([f.seconds for f in fits])),
            "plain_issue_seconds": issue.seconds,
            "per_k_cv_best": best[k].name,
        }
        if best[k] != default:
            winner = train_autoencoder(best[k], k, train, val, 0)
            row["per_k_cv_best_test_r2"] = pooled_r2(test, winner.reconstruct(test))
        for name in ("ae", "ensemble", "plain_issue", "per_k_cv_best"):
            if f"{name}_test_r2" in row:
                row[f"{name}_to_pca"] = row[f"{name}_test_r2"] / row["pca_test_r2"]
        print(json.dumps(row), flush=True)
        rows.append(row)
        codes[k] = {
            "ae": np.asarray(encoder_of(fits[0].model)(z, training=False), dtype=np.float64),
            "pca": pca[1].transform(z),
        }
    return {"rows": rows, "codes": codes}


def stage_curve(sig: Signatures, z: np.ndarray, cv_rows: list[dict]) -> list[dict]:
    """Held-out R² against training rows (fold 0 of the training split: fit on a subset of its
    fit rows, scored on its held-out rows), for PCA and the default recipe at k = 8 and 128."""
    fit_pos, held_pos = cv_folds(len(sig.train))[0]
    held, val = z[sig.train[held_pos]], z[sig.validation]
    order = np.random.default_rng(3).permutation(fit_pos)
    chosen, rows = default_variant(cv_rows), []
    for k in (8, 128):
        for n in (len(order) // 4, len(order) // 2, len(order)):
            fit = z[sig.train[np.sort(order[:n])]]
            trained = train_autoencoder(chosen, k, fit, val, 0)
            row = {
                "k": k,
                "n_train": n,
                "config": chosen.name,
                "ae_r2": pooled_r2(held, trained.reconstruct(held)),
                "pca_r2": pooled_r2(held, pca_reconstruction(fit, k)[0](held)),
                "pca_train_r2": pooled_r2(fit, pca_reconstruction(fit, k)[0](fit)),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def stage_baselines(sig: Signatures, z: np.ndarray) -> list[dict]:
    """PCA, FastICA and NMF at every k, fit on train, scored on validation and test."""
    train, val, test = z[sig.train], z[sig.validation], z[sig.test]
    rows = []
    for k in LATENTS:
        for method, make in (
            ("PCA", lambda k=k: pca_reconstruction(train, k)[0]),
            ("FastICA", lambda k=k: ica_reconstruction(train, k)),
            ("NMF [z+, z-]", lambda k=k: nmf_reconstruction(train, k)),
        ):
            started = time.perf_counter()
            reconstruct = make()
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "k": k,
                    "method": method,
                    "val_r2": pooled_r2(val, reconstruct(val)),
                    "test_r2": pooled_r2(test, reconstruct(test)),
                    "fit_seconds": seconds,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        rows.append(
            {
                "k": k,
                "method": "NMF |z| (R² of |z|, not comparable)",
                "test_r2": nmf_magnitude_r2(train, test, k),
            }
        )
    return rows


# GO prediction ---------------------------------------------------------------------------------

GO_TOP, GO_MIN_Z, GO_FDR = 50, 2.0, 0.05
GO_SIZES = (5, 300)
GO_MIN_TRAIN_POSITIVES = 10
LOGREG_C = (0.01, 0.1, 1.0)
RIDGE_ALPHA = (10.0, 100.0, 1000.0, 10000.0)


@dataclass(frozen=True)
class GoLabels:
    """Signatures × BP terms: BH < GO_FDR for the top GO_TOP up or down genes with |z| >= 2."""

    labels: np.ndarray
    go_ids: np.ndarray
    term_sizes: np.ndarray


def bp_annotations(genes: np.ndarray):
    """Propagated (is_a, part_of) human BP annotations of the 978 genes, terms of 5–300 genes."""
    import polars as pl

    from degae_tools.enrichment import Ontology
    from degae_tools.sources.obo import read_obo

    ontology = Ontology.from_obo(read_obo(DATA / "go-basic.obo.gz"))
    gene2go = pl.read_csv(
        DATA / "gene2go_human.tsv.gz", separator="\t", schema_overrides={"GeneID": pl.Int64}
    ).filter(pl.col("Category") == "Process")
    index = pl.DataFrame({"GeneID": genes, "gene_index": np.arange(len(genes))})
    direct = gene2go.join(index, on="GeneID").select("gene_index", pl.col("GO_ID").alias("go_id"))
    propagated = ontology.propagate(direct, len(genes))
    sizes = np.asarray(propagated.matrix.sum(axis=0)).ravel()
    keep = (propagated.namespaces == "biological_process") & (sizes >= GO_SIZES[0])
    keep &= sizes <= GO_SIZES[1]
    return propagated.matrix[:, keep].toarray(), propagated.go_ids[keep]


def go_labels(raw: np.ndarray, genes: np.ndarray) -> GoLabels:
    """Hypergeometric test of each signature's top up and top down genes (universe: all 978
    genes), BH over terms per signature and direction; a label is BH < GO_FDR either way."""
    from degae_tools.enrichment import benjamini_hochberg, hypergeom_tails

    members, go_ids = bp_annotations(genes)
    sizes = members.sum(axis=0)
    labels = np.zeros((len(raw), len(go_ids)), dtype=bool)
    for sign in (1.0, -1.0):
        value = sign * raw
        top = np.argsort(-value, axis=1)[:, :GO_TOP]
        chosen = np.zeros(raw.shape, dtype=bool)
        np.put_along_axis(chosen, top, True, axis=1)
        chosen &= value >= GO_MIN_Z
        drawn, hits = chosen.sum(axis=1), chosen.astype(np.int32) @ members.astype(np.int32)
        p = np.ones(labels.shape)
        for n in np.unique(drawn[drawn > 0]):
            rows = np.flatnonzero(drawn == n)
            upper, _ = hypergeom_tails(raw.shape[1], int(n), sizes)
            p[rows] = upper[np.arange(len(go_ids))[None, :], hits[rows]]
        labels |= benjamini_hochberg(p) < GO_FDR
    return GoLabels(labels, go_ids, sizes)


def macro_scores(truth: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Macro AUROC and AUPRC over the columns with a positive and a negative."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    cols = [j for j in range(truth.shape[1]) if 0 < truth[:, j].sum() < len(truth)]
    return {
        "auroc": float(np.mean([roc_auc_score(truth[:, j], scores[:, j]) for j in cols])),
        "auprc": float(np.mean([average_precision_score(truth[:, j], scores[:, j]) for j in cols])),
        "terms_scored": len(cols),
    }


def logreg_scores(fit_x, fit_y, score_x, c: float) -> np.ndarray:
    """L2 logistic regression per term on standardised features (sklearn's objective:
    C · Σ log-loss + ½‖w‖², intercept unpenalised), all terms solved jointly by L-BFGS (the
    objective is a sum of independent terms, so its minimum is each term's); decision scores."""
    from scipy.optimize import minimize
    from scipy.special import expit
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(fit_x)
    x = np.hstack([scaler.transform(fit_x), np.ones((len(fit_x), 1))])
    y = fit_y.astype(np.float64)
    shape = (x.shape[1], y.shape[1])
    penalised = np.ones(shape)
    penalised[-1] = 0.0

    def objective(flat):
        w = flat.reshape(shape)
        margin = x @ w
        loss = np.logaddexp(0, margin) - y * margin
        grad = x.T @ (expit(margin) - y)
        return (
            c * loss.sum() + 0.5 * (penalised * w**2).sum(),
            (c * grad + penalised * w).ravel(),
        )

    solved = minimize(
        objective,
        np.zeros(shape).ravel(),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 20000, "gtol": 1e-8, "ftol": 1e-15},
    )
    w = solved.x.reshape(shape)
    return np.hstack([scaler.transform(score_x), np.ones((len(score_x), 1))]) @ w


def ridge_scores(fit_x, fit_y, score_x, alpha: float) -> np.ndarray:
    """Multi-output ridge on ±1 labels (standardised features), one solve for every term."""
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(fit_x)
    model = Ridge(alpha=alpha).fit(scaler.transform(fit_x), np.where(fit_y, 1.0, -1.0))
    return model.predict(scaler.transform(score_x))


def rank_mean(*scores: np.ndarray) -> np.ndarray:
    """Mean of the per-term ranks of several score matrices (a rank-averaging ensemble)."""
    from scipy.stats import rankdata

    return np.mean([rankdata(s, axis=0) for s in scores], axis=0)


def choose_and_score(predict, params, x, y, sig: Signatures) -> dict:
    """Pick the parameter by 3-fold CV macro AUPRC on train, refit on train, score on test."""
    train_x, train_y = x[sig.train], y[sig.train]
    cv = {}
    for param in params:
        folds = []
        for fit, held in cv_folds(len(sig.train)):
            folds.append(
                macro_scores(
                    train_y[held], predict(train_x[fit], train_y[fit], train_x[held], param)
                )["auprc"]
            )
        cv[param] = float(np.mean(folds))
    best = max(cv, key=cv.get)
    scores = predict(train_x, train_y, x[sig.test], best)
    return {
        "param": best,
        "cv_auprc": cv[best],
        **macro_scores(y[sig.test], scores),
        "scores": scores,
    }


def stage_go(sig: Signatures, z: np.ndarray, codes: dict) -> dict:
    """GO labels, then macro AUROC/AUPRC on test of heads on AE and PCA codes, ridge on genes,
    combinations, and the prior; every choice by CV on the training split."""
    started = time.perf_counter()
    go = go_labels(sig.raw, sig.genes)
    label_seconds = time.perf_counter() - started
    y_all = go.labels
    terms = y_all[sig.train].sum(axis=0) >= GO_MIN_TRAIN_POSITIVES
    y = y_all[:, terms]
    test_y = y[sig.test]
    prior = np.broadcast_to(y[sig.train].mean(axis=0), test_y.shape)
    summary = {
        "n_terms_bp_5_300": int(len(go.go_ids)),
        "signatures_with_a_label": int(y_all.any(axis=1).sum()),
        "terms_with_10_train_positives": int(terms.sum()),
        "label_seconds": label_seconds,
        "prior": {
            **macro_scores(test_y, prior + 1e-9 * np.random.default_rng(0).random(test_y.shape))
        },
    }
    ridge = choose_and_score(ridge_scores, RIDGE_ALPHA, z, y, sig)
    summary["ridge_genes"] = {k: v for k, v in ridge.items() if k != "scores"}
    rows = []
    for k, code in codes.items():
        ae = choose_and_score(logreg_scores, LOGREG_C, code["ae"], y, sig)
        pca = choose_and_score(logreg_scores, LOGREG_C, code["pca"], y, sig)
        both = choose_and_score(ridge_scores, RIDGE_ALPHA, np.hstack([z, code["ae"]]), y, sig)
        row = {"k": k}
        for name, result in (
            ("ae_logreg", ae),
            ("pca_logreg", pca),
            ("ridge_genes_plus_ae_code", both),
        ):
            row[name] = {key: v for key, v in result.items() if key != "scores"}
        row["rank_mean_ae_logreg_ridge"] = macro_scores(
            test_y, rank_mean(ae["scores"], ridge["scores"])
        )
        print(json.dumps(row), flush=True)
        rows.append(row)
    summary["by_k"] = rows
    candidates = [
        (row[name]["cv_auprc"], row["k"], name, row[name])
        for row in rows
        for name in ("ae_logreg", "ridge_genes_plus_ae_code")
    ]
    cv_auprc, k, name, best = max(candidates, key=lambda c: c[0])
    summary["degae_best_by_cv"] = {"k": k, "predictor": name, **best}
    return summary


# Main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stages", default="baselines,screen,search,final,curve,go")
    parser.add_argument("--cache", type=Path, default=CACHE, help="fit cache (outside the repo)")
    parser.add_argument("--ensemble", type=int, default=5, help="seeds averaged in the ensemble")
    args = parser.parse_args()
    sig = Signatures.load()
    z = sig.standardised(sig.train)
    cache = Cache(args.cache)
    codes_file = args.cache.with_suffix(".codes.npz")
    results = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    results.update(
        {
            "data": str(SIGNATURES.relative_to(ROOT.parent)),
            "shape": list(sig.raw.shape),
            "split_seed": SPLIT_SEED,
            "sizes": sig.sizes(),
            "cv": f"{FOLDS}-fold on the training split; early stopping on the validation split",
            "preprocessing": f"clip ±{CLIP:g}, standardise per gene on train rows",
            "metric": "pooled R² = 1 - SSE/SST, SST about each gene's mean on the scored split",
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        }
    )

    def save():
        RESULT.write_text(json.dumps(results, indent=1) + "\n")

    for stage in args.stages.split(","):
        started = time.perf_counter()
        if stage == "baselines":
            results["baselines"] = stage_baselines(sig, z)
        elif stage == "screen":
            results["screen"] = stage_screen(sig, z, cache)
        elif stage == "search":
            results["search"] = stage_search(sig, z, cache, results["screen"])
            results["cv_ranking"] = cv_ranking(results["search"])
        elif stage == "final":
            results["cv_ranking"] = cv_ranking(results["search"])
            final = stage_final(sig, z, results["screen"] + results["search"], args.ensemble)
            results["final"] = final["rows"]
            np.savez(codes_file, **{f"{m}_{k}": c[m] for k, c in final["codes"].items() for m in c})
        elif stage == "curve":
            results["curve"] = stage_curve(sig, z, results["screen"] + results["search"])
        elif stage == "go":
            saved = np.load(codes_file)
            codes = {k: {m: saved[f"{m}_{k}"] for m in ("ae", "pca")} for k in LATENTS}
            results["go"] = stage_go(sig, z, codes)
        else:
            raise SystemExit(f"unknown stage {stage!r}")
        results.setdefault("stage_seconds", {})[stage] = time.perf_counter() - started
        save()


if __name__ == "__main__":
    main()
