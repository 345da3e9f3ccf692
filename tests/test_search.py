"""The search step: trials drawn from the grid, folds by group, resumable rows, plots."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from degae_tools.cli import main
from degae_tools.models import AutoencoderConfig
from degae_tools.models.config import SearchConfig
from degae_tools.steps.search import draw_trials, group_folds, search, summarise
from tests.helpers import rows, tiny_warehouse
from warehouse import Warehouse

TINY = {
    "neurons": (4, 8),
    "layers": (1, 2),
    "n_trials": 1,
    "folds": 2,
    "base": AutoencoderConfig(epochs=2, batch_size=16),
}


pytestmark = pytest.mark.usefixtures("quiet")  # no progress bars in test output


def test_trials_are_distinct_grid_points_drawn_reproducibly():
    config = SearchConfig(n_trials=30)
    trials = draw_trials(config)
    assert len(trials) == len(set(trials)) == 30
    assert all(n in config.neurons and 1 <= layer <= 10 for n, layer in trials)
    assert draw_trials(config) == trials
    assert draw_trials(SearchConfig(n_trials=30, base=AutoencoderConfig(seed=1))) != trials


def test_folds_never_split_a_series_and_are_balanced():
    gses = [f"GSE{i // 3}" for i in range(60)] + [f"GSE{100 + i}" for i in range(20)]
    folds = group_folds(gses, 4, seed=69)
    for gse in set(gses):
        assert len({f for g, f in zip(gses, folds, strict=True) if g == gse}) == 1
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 3


def test_cli_search_writes_one_row_per_trial_and_fold_and_plots(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=30, n_genes=50)
    result = CliRunner().invoke(
        main,
        [
            "search",
            "--db",
            str(db),
            "--neurons",
            "4,8",
            "--layers",
            "1-2",
            "--n-trials",
            "1",
            "--folds",
            "2",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--search-id",
            "s1",
            "--plot-dir",
            str(tmp_path / "plots"),
        ],
    )
    assert result.exit_code == 0, result.output
    found = rows(db, "SELECT trial, fold, val_loss FROM ml.trials WHERE search_id = 's1'")
    assert sorted((t, f) for t, f, _ in found) == [(0, 0), (0, 1)]
    assert all(np.isfinite(loss) for _, _, loss in found)
    assert (tmp_path / "plots" / "loss_vs_neurons.png").stat().st_size > 0
    assert (tmp_path / "plots" / "loss_vs_layers.png").stat().st_size > 0


def test_a_rerun_trains_only_the_missing_folds(tmp_path):
    db = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=30, n_genes=50)
    config = SearchConfig(**TINY)
    with Warehouse.open(db, write=True) as wh:
        first = search(wh, config, plot_dir=tmp_path)
        wh.delete("ml.trials", {"fold": 1})
        second = search(wh, config, plot_dir=tmp_path)
    assert (first.search_id, first.n_trained, second.n_trained) == (second.search_id, 2, 1)
    assert second.trials[0] == first.trials[0]
    assert summarise(second.trials)[0]["folds"] == 2


@pytest.mark.parametrize("option", [["--neurons", "abc"], ["--layers", "3-1"]])
def test_a_malformed_grid_is_a_usage_error(tmp_path, option):
    result = CliRunner().invoke(main, ["search", *option, "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 2 and "expected a list like" in result.output
