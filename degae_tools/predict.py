"""GO-term prediction from an autoencoder's latent code, beside baselines in the same run.

A multi-label head (one sigmoid per GO term, class-balanced binary cross-entropy) is fitted on
the frozen latent code (optionally fine-tuned end to end through the encoder) for terms with at
least `min_positives` enriched training contrasts. The label-frequency prior, logistic regression
on PCA codes of the same size and ridge regression on all standardised genes are fitted on the
same split and scored on the same test contrasts, into the same tables.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
import polars as pl
import pyarrow as pa
import tensorflow as tf
from sklearn.decomposition import PCA
from sklearn.metrics import average_precision_score, roc_auc_score

from degae_tools import console
from degae_tools.errors import Log2FCTableError, ModelError
from warehouse.connect import connect, transaction
from warehouse.migrate import read_query

HEAD_FILE = "go_head.keras"
ENCODER_FILE = "go_encoder.keras"
TERMS_FILE = "go_terms.json"
PREDICTORS = ("latent_head", "prior", "pca_logreg", "genes_ridge")
RIDGE_PENALTIES = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


@dataclass(frozen=True)
class PredictConfig:
    """How the GO-term head is fitted; `split_name` None uses the model's own split."""

    split_name: str | None = None
    label_column: str = "fwer_over"
    threshold: float = 0.05
    min_positives: int = 10
    hidden: int = 0
    epochs: int = 300
    batch_size: int = 64
    learning_rate: float = 1e-2
    l2: float = 1e-4
    max_pos_weight: float = 50.0
    fine_tune: bool = False
    fine_tune_learning_rate: float = 1e-3
    patience: int = 30
    seed: int = 69


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
        return 1.0 / (1.0 + np.exp(-self.logits(log2fc)))


@dataclass
class SplitData:
    """Raw log2FC rows and GO labels of one split."""

    contrast_ids: list[str]
    x: np.ndarray
    y: np.ndarray


@dataclass
class PredictResult:
    """What `fit_predictor` stored: per-term metrics of every predictor and their summaries."""

    model_id: str
    predictor_id: str
    go_ids: list[str]
    metrics: pl.DataFrame
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0


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


def _fit(model, x, y, x_val, y_val, config: PredictConfig, learning_rate: float) -> None:
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
    _fit(head, z_train, y_train, z_val, y_val, config, config.learning_rate)
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
    _fit(model, x_train, y_train, x_val, y_val, config, config.fine_tune_learning_rate)
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
    linear = PredictConfig(**{**asdict(config), "hidden": 0})
    z_val = pca.transform(x_val) if len(x_val) else np.zeros((0, k), np.float32)
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


def macro_auprc(y: np.ndarray, scores: np.ndarray) -> float:
    """Mean average precision over terms with a positive and a negative (NaN if none)."""
    ok = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    if not ok:
        return float("nan")
    return float(np.mean([average_precision_score(y[:, j], scores[:, j]) for j in ok]))


def term_metrics(
    predictor: str, go_ids: list[str], y_train: np.ndarray, y_test: np.ndarray, scores: np.ndarray
) -> pl.DataFrame:
    """AUROC and AUPRC per term (NULL where the test split lacks a class), then macro and micro."""
    n_train, n_test = y_train.sum(axis=0), y_test.sum(axis=0)
    auroc, auprc = [], []
    for j in range(len(go_ids)):
        if 0 < n_test[j] < len(y_test):
            auroc.append(float(roc_auc_score(y_test[:, j], scores[:, j])))
            auprc.append(float(average_precision_score(y_test[:, j], scores[:, j])))
        else:
            auroc.append(None)
            auprc.append(None)
    per = pl.DataFrame(
        {
            "predictor": predictor,
            "go_id": go_ids,
            "n_pos_train": n_train.astype(np.int32),
            "n_pos_test": n_test.astype(np.int32),
            "auroc": pl.Series(auroc, dtype=pl.Float64),
            "auprc": pl.Series(auprc, dtype=pl.Float64),
        }
    )
    flat_y, flat_s = y_test.ravel(), scores.ravel()
    has_both = 0 < flat_y.sum() < len(flat_y)
    summary = pl.DataFrame(
        {
            "predictor": [predictor, predictor],
            "go_id": ["macro", "micro"],
            "n_pos_train": [int(n_train.sum())] * 2,
            "n_pos_test": [int(n_test.sum())] * 2,
            "auroc": [
                per["auroc"].mean(),
                float(roc_auc_score(flat_y, flat_s)) if has_both else None,
            ],
            "auprc": [
                per["auprc"].mean(),
                float(average_precision_score(flat_y, flat_s)) if has_both else None,
            ],
        },
        schema=per.schema,
    )
    return pl.concat([per, summary])


def summarise(metrics: pl.DataFrame, min_positives: int = 20) -> dict[str, dict[str, float]]:
    """Macro/micro AUROC and AUPRC per predictor, plus macro over terms with many positives."""
    out: dict[str, dict[str, float]] = {}
    for (name,), rows in metrics.group_by("predictor", maintain_order=True):
        terms = rows.filter(~pl.col("go_id").is_in(["macro", "micro"]))
        big = terms.filter(pl.col("n_pos_train") >= min_positives)
        macro = rows.filter(pl.col("go_id") == "macro").row(0, named=True)
        micro = rows.filter(pl.col("go_id") == "micro").row(0, named=True)
        out[name] = {
            "macro_auroc": macro["auroc"],
            "macro_auprc": macro["auprc"],
            "micro_auroc": micro["auroc"],
            "micro_auprc": micro["auprc"],
            f"macro_auroc_pos{min_positives}": big["auroc"].mean(),
            f"macro_auprc_pos{min_positives}": big["auprc"].mean(),
            f"n_terms_pos{min_positives}": big.height,
            "n_terms_scored": terms["auroc"].drop_nulls().len(),
        }
    return out


def resolve_model_dir(db_path: Path | None, model: str) -> Path:
    """A model directory given as a path, or the `path` of model `model` in ml.models."""
    if Path(model).is_dir():
        return Path(model)
    con = connect(db_path)
    try:
        row = con.execute(read_query("predict/model_path"), [model]).fetchone()
    finally:
        con.close()
    if row is None or row[0] is None:
        raise ModelError(f"no model {model!r}: not a directory and not a model_id in ml.models")
    if not Path(row[0]).is_dir():
        raise ModelError(f"model {model!r} points at {row[0]}, which is not a directory")
    return Path(row[0])


def model_split_name(con, bundle, config: PredictConfig) -> str:
    """The split a predictor uses: the config's, else the model's, else the only one stored."""
    name = config.split_name or getattr(bundle, "split_name", None)
    if name:
        return name
    names = [r[0] for r in con.execute(read_query("predict/split_names")).fetchall()]
    if len(names) != 1:
        raise ModelError(f"ml.splits holds {len(names)} splits {names}: pass --split-name")
    return names[0]


def load_split(
    con, split_name: str, split: str, go_ids: list[str] | None, config: PredictConfig
) -> tuple[SplitData, list[str]]:
    """Raw log2FC rows of one split and their GO labels (all terms when `go_ids` is None)."""
    from warehouse.export import go_label_matrix, load_matrix

    ids, x = load_matrix(con, split_name, [split])
    y, go_ids = go_label_matrix(
        con, ids, go_ids=go_ids, column=config.label_column, threshold=config.threshold
    )
    return SplitData(list(ids), np.asarray(x, np.float32), np.asarray(y, np.uint8)), go_ids


def fit_predictor(
    db_path: Path | None, model_dir: Path, config: PredictConfig | None = None
) -> PredictResult:
    """Fit the latent head and the baselines on train, score test, store metrics and scores."""
    config = config or PredictConfig()
    from degae_tools.train import load_bundle

    started = time.monotonic()
    model_dir = Path(model_dir)
    bundle = load_bundle(model_dir)
    con = connect(db_path)
    try:
        split_name = model_split_name(con, bundle, config)
        config = replace(config, split_name=split_name)
        train, all_terms = load_split(con, split_name, "train", None, config)
        keep = train.y.sum(axis=0) >= config.min_positives
        go_ids = [g for g, k in zip(all_terms, keep, strict=True) if k]
        if not go_ids:
            raise ModelError(
                f"no GO term has {config.min_positives} positive training contrasts "
                f"({config.label_column} < {config.threshold}): lower --min-positives"
            )
        train.y = train.y[:, keep]
        val, _ = load_split(con, split_name, "validation", go_ids, config)
        test, _ = load_split(con, split_name, "test", go_ids, config)
    finally:
        con.close()
    if not test.contrast_ids:
        raise ModelError(f"split {split_name!r} has no test contrasts")

    prep = bundle.preprocessor
    p_train, p_val, p_test = (prep.transform(s.x) for s in (train, val, test))
    console.say(f"GO head: {len(go_ids)} terms, {len(train.contrast_ids)} training contrasts")
    z_train, z_val = encode(bundle.encoder, p_train), encode(bundle.encoder, p_val)
    head = fit_head(z_train, train.y, z_val, val.y, config)
    encoder = bundle.encoder
    if config.fine_tune:
        encoder = fine_tune(encoder, head, p_train, train.y, p_val, val.y, config)
    scores = {"latent_head": _sigmoid(np.asarray(head(encode(encoder, p_test))))}
    scores["prior"] = np.tile(train.y.mean(axis=0), (len(test.contrast_ids), 1))
    pca, pca_head = fit_pca_logreg(
        p_train, train.y, p_val, val.y, bundle.encoder.output_shape[-1], config
    )
    scores["pca_logreg"] = _sigmoid(np.asarray(pca_head(pca.transform(p_test))))
    scores["genes_ridge"], _ = ridge_scores(p_train, train.y, p_val, val.y, p_test)

    metrics = pl.concat(
        [term_metrics(name, go_ids, train.y, test.y, s) for name, s in scores.items()]
    )
    summary = summarise(metrics)
    predictor_id = f"{bundle.model_id}.go"
    save_head(model_dir, head, encoder if config.fine_tune else None, go_ids, config)
    _store(
        db_path,
        bundle.model_id,
        predictor_id,
        model_dir,
        test,
        go_ids,
        scores,
        metrics,
        config,
        summary,
    )
    return PredictResult(
        bundle.model_id, predictor_id, go_ids, metrics, summary, time.monotonic() - started
    )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


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


def load_predictor(model_dir: Path, bundle=None) -> Predictor:
    """The model's preprocessor, (fine-tuned) encoder and GO head, ready to score or attribute."""
    from degae_tools.train import load_bundle

    model_dir = Path(model_dir)
    if not (model_dir / HEAD_FILE).exists():
        raise ModelError(
            f"{model_dir} has no {HEAD_FILE}: run `degae-tools predict --model {model_dir}` first"
        )
    bundle = bundle if bundle is not None else load_bundle(model_dir)
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


def _store(
    db_path, model_id, predictor_id, model_dir, test, go_ids, scores, metrics, config, summary
) -> None:
    n, t = len(test.contrast_ids), len(go_ids)
    frames = [
        pa.table(
            {
                "model_id": pa.array([model_id] * (n * t)),
                "predictor": pa.array([name] * (n * t)),
                "contrast_id": pa.array(np.repeat(test.contrast_ids, t)),
                "go_id": pa.array(np.tile(go_ids, n)),
                "score": pa.array(np.asarray(s, np.float64).ravel()),
                "label": pa.array(test.y.ravel().astype(bool)),
            }
        )
        for name, s in scores.items()
    ]
    predictions = pa.concat_tables(frames)
    metric_rows = metrics.with_columns(pl.lit(model_id).alias("model_id")).to_arrow()
    con = connect(db_path, write=True)
    try:
        con.register("new_predictions", predictions)
        con.register("new_metrics", metric_rows)
        with transaction(con):
            con.execute(read_query("predict/delete_predictions"), [model_id])
            con.execute(read_query("predict/delete_metrics"), [model_id])
            con.execute(read_query("predict/insert_predictions"))
            con.execute(read_query("predict/insert_metrics"))
            con.execute(
                read_query("predict/upsert_model"),
                [
                    predictor_id,
                    str(model_dir),
                    json.dumps({"base_model_id": model_id, **asdict(config)}),
                    json.dumps(summary, default=_json_float),
                    model_id,
                    model_id,
                ],
            )
    finally:
        con.close()


def _json_float(v):
    return None if v is None else float(v)


def read_log2fc_tsv(path: Path, gene_index: dict[str, int], n_genes: int) -> np.ndarray:
    """A log2FC vector in gene_index order from `gene_id<TAB>log2fc` lines (missing genes: 0).

    A header line is allowed; a gene not in `core.genes` is skipped, but a file with no known
    gene is an error.
    """
    x = np.zeros(n_genes, np.float32)
    known = 0
    with open(path) as fh:
        for number, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise Log2FCTableError(
                    path,
                    number,
                    f"expected 2 tab-separated fields (gene_id, log2fc), got {len(fields)}",
                )
            gene, value = fields
            try:
                v = float(value)
            except ValueError:
                if number == 1 and known == 0:
                    continue
                raise Log2FCTableError(
                    path, number, f"expected a number in column 2, got {value!r}"
                ) from None
            if not np.isfinite(v):
                raise Log2FCTableError(path, number, f"expected a finite log2FC, got {value!r}")
            idx = gene_index.get(gene)
            if idx is not None:
                x[idx] = v
                known += 1
    if known == 0:
        raise Log2FCTableError(path, None, "no gene_id matches core.genes (expected ENSMUSG...)")
    return x


def predict_vector(model_dir: Path, log2fc: np.ndarray) -> pl.DataFrame:
    """Scores of every GO term of the model's head for one raw log2FC vector, best first."""
    predictor = load_predictor(Path(model_dir))
    x = np.asarray(log2fc, np.float32).reshape(1, -1)
    if x.shape[1] != predictor.gene_count:
        raise ModelError(
            f"log2FC vector has {x.shape[1]} genes, model expects {predictor.gene_count}"
        )
    return pl.DataFrame({"go_id": predictor.go_ids, "score": predictor.scores(x)[0]}).sort(
        "score", descending=True
    )


def log2fc_for_experiment(
    db_path: Path | None, contrast_id: str | None = None, tsv: Path | None = None
) -> np.ndarray:
    """A raw log2FC vector in gene_index order: a stored contrast's, or read from a TSV file."""
    con = connect(db_path)
    try:
        genes = con.execute(read_query("predict/genes")).fetchall()
        n_genes = max(g[1] for g in genes) + 1 if genes else 0
        if tsv is not None:
            return read_log2fc_tsv(tsv, {g[0]: g[1] for g in genes}, n_genes)
        rows = con.execute(read_query("predict/contrast_log2fc"), [contrast_id]).fetchall()
    finally:
        con.close()
    if not rows:
        raise ModelError(f"no DE results for contrast {contrast_id!r} in core.de_results")
    x = np.zeros(n_genes, np.float32)
    idx = np.array([r[0] for r in rows])
    x[idx] = np.nan_to_num(np.array([r[1] for r in rows], np.float64))
    return x


def with_term_names(db_path: Path | None, scores: pl.DataFrame) -> pl.DataFrame:
    """`scores` with each GO term's name from core.go_terms (NULL where unknown)."""
    con = connect(db_path)
    try:
        rows = con.execute(read_query("predict/term_names"), [scores["go_id"].to_list()]).fetchall()
    finally:
        con.close()
    names = pl.DataFrame(rows, schema={"go_id": pl.String, "name": pl.String}, orient="row")
    return scores.join(names, on="go_id", how="left").select("go_id", "name", "score")
