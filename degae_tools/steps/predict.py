"""The `predict` step: GO-term prediction from an autoencoder's latent code, beside baselines.

The head (`degae_tools.models.go_head`) is fitted on the training split for terms with at least
`min_positives` enriched training contrasts; the label-frequency prior, logistic regression on
PCA codes of the same size and ridge regression on all genes are fitted on the same split and
scored on the same test contrasts. Scores go to `ml.go_predictions`, per-term metrics to
`ml.go_metrics`, and the head to `ml.models` as a model of kind 'predictor'.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from degae_tools import console
from degae_tools.errors import Log2FCTableError, ModelError, NothingToDo
from degae_tools.models.bundle import load_bundle
from degae_tools.models.go_config import PredictConfig
from degae_tools.models.go_head import (
    Predictor,
    encode,
    fine_tune,
    fit_head,
    fit_pca_logreg,
    load_predictor,
    ridge_scores,
    save_head,
    sigmoid,
)
from degae_tools.models.go_metrics import summarise, term_metrics
from warehouse import Query, Warehouse
from warehouse.export import go_label_matrix, load_matrix

MODEL_PATH = Query("predict/model_path")
SPLIT_NAMES = Query("predict/split_names")
GENES = Query("predict/genes")
CONTRAST_LOG2FC = Query("predict/contrast_log2fc")
TERM_NAMES = Query("predict/term_names")
UPSERT_MODEL = Query("predict/upsert_model")
PREDICTORS = ("latent_head", "prior", "pca_logreg", "genes_ridge")


class TooFewPositives(NothingToDo, ModelError):
    """No GO term has enough positive training contrasts to fit a head on."""


@dataclass
class SplitData:
    """Raw log2FC rows of one split and their GO labels (one column per term of `go_ids`)."""

    contrast_ids: list[str]
    x: np.ndarray
    y: np.ndarray
    go_ids: list[str]


@dataclass
class LabelledSplits:
    """Train, validation and test rows, labelled with the terms the head predicts."""

    train: SplitData
    validation: SplitData
    test: SplitData

    @property
    def go_ids(self) -> list[str]:
        return self.train.go_ids


@dataclass
class Fitted:
    """The head, the encoder it reads (tuned, or None when frozen), and every predictor's test
    scores (test contrasts x terms)."""

    head: object
    tuned_encoder: object | None
    scores: dict[str, np.ndarray]


@dataclass
class PredictResult:
    """What `run` stored: per-term metrics of every predictor and their summaries."""

    model_id: str
    predictor_id: str
    go_ids: list[str]
    metrics: pl.DataFrame
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0


def run(wh: Warehouse, model_dir: Path, config: PredictConfig = PredictConfig()) -> PredictResult:
    """Fit the latent head and the baselines on train, score test, store metrics and scores."""
    started = time.monotonic()
    model_dir = Path(model_dir)
    bundle = load_bundle(model_dir)
    config = replace(config, split_name=choose_split(wh, config.split_name, bundle.split_name))
    data = read_labelled_splits(wh, config, bundle.config.data.value)
    console.say(f"GO head: {len(data.go_ids)} terms, {len(data.train.x)} training contrasts")
    fitted = fit_predictors(bundle, data, config)
    metrics = pl.concat(
        [
            term_metrics(name, data.go_ids, data.train.y, data.test.y, scores)
            for name, scores in fitted.scores.items()
        ]
    )
    summary = summarise(metrics)
    save_head(model_dir, fitted.head, fitted.tuned_encoder, data.go_ids, config)
    predictor_id = f"{bundle.model_id}.go"
    with wh.transaction():
        store_scores(wh, bundle.model_id, data.test, fitted.scores, metrics)
        wh.execute(
            UPSERT_MODEL,
            {
                "predictor_id": predictor_id,
                "path": str(model_dir),
                "config": json.dumps({"base_model_id": bundle.model_id, **asdict(config)}),
                "metrics": json.dumps(summary, default=_json_float),
                "model_id": bundle.model_id,
            },
        )
    seconds = time.monotonic() - started
    return PredictResult(bundle.model_id, predictor_id, data.go_ids, metrics, summary, seconds)


def fit_predictors(bundle, data: LabelledSplits, config: PredictConfig) -> Fitted:
    """The latent head (and tuned encoder) and the three baselines, fitted on train and
    early-stopped on validation; returns every predictor's scores of the test contrasts."""
    prep, encoder = bundle.preprocessor, bundle.encoder
    train, val, test = data.train, data.validation, data.test
    p_train, p_val, p_test = (prep.transform(s.x) for s in (train, val, test))
    head = fit_head(encode(encoder, p_train), train.y, encode(encoder, p_val), val.y, config)
    tuned = None
    if config.fine_tune:
        tuned = fine_tune(encoder, head, p_train, train.y, p_val, val.y, config)
    scores = {"latent_head": sigmoid(np.asarray(head(encode(tuned or encoder, p_test))))}
    scores["prior"] = np.tile(train.y.mean(axis=0), (len(test.x), 1))
    latent_size = encoder.output_shape[-1]
    pca, pca_head = fit_pca_logreg(p_train, train.y, p_val, val.y, latent_size, config)
    scores["pca_logreg"] = sigmoid(np.asarray(pca_head(pca.transform(p_test))))
    scores["genes_ridge"], _ = ridge_scores(p_train, train.y, p_val, val.y, p_test)
    return Fitted(head, tuned, scores)


def store_scores(
    wh: Warehouse,
    model_id: str,
    test: SplitData,
    scores: dict[str, np.ndarray],
    metrics: pl.DataFrame,
) -> None:
    """Replace the model's rows of ml.go_predictions (every test cell of every predictor) and
    ml.go_metrics."""
    n, t = len(test.contrast_ids), len(test.go_ids)
    predictions = pa.concat_tables(
        pa.table(
            {
                "model_id": pa.array([model_id] * (n * t)),
                "predictor": pa.array([name] * (n * t)),
                "contrast_id": pa.array(np.repeat(test.contrast_ids, t)),
                "go_id": pa.array(np.tile(test.go_ids, n)),
                "score": pa.array(np.asarray(s, np.float64).ravel()),
                "label": pa.array(test.y.ravel().astype(bool)),
            }
        )
        for name, s in scores.items()
    )
    with wh.transaction():
        wh.replace_rows("ml.go_predictions", predictions, where={"model_id": model_id})
        rows = metrics.with_columns(pl.lit(model_id).alias("model_id"))
        wh.replace_rows("ml.go_metrics", rows, where={"model_id": model_id})


def _json_float(v):
    return None if v is None else float(v)


# --- reading the warehouse ---------------------------------------------------------------------


def resolve_model_dir(wh: Warehouse, model: str | Path) -> Path:
    """A model directory given as a path, or the `path` of model `model` in ml.models."""
    if Path(model).is_dir():
        return Path(model)
    path = wh.scalar(MODEL_PATH, {"model_id": str(model)})
    if path is None:
        raise ModelError(f"no model {model!r}: not a directory and not a model_id in ml.models")
    if not Path(path).is_dir():
        raise ModelError(f"model {model!r} points at {path}, which is not a directory")
    return Path(path)


def open_predictor(wh: Warehouse, model: str | Path) -> Predictor:
    """The fitted GO head of `model` (a model id or directory), with its encoder."""
    model_dir = resolve_model_dir(wh, model)
    return load_predictor(model_dir, load_bundle(model_dir))


def choose_split(wh: Warehouse, *preferred: str | None) -> str:
    """The first split named in `preferred`, else the only one stored in ml.splits."""
    for name in preferred:
        if name:
            return name
    names = [r[0] for r in wh.rows(SPLIT_NAMES)]
    if len(names) != 1:
        raise ModelError(f"ml.splits holds {len(names)} splits {names}: pass --split-name")
    return names[0]


def load_split(
    wh: Warehouse,
    split: str,
    go_ids: list[str] | None,
    config: PredictConfig,
    value: str = "log2fc",
) -> SplitData:
    """Raw rows (the model's value kind: log2FC, t or z) of one split of `config.split_name`
    and their GO labels (every term enriched in the split when `go_ids` is None)."""
    with wh.session() as con:
        ids, x = load_matrix(con, config.split_name, [split], value)
        y, go_ids = go_label_matrix(
            con, ids, go_ids=go_ids, column=config.label_column, threshold=config.threshold
        )
    return SplitData(list(ids), np.asarray(x, np.float32), np.asarray(y, np.uint8), go_ids)


def head_split(wh: Warehouse, predictor: Predictor, split: str) -> SplitData:
    """One split of the split set the head was fitted on, labelled with the head's terms."""
    config = replace(predictor.config, split_name=choose_split(wh, predictor.config.split_name))
    return load_split(wh, split, predictor.go_ids, config, model_value(predictor.model_dir))


def model_value(model_dir: Path) -> str:
    """The value kind (log2fc, t or z) the model in `model_dir` was trained on (config.json;
    models older than value kinds read log2FC)."""
    saved = json.loads((Path(model_dir) / "config.json").read_text())
    return saved["config"].get("value", "log2fc")


def read_labelled_splits(
    wh: Warehouse, config: PredictConfig, value: str = "log2fc"
) -> LabelledSplits:
    """The three splits, labelled with the terms that reach `min_positives` on train."""
    with wh.session():
        train = load_split(wh, "train", None, config, value)
        positives = train.y.sum(axis=0)
        keep = positives >= config.min_positives
        if not keep.any():
            raise TooFewPositives(_too_few_positives(train, positives, config))
        go_ids = [g for g, k in zip(train.go_ids, keep, strict=True) if k]
        train = SplitData(train.contrast_ids, train.x, train.y[:, keep], go_ids)
        validation = load_split(wh, "validation", go_ids, config, value)
        test = load_split(wh, "test", go_ids, config, value)
    if not test.contrast_ids:
        raise ModelError(f"split {config.split_name!r} has no test contrasts")
    return LabelledSplits(train, validation, test)


def _too_few_positives(train: SplitData, positives: np.ndarray, config: PredictConfig) -> str:
    label = f"{config.label_column} < {config.threshold:g}"
    if not len(positives):
        return (
            f"no GO term is enriched ({label}) in any of the {len(train.contrast_ids)} training "
            f"contrasts of split {config.split_name!r}: run `degae-tools enrich` first, or "
            f"choose another --label-column or --threshold"
        )
    return (
        f"no GO term has {config.min_positives} positive training contrasts ({label}; the most "
        f"any term has is {int(positives.max())}): lower --min-positives"
    )


# --- scoring one experiment --------------------------------------------------------------------


def score_experiment(
    wh: Warehouse,
    model_dir: Path,
    contrast_id: str | None = None,
    tsv: Path | None = None,
    top: int = 20,
) -> pl.DataFrame:
    """The `top` GO terms the model's head scores highest for a stored contrast or a TSV."""
    vector = log2fc_for_experiment(wh, contrast_id=contrast_id, tsv=tsv)
    return with_term_names(wh, predict_vector(model_dir, vector).head(top))


def predict_vector(model_dir: Path, log2fc: np.ndarray) -> pl.DataFrame:
    """Scores of every GO term of the model's head for one raw log2FC vector, best first."""
    predictor = load_predictor(Path(model_dir), load_bundle(Path(model_dir)))
    x = np.asarray(log2fc, np.float32).reshape(1, -1)
    if x.shape[1] != predictor.gene_count:
        raise ModelError(
            f"log2FC vector has {x.shape[1]} genes, model expects {predictor.gene_count}"
        )
    return pl.DataFrame({"go_id": predictor.go_ids, "score": predictor.scores(x)[0]}).sort(
        "score", descending=True
    )


def log2fc_for_experiment(
    wh: Warehouse, contrast_id: str | None = None, tsv: Path | None = None
) -> np.ndarray:
    """A raw log2FC vector in gene_index order: a stored contrast's, or read from a TSV file."""
    with wh.session():
        genes = wh.rows(GENES)
        n_genes = max(g[1] for g in genes) + 1 if genes else 0
        if tsv is not None:
            return read_log2fc_tsv(tsv, {g[0]: g[1] for g in genes}, n_genes)
        rows = wh.rows(CONTRAST_LOG2FC, {"contrast_id": contrast_id})
    if not rows:
        raise ModelError(f"no DE results for contrast {contrast_id!r} in core.de_results")
    x = np.zeros(n_genes, np.float32)
    idx = np.array([r[0] for r in rows])
    x[idx] = np.nan_to_num(np.array([r[1] for r in rows], np.float64))
    return x


def with_term_names(wh: Warehouse, scores: pl.DataFrame) -> pl.DataFrame:
    """`scores` with each GO term's name from core.go_terms (NULL where unknown)."""
    rows = wh.rows(TERM_NAMES, {"go_ids": scores["go_id"].to_list()})
    names = pl.DataFrame(rows, schema={"go_id": pl.String, "name": pl.String}, orient="row")
    return scores.join(names, on="go_id", how="left").select("go_id", "name", "score")


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
