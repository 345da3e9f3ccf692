"""Train an autoencoder on every gene's log2FC, streamed from the warehouse.

One pass over DuckDB spills the splits to Arrow IPC files in the model folder (fitting the
preprocessing on the training rows as they pass), then every epoch re-reads them batch by batch
through `tf.data`, so memory stays O(batch). Each epoch is checkpointed; `resume=True` continues
from the last checkpoint with the weights, Adam's slots, RNG states and learning-rate schedule of
that epoch, so it ends at the same weights as an uninterrupted run (bit for bit with TensorFlow's
own kernels, `TF_ENABLE_ONEDNN_OPTS=0`; oneDNN's ops are outside TF's op determinism). All `ml.*`
rows of a model are written in one transaction at the end.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from degae_tools import console
from degae_tools.atomic import atomic_path
from degae_tools.errors import ModelError
from degae_tools.models import AutoencoderConfig, build_autoencoder, set_kl_weight
from degae_tools.preprocess import Preprocessor, RunningMoments
from warehouse import export
from warehouse.connect import connect, transaction
from warehouse.migrate import read_query

CHECKPOINT = "checkpoint.npz"
CHECKPOINT_STATE = "checkpoint.json"
PCA_IN_MEMORY_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class ModelBundle:
    """A trained model as prediction and attribution use it (keep the name and fields stable)."""

    model_id: str
    config: AutoencoderConfig
    preprocessor: Preprocessor
    encoder: Any
    autoencoder: Any
    gene_count: int
    split_name: str = "degae"


@dataclass
class TrainResult:
    """What `train` produced: where the model is, its per-epoch history and its held-out scores."""

    model_id: str
    model_dir: Path
    config: AutoencoderConfig
    history: list[dict[str, float]]
    reconstruction: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)


def load_bundle(model_dir: Path) -> ModelBundle:
    """Load a model folder written by `train` (autoencoder.keras, encoder.keras, preprocess.npz,
    config.json)."""
    import keras

    import degae_tools.models.autoencoder  # noqa: F401  (registers the custom layers)

    model_dir = Path(model_dir)
    needed = ["autoencoder.keras", "encoder.keras", "preprocess.npz", "config.json"]
    missing = [name for name in needed if not (model_dir / name).exists()]
    if missing:
        raise ModelError(f"{model_dir}: not a trained model folder, missing {', '.join(missing)}")
    saved = json.loads((model_dir / "config.json").read_text())
    config = AutoencoderConfig.from_dict(saved["config"])
    preprocessor = Preprocessor.load(model_dir / "preprocess.npz")
    return ModelBundle(
        model_id=saved["model_id"],
        config=config,
        preprocessor=preprocessor,
        encoder=keras.models.load_model(model_dir / "encoder.keras", compile=False),
        autoencoder=keras.models.load_model(model_dir / "autoencoder.keras", compile=False),
        gene_count=preprocessor.n_genes,
        split_name=saved.get("split_name", "degae"),
    )


def model_id_for(config: AutoencoderConfig, split_name: str, snapshot_hash: str) -> str:
    """A readable id that is the same for the same config, split and warehouse content."""
    digest = hashlib.sha256(f"{config.identity_json()}|{split_name}|{snapshot_hash}".encode())
    return f"{config.kind}-{config.neurons}x{config.layers}-{digest.hexdigest()[:8]}"


def configure_runtime(config: AutoencoderConfig) -> Any:
    """Seeds, op determinism, precision policy; returns the tf.distribute strategy to build in."""
    import keras
    import tensorflow as tf

    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if config.mixed_precision else "float32"
    )
    if config.distribute == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def runtime() -> dict[str, Any]:
    """What a bit-for-bit rerun needs besides the config and data: library versions and whether
    TensorFlow ran oneDNN's ops. `onednn_ops` is what TensorFlow decided when it was imported
    (None where its private `IsMklEnabled` is missing); `tf_enable_onednn_opts` is the variable
    as set now (unset is TF's default: on for x86)."""
    import keras
    import tensorflow as tf

    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn_ops: bool | None = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        onednn_ops = None
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "onednn_ops": onednn_ops,
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
        "machine": platform.machine(),
    }


def keras_verbosity() -> int:
    """Keras' progress output: a bar on a terminal, a line per epoch otherwise, none if quiet."""
    if console.mode.quiet or console.mode.json:
        return 0
    return 1 if sys.stdout.isatty() else 2


class _EpochState:
    """The epoch the data stream is on, so that each epoch's shuffle derives from (seed, epoch)."""

    epoch = 0


def _make_callbacks(
    config: AutoencoderConfig,
    autoencoder: Any,
    epoch_state: _EpochState,
    history: list[dict[str, float]],
    checkpoint_dir: Path | None,
    restored: dict[str, Any] | None,
    extra_state: dict[str, Any],
    checkpoint_every: int = 1,
) -> list[Any]:
    import keras

    reduce_lr = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", patience=5, factor=0.5, min_delta=0.1, min_lr=1e-5, verbose=0
    )
    stopper = (
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience)
        if config.early_stopping
        else None
    )

    class Clock(keras.callbacks.Callback):
        """Sets the epoch for the data stream and the KL weight; records the epoch's row."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            epoch_state.epoch = epoch
            set_kl_weight(autoencoder, config, epoch)
            self.started = time.perf_counter()
            self.learning_rate = float(autoencoder.optimizer.learning_rate.numpy())

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            history.append(
                {
                    "epoch": epoch,
                    "loss": float(logs.get("loss", math.nan)),
                    "val_loss": float(logs.get("val_loss", math.nan)),
                    "learning_rate": self.learning_rate,
                    "seconds": time.perf_counter() - self.started,
                }
            )

    class Checkpointer(keras.callbacks.Callback):
        """Restores callback state on resume; saves weights, optimizer, RNG and state per epoch."""

        def on_train_begin(self, logs: dict | None = None) -> None:
            if restored:
                for key, value in restored["reduce_lr"].items():
                    setattr(reduce_lr, key, value)
                if stopper is not None and restored.get("early_stopping"):
                    for key, value in restored["early_stopping"].items():
                        setattr(stopper, key, value)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            last = epoch + 1 >= config.epochs or bool(self.model.stop_training)
            if checkpoint_dir is None or not (last or (epoch + 1) % checkpoint_every == 0):
                return
            state = {
                "epochs_done": epoch + 1,
                "config": json.loads(config.to_json()),
                "history": history,
                "reduce_lr": {
                    "best": float(reduce_lr.best),
                    "wait": int(reduce_lr.wait),
                    "cooldown_counter": int(reduce_lr.cooldown_counter),
                },
                "early_stopping": None
                if stopper is None
                else {
                    "best": float(stopper.best),
                    "wait": int(stopper.wait),
                    "best_epoch": int(stopper.best_epoch),
                },
                "stopped": bool(self.model.stop_training),
                **extra_state,
            }
            save_checkpoint(checkpoint_dir, autoencoder, state)

    callbacks = [Clock(), reduce_lr]
    if stopper is not None:
        callbacks.append(stopper)
    return [*callbacks, Checkpointer()]


def _write_npy(zf: zipfile.ZipFile, name: str, variable: Any, chunk_bytes: int = 1 << 26) -> None:
    """One variable as `name.npy` in the zip, copied out in row blocks so that saving a 400 MB
    kernel does not need another 400 MB at once."""
    shape = tuple(variable.shape)
    dtype = np.dtype(variable.dtype.name if hasattr(variable.dtype, "name") else variable.dtype)
    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
        np.lib.format.write_array_header_2_0(f, {**header, "shape": shape})
        if len(shape) == 0:
            f.write(np.asarray(variable.numpy(), dtype=dtype).tobytes())
            return
        row_bytes = max(int(np.prod(shape[1:])) * dtype.itemsize, 1)
        step = max(1, chunk_bytes // row_bytes)
        for start in range(0, shape[0], step):
            f.write(np.ascontiguousarray(variable[start : start + step].numpy()).tobytes())


def _read_npy(zf: zipfile.ZipFile, name: str, variable: Any, chunk_bytes: int = 1 << 26) -> None:
    """Assign `name.npy` from the zip to `variable` in row blocks (the inverse of `_write_npy`).

    Blocks go into slices of the backing tf.Variable (`variable.value`), so no full-size copy of
    the array is ever held."""
    with zf.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }[version]
        shape, fortran, dtype = read_header(f)
        if fortran or tuple(shape) != tuple(variable.shape):
            raise ModelError(
                f"checkpoint array {name} has shape {shape}, expected {variable.shape}"
            )
        if len(shape) == 0:
            variable.assign(np.frombuffer(f.read(dtype.itemsize), dtype=dtype).reshape(()))
            return
        row = int(np.prod(shape[1:]))
        step = max(1, chunk_bytes // max(row * dtype.itemsize, 1))
        target = variable.value
        for start in range(0, shape[0], step):
            n = min(step, shape[0] - start)
            block = np.frombuffer(f.read(n * row * dtype.itemsize), dtype=dtype)
            target[start : start + n].assign(block.reshape((n, *shape[1:])))


def save_checkpoint(folder: Path, autoencoder: Any, state: dict[str, Any]) -> None:
    """Weights (seed-generator states included), optimizer slots and the run state, atomically."""
    with (
        atomic_path(folder / CHECKPOINT) as partial,
        zipfile.ZipFile(partial, "w", allowZip64=True) as zf,
    ):
        for i, v in enumerate(autoencoder.variables):
            _write_npy(zf, f"model_{i}", v)
        for i, v in enumerate(autoencoder.optimizer.variables):
            _write_npy(zf, f"opt_{i}", v)
    with atomic_path(folder / CHECKPOINT_STATE) as partial:
        partial.write_text(json.dumps(state))


def read_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The run state of the last checkpoint in `folder`, or None."""
    path = folder / CHECKPOINT_STATE
    if not path.exists() or not (folder / CHECKPOINT).exists():
        return None
    return json.loads(path.read_text())


def restore_checkpoint(folder: Path, autoencoder: Any) -> None:
    """Load weights and optimizer slots saved by `save_checkpoint` into a compiled model."""
    optimizer = autoencoder.optimizer
    optimizer.build(autoencoder.trainable_variables)
    with zipfile.ZipFile(folder / CHECKPOINT) as zf:
        names = zf.namelist()
        n_model = sum(k.startswith("model_") for k in names)
        n_opt = sum(k.startswith("opt_") for k in names)
        if n_model != len(autoencoder.variables) or n_opt != len(optimizer.variables):
            raise ModelError(f"{folder / CHECKPOINT}: does not match this model's architecture")
        for i, v in enumerate(autoencoder.variables):
            _read_npy(zf, f"model_{i}", v)
        for i, v in enumerate(optimizer.variables):
            _read_npy(zf, f"opt_{i}", v)


def fit_autoencoder(
    config: AutoencoderConfig,
    n_features: int,
    train_arrays: Callable[[int], Iterable[np.ndarray]],
    n_train: int,
    val_arrays: Callable[[], Iterable[np.ndarray]],
    n_val: int,
    transform: Callable[[Any], Any] | None,
    n_genes: int,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    verbose: int = 0,
    checkpoint_extra: dict[str, Any] | None = None,
    checkpoint_every: int = 1,
) -> tuple[Any, Any, list[dict[str, float]]]:
    """Build, compile and fit one autoencoder on streamed raw log2FC blocks.

    `train_arrays(epoch)` yields the epoch's (shuffled) raw training blocks of `n_genes` columns;
    `transform` maps them to the model's `n_features` inputs inside tf.data. A checkpoint is
    written every `checkpoint_every` epochs and after the last one. Returns
    (autoencoder, encoder, history rows).
    """
    import keras

    strategy = configure_runtime(config)
    restored = read_checkpoint(checkpoint_dir) if (resume and checkpoint_dir) else None
    if restored is not None:
        saved = AutoencoderConfig.from_dict(restored["config"])
        if dataclasses.replace(saved, epochs=config.epochs) != config:
            raise ModelError(
                f"{checkpoint_dir}: the checkpoint was made with another configuration "
                "(only --epochs may change on --resume); start afresh without --resume"
            )
    with strategy.scope():
        autoencoder, encoder = build_autoencoder(n_features, config)
        autoencoder.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss="mse",
            jit_compile=config.xla,
        )
        if restored is not None:
            restore_checkpoint(checkpoint_dir, autoencoder)
    history: list[dict[str, float]] = list(restored["history"]) if restored else []
    initial_epoch = restored["epochs_done"] if restored else 0
    if restored and restored.get("stopped"):
        initial_epoch = config.epochs
    epoch_state = _EpochState()
    epoch_state.epoch = initial_epoch
    train_ds = export.tf_dataset(
        lambda: train_arrays(epoch_state.epoch), n_genes, n_train, config.batch_size, transform
    )
    val_ds = export.tf_dataset(val_arrays, n_genes, n_val, config.batch_size, transform)
    callbacks = _make_callbacks(
        config,
        autoencoder,
        epoch_state,
        history,
        checkpoint_dir,
        restored,
        checkpoint_extra or {},
        max(1, checkpoint_every),
    )
    if initial_epoch < config.epochs:
        autoencoder.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the stream shuffles itself, per (seed, epoch)
        )
    return autoencoder, encoder, history


def _moments_tap(
    batches: Iterable[pa.RecordBatch], moments: RunningMoments, preprocessor: Preprocessor
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        moments.update(preprocessor.represent(export.batch_matrix(batch)))
        yield batch


def spill_splits(
    db_path: Path, split_name: str, cache_dir: Path, config: AutoencoderConfig
) -> tuple[Preprocessor, export.ExportStats]:
    """One pass over DuckDB: each split spilled to `<split>.arrow`, preprocessing fit on train."""
    stats = export.ExportStats()
    con = connect(db_path)
    try:
        n_genes = export.gene_count(con)
        moments = RunningMoments.empty(n_genes)
        preprocessor = preprocessor_for(config)
        schema = export.log2fc_schema(n_genes)
        for split in export.SPLITS:
            batches = export.iter_log2fc_batches(con, split_name, (split,), stats=stats)
            if split == "train":
                batches = _moments_tap(batches, moments, preprocessor)
            export.write_arrow_file(
                console.progress(batches, description=f"export {split}"),
                cache_dir / f"{split}.arrow",
                schema,
            )
    finally:
        con.close()
    return preprocessor.fit_moments(moments), stats


def preprocessor_for(config: AutoencoderConfig) -> Preprocessor:
    """An unfitted Preprocessor with the config's threshold, min-max and representation."""
    return Preprocessor(
        config.variance_threshold, config.minmax, config.representation == "magnitude"
    )


@dataclass
class ReconstructionScores:
    """Streaming sums for MSE and pooled R² in standardised units."""

    sse: float = 0.0
    n: int = 0
    col_sum: np.ndarray | None = None
    col_sumsq: np.ndarray | None = None

    def add(self, truth: np.ndarray, estimate: np.ndarray) -> None:
        truth = truth.astype(np.float64)
        self.sse += float(((truth - estimate) ** 2).sum())
        self.n += len(truth)
        if self.col_sum is None:
            self.col_sum = np.zeros(truth.shape[1])
            self.col_sumsq = np.zeros(truth.shape[1])
        self.col_sum += truth.sum(axis=0)
        self.col_sumsq += (truth**2).sum(axis=0)

    def result(self) -> tuple[float, float]:
        """(MSE, R²): R² = 1 - SSE / SST, SST about each gene's mean on this split, pooled over
        genes (sklearn's r2_score with multioutput='variance_weighted')."""
        if self.n == 0 or self.col_sum is None:
            return math.nan, math.nan
        sst = float((self.col_sumsq - self.col_sum**2 / self.n).sum())
        mse = self.sse / (self.n * len(self.col_sum))
        return mse, (1.0 - self.sse / sst) if sst > 0 else math.nan


def fit_pca(
    source: export.ArrowFileSource, preprocessor: Preprocessor, n_components: int, seed: int
):
    """PCA of the standardised training rows; incremental when the matrix would not fit."""
    from sklearn.decomposition import PCA, IncrementalPCA

    if source.n_rows * preprocessor.n_features * 4 <= PCA_IN_MEMORY_BYTES:
        z = np.concatenate([preprocessor.standardise(x) for x in source.arrays()])
        return PCA(n_components=n_components, random_state=seed).fit(z)
    pca = IncrementalPCA(n_components=n_components)
    chunk = max(n_components, 1024)
    for x in export.rebatch(source.arrays(), chunk):
        if len(x) >= n_components:
            pca.partial_fit(preprocessor.standardise(x))
    return pca


def evaluate_reconstruction(
    autoencoder: Any,
    preprocessor: Preprocessor,
    pca: Any,
    source: export.ArrowFileSource,
    batch_size: int,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """((MSE, R²) of the autoencoder, (MSE, R²) of PCA) on a split, in standardised units."""
    ae, lin = ReconstructionScores(), ReconstructionScores()
    for x in export.rebatch(source.arrays(), max(batch_size, 256)):
        z = preprocessor.standardise(x)
        y = autoencoder(preprocessor.transform(x), training=False)
        ae.add(z, preprocessor.to_standardised(np.asarray(y, dtype=np.float64)))
        lin.add(z, pca.inverse_transform(pca.transform(z)))
    return ae.result(), lin.result()


def latent_codes(
    encoder: Any, preprocessor: Preprocessor, sources: Iterable[export.ArrowFileSource]
) -> pa.Table:
    """(contrast_id, split, coords) of every row of the given spilled splits."""
    ids, splits, codes = [], [], []
    for source in sources:
        for batch in source.batches():
            x = preprocessor.transform(export.batch_matrix(batch))
            codes.append(np.asarray(encoder(x, training=False), dtype=np.float32))
            ids.extend(batch.column("contrast_id").to_pylist())
            splits.extend(batch.column("split").to_pylist())
    matrix = np.concatenate(codes) if codes else np.zeros((0, 1), np.float32)
    coords = pa.ListArray.from_arrays(
        pa.array(np.arange(0, matrix.size + 1, max(matrix.shape[1], 1), dtype=np.int32)),
        pa.array(matrix.reshape(-1)),
    )
    return pa.table({"contrast_id": ids, "split": splits, "coords": coords})


def write_model_rows(
    db_path: Path,
    model_row: dict[str, Any],
    history: list[dict[str, float]],
    embeddings: pa.Table,
    reconstruction: list[dict[str, Any]],
) -> None:
    """All ml rows of one model in one transaction (earlier rows of the same model replaced)."""
    model_id = model_row["model_id"]
    n_hist, n_emb, n_rec = len(history), embeddings.num_rows, len(reconstruction)
    tables = {
        "history_rows": pa.table(
            {
                "model_id": [model_id] * n_hist,
                **{k: [h[k] for h in history] for k in ("epoch", "loss", "val_loss")},
                "learning_rate": [h["learning_rate"] for h in history],
                "seconds": [h["seconds"] for h in history],
            }
        ),
        "embedding_rows": embeddings.append_column(
            "model_id", pa.array([model_id] * n_emb)
        ).append_column("method", pa.array(["latent"] * n_emb)),
        "reconstruction_rows": pa.table(
            {
                "model_id": [model_id] * n_rec,
                **{k: [r[k] for r in reconstruction] for k in ("method", "split", "latent_dim")},
                "mse": [r["mse"] for r in reconstruction],
                "r2": [r["r2"] for r in reconstruction],
            }
        ),
    }
    con = connect(db_path, write=True)
    try:
        for name, table in tables.items():
            con.register(name, table)
        with transaction(con):
            for table in ("models", "history", "embeddings", "reconstruction"):
                con.execute(read_query(f"train/delete_{table}"), {"model_id": model_id})
            con.execute(read_query("train/insert_model"), model_row)
            con.execute(read_query("train/insert_history"))
            con.execute(read_query("train/insert_embeddings"))
            con.execute(read_query("train/insert_reconstruction"))
    finally:
        con.close()


def _model_from_checkpoint(
    folder: Path, n_inputs: int, config: AutoencoderConfig
) -> tuple[Any, Any]:
    """A fresh, uncompiled model (and its encoder) holding the last checkpoint's weights."""
    import keras

    keras.backend.clear_session()
    gc.collect()
    autoencoder, encoder = build_autoencoder(n_inputs, config)
    with zipfile.ZipFile(folder / CHECKPOINT) as zf:
        for i, v in enumerate(autoencoder.variables):
            _read_npy(zf, f"model_{i}", v)
    return autoencoder, encoder


def save_keras(model: Any, path: Path) -> None:
    """`model.save(path)`, with Keras made to stage the weights in a temporary file beside `path`
    instead of in memory (its choice when RAM looks ample), which at full width would add 1 GB
    to the process's peak after training."""
    from keras.src.saving import saving_lib

    original = getattr(saving_lib, "is_memory_sufficient", None)
    if original is not None:
        saving_lib.is_memory_sufficient = lambda model: False
    try:
        model.save(path)
    finally:
        if original is not None:
            saving_lib.is_memory_sufficient = original


def _prepare_warehouse(db_path: Path, split_name: str) -> dict[str, Any]:
    con = connect(db_path, write=True)
    try:
        export.ensure_split(con, split_name)
        return export.warehouse_snapshot(con)
    finally:
        con.close()


def train(
    db_path: Path,
    config: AutoencoderConfig,
    split_name: str = "degae",
    model_dir: Path | None = None,
    resume: bool = False,
    keep_checkpoint: bool = False,
    checkpoint_every: int = 1,
) -> TrainResult:
    """Train `config` on the warehouse's training split, save it, and write its ml rows.

    The model folder defaults to `<db folder>/models/<model_id>/`; with `resume`, a checkpoint
    there is continued (only `epochs` may differ from the checkpoint's config). Checkpoints hold
    weights and Adam's two slots (2.35 GB at 48,978 x 2,000); `checkpoint_every` > 1 writes them
    less often, at the price of redoing up to that many epochs after a kill.
    """
    started = time.perf_counter()
    db_path = Path(db_path)
    snapshot = _prepare_warehouse(db_path, split_name)
    # The id names config, split and data, never the folder: two folders called "model" must not
    # overwrite each other's ml rows.
    model_id = model_id_for(config, split_name, snapshot["hash"])
    model_dir = Path(model_dir) if model_dir else db_path.parent / "models" / model_id
    cache_dir = model_dir / "cache"
    model_dir.mkdir(parents=True, exist_ok=True)
    state = read_checkpoint(model_dir) if resume else None
    if resume and state is None:
        console.say(f"no checkpoint in {model_dir}: starting from epoch 1")
    if state is not None and state.get("snapshot_hash", snapshot["hash"]) != snapshot["hash"]:
        raise ModelError(f"{model_dir}: the warehouse changed since the checkpoint; train afresh")
    have_cache = all((cache_dir / f"{s}.arrow").exists() for s in export.SPLITS)
    preprocess_path = model_dir / "preprocess.npz"
    if state is not None and have_cache and preprocess_path.exists():
        preprocessor = Preprocessor.load(preprocess_path)
        stats_path = cache_dir / "stats.json"
        n_missing = json.loads(stats_path.read_text())["n_missing"] if stats_path.exists() else 0
    else:
        for stale in (CHECKPOINT, CHECKPOINT_STATE):
            if state is None:
                (model_dir / stale).unlink(missing_ok=True)
        preprocessor, stats = spill_splits(db_path, split_name, cache_dir, config)
        preprocessor.save(preprocess_path)
        n_missing = stats.n_missing
        (cache_dir / "stats.json").write_text(json.dumps({"n_missing": n_missing}))
    sources = {s: export.ArrowFileSource(cache_dir / f"{s}.arrow") for s in export.SPLITS}
    if sources["train"].n_rows == 0 or sources["validation"].n_rows == 0:
        raise ModelError(
            f"split {split_name!r} has {sources['train'].n_rows} training and "
            f"{sources['validation'].n_rows} validation contrasts: both must be non-empty"
        )
    (model_dir / "snapshot.json").write_text(json.dumps(snapshot))

    train_source = sources["train"]
    autoencoder, encoder, history = fit_autoencoder(
        config,
        preprocessor.n_features,
        lambda epoch: train_source.arrays(epoch, seed=config.seed),
        train_source.n_rows,
        sources["validation"].arrays,
        sources["validation"].n_rows,
        preprocessor.tf_transform,
        preprocessor.n_genes,
        checkpoint_dir=model_dir,
        resume=resume,
        verbose=keras_verbosity(),
        checkpoint_extra={"snapshot_hash": snapshot["hash"]},
        checkpoint_every=checkpoint_every,
    )
    # The trained model (with Adam's slots, twice its weights) is released and its last checkpoint
    # loaded into a fresh one: the saved files carry no optimizer state, and evaluation does not
    # add to the training peak.
    del autoencoder, encoder
    autoencoder, encoder = _model_from_checkpoint(model_dir, preprocessor.n_features, config)
    save_keras(autoencoder, model_dir / "autoencoder.keras")
    save_keras(encoder, model_dir / "encoder.keras")
    (model_dir / "config.json").write_text(
        json.dumps(
            {
                "model_id": model_id,
                "split_name": split_name,
                "config": json.loads(config.to_json()),
            },
            indent=1,
        )
    )

    latent = config.latent_dim
    n_components = min(latent, train_source.n_rows, preprocessor.n_features)
    pca = fit_pca(train_source, preprocessor, n_components, config.seed)
    reconstruction = []
    for split in ("validation", "test"):
        if sources[split].n_rows == 0:
            continue
        (ae_mse, ae_r2), (pca_mse, pca_r2) = evaluate_reconstruction(
            autoencoder, preprocessor, pca, sources[split], config.batch_size
        )
        reconstruction.append(
            {
                "method": "autoencoder",
                "split": split,
                "latent_dim": latent,
                "mse": ae_mse,
                "r2": ae_r2,
            }
        )
        reconstruction.append(
            {
                "method": "pca",
                "split": split,
                "latent_dim": n_components,
                "mse": pca_mse,
                "r2": pca_r2,
            }
        )
    embeddings = latent_codes(encoder, preprocessor, sources.values())
    epoch_seconds = [h["seconds"] for h in history]
    metrics = {
        "epochs_run": len(history),
        "loss": history[-1]["loss"] if history else None,
        "val_loss": history[-1]["val_loss"] if history else None,
        "n_train": train_source.n_rows,
        "n_validation": sources["validation"].n_rows,
        "n_test": sources["test"].n_rows,
        "n_genes": preprocessor.n_genes,
        "n_features": preprocessor.n_features,
        "n_missing_filled": n_missing,
        "samples_per_second": train_source.n_rows / float(np.median(epoch_seconds))
        if epoch_seconds
        else None,
        "seconds": time.perf_counter() - started,
        **{f"{r['method']}_{r['split']}_{m}": r[m] for r in reconstruction for m in ("mse", "r2")},
        "runtime": runtime(),
    }
    model_row = {
        "model_id": model_id,
        "kind": config.kind,
        "study_mode": config.study_mode,
        "path": str(model_dir),
        "config": config.to_json(),
        "snapshot": json.dumps(snapshot),
        "snapshot_hash": snapshot["hash"],
        "metrics": json.dumps(metrics),
    }
    write_model_rows(db_path, model_row, history, embeddings, reconstruction)
    shutil.rmtree(cache_dir, ignore_errors=True)
    if not keep_checkpoint:
        for name in (CHECKPOINT, CHECKPOINT_STATE):
            (model_dir / name).unlink(missing_ok=True)
    return TrainResult(model_id, model_dir, config, history, reconstruction, metrics)
