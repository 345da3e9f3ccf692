"""Write DE and GO results: one short transaction per chunk of contrasts, results and run rows
together, so a killed run never leaves a partial contrast and a rerun skips finished ones."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import duckdb
import polars as pl

from warehouse.load import transaction, upsert


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
    with transaction(con) if transactional else nullcontext():
        ids = [r.contrast_id for r in runs]
        for table in ("core.de_results", "core.go_enrichment", "core.go_runs"):
            con.execute(f"DELETE FROM {table} WHERE contrast_id IN (SELECT unnest(?))", [ids])
        if results:
            frame = pl.concat(results)
            con.register("de_in", frame.to_arrow())
            con.execute("INSERT INTO core.de_results BY NAME SELECT * FROM de_in")
            con.unregister("de_in")
        upsert(con, "core.de_runs", _runs_frame(runs, DE_RUN_SCHEMA, source, config))


def write_go(
    con: duckdb.DuckDBPyConnection,
    results: list[pl.DataFrame],
    runs: list[RunRow],
    source: str,
    config: str,
    transactional: bool = True,
) -> None:
    """Replace the GO enrichment of these contrasts and record their runs, atomically."""
    with transaction(con) if transactional else nullcontext():
        ids = [r.contrast_id for r in runs]
        con.execute("DELETE FROM core.go_enrichment WHERE contrast_id IN (SELECT unnest(?))", [ids])
        if results:
            frame = pl.concat(results)
            con.register("go_in", frame.to_arrow())
            con.execute("INSERT INTO core.go_enrichment BY NAME SELECT * FROM go_in")
            con.unregister("go_in")
        upsert(con, "core.go_runs", _runs_frame(runs, GO_RUN_SCHEMA, source, config))
