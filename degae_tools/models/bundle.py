"""The model folder: what `train` (and the study's trainer) leave on disk, and how prediction and
attribution read it back.

    autoencoder.keras, encoder.keras   the networks (float32, without optimizer state; the
                                       residual kind's frozen PCA path is among their weights)
    preprocess.npz                     the preprocessing fitted on the training split (and clip)
    config.json                        model id, split name, flat config (and the study preset)
    snapshot.json                      the warehouse snapshot it was trained on
    checkpoint.npz, checkpoint.json    the last epoch's full state, while training or when kept
    cache/                             the splits spilled as Arrow files, while training
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from degae_tools.errors import ModelError
from degae_tools.models.config import AutoencoderConfig
from degae_tools.preprocess import Preprocessor

CHECKPOINT_FILES = ("checkpoint.npz", "checkpoint.json")


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


@dataclass(frozen=True)
class ModelCard:
    """What config.json says of a model: its id, the split it was trained on, its config, and
    anything else its trainer records (the study's preset)."""

    model_id: str
    split_name: str
    config: AutoencoderConfig
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """config.json's text."""
        values = {"model_id": self.model_id, "split_name": self.split_name, **self.extra}
        return json.dumps({**values, "config": json.loads(self.config.to_json())}, indent=1)


class ModelFolder:
    """The paths of one model folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.cache = self.path / "cache"
        self.preprocess = self.path / "preprocess.npz"
        self.config = self.path / "config.json"
        self.snapshot = self.path / "snapshot.json"

    def create(self) -> ModelFolder:
        """Make the folder (and its parents) if missing."""
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def split_file(self, split: str) -> Path:
        """Where a split is spilled while training."""
        return self.cache / f"{split}.arrow"

    def drop_checkpoint(self) -> None:
        """Remove the last checkpoint (a finished model does not need it)."""
        for name in CHECKPOINT_FILES:
            (self.path / name).unlink(missing_ok=True)

    def tidy(self, keep_checkpoint: bool) -> None:
        """Remove the spilled splits, and the checkpoint unless it is kept to train on later."""
        shutil.rmtree(self.cache, ignore_errors=True)
        if not keep_checkpoint:
            self.drop_checkpoint()


def save_model(
    folder: ModelFolder, card: ModelCard, autoencoder: Any, encoder: Any, prep: Preprocessor
) -> None:
    """The networks, the preprocessing and config.json, as `load_bundle` reads them."""
    save_keras(autoencoder, folder.path / "autoencoder.keras")
    save_keras(encoder, folder.path / "encoder.keras")
    prep.save(folder.preprocess)
    folder.config.write_text(card.to_json())


def load_bundle(model_dir: Path) -> ModelBundle:
    """Load a model folder written by `train` (autoencoder.keras, encoder.keras, preprocess.npz,
    config.json); config.json files of older versions (with runtime fields) load too."""
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
