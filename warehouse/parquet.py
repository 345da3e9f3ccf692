"""Parquet exports of the warehouse for other engines (Spark, Polars, pandas, DuckDB elsewhere).

`core.de_results` is partitioned by series (`gse=…/`), the `ml.*` tables by model; everything
else is one file per table. An export goes to a temporary folder and is renamed into place, so
a reader never sees half an export.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

# table → (SELECT list, partition column or None). Only these names ever reach SQL.
EXPORTS: dict[str, tuple[str, str | None]] = {
    "core.de_results": ("split_part(contrast_id, ':', 1) AS gse, *", "gse"),
    "core.go_enrichment": ("split_part(contrast_id, ':', 1) AS gse, *", "gse"),
    "core.contrasts": ("*", None),
    "core.included_datasets": ("*", None),
    "core.genes": ("*", None),
    "core.go_terms": ("*", None),
    "ml.models": ("*", None),
    "ml.history": ("*", "model_id"),
    "ml.embeddings": ("*", "model_id"),
    "ml.reconstruction": ("*", None),
    "ml.go_metrics": ("*", "model_id"),
    "ml.go_predictions": ("*", "model_id"),
    "ml.gene_attributions": ("*", "model_id"),
    "ml.term_genes": ("*", "model_id"),
}


def sql_string(value: str) -> str:
    """A SQL string literal (COPY takes its target as a literal, not a parameter)."""
    return "'" + value.replace("'", "''") + "'"


def export_parquet(
    con: duckdb.DuckDBPyConnection, out_dir: Path, tables: list[str] | None = None
) -> dict[str, int]:
    """Write the chosen tables (default: all of EXPORTS) under `out_dir/<schema>.<table>/`."""
    chosen = list(EXPORTS) if not tables else tables
    unknown = sorted(set(chosen) - set(EXPORTS))
    if unknown:
        raise ValueError(f"cannot export {unknown}; choose from {sorted(EXPORTS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {}
    for table in chosen:
        select, partition = EXPORTS[table]
        target = out_dir / table
        tmp = out_dir / f".{table}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        n = con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        options = "FORMAT parquet, COMPRESSION zstd"
        if partition and n:
            options += f", PARTITION_BY ({partition})"
            con.execute(
                f"COPY (SELECT {select} FROM {table}) TO {sql_string(str(tmp))} ({options})"
            )
        else:
            tmp.mkdir()
            path = sql_string(str(tmp / "data.parquet"))
            con.execute(f"COPY (SELECT {select} FROM {table}) TO {path} ({options})")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        rows[table] = int(n)
    return rows
