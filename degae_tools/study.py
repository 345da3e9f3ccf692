"""The reference study's recipe, reproduced on purpose (see DESIGN.md, "What the reference study's
code actually did"): first-value-versus-rest groups, limma on raw counts, GO terms kept when
over- or under-represented, genes present in every series only, a random 64/16/20 split of
contrasts (seed 69), StandardScaler then VarianceThreshold(1), and one hidden layer of 2,000 ReLU
units with a sigmoid output on standardised data.

degae's own trainer fits the variance threshold before scaling and splits by series, so the
study's model is trained here, in memory as the study did, through degae's Keras loop
(`fit_autoencoder`: Adam, MSE, ReduceLROnPlateau) and saved in degae's model-folder format so that
`predict` and `attribute` read it like any other model.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from degae_tools.enrichment import EnrichmentConfig
from degae_tools.errors import ModelError
from degae_tools.limma import DEConfig
from degae_tools.models import AutoencoderConfig
from degae_tools.preprocess import Preprocessor
from warehouse import export
from warehouse.connect import connect, transaction
from warehouse.migrate import read_query

if TYPE_CHECKING:
    from degae_tools.train import TrainResult

STUDY_SPLIT = "study-seed69-64/16/20"


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


def genes_in_every_series(con) -> np.ndarray:
    """gene_index of the genes with a log2FC in every finished contrast (sorted)."""
    rows = con.execute(read_query("study/genes_in_every_contrast")).fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64)


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


def write_study_split(db_path: Path, preset: StudyPreset = StudyPreset()) -> dict[str, int]:
    """Store the study's split of every contrast with finished DE under `preset.split_name`;
    returns the contrasts per split."""
    con = connect(db_path, write=True)
    try:
        candidates = con.execute(read_query("export/split_candidates")).fetchall()
        assigned = study_split([c for c, _ in candidates], preset)
        rows = pa.table(
            {
                "contrast_id": [c for c, _ in candidates],
                "gse": [g for _, g in candidates],
                "split": [assigned[c] for c, _ in candidates],
            }
        )
        con.register("study_split_rows", rows)
        with transaction(con):
            con.execute(read_query("study/split_delete"), {"split_name": preset.split_name})
            con.execute(read_query("study/split_insert"), {"split_name": preset.split_name})
    finally:
        con.close()
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


def train_study(
    db_path: Path,
    preset: StudyPreset = StudyPreset(),
    model_dir: Path | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train the study's autoencoder on its split (written first if absent), save it in degae's
    model-folder format, and write its ml rows with `study_mode = true`.

    `overrides` change AutoencoderConfig fields (e.g. `layers=4`, `epochs=20`).
    """
    from degae_tools.train import (
        ReconstructionScores,
        TrainResult,
        fit_autoencoder,
        runtime,
        write_model_rows,
    )

    started = time.perf_counter()
    db_path = Path(db_path)
    config = preset.autoencoder_config(**overrides)
    con = connect(db_path)
    try:
        known = con.execute(read_query("predict/split_names")).fetchall()
        if preset.split_name not in {r[0] for r in known}:
            con.close()
            write_study_split(db_path, preset)
            con = connect(db_path)
        genes = (
            genes_in_every_series(con)
            if preset.genes_in_every_series
            else np.arange(export.gene_count(con))
        )
        data = {s: export.load_matrix(con, preset.split_name, [s]) for s in export.SPLITS}
        snapshot = export.warehouse_snapshot(con)
    finally:
        con.close()
    if len(data["train"][0]) == 0 or len(data["validation"][0]) == 0:
        raise ModelError(f"split {preset.split_name!r} has no training or validation contrasts")
    prep = fit_study_preprocessor(data["train"][1], genes, preset.variance_threshold)
    z = {s: prep.standardise(x) for s, (_, x) in data.items()}

    digest = hashlib.sha256(f"{config.to_json()}|{preset}|{snapshot['hash']}".encode())
    model_id = f"study-{config.neurons}x{config.layers}-{digest.hexdigest()[:8]}"
    model_dir = Path(model_dir) if model_dir else db_path.parent / "models" / model_id
    model_dir.mkdir(parents=True, exist_ok=True)

    def shuffled(epoch: int):
        order = np.random.default_rng([config.seed, epoch]).permutation(len(z["train"]))
        yield z["train"][order]

    autoencoder, encoder, history = fit_autoencoder(
        config,
        prep.n_features,
        shuffled,
        len(z["train"]),
        lambda: iter([z["validation"]]),
        len(z["validation"]),
        None,
        prep.n_features,
    )
    autoencoder.save(model_dir / "autoencoder.keras")
    encoder.save(model_dir / "encoder.keras")
    prep.save(model_dir / "preprocess.npz")
    saved = {"model_id": model_id, "split_name": preset.split_name, "study": asdict(preset)}
    saved["config"] = json.loads(config.to_json())
    (model_dir / "config.json").write_text(json.dumps(saved, indent=1))

    reconstruction = []
    for split in ("validation", "test"):
        if len(z[split]) == 0:
            continue
        scores = ReconstructionScores()
        for block in _blocks(z[split]):
            scores.add(block, np.asarray(autoencoder(block, training=False), np.float64))
        mse, r2 = scores.result()
        reconstruction.append(
            {
                "method": "autoencoder",
                "split": split,
                "latent_dim": config.latent_dim,
                "mse": mse,
                "r2": r2,
            }
        )
    val_losses = [h["val_loss"] for h in history]
    metrics = {
        "epochs_run": len(history),
        "best_val_loss": float(np.nanmin(val_losses)) if val_losses else None,
        "n_train": len(z["train"]),
        "n_validation": len(z["validation"]),
        "n_test": len(z["test"]),
        "n_genes": prep.n_genes,
        "n_genes_in_every_series": len(genes),
        "n_features": prep.n_features,
        "seconds": time.perf_counter() - started,
        **{f"autoencoder_{r['split']}_{m}": r[m] for r in reconstruction for m in ("mse", "r2")},
        "runtime": runtime(),
    }
    model_row = {
        "model_id": model_id,
        "kind": config.kind,
        "study_mode": True,
        "path": str(model_dir),
        "config": config.to_json(),
        "snapshot": json.dumps(snapshot),
        "snapshot_hash": snapshot["hash"],
        "metrics": json.dumps(metrics),
    }
    embeddings = _latent_table(encoder, z, {s: ids for s, (ids, _) in data.items()})
    write_model_rows(db_path, model_row, history, embeddings, reconstruction)
    return TrainResult(model_id, model_dir, config, history, reconstruction, metrics)


def _latent_table(encoder: Any, z: dict[str, np.ndarray], ids: dict[str, list[str]]) -> pa.Table:
    codes = [np.asarray(encoder(b, training=False)) for s in z for b in _blocks(z[s])]
    matrix = np.concatenate(codes)
    offsets = np.arange(0, matrix.size + 1, max(matrix.shape[1], 1), dtype=np.int32)
    return pa.table(
        {
            "contrast_id": [c for s in z if len(z[s]) for c in ids[s]],
            "split": [s for s in z if len(z[s]) for _ in ids[s]],
            "coords": pa.ListArray.from_arrays(pa.array(offsets), pa.array(matrix.reshape(-1))),
        }
    )


def _blocks(x: np.ndarray, rows: int = 512) -> list[np.ndarray]:
    return [x[i : i + rows] for i in range(0, len(x), rows)]
