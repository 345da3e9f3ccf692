"""The study's random architecture search, cross-validated by GEO series and resumable.

Trials draw (neurons, layers) pairs from a grid without replacement; each is trained on k-1 folds
of the train+validation contrasts and scored on the held-out fold (folds never split a series).
Every finished (trial, fold) is one row in `ml.trials`, written as it finishes, so a rerun of
the same search skips what is done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from degae_tools import console
from degae_tools.errors import ModelError
from degae_tools.models import AutoencoderConfig
from degae_tools.models.config import identity_json
from degae_tools.train import fit_autoencoder, preprocessor_for
from warehouse import export
from warehouse.connect import connect
from warehouse.migrate import read_query

STUDY_NEURONS = (1, 10, 100, 200, 400, 600, 800, 1000, 2000)
STUDY_LAYERS = tuple(range(1, 11))


@dataclass(frozen=True)
class SearchConfig:
    """The search space and how each trial is trained (defaults: the study's grid, 4 folds)."""

    neurons: tuple[int, ...] = STUDY_NEURONS
    layers: tuple[int, ...] = STUDY_LAYERS
    n_trials: int = 20
    folds: int = 4
    epochs: int = 50
    seed: int = 69
    kind: str = "dense"
    representation: str = "signed"
    batch_size: int = 128
    learning_rate: float = 1e-3
    output_activation: str = "linear"
    variance_threshold: float | None = None
    minmax: bool = False
    split_name: str = "degae"

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ModelError(f"SearchConfig: folds must be >= 2, got {self.folds}")
        if self.n_trials < 1 or not self.neurons or not self.layers:
            raise ModelError("SearchConfig: need n_trials >= 1 and non-empty neurons and layers")

    def to_json(self) -> str:
        """The config as JSON (its hash names the search)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def trial_config(self, neurons: int, layers: int) -> AutoencoderConfig:
        """The autoencoder one trial trains."""
        return AutoencoderConfig(
            kind=self.kind,
            representation=self.representation,
            neurons=neurons,
            layers=layers,
            output_activation=self.output_activation,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            epochs=self.epochs,
            variance_threshold=self.variance_threshold,
            minmax=self.minmax,
            seed=self.seed,
        )


@dataclass
class SearchResult:
    """Every (trial, fold) row of the search, and the PNGs drawn from them."""

    search_id: str
    trials: list[dict[str, Any]]
    n_trained: int
    plots: list[Path]


def draw_trials(config: SearchConfig) -> list[tuple[int, int]]:
    """(neurons, layers) of each trial: a seeded draw without replacement from the grid."""
    grid = [(n, layer) for n in config.neurons for layer in config.layers]
    rng = np.random.default_rng(config.seed)
    picks = rng.permutation(len(grid))[: min(config.n_trials, len(grid))]
    return [grid[i] for i in picks]


def series_folds(gses: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Fold of each row: whole series, in seeded hash order, each to the smallest fold so far."""
    counts: dict[str, int] = {}
    for gse in gses:
        counts[gse] = counts.get(gse, 0) + 1
    if len(counts) < folds:
        raise ModelError(f"{folds}-fold search needs at least {folds} series, found {len(counts)}")
    order = sorted(counts, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    sizes = np.zeros(folds, dtype=int)
    fold_of: dict[str, int] = {}
    for gse in order:
        fold = int(np.argmin(sizes))
        fold_of[gse] = fold
        sizes[fold] += counts[gse]
    return np.array([fold_of[g] for g in gses])


def _row_blocks(x: np.ndarray, rows: np.ndarray, chunk: int = 256) -> Iterator[np.ndarray]:
    for start in range(0, len(rows), chunk):
        yield x[rows[start : start + chunk]]


def _finished(db_path: Path, search_id: str) -> dict[tuple[int, int], dict[str, Any]]:
    con = connect(db_path)
    try:
        cursor = con.execute(read_query("train/search_trials"), {"search_id": search_id})
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()
    return {(r["trial"], r["fold"]): r for r in rows}


def _record(db_path: Path, row: dict[str, Any]) -> None:
    con = connect(db_path, write=True)
    try:
        con.execute(read_query("train/insert_trial"), row)
    finally:
        con.close()


def search(
    db_path: Path, config: SearchConfig, search_id: str | None = None, plot_dir: Path | None = None
) -> SearchResult:
    """Run (or resume) the random search; returns all its rows and writes two PNGs.

    The train+validation matrix is held in memory (7,130 × 48,978 float32 is 1.4 GB); each fold's
    preprocessing is fit on that fold's training rows only.
    """
    from degae_tools.plots import plot_search

    db_path = Path(db_path)
    con = connect(db_path, write=True)
    try:
        export.ensure_split(con, config.split_name)
        snapshot = export.warehouse_snapshot(con)
        rows = export.split_contrasts(con, config.split_name, ("train", "validation"))
        ids, matrix = export.load_matrix(con, config.split_name, ("train", "validation"))
    finally:
        con.close()
    if search_id is None:
        digest = hashlib.sha256(f"{identity_json(config)}|{snapshot['hash']}".encode())
        digest = digest.hexdigest()
        search_id = f"search-{digest[:10]}"
    fold_of = series_folds([r[1] for r in rows], config.folds, config.seed)
    done = _finished(db_path, search_id)
    tasks = [
        (trial, fold, neurons, layers)
        for trial, (neurons, layers) in enumerate(draw_trials(config))
        for fold in range(config.folds)
    ]
    todo = [t for t in tasks if (t[0], t[1]) not in done]
    if len(todo) < len(tasks):
        console.say(f"{search_id}: {len(tasks) - len(todo)} of {len(tasks)} runs already done")
    for trial, fold, neurons, layers in console.progress(todo, len(todo), f"search {search_id}"):
        started = time.perf_counter()
        train_rows = np.flatnonzero(fold_of != fold)
        val_rows = np.flatnonzero(fold_of == fold)
        trial_config = config.trial_config(neurons, layers)
        preprocessor = preprocessor_for(trial_config)
        preprocessor.fit(_row_blocks(matrix, train_rows))

        def train_arrays(epoch: int, rows: np.ndarray = train_rows) -> Iterator[np.ndarray]:
            order = np.random.default_rng([config.seed, epoch]).permutation(rows)
            return _row_blocks(matrix, order)

        def val_arrays(rows: np.ndarray = val_rows) -> Iterator[np.ndarray]:
            return _row_blocks(matrix, rows)

        _, _, history = fit_autoencoder(
            trial_config,
            preprocessor.n_features,
            train_arrays,
            len(train_rows),
            val_arrays,
            len(val_rows),
            preprocessor.tf_transform,
            preprocessor.n_genes,
        )
        row = {
            "search_id": search_id,
            "trial": trial,
            "fold": fold,
            "neurons": neurons,
            "layers": layers,
            "kind": config.kind,
            "val_loss": history[-1]["val_loss"],
            "seconds": time.perf_counter() - started,
        }
        _record(db_path, row)
        done[(trial, fold)] = row
    trials = [done[(t[0], t[1])] for t in tasks]
    out = Path(plot_dir) if plot_dir else db_path.parent / "models" / search_id
    out.mkdir(parents=True, exist_ok=True)
    plots = []
    for by in ("neurons", "layers"):
        path = out / f"loss_vs_{by}.png"
        plot_search(trials, by=by).savefig(path)
        plots.append(path)
    return SearchResult(search_id, trials, len(todo), plots)


def summarise(trials: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per trial: neurons, layers, folds done, mean and sd of the held-out loss, sorted."""
    by_trial: dict[int, list[dict[str, Any]]] = {}
    for row in trials:
        by_trial.setdefault(row["trial"], []).append(row)
    summary = []
    for trial, rows in by_trial.items():
        losses = np.array([r["val_loss"] for r in rows], dtype=float)
        summary.append(
            {
                "trial": trial,
                "neurons": rows[0]["neurons"],
                "layers": rows[0]["layers"],
                "folds": len(rows),
                "mean_val_loss": float(np.nanmean(losses)),
                "sd_val_loss": float(np.nanstd(losses)),
            }
        )
    return sorted(summary, key=lambda r: r["mean_val_loss"])
