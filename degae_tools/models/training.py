"""The training plan: one autoencoder fitted on streamed blocks of values, with its callbacks and
checkpoints.

A fit reads raw blocks through `tf.data` (the preprocessing runs in the graph), so memory stays
O(batch). Each epoch can be checkpointed; a resumed fit continues with the weights, Adam's slots,
RNG states and learning-rate schedule of the last checkpoint, so it ends at the same weights as an
uninterrupted one (bit for bit with TensorFlow's own kernels, `TF_ENABLE_ONEDNN_OPTS=0`; oneDNN's
ops are outside TF's op determinism).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import platform
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from degae_tools.atomic import atomic_path
from degae_tools.errors import ModelError
from degae_tools.models.autoencoder import build_autoencoder, set_kl_weight
from degae_tools.models.bundle import CHECKPOINT_FILES
from degae_tools.models.config import AutoencoderConfig, Runtime

CHECKPOINT, CHECKPOINT_STATE = CHECKPOINT_FILES
# ReduceLROnPlateau as the study used it (halve after 5 epochs without a 0.1 drop in val_loss).
REDUCE_LR = {"patience": 5, "factor": 0.5, "min_delta": 0.1, "min_lr": 1e-5}


@dataclass(frozen=True)
class TrainingData:
    """What one fit reads: raw blocks of `n_inputs` columns, which `transform` (in the tf.data
    graph; None when the blocks are model inputs already) maps to the model's `n_features`.

    `train(epoch)` yields that epoch's shuffled training blocks, `validation()` the validation
    blocks, in the same order every time."""

    train: Callable[[int], Iterable[np.ndarray]]
    n_train: int
    validation: Callable[[], Iterable[np.ndarray]]
    n_validation: int
    n_inputs: int
    n_features: int
    transform: Callable[[Any], Any] | None = None
    linear_path: Any = None  # the residual kind's frozen PCA path (autoencoder.LinearPath)


@dataclass(frozen=True)
class CheckpointPlan:
    """Where and how often a fit is checkpointed, and whether it continues the last checkpoint.
    `extra` is stored with each checkpoint's state (e.g. the warehouse snapshot it trained on)."""

    folder: Path
    every: int = 1
    resume: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Fitted:
    """A fitted autoencoder, its encoder, one history row per epoch, and how it ran: the
    replicas (devices) it was trained on and whether XLA compiled its training step."""

    autoencoder: Any
    encoder: Any
    history: list[dict[str, float]]
    ran_on: dict[str, Any] = field(default_factory=dict)
    best_epoch: int | None = None


class EpochStream:
    """The epoch the data stream is on, so that each epoch's shuffle derives from (seed, epoch)."""

    def __init__(self, epoch: int = 0) -> None:
        self.epoch = epoch


class EpochLog(keras.callbacks.Callback):
    """Moves the data stream to the epoch, sets the KL weight, and records the epoch's row."""

    def __init__(
        self, config: AutoencoderConfig, stream: EpochStream, history: list[dict[str, float]]
    ) -> None:
        super().__init__()
        self.config = config
        self.stream = stream
        self.history = history

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.stream.epoch = epoch
        set_kl_weight(self.model, self.config, epoch)
        self.started = time.perf_counter()
        self.learning_rate = float(self.model.optimizer.learning_rate.numpy())

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.history.append(
            {
                "epoch": epoch,
                "loss": float(logs.get("loss", math.nan)),
                "val_loss": float(logs.get("val_loss", math.nan)),
                "learning_rate": self.learning_rate,
                "seconds": time.perf_counter() - self.started,
            }
        )


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the lowest val_loss so far, the initial weights (epoch 0, scored
    before training) included, and puts them back at the end of the last epoch, before the
    Checkpointer saves it. A resumed fit starts its candidates at the checkpoint's weights."""

    def __init__(self, config: AutoencoderConfig, initial_loss: float) -> None:
        super().__init__()
        self.epochs = config.training.epochs
        self.best = initial_loss
        self.best_epoch = 0
        self.best_weights: list[Any] | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.best_weights = self.model.get_weights()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = float((logs or {}).get("val_loss", math.nan))
        if loss < self.best:
            self.best, self.best_epoch = loss, epoch + 1
            self.best_weights = self.model.get_weights()
        if epoch + 1 >= self.epochs or self.model.stop_training:
            self.model.set_weights(self.best_weights)


class Checkpointer(keras.callbacks.Callback):
    """Restores the schedulers' state on resume; saves weights, optimizer slots, RNG states and
    the run state every `plan.every` epochs and after the last."""

    def __init__(
        self,
        config: AutoencoderConfig,
        plan: CheckpointPlan,
        history: list[dict[str, float]],
        reduce_lr: Any,
        stopper: Any | None,
        restored: dict[str, Any] | None,
    ) -> None:
        super().__init__()
        self.config = config
        self.plan = plan
        self.history = history
        self.reduce_lr = reduce_lr
        self.stopper = stopper
        self.restored = restored

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.restored:
            return
        for key, value in self.restored["reduce_lr"].items():
            setattr(self.reduce_lr, key, value)
        if self.stopper is not None and self.restored.get("early_stopping"):
            for key, value in self.restored["early_stopping"].items():
                setattr(self.stopper, key, value)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        stopped = bool(self.model.stop_training)
        last = epoch + 1 >= self.config.training.epochs or stopped
        if not (last or (epoch + 1) % max(1, self.plan.every) == 0):
            return
        state = {
            "epochs_done": epoch + 1,
            "config": json.loads(self.config.to_json()),
            "history": self.history,
            "reduce_lr": {
                "best": float(self.reduce_lr.best),
                "wait": int(self.reduce_lr.wait),
                "cooldown_counter": int(self.reduce_lr.cooldown_counter),
            },
            "early_stopping": None
            if self.stopper is None
            else {
                "best": float(self.stopper.best),
                "wait": int(self.stopper.wait),
                "best_epoch": int(self.stopper.best_epoch),
            },
            "stopped": stopped,
            **self.plan.extra,
        }
        save_checkpoint(self.plan.folder, self.model, state)


def make_callbacks(
    config: AutoencoderConfig,
    stream: EpochStream,
    history: list[dict[str, float]],
    plan: CheckpointPlan | None,
    restored: dict[str, Any] | None,
    best: BestWeights | None = None,
) -> list[Any]:
    """EpochLog, ReduceLROnPlateau, EarlyStopping (if asked), BestWeights (if given) and the
    Checkpointer (if planned)."""
    reduce_lr = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", verbose=0, **REDUCE_LR)
    training = config.training
    stopper = (
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=training.patience)
        if training.early_stopping
        else None
    )
    callbacks = [EpochLog(config, stream, history), reduce_lr]
    if stopper is not None:
        callbacks.append(stopper)
    if best is not None:
        callbacks.append(best)
    if plan is not None:
        callbacks.append(Checkpointer(config, plan, history, reduce_lr, stopper, restored))
    return callbacks


def fit_autoencoder(
    config: AutoencoderConfig,
    data: TrainingData,
    runtime: Runtime = Runtime(),
    checkpoint: CheckpointPlan | None = None,
    verbose: int = 0,
) -> Fitted:
    """Build, compile and fit one autoencoder on `data`, checkpointed as `checkpoint` plans."""
    strategy = configure_runtime(runtime, config.training.seed)
    restored = resumable_state(checkpoint, config)
    with strategy.scope():
        autoencoder, encoder = build_autoencoder(data.n_features, config, data.linear_path)
        autoencoder.compile(optimizer=optimizer(config), loss="mse", jit_compile=runtime.xla)
        if restored is not None:
            restore_checkpoint(checkpoint.folder, autoencoder)
    history: list[dict[str, float]] = list(restored["history"]) if restored else []
    initial_epoch = restored["epochs_done"] if restored else 0
    if restored and restored.get("stopped"):
        initial_epoch = config.training.epochs
    stream = EpochStream(initial_epoch)
    batch = config.training.batch_size
    train_ds = tf_dataset(
        lambda: data.train(stream.epoch), data.n_inputs, data.n_train, batch, data.transform
    )
    val_ds = tf_dataset(data.validation, data.n_inputs, data.n_validation, batch, data.transform)
    best = None
    if config.training.best_weights and initial_epoch < config.training.epochs:
        best = BestWeights(config, float(autoencoder.evaluate(val_ds, verbose=0)))
    if initial_epoch < config.training.epochs:
        autoencoder.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.training.epochs,
            initial_epoch=initial_epoch,
            callbacks=make_callbacks(config, stream, history, checkpoint, restored, best),
            verbose=verbose,
            shuffle=False,  # the stream shuffles itself, per (seed, epoch)
        )
    ran_on = {
        "replicas": strategy.num_replicas_in_sync,
        "xla_compiled": bool(autoencoder.jit_compile),
    }
    best_epoch = None if best is None else best.best_epoch
    return Fitted(autoencoder, encoder, history, ran_on, best_epoch)


def optimizer(config: AutoencoderConfig) -> Any:
    """Adam at the config's learning rate; AdamW when it has a weight decay."""
    training = config.training
    if training.weight_decay > 0:
        return FusedAdamW(training.learning_rate, weight_decay=training.weight_decay)
    return FusedAdam(training.learning_rate)


class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam with each weight updated by TensorFlow's fused kernel (ResourceApplyAdam):
    one pass over the weight, its two slots and its gradient instead of about ten elementwise
    ops, each a pass over memory. At 48,978 x 2,000 the update moves 0.8 GB of weights per
    step, so Keras' version spends as long on it as on the matmuls (bench/train.py measures
    both). The arithmetic is Keras' (Kingma & Ba 2015, epsilon outside the square root); on
    several replicas, or for sparse gradients, Keras' own update runs."""

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        import tensorflow as tf

        strategy = tf.distribute.get_strategy()
        if (
            self.amsgrad
            or strategy.num_replicas_in_sync > 1
            or isinstance(gradient, tf.IndexedSlices)
        ):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )
        return None


class FusedAdamW(FusedAdam, keras.optimizers.AdamW):
    """AdamW (decoupled weight decay, applied before the step) with the fused Adam step."""


def _handle(variable: Any) -> Any:
    """The resource handle of a Keras or TensorFlow variable."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


def resumable_state(
    plan: CheckpointPlan | None, config: AutoencoderConfig
) -> dict[str, Any] | None:
    """The last checkpoint's run state when resuming, after checking it was made by `config`
    (only the epochs may differ); None when starting afresh."""
    if plan is None or not plan.resume:
        return None
    restored = read_checkpoint(plan.folder)
    if restored is None:
        return None
    saved = AutoencoderConfig.from_dict(restored["config"])
    if (
        AutoencoderConfig(
            saved.architecture, saved.training, saved.data, epochs=config.training.epochs
        )
        != config
    ):
        raise ModelError(
            f"{plan.folder}: the checkpoint was made with another configuration "
            "(only --epochs may change on --resume); start afresh without --resume"
        )
    return restored


# --- devices and precision ----------------------------------------------------------------------


def configure_runtime(runtime: Runtime, seed: int) -> Any:
    """Seeds, op determinism, precision policy and devices; returns the tf.distribute strategy
    to build the model in. XLA runs without op determinism (Keras refuses to compile a model
    while it is on, as not every op XLA emits is deterministic): an XLA run is seeded but not
    repeatable bit for bit."""
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    devices = split_cpu(runtime.cpu_devices)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    if runtime.xla:
        tf_config.disable_op_determinism()
    else:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(precision_policy(runtime))
    if runtime.distribute == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus or not devices:
            return tf.distribute.MirroredStrategy()
        # No NCCL between CPU devices: gradients are summed on one device and broadcast.
        return tf.distribute.MirroredStrategy(
            devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    return tf.distribute.get_strategy()


def split_cpu(n_devices: int) -> list[str]:
    """Make the CPU appear as `n_devices` logical devices (TensorFlow allows this only before it
    first runs an op); returns their names, or [] for 0."""
    import tensorflow as tf

    if n_devices <= 0:
        return []
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n_devices)]
        )
    except RuntimeError:
        pass  # TensorFlow has started: the split stands if it was made before
    names = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(names) != n_devices:
        raise ModelError(
            f"--cpu-devices {n_devices}: TensorFlow already runs on {len(names)} CPU device(s) in "
            "this process; set the devices before anything else uses TensorFlow"
        )
    return names


def precision_policy(runtime: Runtime) -> str:
    """Keras' dtype policy: float32, or mixed bfloat16 on CPU and mixed float16 on GPU."""
    import tensorflow as tf

    if not runtime.mixed_precision:
        return "float32"
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def runtime_record(
    runtime: Runtime = Runtime(), ran_on: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a bit-for-bit rerun needs besides the config and data: the runtime settings, how the
    fit ran (`Fitted.ran_on`), library versions and whether TensorFlow ran oneDNN's ops (as
    `ml.models.metrics["runtime"]`). `onednn_ops` is what TensorFlow decided
    when it was imported (None where its private `IsMklEnabled` is missing);
    `tf_enable_onednn_opts` is the variable as set now (unset is TF's default: on for x86)."""
    import tensorflow as tf

    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn_ops: bool | None = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        onednn_ops = None
    return {
        **dataclasses.asdict(runtime),
        "precision_policy": precision_policy(runtime),
        **(ran_on or {}),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "onednn_ops": onednn_ops,
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
        "machine": platform.machine(),
    }


# --- the input pipeline ---------------------------------------------------------------------------


def rebatch(arrays: Iterable[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    """Regroup a stream of row blocks into blocks of `batch_size` rows (the last one smaller)."""
    pending: list[np.ndarray] = []
    held = 0
    for x in arrays:
        while len(x):
            take = min(batch_size - held, len(x))
            pending.append(x[:take])
            held += take
            x = x[take:]
            if held == batch_size:
                yield pending[0] if len(pending) == 1 else np.concatenate(pending)
                pending, held = [], 0
    if held:
        yield np.concatenate(pending)


def tf_dataset(
    arrays: Callable[[], Iterable[np.ndarray]],
    n_inputs: int,
    n_rows: int,
    batch_size: int,
    transform: Callable[[Any], Any] | None = None,
    targets: bool = True,
    prefetch: int = 2,
) -> Any:
    """A `tf.data.Dataset` of (x, x) batches (or x alone) over a stream of raw blocks.

    `arrays()` is called once per pass (Keras starts one pass per epoch), `transform` (e.g.
    `Preprocessor.tf_transform`) runs in the tf.data graph, and batches are prefetched.
    """
    import tensorflow as tf

    def generate() -> Iterator[np.ndarray]:
        yield from rebatch(arrays(), batch_size)

    spec = tf.TensorSpec(shape=(None, n_inputs), dtype=tf.float32)
    ds = tf.data.Dataset.from_generator(generate, output_signature=spec)
    ds = ds.apply(tf.data.experimental.assert_cardinality(math.ceil(n_rows / batch_size)))
    if transform is not None:
        ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if targets:
        ds = ds.map(lambda x: (x, x))
    return ds.prefetch(prefetch)


# --- checkpoints --------------------------------------------------------------------------------


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


def model_from_checkpoint(
    folder: Path, n_features: int, config: AutoencoderConfig
) -> tuple[Any, Any]:
    """A fresh, uncompiled float32 model (and its encoder) holding the last checkpoint's weights:
    the optimizer's state (twice the weights) is not loaded, so evaluating and saving do not add
    to the training peak."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    gc.collect()
    autoencoder, encoder = build_autoencoder(n_features, config)
    with zipfile.ZipFile(folder / CHECKPOINT) as zf:
        for i, v in enumerate(autoencoder.variables):
            _read_npy(zf, f"model_{i}", v)
    return autoencoder, encoder


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
