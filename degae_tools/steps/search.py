"""The `search` step: the study's random architecture search, cross-validated by group and
resumable.

Trials draw (neurons, layers) pairs from a grid without replacement; each is trained on k-1 folds
of the train+validation contrasts and scored on the held-out fold (folds never split a group: a
series of the compendium, a signature of an imported collection). Every finished (trial, fold) is
one row in `ml.trials`, written as it finishes, so a rerun of the same search skips what is done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from degae_tools import console
from degae_tools.errors import ModelError
from degae_tools.models.baselines import principal_axes
from degae_tools.models.config import Runtime, SearchConfig
from degae_tools.models.training import TrainingData, fit_autoencoder
from degae_tools.preprocess import Preprocessor
from warehouse import Query, Warehouse, export

FINISHED_TRIALS = Query("search/finished_trials")


@dataclass(frozen=True)
class Trial:
    """One (trial, fold) to run: its architecture and the fold held out."""

    trial: int
    fold: int
    neurons: int
    layers: int


@dataclass
class SearchResult:
    """Every (trial, fold) row of the search, and the PNGs drawn from them."""

    search_id: str
    trials: list[dict[str, Any]]
    n_trained: int
    plots: list[Path]


@dataclass
class SearchData:
    """The train+validation rows searched: their groups, and the whole matrix (held in memory)."""

    groups: list[str]
    matrix: np.ndarray
    snapshot: dict[str, Any]


def search(
    wh: Warehouse,
    config: SearchConfig,
    search_id: str | None = None,
    plot_dir: Path | None = None,
    runtime: Runtime = Runtime(),
) -> SearchResult:
    """Run (or resume) the random search; returns all its rows and writes two PNGs.

    The train+validation matrix is held in memory (7,130 × 48,978 float32 is 1.4 GB); each fold's
    preprocessing is fit on that fold's training rows only.
    """
    data = load_search_data(wh, config)
    search_id = search_id or search_id_for(config, data.snapshot["hash"])
    fold_of = group_folds(data.groups, config.folds, config.seed)
    done = finished(wh, search_id)
    planned = plan(config)
    todo = [t for t in planned if (t.trial, t.fold) not in done]
    if len(todo) < len(planned):
        console.say(f"{search_id}: {len(planned) - len(todo)} of {len(planned)} runs already done")
    for trial in console.progress(todo, len(todo), f"search {search_id}"):
        row = run_trial(config, trial, data.matrix, fold_of, runtime, search_id)
        wh.upsert("ml.trials", pa.Table.from_pylist([row]))
        done[(trial.trial, trial.fold)] = row
    trials = [done[(t.trial, t.fold)] for t in planned]
    out = Path(plot_dir) if plot_dir else wh.models_dir / search_id
    return SearchResult(search_id, trials, len(todo), draw_plots(trials, out))


def load_search_data(wh: Warehouse, config: SearchConfig) -> SearchData:
    """The split stored, then the train+validation rows' groups and matrix, and the snapshot."""
    data = config.base.data
    split = config.split_name or export.default_split_name(data.collection)
    export.check_value(wh, data.value)
    export.ensure_split(wh, split, collection=data.collection)
    with wh.session():
        rows = export.split_contrasts(wh, split, ("train", "validation"))
        _, matrix = export.load_matrix(wh, split, ("train", "validation"), data.value)
        snapshot = export.warehouse_snapshot(wh)
    return SearchData([r[1] for r in rows], matrix, snapshot)


def search_id_for(config: SearchConfig, snapshot_hash: str) -> str:
    """`search-<hash>` of the settings and the warehouse content."""
    digest = hashlib.sha256(f"{config.identity_json()}|{snapshot_hash}".encode()).hexdigest()
    return f"search-{digest[:10]}"


def draw_trials(config: SearchConfig) -> list[tuple[int, int]]:
    """(neurons, layers) of each trial: a seeded draw without replacement from the grid."""
    grid = [(n, layer) for n in config.neurons for layer in config.layers]
    rng = np.random.default_rng(config.seed)
    picks = rng.permutation(len(grid))[: min(config.n_trials, len(grid))]
    return [grid[i] for i in picks]


def plan(config: SearchConfig) -> list[Trial]:
    """Every (trial, fold) of the search, in the order they run."""
    return [
        Trial(trial, fold, neurons, layers)
        for trial, (neurons, layers) in enumerate(draw_trials(config))
        for fold in range(config.folds)
    ]


def group_folds(groups: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Fold of each row: whole groups, in seeded hash order, each to the smallest fold so far."""
    counts: dict[str, int] = {}
    for group in groups:
        counts[group] = counts.get(group, 0) + 1
    if len(counts) < folds:
        raise ModelError(f"{folds}-fold search needs at least {folds} groups, found {len(counts)}")
    order = sorted(counts, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    sizes = np.zeros(folds, dtype=int)
    fold_of: dict[str, int] = {}
    for group in order:
        fold = int(np.argmin(sizes))
        fold_of[group] = fold
        sizes[fold] += counts[group]
    return np.array([fold_of[g] for g in groups])


def finished(wh: Warehouse, search_id: str) -> dict[tuple[int, int], dict[str, Any]]:
    """The finished (trial, fold) rows of a search."""
    rows = wh.frame(FINISHED_TRIALS, {"search_id": search_id}).to_dicts()
    return {(r["trial"], r["fold"]): r for r in rows}


def residual_path(
    model: Any, matrix: np.ndarray, train_rows: np.ndarray, prep: Preprocessor, seed: int
) -> Any:
    """The residual kind's frozen PCA path, fitted on the trial's training rows (else None)."""
    if model.kind != "residual":
        return None

    def blocks() -> Iterator[np.ndarray]:
        return _row_blocks(matrix, train_rows)

    return principal_axes(blocks, len(train_rows), prep, model.latent_dim, seed)


def run_trial(
    config: SearchConfig,
    trial: Trial,
    matrix: np.ndarray,
    fold_of: np.ndarray,
    runtime: Runtime,
    search_id: str,
) -> dict[str, Any]:
    """Train one trial on every fold but its own and score it on its own: its ml.trials row."""
    started = time.perf_counter()
    train_rows = np.flatnonzero(fold_of != trial.fold)
    val_rows = np.flatnonzero(fold_of == trial.fold)
    model = config.trial_config(trial.neurons, trial.layers)
    prep = Preprocessor.for_data(model.data).fit(_row_blocks(matrix, train_rows))
    seed = config.seed

    def shuffled(epoch: int) -> Iterator[np.ndarray]:
        return _row_blocks(matrix, np.random.default_rng([seed, epoch]).permutation(train_rows))

    data = TrainingData(
        train=shuffled,
        n_train=len(train_rows),
        validation=lambda: _row_blocks(matrix, val_rows),
        n_validation=len(val_rows),
        n_inputs=prep.n_genes,
        n_features=prep.n_features,
        transform=prep.tf_transform,
        linear_path=residual_path(model, matrix, train_rows, prep, seed),
    )
    history = fit_autoencoder(model, data, runtime).history
    return {
        "search_id": search_id,
        **dataclasses.asdict(trial),
        "kind": model.kind,
        "val_loss": history[-1]["val_loss"],
        "seconds": time.perf_counter() - started,
    }


def _row_blocks(x: np.ndarray, rows: np.ndarray, chunk: int = 256) -> Iterator[np.ndarray]:
    for start in range(0, len(rows), chunk):
        yield x[rows[start : start + chunk]]


def draw_plots(trials: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Held-out loss against neurons and against layers, as PNGs in `folder`."""
    from degae_tools.plots import plot_search

    folder.mkdir(parents=True, exist_ok=True)
    plots = []
    for by in ("neurons", "layers"):
        path = folder / f"loss_vs_{by}.png"
        plot_search(trials, by=by).savefig(path)
        plots.append(path)
    return plots


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
