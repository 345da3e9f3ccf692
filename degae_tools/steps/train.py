"""The `train` step: one collection's values in the warehouse → a fitted autoencoder → its
held-out reconstruction beside PCA, FastICA and NMF → the model folder and its ml rows.

    data      one pass over DuckDB spills each split to `<model>/cache/<split>.arrow`, fitting the
              preprocessing on the training rows as they pass (memory stays O(batch))
    fit       `models.training.fit_autoencoder`, checkpointed every epoch and resumable
    evaluate  held-out reconstruction of the autoencoder and the baselines; every latent code
    persist   the model folder (`models.bundle`), then every ml row of the model in one
              transaction (earlier rows of the same model replaced)
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from degae_tools import console
from degae_tools.errors import ModelError
from degae_tools.models.baselines import (
    BASELINES,
    fit_baselines,
    principal_axes,
    score_split,
)
from degae_tools.models.bundle import ModelCard, ModelFolder, save_model
from degae_tools.models.config import AutoencoderConfig, DataConfig, Runtime
from degae_tools.models.training import (
    CheckpointPlan,
    TrainingData,
    fit_autoencoder,
    model_from_checkpoint,
    read_checkpoint,
    runtime_record,
)
from degae_tools.preprocess import Preprocessor, RunningMoments
from warehouse import Warehouse, export
from warehouse.queries import Query

Blocks = Callable[[], Iterable[np.ndarray]]
COLLECTION_VALUES = Query("train/collection_values")
VALUE_KIND = {column: kind for kind, column in export.VALUE_COLUMN.items()}


@dataclass
class TrainResult:
    """What `train` produced: where the model is, its per-epoch history and its held-out scores."""

    model_id: str
    model_dir: Path
    config: AutoencoderConfig
    history: list[dict[str, float]]
    reconstruction: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class Splits:
    """The rows a model is trained and scored on: each split's raw blocks (re-readable), contrast
    ids, and the preprocessing fitted on the training split."""

    preprocessor: Preprocessor
    blocks: Mapping[str, Blocks]
    ids: Mapping[str, list[str]]
    shuffled: Callable[[int], Iterable[np.ndarray]]
    n_missing: int = 0

    def n(self, split: str) -> int:
        """Rows in a split."""
        return len(self.ids[split])

    def training_data(self, linear_path: Any = None) -> TrainingData:
        """The training and validation streams, preprocessed in the tf.data graph."""
        prep = self.preprocessor
        return TrainingData(
            train=self.shuffled,
            n_train=self.n("train"),
            validation=self.blocks["validation"],
            n_validation=self.n("validation"),
            n_inputs=prep.n_genes,
            n_features=prep.n_features,
            transform=prep.tf_transform,
            linear_path=linear_path,
        )

    @classmethod
    def from_files(
        cls,
        prep: Preprocessor,
        sources: Mapping[str, export.ArrowFileSource],
        seed: int,
        n_missing: int,
    ) -> Splits:
        """Splits spilled to Arrow files; each epoch reshuffles batches and rows (seed, epoch)."""
        return cls(
            prep,
            {s: source.arrays for s, source in sources.items()},
            {s: source.contrast_ids for s, source in sources.items()},
            lambda epoch: sources["train"].arrays(epoch, seed=seed),
            n_missing,
        )

    @classmethod
    def from_arrays(
        cls, prep: Preprocessor, data: Mapping[str, tuple[list[str], np.ndarray]], seed: int
    ) -> Splits:
        """Splits held in memory: each epoch permutes the training rows by (seed, epoch)."""
        x_train = data["train"][1]

        def shuffled(epoch: int) -> Iterator[np.ndarray]:
            yield x_train[np.random.default_rng([seed, epoch]).permutation(len(x_train))]

        return cls(
            prep,
            {s: _blocks_of(x) for s, (_, x) in data.items()},
            {s: ids for s, (ids, _) in data.items()},
            shuffled,
        )


@dataclass
class Evaluation:
    """Held-out reconstruction rows (autoencoder and baselines), latent codes, skipped baselines."""

    reconstruction: list[dict[str, Any]]
    embeddings: pa.Table
    skipped: dict[str, str]


def train(
    wh: Warehouse,
    config: AutoencoderConfig,
    *,
    runtime: Runtime = Runtime(),
    split_name: str | None = None,
    model_dir: Path | None = None,
    resume: bool = False,
    keep_checkpoint: bool = False,
    checkpoint_every: int = 1,
    baselines: Sequence[str] = BASELINES,
) -> TrainResult:
    """Train `config` on its collection's training split, save it, and write its ml rows.

    The model folder defaults to `<db folder>/models/<model_id>/`; with `resume`, a checkpoint
    there is continued (only `epochs` may differ from the checkpoint's config). Checkpoints hold
    weights and Adam's two slots (2.35 GB at 48,978 x 2,000); `checkpoint_every` > 1 writes them
    less often, at the price of redoing up to that many epochs after a kill.
    """
    started = time.perf_counter()
    split_name = split_name or export.default_split_name(config.data.collection)
    snapshot = prepare_split(wh, config, split_name)
    # The id names config, split and data, never the folder: two folders called "model" must not
    # overwrite each other's ml rows.
    model_id = model_id_for(config, split_name, snapshot["hash"])
    folder = ModelFolder(Path(model_dir) if model_dir else wh.models_dir / model_id).create()
    state = resume_state(folder, snapshot, resume)
    splits = spill_splits(wh, config, split_name, folder, state)
    folder.snapshot.write_text(json.dumps(snapshot))
    plan = CheckpointPlan(
        folder.path, checkpoint_every, resume, {"snapshot_hash": snapshot["hash"]}
    )
    fitted = fit(config, runtime, splits, plan)
    card = ModelCard(model_id, split_name, config)
    autoencoder, encoder = model_from_checkpoint(
        folder.path, splits.preprocessor.n_features, config
    )
    save_model(folder, card, autoencoder, encoder, splits.preprocessor)
    evaluation = evaluate(autoencoder, encoder, splits, config, baselines)
    metrics = train_metrics(fitted, splits, evaluation, runtime, started)
    write_model_rows(wh, model_row(card, folder, snapshot, metrics), fitted.history, evaluation)
    folder.tidy(keep_checkpoint)
    return TrainResult(
        model_id, folder.path, config, fitted.history, evaluation.reconstruction, metrics
    )


# --- data -----------------------------------------------------------------------------------------


def collection_value(wh: Warehouse, collection: str) -> str:
    """The value kind a collection is scored by (core.collections.score: z for L1000's imported
    z-scores); log2fc for the compendium and for collections the warehouse does not know."""
    found = wh.rows(COLLECTION_VALUES, {"collection": collection})
    return VALUE_KIND.get(found[0][1], "log2fc") if found else "log2fc"


def check_collection_value(wh: Warehouse, data: DataConfig) -> None:
    """Refuse a value kind the collection does not hold (it would train on zeros)."""
    found = wh.rows(COLLECTION_VALUES, {"collection": data.collection})
    if not found:
        return
    kinds, score = found[0]
    if export.VALUE_COLUMN[data.value] not in kinds:
        held = ", ".join(VALUE_KIND.get(k, k) for k in kinds)
        raise ModelError(
            f"collection {data.collection!r} holds {held}, not {data.value}: "
            f"train it with --value {VALUE_KIND.get(score, score)}"
        )


def prepare_split(wh: Warehouse, config: AutoencoderConfig, split_name: str) -> dict[str, Any]:
    """The collection's split stored (new contrasts assigned), and the warehouse snapshot."""
    export.check_value(wh, config.data.value)
    check_collection_value(wh, config.data)
    export.ensure_split(wh, split_name, collection=config.data.collection)
    return export.warehouse_snapshot(wh)


def model_id_for(config: AutoencoderConfig, split_name: str, snapshot_hash: str) -> str:
    """A readable id that is the same for the same config, split and warehouse content."""
    digest = hashlib.sha256(f"{config.identity_json()}|{split_name}|{snapshot_hash}".encode())
    net = config.architecture
    code = f"-k{net.latent}" if net.latent is not None else ""
    return f"{net.kind}-{net.neurons}x{net.layers}{code}-{digest.hexdigest()[:8]}"


def resume_state(
    folder: ModelFolder, snapshot: dict[str, Any], resume: bool
) -> dict[str, Any] | None:
    """The checkpoint's run state to continue, or None; refused if the warehouse changed since."""
    if not resume:
        return None
    state = read_checkpoint(folder.path)
    if state is None:
        console.say(f"no checkpoint in {folder.path}: starting from epoch 1")
    elif state.get("snapshot_hash", snapshot["hash"]) != snapshot["hash"]:
        raise ModelError(f"{folder.path}: the warehouse changed since the checkpoint; train afresh")
    return state


def spill_splits(
    wh: Warehouse,
    config: AutoencoderConfig,
    split_name: str,
    folder: ModelFolder,
    state: dict[str, Any] | None,
) -> Splits:
    """The splits as Arrow files in the model folder (reused when resuming), with the
    preprocessing fitted on the training rows as they were spilled."""
    stats_path = folder.cache / "stats.json"
    cached = all(folder.split_file(s).exists() for s in export.SPLITS)
    if state is not None and cached and folder.preprocess.exists():
        prep = Preprocessor.load(folder.preprocess)
        n_missing = json.loads(stats_path.read_text())["n_missing"] if stats_path.exists() else 0
    else:
        if state is None:
            folder.drop_checkpoint()
        prep, stats = _spill(wh, config.data, split_name, folder)
        prep.save(folder.preprocess)
        n_missing = stats.n_missing
        stats_path.write_text(json.dumps({"n_missing": n_missing}))
    sources = {s: export.ArrowFileSource(folder.split_file(s)) for s in export.SPLITS}
    if sources["train"].n_rows == 0 or sources["validation"].n_rows == 0:
        raise ModelError(
            f"split {split_name!r} has {sources['train'].n_rows} training and "
            f"{sources['validation'].n_rows} validation contrasts: both must be non-empty"
        )
    return Splits.from_files(prep, sources, config.training.seed, n_missing)


def _spill(
    wh: Warehouse, data: DataConfig, split_name: str, folder: ModelFolder
) -> tuple[Preprocessor, export.ExportStats]:
    """One pass over DuckDB: each split spilled to its file, preprocessing fit on train."""
    stats = export.ExportStats()
    prep = Preprocessor.for_data(data)
    with wh.session():
        n_genes = export.gene_count(wh)
        moments = RunningMoments.empty(n_genes)
        for split in export.SPLITS:
            batches = export.iter_value_batches(
                wh, split_name, (split,), stats=stats, value=data.value
            )
            if split == "train":
                batches = _moments_tap(batches, moments, prep)
            export.write_arrow_file(
                console.progress(batches, description=f"export {split}"),
                folder.split_file(split),
                export.value_schema(n_genes),
            )
    return prep.fit_moments(moments), stats


def _moments_tap(
    batches: Iterable[pa.RecordBatch], moments: RunningMoments, prep: Preprocessor
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        moments.update(prep.represent(export.batch_matrix(batch)))
        yield batch


def _blocks_of(x: np.ndarray, rows: int = 512) -> Blocks:
    return lambda: (x[i : i + rows] for i in range(0, len(x), rows))


# --- fit ------------------------------------------------------------------------------------------


@dataclass
class FitRecord:
    """What a fit leaves besides its checkpoint: the history and how it ran."""

    history: list[dict[str, float]]
    ran_on: dict[str, Any] = field(default_factory=dict)
    best_epoch: int | None = None


def fit(
    config: AutoencoderConfig, runtime: Runtime, splits: Splits, plan: CheckpointPlan
) -> FitRecord:
    """Fit and checkpoint. The fitted model (with Adam's slots, twice its weights) is released on
    return: its last checkpoint holds what the model folder needs. The residual kind's frozen
    PCA path is fitted on the training split first."""
    linear_path = None
    if config.kind == "residual":
        linear_path = principal_axes(
            splits.blocks["train"],
            splits.n("train"),
            splits.preprocessor,
            config.latent_dim,
            config.training.seed,
        )
    data = splits.training_data(linear_path)
    fitted = fit_autoencoder(config, data, runtime, plan, keras_verbosity())
    return FitRecord(fitted.history, fitted.ran_on, fitted.best_epoch)


def keras_verbosity() -> int:
    """Keras' progress output: a bar on a terminal, a line per epoch otherwise, none if quiet."""
    if console.mode.quiet or console.mode.json:
        return 0
    return 1 if sys.stdout.isatty() else 2


# --- evaluate -------------------------------------------------------------------------------------


def evaluate(
    autoencoder: Any,
    encoder: Any,
    splits: Splits,
    config: AutoencoderConfig,
    baselines: Sequence[str] = BASELINES,
) -> Evaluation:
    """Reconstruction of the validation and test splits by the autoencoder and the baselines
    (fitted on the training split at the same latent size), and every contrast's code."""
    prep = splits.preprocessor
    seed = config.training.seed
    fits = fit_baselines(
        splits.blocks["train"], splits.n("train"), prep, config.latent_dim, seed, baselines
    )
    latent = {"autoencoder": config.latent_dim, **{b.method: b.latent_dim for b in fits.fitted}}
    rows = []
    for split in ("validation", "test"):
        if splits.n(split) == 0:
            continue
        scores = score_split(
            splits.blocks[split](), prep, lambda x: autoencoder(x, training=False), fits.fitted
        )
        rows.extend(
            {"method": m, "split": split, "latent_dim": latent[m], "mse": mse, "r2": r2}
            for m, (mse, r2) in scores.items()
        )
    return Evaluation(rows, latent_codes(encoder, splits), fits.skipped)


def latent_codes(encoder: Any, splits: Splits) -> pa.Table:
    """(contrast_id, split, coords) of every row of every split."""
    ids, names, codes = [], [], []
    for split in export.SPLITS:
        for x in splits.blocks[split]():
            x = splits.preprocessor.transform(x)
            codes.append(np.asarray(encoder(x, training=False), dtype=np.float32))
        ids.extend(splits.ids[split])
        names.extend([split] * splits.n(split))
    matrix = np.concatenate(codes) if codes else np.zeros((0, 1), np.float32)
    coords = pa.ListArray.from_arrays(
        pa.array(np.arange(0, matrix.size + 1, max(matrix.shape[1], 1), dtype=np.int32)),
        pa.array(matrix.reshape(-1)),
    )
    return pa.table({"contrast_id": ids, "split": names, "coords": coords})


def train_metrics(
    fitted: FitRecord,
    splits: Splits,
    evaluation: Evaluation,
    runtime: Runtime,
    started: float,
) -> dict[str, Any]:
    """ml.models.metrics of a trained model: sizes, speed, held-out scores and the runtime."""
    history = fitted.history
    epoch_seconds = [h["seconds"] for h in history]
    return {
        "epochs_run": len(history),
        "best_epoch": fitted.best_epoch,
        "loss": history[-1]["loss"] if history else None,
        "val_loss": history[-1]["val_loss"] if history else None,
        **{f"n_{s}": splits.n(s) for s in export.SPLITS},
        "n_genes": splits.preprocessor.n_genes,
        "n_features": splits.preprocessor.n_features,
        "n_missing_filled": splits.n_missing,
        "samples_per_second": splits.n("train") / float(np.median(epoch_seconds))
        if epoch_seconds
        else None,
        "seconds": time.perf_counter() - started,
        **reconstruction_metrics(evaluation.reconstruction),
        "baselines_skipped": evaluation.skipped,
        "runtime": runtime_record(runtime, fitted.ran_on),
    }


def reconstruction_metrics(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """`<method>_<split>_mse` and `_r2` of each reconstruction row."""
    return {f"{r['method']}_{r['split']}_{m}": r[m] for r in rows for m in ("mse", "r2")}


# --- persist --------------------------------------------------------------------------------------


def model_row(
    card: ModelCard,
    folder: ModelFolder,
    snapshot: dict[str, Any],
    metrics: dict[str, Any],
    study_mode: bool | None = None,
) -> dict[str, Any]:
    """The model's ml.models row."""
    return {
        "model_id": card.model_id,
        "kind": card.config.kind,
        "study_mode": card.config.study_mode if study_mode is None else study_mode,
        "path": str(folder.path),
        "config": card.config.to_json(),
        "snapshot": json.dumps(snapshot),
        "snapshot_hash": snapshot["hash"],
        "metrics": json.dumps(metrics),
    }


def write_model_rows(
    wh: Warehouse, model: dict[str, Any], history: list[dict[str, float]], evaluation: Evaluation
) -> None:
    """All ml rows of one model in one transaction (earlier rows of the same model replaced)."""
    model_id = model["model_id"]
    key = {"model_id": model_id}
    with wh.transaction():
        wh.replace_rows("ml.models", pa.Table.from_pylist([model]), where=key)
        wh.replace_rows("ml.history", _with_id(history, model_id), where=key)
        embeddings = evaluation.embeddings
        embeddings = embeddings.append_column(
            "model_id", pa.array([model_id] * embeddings.num_rows, pa.string())
        ).append_column("method", pa.array(["latent"] * embeddings.num_rows, pa.string()))
        wh.replace_rows("ml.embeddings", embeddings, where={**key, "method": "latent"})
        wh.replace_rows("ml.reconstruction", _with_id(evaluation.reconstruction, model_id), key)


def _with_id(rows: list[dict[str, Any]], model_id: str) -> pa.Table:
    return pa.Table.from_pylist([{"model_id": model_id, **r} for r in rows])
