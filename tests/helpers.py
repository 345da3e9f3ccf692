"""What tests share besides fixtures: paths, the CLI as a subprocess, warehouse copies, and the
steps run on a warehouse file (tests import these; fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# `../shared/data` beside the checkout (as CI lays it), else the development machine's copy.
SHARED_DATA = next(
    (p for p in (REPO.parent / "shared" / "data", Path("/work/shared/data")) if p.is_dir()),
    REPO.parent / "shared" / "data",
)


def cli_command(*args: str) -> list[str]:
    """`degae-tools ARGS` as a command line run by this Python (for tests in a subprocess)."""
    return [sys.executable, "-m", "degae_tools.cli", *args]


def checkout_env(**extra: str) -> dict[str, str]:
    """This process's environment with the checkout importable, plus `extra` variables."""
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def copy_warehouse(db: Path, folder: Path) -> Path:
    """Copy a warehouse file and its counts folder into `folder`; returns the new file."""
    target = folder / db.name
    shutil.copy(db, target)
    counts = db.parent / f"{db.stem}_counts"
    if counts.exists():
        shutil.copytree(counts, folder / counts.name)
    return target


def run_de(db: Path, *args: Any, **kwargs: Any):
    """The `de` step on the warehouse file `db` (without Prefect); returns its summary."""
    from degae_tools.steps import de
    from warehouse import Warehouse

    with Warehouse.open(db, write=True) as wh:
        return de.run(wh, *args, **kwargs)


def run_go(db: Path, *args: Any, **kwargs: Any):
    """The `go` step on the warehouse file `db` (without Prefect); returns its summary."""
    from degae_tools.steps import go
    from warehouse import Warehouse

    with Warehouse.open(db, write=True) as wh:
        return go.run(wh, *args, **kwargs)


def rows(db: Path, query: str, params: dict | None = None) -> list[tuple]:
    """A query's rows, read through the warehouse handle."""
    from warehouse import Warehouse

    return Warehouse.open(db).rows(query, params)


def tiny_warehouse(
    path: Path,
    n_contrasts: int = 40,
    n_genes: int = 300,
    n_terms: int = 12,
    seed: int = 0,
    n_factors: int = 4,
    missing_fraction: float = 0.0,
) -> Path:
    """A migrated warehouse at `path` of synthetic DE and GO results, for tests that train or
    predict: `n_contrasts` contrasts over about 3 per series, written by the steps' own writer.

    The log2FC matrix is low rank (a few latent factors times gene loadings, plus noise) and each
    GO term's enrichment depends on one factor, so an autoencoder has structure to find and a
    predictor has labels to learn. `missing_fraction` leaves that share of (contrast, gene) pairs
    out of `core.de_results`.
    """
    import numpy as np
    import polars as pl

    from degae_tools.steps.runs import RunRow, write_de_results
    from warehouse import Warehouse

    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_contrasts, n_factors))
    loadings = rng.normal(size=(n_factors, n_genes)) * (rng.random(n_genes) < 0.5)
    log_fc = factors @ loadings + 0.3 * rng.normal(size=(n_contrasts, n_genes))
    gses = [f"GSE{1000 + i // 3}" for i in range(n_contrasts)]
    contrast_ids = [f"{gse}:treated{i}-vs-control" for i, gse in enumerate(gses)]

    keep = rng.random((n_contrasts, n_genes)) >= missing_fraction
    rows, cols = np.nonzero(keep)
    de = pl.DataFrame(
        {
            "contrast_id": [contrast_ids[r] for r in rows],
            "gene_index": cols.astype(np.int32),
            "log_fc": log_fc[rows, cols],
            "ave_expr": np.full(len(rows), 5.0),
            "t": log_fc[rows, cols] * 3,
            "p_value": np.full(len(rows), 0.01),
            "adj_p_value": np.full(len(rows), 0.04),
            "b": np.zeros(len(rows)),
        }
    )
    genes = pl.DataFrame(
        {
            "gene_index": np.arange(n_genes, dtype=np.int32),
            "gene_id": [f"ENSMUSG{g:011d}" for g in range(n_genes)],
            "symbol": [f"Gene{g}" for g in range(n_genes)],
            "species": ["mmusculus"] * n_genes,
        }
    )
    contrasts = pl.DataFrame(
        {
            "contrast_id": contrast_ids,
            "gse": gses,
            "group_key": ["treatment"] * n_contrasts,
            "group_a": ["control"] * n_contrasts,
            "group_b": [cid.split(":")[1].split("-vs-")[0] for cid in contrast_ids],
            "samples_a": [["GSM1"]] * n_contrasts,
            "samples_b": [["GSM2"]] * n_contrasts,
            "runs_a": pl.Series([[]] * n_contrasts, dtype=pl.List(pl.Utf8)),
            "runs_b": pl.Series([[]] * n_contrasts, dtype=pl.List(pl.Utf8)),
            "mode": ["degae"] * n_contrasts,
        }
    )
    term_factor = np.arange(n_terms) % n_factors
    term_sign = np.where(np.arange(n_terms) // n_factors % 2 == 0, 1.0, -1.0)
    score = factors[:, term_factor] * term_sign
    fwer = np.where(score > 0.5, 0.001, 0.9)
    ci, ti = np.nonzero(np.ones_like(fwer, dtype=bool))
    go = pl.DataFrame(
        {
            "contrast_id": [contrast_ids[c] for c in ci],
            "go_id": [f"GO:{t:07d}" for t in ti],
            "n_de_in_term": np.full(len(ci), 3, dtype=np.int32),
            "n_in_term": np.full(len(ci), 10, dtype=np.int32),
            "n_de": np.full(len(ci), 30, dtype=np.int32),
            "n_tested": np.full(len(ci), n_genes, dtype=np.int32),
            "p_over": fwer[ci, ti] / 10,
            "p_under": np.full(len(ci), 0.5),
            "fdr_over": fwer[ci, ti] / 2,
            "fwer_over": fwer[ci, ti],
            "fwer_under": np.full(len(ci), 1.0),
        }
    )
    runs = [RunRow(cid, "done", n_genes=n_genes) for cid in contrast_ids]
    skipped = pl.DataFrame(
        {"contrast_id": ["GSE9999:b-vs-a"], "status": ["skipped"], "reason": ["no DE genes"]}
    )
    with Warehouse.open(path, write=True, create=True) as wh, wh.transaction():
        wh.insert("core.genes", genes)
        wh.insert("core.contrasts", contrasts)
        write_de_results(wh, de, runs, source="degae", config=None)
        wh.insert("core.de_runs", skipped.with_columns(pl.lit("degae").alias("source")))
        wh.insert("core.go_enrichment", go)
    return path
