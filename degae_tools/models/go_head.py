"""The GO-term head on an autoencoder's latent code, and the baselines it is measured against.

A multi-label head (one sigmoid per GO term, class-balanced binary cross-entropy) is fitted on
the frozen latent code (optionally fine-tuned end to end through the encoder). The baselines:
the label-frequency prior, logistic regression on PCA codes of the same size and ridge
regression on all standardised genes. The fitted head is saved beside the model it reads
(`go_head.keras`, `go_terms.json`, and `go_encoder.keras` when the encoder was tuned).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from scipy import special
from sklearn.decomposition import PCA

from degae_tools.errors import ModelError
from degae_tools.models.go_config import PredictConfig
from degae_tools.models.go_metrics import macro_auprc

HEAD_FILE = "go_head.keras"
ENCODER_FILE = "go_encoder.keras"
TERMS_FILE = "go_terms.json"
RIDGE_PENALTIES = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow warnings for large negative logits."""
    return special.expit(z)


@dataclass
class Predictor:
    """A fitted GO head with the encoder and preprocessor it reads through."""

    model_id: str
    model_dir: Path
    preprocessor: object
    encoder: keras.Model
    head: keras.Model
    go_ids: list[str]
    config: PredictConfig
    gene_count: int

    def logits(self, log2fc: np.ndarray, batch: int = 256) -> np.ndarray:
        """GO-term logits (n, n_terms) of raw log2FC rows (n, n_genes) in gene_index order."""
        out = []
        for i in range(0, len(log2fc), batch):
            z = self.encoder(self.preprocessor.transform(log2fc[i : i + batch]), training=False)
            out.append(np.asarray(self.head(z, training=False)))
        return np.concatenate(out) if out else np.zeros((0, len(self.go_ids)), np.float32)

    def scores(self, log2fc: np.ndarray) -> np.ndarray:
        """Probabilities (n, n_terms) that each GO term is enriched."""
        return sigmoid(self.logits(log2fc))


def weighted_bce(pos_weight: np.ndarray):
    """Binary cross-entropy on logits with positives weighted n_neg / n_pos per term."""
    w = tf.constant(pos_weight, tf.float32)

    def loss(y_true, y_logit):
        y = tf.cast(y_true, tf.float32)
        per = tf.nn.weighted_cross_entropy_with_logits(labels=y, logits=y_logit, pos_weight=w)
        return tf.reduce_mean(per, axis=-1)

    return loss


def positive_weights(y: np.ndarray, cap: float) -> np.ndarray:
    """n_neg / n_pos per term, clipped to [1, cap]: balances rare terms without exploding."""
    pos = y.sum(axis=0).astype(np.float64)
    return np.clip((len(y) - pos) / np.maximum(pos, 1.0), 1.0, cap)


def build_head(z_train: np.ndarray, n_terms: int, config: PredictConfig) -> keras.Model:
    """Latent code -> standardised code -> [hidden ReLU] -> one logit per GO term."""
    keras.utils.set_random_seed(config.seed)
    norm = keras.layers.Normalization(name="code_scaler")
    norm.adapt(z_train)
    inp = keras.Input((z_train.shape[1],), name="code")
    h = norm(inp)
    reg = keras.regularizers.L2(config.l2)
    if config.hidden:
        h = keras.layers.Dense(config.hidden, activation="relu", kernel_regularizer=reg)(h)
    out = keras.layers.Dense(n_terms, kernel_regularizer=reg, name="go_logits")(h)
    return keras.Model(inp, out, name="go_head")


def fit_balanced(model, x, y, x_val, y_val, config: PredictConfig, learning_rate: float) -> None:
    """Mini-batch Adam on the class-balanced loss, early stopping on validation loss."""
    loss_fn = weighted_bce(positive_weights(y, config.max_pos_weight))
    optimizer = keras.optimizers.Adam(learning_rate)
    x_t, y_t = tf.constant(x, tf.float32), tf.constant(y, tf.float32)
    variables = model.trainable_variables
    size = config.batch_size

    @tf.function
    def epoch(order):
        # one graph call per epoch: a while_loop over mini-batches of a shuffled order
        for start in tf.range(0, tf.shape(order)[0], size):
            rows = order[start : start + size]
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(loss_fn(tf.gather(y_t, rows), model(tf.gather(x_t, rows))))
                loss += tf.add_n(model.losses) if model.losses else 0.0
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))

    x_v, y_v = tf.constant(x_val, tf.float32), tf.constant(y_val, tf.float32)

    @tf.function
    def validation_loss():
        return tf.reduce_mean(loss_fn(y_v, model(x_v, training=False)))

    best, best_weights, waited = np.inf, None, 0
    rng = np.random.default_rng(config.seed)
    for _ in range(config.epochs):
        epoch(tf.constant(rng.permutation(len(x)), tf.int32))
        if len(x_val) == 0:
            continue
        loss = float(validation_loss())
        if loss < best - 1e-6:
            best, best_weights, waited = loss, model.get_weights(), 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    if best_weights is not None:
        model.set_weights(best_weights)


def fit_head(
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_val: np.ndarray,
    y_val: np.ndarray,
    config: PredictConfig,
) -> keras.Model:
    """A multi-label logistic head (class-balanced BCE, early stopping on validation loss)."""
    head = build_head(z_train, y_train.shape[1], config)
    fit_balanced(head, z_train, y_train, z_val, y_val, config, config.learning_rate)
    return head


def fine_tune(
    encoder: keras.Model,
    head: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: PredictConfig,
) -> keras.Model:
    """Train encoder and head end to end on preprocessed inputs; returns the tuned encoder copy."""
    tuned = keras.models.clone_model(encoder)
    tuned.set_weights(encoder.get_weights())
    inp = keras.Input(encoder.input_shape[1:])
    model = keras.Model(inp, head(tuned(inp)))
    fit_balanced(model, x_train, y_train, x_val, y_val, config, config.fine_tune_learning_rate)
    return tuned


def encode(encoder: keras.Model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Latent codes of preprocessed rows, in batches."""
    out = [np.asarray(encoder(x[i : i + batch], training=False)) for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, encoder.output_shape[-1]), np.float32)


def fit_pca_logreg(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_components: int,
    config: PredictConfig,
) -> tuple[PCA, keras.Model]:
    """PCA on train with the latent size, then the same logistic head without a hidden layer."""
    k = min(n_components, x_train.shape[0], x_train.shape[1])
    pca = PCA(n_components=k, random_state=config.seed).fit(x_train)
    z_val = pca.transform(x_val) if len(x_val) else np.zeros((0, k), np.float32)
    linear = replace(config, hidden=0)
    return pca, fit_head(pca.transform(x_train), y_train, z_val, y_val, linear)


def ridge_scores(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    x_test: np.ndarray,
) -> tuple[np.ndarray, float]:
    """Multi-output ridge regression on all standardised genes, solved in its dual form.

    With K = X X^T = U S U^T, the fitted scores for rows Q are Q X^T U (S + lambda)^-1 U^T Y
    (Hastie, Tibshirani & Friedman, ESL eq. 3.44 via the kernel trick); lambda is chosen from
    RIDGE_PENALTIES x trace(K)/n by macro AUPRC on the validation split.
    """
    x_train = np.asarray(x_train, np.float32)
    mean_y = y_train.mean(axis=0)
    gram = (x_train @ x_train.T).astype(np.float64)
    s, u = np.linalg.eigh(gram)
    uty = u.T @ (y_train - mean_y)
    scale = np.trace(gram) / len(gram)

    def predict(q: np.ndarray, lam: float) -> np.ndarray:
        kernel = (np.asarray(q, np.float32) @ x_train.T).astype(np.float64)
        return (kernel @ u) @ (uty / (s + lam)[:, None]) + mean_y

    best, best_lam = -np.inf, scale
    if len(x_val):
        for c in RIDGE_PENALTIES:
            value = macro_auprc(y_val, predict(x_val, c * scale))
            if value > best:
                best, best_lam = value, c * scale
    return predict(x_test, best_lam), best_lam


def save_head(
    model_dir: Path,
    head: keras.Model,
    encoder: keras.Model | None,
    go_ids: list[str],
    config: PredictConfig,
) -> None:
    """Write `go_head.keras`, `go_terms.json` (terms and config) and a fine-tuned encoder."""
    head.save(model_dir / HEAD_FILE)
    if encoder is not None:
        encoder.save(model_dir / ENCODER_FILE)
    elif (model_dir / ENCODER_FILE).exists():
        (model_dir / ENCODER_FILE).unlink()
    payload = {"go_ids": go_ids, "config": asdict(config)}
    (model_dir / TERMS_FILE).write_text(json.dumps(payload, indent=1) + "\n")


def load_predictor(model_dir: Path, bundle) -> Predictor:
    """The model's preprocessor, (fine-tuned) encoder and GO head, ready to score or attribute.

    `bundle` is the trained model of `model_dir` as `load_bundle` reads it."""
    model_dir = Path(model_dir)
    if not (model_dir / HEAD_FILE).exists():
        raise ModelError(
            f"{model_dir} has no {HEAD_FILE}: run `degae-tools predict --model {model_dir}` first"
        )
    meta = json.loads((model_dir / TERMS_FILE).read_text())
    encoder = bundle.encoder
    if (model_dir / ENCODER_FILE).exists():
        encoder = keras.models.load_model(model_dir / ENCODER_FILE, compile=False)
    head = keras.models.load_model(model_dir / HEAD_FILE, compile=False)
    return Predictor(
        model_id=bundle.model_id,
        model_dir=model_dir,
        preprocessor=bundle.preprocessor,
        encoder=encoder,
        head=head,
        go_ids=list(meta["go_ids"]),
        config=PredictConfig(**meta["config"]),
        gene_count=int(bundle.gene_count),
    )
