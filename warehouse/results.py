"""Write DE and GO results: one short transaction per chunk of contrasts, results and run rows
together, so a killed run never leaves a partial contrast and a rerun skips finished ones."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import duckdb
import polars as pl

from degae_tools.sources import Rejection
from warehouse.connect import transaction
from warehouse.load import record_rejections, upsert


@dataclass(frozen=True)
class RunRow:
    """The outcome of one contrast in one stage: done or skipped, with the reason."""

    contrast_id: str
    status: str
    reason: str | None = None
    inputs_hash: str | None = None
    n_de: int | None = None
    n_genes: int | None = None
    n_terms_tested: int | None = None
    n_enriched: int | None = None


DE_RUN_SCHEMA = {
    "contrast_id": pl.Utf8,
    "status": pl.Utf8,
    "reason": pl.Utf8,
    "source": pl.Utf8,
    "inputs_hash": pl.Utf8,
    "n_genes": pl.Int32,
    "n_de": pl.Int32,
    "config": pl.Utf8,
}
GO_RUN_SCHEMA = {
    "contrast_id": pl.Utf8,
    "status": pl.Utf8,
    "reason": pl.Utf8,
    "source": pl.Utf8,
    "n_de": pl.Int32,
    "n_terms_tested": pl.Int32,
    "n_enriched": pl.Int32,
    "config": pl.Utf8,
    "inputs_hash": pl.Utf8,
}


def _runs_frame(rows: list[RunRow], schema: dict, source: str, config: str) -> pl.DataFrame:
    records = [
        {k: getattr(r, k) for k in schema if hasattr(r, k)} | {"source": source, "config": config}
        for r in rows
    ]
    return pl.DataFrame(records, schema=schema)


def write_de(
    con: duckdb.DuckDBPyConnection,
    results: list[pl.DataFrame],
    runs: list[RunRow],
    source: str,
    config: str,
    transactional: bool = True,
) -> None:
    """Replace the DE results of these contrasts and record their runs, atomically.

    Their GO enrichment is dropped in the same transaction: it described the old results.
    `transactional=False` when the caller already holds a transaction.
    """
    runs_frame = _runs_frame(runs, DE_RUN_SCHEMA, source, config)
    stale = ("core.go_enrichment", "core.go_runs")
    with transaction(con) if transactional else nullcontext():
        _replace(con, "core.de_results", "core.de_runs", results, runs_frame, stale)
        _record_skips(con, runs, "de")


def write_go(
    con: duckdb.DuckDBPyConnection,
    results: list[pl.DataFrame],
    runs: list[RunRow],
    source: str,
    config: str,
    transactional: bool = True,
) -> None:
    """Replace the GO enrichment of these contrasts and record their runs, atomically."""
    runs_frame = _runs_frame(runs, GO_RUN_SCHEMA, source, config)
    with transaction(con) if transactional else nullcontext():
        _replace(con, "core.go_enrichment", "core.go_runs", results, runs_frame, ())
        _record_skips(con, runs, "go")


def _replace(
    con: duckdb.DuckDBPyConnection,
    table: str,
    runs_table: str,
    results: list[pl.DataFrame],
    runs: pl.DataFrame,
    stale: tuple[str, ...],
) -> None:
    """Delete the runs' contrasts from `table` (and `stale`), insert `results`, upsert `runs`."""
    # Table names are this module's constants, never text from a file.
    ids = runs["contrast_id"].to_list()
    for name in (table, *stale):
        con.execute(f"DELETE FROM {name} WHERE contrast_id IN (SELECT unnest(?))", [ids])
    if results:
        con.register("results_in", pl.concat(results).to_arrow())
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM results_in")
        con.unregister("results_in")
    upsert(con, runs_table, runs)


def _record_skips(con: duckdb.DuckDBPyConnection, runs: list[RunRow], stage: str) -> None:
    """A raw.rejected row for every skipped contrast, with its reason (earlier ones replaced)."""
    ids = [r.contrast_id for r in runs]
    con.execute(
        "DELETE FROM raw.rejected WHERE stage = ? AND source IN (SELECT unnest(?))", [stage, ids]
    )
    skipped = [
        Rejection(r.contrast_id, 0, r.reason or "", None) for r in runs if r.status != "done"
    ]
    record_rejections(con, skipped, stage)
