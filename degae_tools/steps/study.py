"""The reference study, reproduced on purpose and set beside degae's defaults (see DESIGN.md,
"What the reference study's code actually did").

The study's recipe (`StudyPreset`): first-value-versus-rest groups, limma on raw counts, GO terms
kept when over- or under-represented, genes present in every series only, a random 64/16/20
split of contrasts (seed 69), StandardScaler then VarianceThreshold(1), and one hidden layer of
2,000 ReLU units with a sigmoid output on standardised data. degae's own trainer fits the variance
threshold before scaling and splits by series, so the study's model is trained here (`train_study`),
in memory as the study did, through degae's training plan (Adam, MSE, ReduceLROnPlateau) and saved
in degae's model-folder format so that `predict` and `attribute` read it like any other model.

The comparison (`compare_study`) builds one warehouse per recipe from the same compendium, trains
and scores both, and stores one table of held-out reconstruction, GO prediction and wall time per
stage in `ml.study_comparison` of the degae warehouse (the report reads it from there).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from degae_tools import console
from degae_tools.enrichment import EnrichmentConfig
from degae_tools.errors import DegaeError, ModelError
from degae_tools.limma import DEConfig
from degae_tools.models.bundle import ModelCard, ModelFolder, save_model
from degae_tools.models.config import AutoencoderConfig
from degae_tools.models.training import Fitted, fit_autoencoder, runtime_record
from degae_tools.preprocess import Preprocessor
from degae_tools.steps import de as de_step
from degae_tools.steps import go as go_step
from degae_tools.steps.ingest import IngestConfig, ingest
from degae_tools.steps.train import (
    Splits,
    TrainResult,
    evaluate,
    model_row,
    reconstruction_metrics,
    write_model_rows,
)
from warehouse import Query, Warehouse, export

STUDY_SPLIT = "study-seed69-64/16/20"
GENES_IN_EVERY_CONTRAST = Query("study/genes_in_every_contrast")
SPLIT_SIZE = Query("study/split_size")
PIPELINES = ("study", "degae")
# The order compare-study prints its metrics in (the report's query keeps the same order).
METRIC_ORDER = (
    "contrasts",
    "genes_modelled",
    "test_mse",
    "test_r2",
    "best_val_mse",
    "epochs_run",
    "go_macro_auroc",
    "go_macro_auprc",
    "go_terms_scored",
    "ingest",
    "de",
    "go",
)


@dataclass(frozen=True)
class StudyPreset:
    """Every choice of the reference study's code, as degae's configs express them.

    The GO labels of a study model are every stored enrichment row: the study warehouse keeps
    exactly the terms with FWER_overrep < 0.05 or FWER_underrep < 0.05 (`keep="fwer_either"`),
    so `p_over < 2` selects all of them.
    """

    group_mode: str = "study"
    de_input: str = "raw"
    go_keep: str = "fwer_either"
    n_randsets: int = 100
    genes_in_every_series: bool = True
    split_name: str = STUDY_SPLIT
    split_seed: int = 69
    test_size: float = 0.2
    validation_size: float = 0.2
    variance_threshold: float = 1.0
    neurons: int = 2000
    layers: int = 1
    output_activation: str = "sigmoid"
    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 50
    label_column: str = "p_over"
    label_threshold: float = 2.0

    def de_config(self) -> DEConfig:
        """limma on the raw STAR counts (no log-CPM)."""
        return DEConfig(input=self.de_input)

    def enrichment_config(self) -> EnrichmentConfig:
        """GOfuncR-style FWER from 100 random sets; over- or under-represented terms kept."""
        return EnrichmentConfig(keep=self.go_keep, n_randsets=self.n_randsets)

    def autoencoder_config(self, **overrides: Any) -> AutoencoderConfig:
        """Dense, ReLU hidden layers, sigmoid output on standardised (not min-max) data."""
        values = {
            "kind": "dense",
            "neurons": self.neurons,
            "layers": self.layers,
            "output_activation": self.output_activation,
            "minmax": False,
            "variance_threshold": self.variance_threshold,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "seed": self.split_seed,
        }
        return AutoencoderConfig(**{**values, **overrides})


# --- the study's data ---------------------------------------------------------------------------


def genes_in_every_series(wh: Warehouse) -> np.ndarray:
    """gene_index of the genes with a log2FC in every finished contrast (sorted)."""
    return np.array([r[0] for r in wh.rows(GENES_IN_EVERY_CONTRAST)], dtype=np.int64)


def study_split(contrast_ids: list[str], preset: StudyPreset = StudyPreset()) -> dict[str, str]:
    """{contrast_id: split}: sklearn's train_test_split twice with random_state=69, as the study
    (20% test, then 20% of the rest for validation: 64/16/20), contrast by contrast."""
    from sklearn.model_selection import train_test_split

    ids = sorted(contrast_ids)
    if len(ids) < 5:
        raise ModelError(f"the study's 64/16/20 split needs at least 5 contrasts, got {len(ids)}")
    rest, test = train_test_split(ids, test_size=preset.test_size, random_state=preset.split_seed)
    train, validation = train_test_split(
        rest, test_size=preset.validation_size, random_state=preset.split_seed
    )
    return {
        **{c: "train" for c in train},
        **{c: "validation" for c in validation},
        **{c: "test" for c in test},
    }


def write_study_split(wh: Warehouse, preset: StudyPreset = StudyPreset()) -> dict[str, int]:
    """Store the study's split of every contrast with finished DE under `preset.split_name`
    (replacing an earlier one); returns the contrasts per split."""
    candidates = export.split_candidates(wh)
    assigned = study_split([c for c, _ in candidates], preset)
    rows = pa.table(
        {
            "split_name": [preset.split_name] * len(candidates),
            "contrast_id": [c for c, _ in candidates],
            "gse": [g for _, g in candidates],
            "split": [assigned[c] for c, _ in candidates],
        }
    )
    wh.replace_rows("ml.splits", rows, where={"split_name": preset.split_name})
    return {s: sum(v == s for v in assigned.values()) for s in export.SPLITS}


def fit_study_preprocessor(
    x_train: np.ndarray, genes: np.ndarray, threshold: float = 1.0
) -> Preprocessor:
    """StandardScaler fit on the training rows of `genes`, then VarianceThreshold(threshold) on the
    *scaled* rows, in float64 (pandas' dtype), as a degae Preprocessor over all genes.

    After scaling every non-constant gene has variance 1 up to rounding, so the threshold of 1
    keeps the genes whose rounding error happens to be positive: the study's 48,978 → 21,953.
    """
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(x_train, dtype=np.float64)[:, genes]
    scaler = StandardScaler().fit(x)
    selector = VarianceThreshold(threshold).fit(scaler.transform(x))
    support = selector.get_support()
    if not support.any():
        raise ModelError(
            f"VarianceThreshold({threshold}) after StandardScaler keeps no gene of {len(genes)}"
        )
    prep = Preprocessor(threshold, minmax=False)
    prep.n_genes = x_train.shape[1]
    prep.n_samples = len(x_train)
    prep.keep = genes[support]
    prep.mean = scaler.mean_[support].astype(np.float32)
    prep.scale = scaler.scale_[support].astype(np.float32)
    prep.z_min = np.zeros(len(prep.keep), np.float32)
    prep.z_range = np.ones(len(prep.keep), np.float32)
    return prep


@dataclass
class StudyData:
    """The study's splits in memory, the genes it keeps, and the warehouse snapshot."""

    splits: Splits
    genes: np.ndarray
    snapshot: dict[str, Any]


def read_study_data(wh: Warehouse, preset: StudyPreset, seed: int) -> StudyData:
    """The study's split (written first if absent), its matrices and the fitted preprocessing."""
    if not wh.scalar(SPLIT_SIZE, {"split_name": preset.split_name}):
        write_study_split(wh, preset)
    with wh.session():
        genes = (
            genes_in_every_series(wh)
            if preset.genes_in_every_series
            else np.arange(export.gene_count(wh))
        )
        data = {s: export.load_matrix(wh, preset.split_name, [s]) for s in export.SPLITS}
        snapshot = export.warehouse_snapshot(wh)
    if len(data["train"][0]) == 0 or len(data["validation"][0]) == 0:
        raise ModelError(f"split {preset.split_name!r} has no training or validation contrasts")
    prep = fit_study_preprocessor(data["train"][1], genes, preset.variance_threshold)
    return StudyData(Splits.from_arrays(prep, data, seed), genes, snapshot)


# --- the study's model ----------------------------------------------------------------------------


def train_study(
    wh: Warehouse,
    preset: StudyPreset = StudyPreset(),
    model_dir: Path | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train the study's autoencoder on its split (written first if absent), save it in degae's
    model-folder format, and write its ml rows with `study_mode = true`.

    `overrides` change AutoencoderConfig fields (e.g. `layers=4`, `epochs=20`).
    """
    started = time.perf_counter()
    config = preset.autoencoder_config(**overrides)
    study = read_study_data(wh, preset, config.training.seed)
    digest = hashlib.sha256(f"{config.to_json()}|{preset}|{study.snapshot['hash']}".encode())
    net = config.architecture
    model_id = f"study-{net.neurons}x{net.layers}-{digest.hexdigest()[:8]}"
    folder = ModelFolder(Path(model_dir) if model_dir else wh.models_dir / model_id).create()
    fitted = fit_autoencoder(config, study.splits.training_data())
    card = ModelCard(model_id, preset.split_name, config, {"study": asdict(preset)})
    save_model(folder, card, fitted.autoencoder, fitted.encoder, study.splits.preprocessor)
    evaluation = evaluate(fitted.autoencoder, fitted.encoder, study.splits, config)
    metrics = study_metrics(fitted, study, evaluation.reconstruction, started)
    row = model_row(card, folder, study.snapshot, metrics, study_mode=True)
    write_model_rows(wh, row, fitted.history, evaluation)
    return TrainResult(
        model_id, folder.path, config, fitted.history, evaluation.reconstruction, metrics
    )


def study_metrics(
    fitted: Fitted, study: StudyData, reconstruction: list[dict[str, Any]], started: float
) -> dict[str, Any]:
    """ml.models.metrics of a study model."""
    history, ran_on = fitted.history, fitted.ran_on
    val_losses = [h["val_loss"] for h in history]
    prep = study.splits.preprocessor
    return {
        "epochs_run": len(history),
        "best_val_loss": float(np.nanmin(val_losses)) if val_losses else None,
        **{f"n_{s}": study.splits.n(s) for s in export.SPLITS},
        "n_genes": prep.n_genes,
        "n_genes_in_every_series": len(study.genes),
        "n_features": prep.n_features,
        "seconds": time.perf_counter() - started,
        **reconstruction_metrics(reconstruction),
        "runtime": runtime_record(ran_on=ran_on),
    }


# --- the comparison -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareConfig:
    """What `compare-study` trains: the layer counts, epochs and first-layer width of both
    pipelines' autoencoders (the study's: 1 layer, 2,000 units, 50 epochs)."""

    layers: tuple[int, ...] = (1, 2, 4, 10)
    epochs: int = 50
    neurons: int = 2000
    note: str = ""
    predict: bool = True
    min_positives: int = 10
    run_id: str | None = None


@dataclass
class Comparison:
    """The rows of one comparison run and where its two warehouses are."""

    run_id: str
    study_db: Path
    degae_db: Path
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        pipeline: str,
        metric: str,
        value: float | None,
        layers: int = 0,
        seconds: float | None = None,
        note: str = "",
    ) -> None:
        """One measured figure of one pipeline."""
        self.rows.append(
            {
                "run_id": self.run_id,
                "pipeline": pipeline,
                "metric": metric,
                "layers": layers,
                "value": None if value is None else float(value),
                "seconds": seconds,
                "note": note,
            }
        )

    def value(self, pipeline: str, metric: str, layers: int = 0) -> float | None:
        """A stored figure, or None."""
        for r in self.rows:
            if (r["pipeline"], r["metric"], r["layers"]) == (pipeline, metric, layers):
                return r["value"]
        return None

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """(columns, rows): one row per (metric, layers), the two pipelines side by side."""
        cells: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
        for r in self.rows:
            cells.setdefault((r["metric"], r["layers"]), {})[r["pipeline"]] = r
        rank = {m: i for i, m in enumerate(METRIC_ORDER)}
        columns = ["metric", "layers", "study", "degae", "study s", "degae s"]
        out = []
        for (metric, layers), by in sorted(
            cells.items(), key=lambda kv: (rank.get(kv[0][0], 99), kv[0][1])
        ):
            study, degae = by.get("study", {}), by.get("degae", {})
            out.append(
                [
                    metric,
                    layers or "",
                    study.get("value"),
                    degae.get("value"),
                    study.get("seconds"),
                    degae.get("seconds"),
                ]
            )
        return columns, out

    def notes(self) -> list[str]:
        """'pipeline metric: note' for every row with a note."""
        lines = []
        for r in self.rows:
            if r["note"]:
                where = f" ({r['layers']} layers)" if r["layers"] else ""
                lines.append(f"{r['pipeline']} {r['metric']}{where}: {r['note']}")
        return lines


def compare_study(
    source_dir: Path, work_dir: Path, config: CompareConfig = CompareConfig()
) -> Comparison:
    """Run the study's pipeline and degae's defaults on `source_dir`, each into its own warehouse
    under `work_dir` (ingest makes each file; then it is opened once); store the table in the
    degae warehouse and return it."""
    source_dir, work_dir = Path(source_dir), Path(work_dir)
    if not config.layers or min(config.layers) < 1:
        raise DegaeError(f"--layers must be positive layer counts, got {config.layers}")
    work_dir.mkdir(parents=True, exist_ok=True)
    run_id = config.run_id or datetime.now(UTC).strftime("compare-%Y%m%dT%H%M%SZ")
    out = Comparison(run_id, work_dir / "study.duckdb", work_dir / "degae.duckdb")
    for pipeline in PIPELINES:
        db = out.study_db if pipeline == "study" else out.degae_db
        console.say(f"{pipeline}: ingest, limma, GO enrichment")
        ingest_compendium(source_dir, db, pipeline, out)
        with Warehouse.open(db, write=True) as wh:
            analyse(wh, pipeline, out)
            for layers in config.layers:
                compare_models(wh, pipeline, layers, config, work_dir, out)
    if config.note:
        for r in out.rows:
            if r["metric"] == "contrasts":
                r["note"] = f"{r['note']}; {config.note}"
    with Warehouse.open(out.degae_db, write=True) as wh:
        wh.replace_rows("ml.study_comparison", pa.Table.from_pylist(out.rows), {"run_id": run_id})
    return out


def _timed(step: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started


def ingest_compendium(source_dir: Path, db: Path, pipeline: str, out: Comparison) -> None:
    """Ingest `source_dir` into a new warehouse `db` with one pipeline's grouping rule."""
    mode = StudyPreset().group_mode if pipeline == "study" else "degae"
    summary, seconds = _timed(lambda: ingest(source_dir, db, IngestConfig(mode=mode)))
    out.add(pipeline, "ingest", summary.contrasts, seconds=seconds, note=f"groups: {mode}")


def analyse(wh: Warehouse, pipeline: str, out: Comparison) -> None:
    """limma, GO enrichment and the split, each by one pipeline's recipe."""
    preset = StudyPreset()
    study = pipeline == "study"
    de, seconds = _timed(lambda: de_step.run(wh, preset.de_config() if study else DEConfig()))
    de_note = "limma on raw counts" if study else "limma on log2-CPM"
    out.add(pipeline, "de", de.done, seconds=seconds, note=de_note)
    go_config = preset.enrichment_config() if study else EnrichmentConfig()
    go, seconds = _timed(lambda: go_step.run(wh, go_config))
    go_note = "FWER over or under < 0.05" if study else "FWER over < 0.05"
    out.add(pipeline, "go", go.done, seconds=seconds, note=f"{go_note}; value: contrasts")
    if study:
        sizes, split_note = write_study_split(wh), "random by contrast, seed 69"
    else:
        export.ensure_split(wh, "degae")
        rows = export.split_contrasts(wh, "degae", export.SPLITS)
        sizes = {s: sum(r[2] == s for r in rows) for s in export.SPLITS}
        split_note = "by series, seed 69"
    shares = "/".join(str(sizes[s]) for s in export.SPLITS)
    out.add(pipeline, "contrasts", sum(sizes.values()), note=f"{shares} ({split_note})")


def compare_models(
    wh: Warehouse,
    pipeline: str,
    layers: int,
    config: CompareConfig,
    work_dir: Path,
    out: Comparison,
) -> None:
    """One pipeline's autoencoder of `layers` layers: trained, scored, and (for the first layer
    count) its genes and GO prediction."""
    console.say(f"{pipeline}: {layers}-layer autoencoder, {config.epochs} epochs")
    model_dir = work_dir / "models" / f"{pipeline}-{layers}"
    shape = {"layers": layers, "epochs": config.epochs, "neurons": config.neurons}
    if pipeline == "study":
        model, seconds = _timed(lambda: train_study(wh, StudyPreset(), model_dir, **shape))
    else:
        from degae_tools.steps.train import train

        ae = AutoencoderConfig(**shape)
        model, seconds = _timed(lambda: train(wh, ae, model_dir=model_dir))
    metrics, history = model.metrics, model.history
    first = layers == config.layers[0]
    if first:
        note = (
            f"of {metrics.get('n_genes_in_every_series')} in every series"
            if pipeline == "study"
            else "all genes, missing log2FC = 0"
        )
        out.add(pipeline, "genes_modelled", metrics.get("n_features"), note=note)
    val = [h["val_loss"] for h in history if not math.isnan(h["val_loss"])]
    out.add(pipeline, "test_mse", metrics.get("autoencoder_test_mse"), layers, seconds)
    out.add(pipeline, "test_r2", metrics.get("autoencoder_test_r2"), layers)
    out.add(pipeline, "best_val_mse", min(val) if val else None, layers)
    out.add(pipeline, "epochs_run", len(history), layers)
    if config.predict and first:
        console.say(f"{pipeline}: GO prediction")
        compare_prediction(wh, pipeline, model_dir, layers, config, out)


def compare_prediction(
    wh: Warehouse,
    pipeline: str,
    model_dir: Path,
    layers: int,
    config: CompareConfig,
    out: Comparison,
) -> None:
    """The GO head on one pipeline's model: macro AUROC and AUPRC on its test split."""
    from degae_tools.models.go_config import PredictConfig
    from degae_tools.steps import predict

    preset = StudyPreset()
    predict_config = (
        PredictConfig(
            split_name=preset.split_name,
            label_column=preset.label_column,
            threshold=preset.label_threshold,
            min_positives=config.min_positives,
        )
        if pipeline == "study"
        else PredictConfig(split_name="degae", min_positives=config.min_positives)
    )
    try:
        result, seconds = _timed(lambda: predict.run(wh, model_dir, predict_config))
    except ModelError as exc:
        out.add(pipeline, "go_macro_auroc", None, layers, note=str(exc))
        return
    head = result.summary.get("latent_head", {})
    labels = "FWER over or under" if pipeline == "study" else "FWER over"
    note = f"latent head, {len(result.go_ids)} terms ({labels} < 0.05)"
    out.add(pipeline, "go_macro_auroc", head.get("macro_auroc"), layers, seconds, note)
    out.add(pipeline, "go_macro_auprc", head.get("macro_auprc"), layers, seconds)
    out.add(pipeline, "go_terms_scored", head.get("n_terms_scored"), layers)
