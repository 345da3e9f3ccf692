"""Bytes per stored DE row, before and after the compact layout, and one contrast's query time.

    python bench/storage.py --db /tmp/degae-bench/7130x48978/degae.duckdb

On a warehouse with DE results (bench/pipeline.py --keep leaves one at the study's size):
1. The whole table: the blocks core.de_values takes on disk (pragma_storage_info), per row and
   per column.
2. Before and after on the same rows: `--sample` contrasts fitted again by limma (the `de` step's
   own fit_chunk) and written into two fresh files: one in the old layout (a table of text
   contrast IDs and DOUBLE statistics, contrast after contrast in gene order, as the old writer
   appended them) and one by the writer every step uses now (steps/runs.py: write_de_results
   into core.de_values). Bytes each file's data takes (DuckDB's used blocks, less those of the
   same file without the rows) per row.
3. `SELECT * FROM core.de_genes WHERE contrast_id = ...` (and the same on core.de_results) for
   `--queries` random contrasts, fetched as Arrow: wall milliseconds on a fresh read-only
   connection (cold: opening the file included) and on an open one (warm).
Writes bench/results/storage.json (or --out), keyed by the warehouse's row count.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from degae_tools.limma import DEConfig  # noqa: E402
from degae_tools.steps.de import ContrastJob, SeriesJob, fit_chunk  # noqa: E402
from degae_tools.steps.runs import RunRow, write_de_results  # noqa: E402
from warehouse import Warehouse  # noqa: E402

OLD_LAYOUT = """
CREATE TABLE de_results (
    contrast_id VARCHAR NOT NULL, gene_index INTEGER NOT NULL, log_fc DOUBLE, ave_expr DOUBLE,
    t DOUBLE, p_value DOUBLE, adj_p_value DOUBLE, b DOUBLE
)"""
SAMPLE_JOBS = """
SELECT c.gse, f.parquet_path, c.contrast_id, c.runs_a, c.runs_b
FROM core.included_contrasts AS c
JOIN raw.count_files AS f USING (gse)
WHERE c.gse IN (SELECT unnest($series::VARCHAR[]))
ORDER BY c.gse, c.contrast_id
"""
DE_GENES = "SELECT * FROM core.de_genes WHERE contrast_id = $c"
DE_RESULTS = "SELECT * FROM core.de_results WHERE contrast_id = $c"


def table_bytes(con: duckdb.DuckDBPyConnection, table: str) -> dict:
    """Bytes of `table`'s blocks on disk, in all and by column: a segment alone in its block
    counts the block; segments that share one split it by their offsets."""
    block = con.sql("SELECT block_size FROM pragma_database_size()").fetchall()[0][0]
    segments = con.sql(
        f"SELECT column_name, block_id, block_offset FROM pragma_storage_info('{table}') "
        "WHERE persistent AND block_id >= 0 ORDER BY block_id, block_offset"
    ).pl()
    if segments.is_empty():
        return {"total": 0, "by_column": {}, "blocks": 0}
    sizes = segments.with_columns(
        (
            pl.col("block_offset").shift(-1).over("block_id").fill_null(block)
            - pl.col("block_offset")
        ).alias("bytes")
    )
    by_column = sizes.group_by("column_name").agg(pl.col("bytes").sum())
    return {
        "total": int(segments["block_id"].n_unique() * block),
        "blocks": int(segments["block_id"].n_unique()),
        "by_column": dict(zip(by_column["column_name"], by_column["bytes"].to_list(), strict=True)),
    }


def whole_table(db: Path) -> dict:
    """core.de_values as stored in the warehouse: rows, bytes per row, per column."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.sql("SELECT count(*) FROM core.de_values").fetchall()[0][0]
        stored = table_bytes(con, "core.de_values")
    finally:
        con.close()
    per_row = {c: round(b / max(rows, 1), 2) for c, b in sorted(stored["by_column"].items())}
    return {
        "rows": int(rows),
        "bytes": stored["total"],
        "bytes_per_row": round(stored["total"] / max(rows, 1), 2),
        "bytes_per_row_by_column": per_row,
        "file_bytes": db.stat().st_size,
    }


def sample_fit(db: Path, n_contrasts: int, seed: int) -> pl.DataFrame:
    """limma's rows for about `n_contrasts` contrasts of random series, fitted again (full
    double precision, as the step hands them to the writer: each contrast's rows by p-value)."""
    wh = Warehouse.open(db)
    series = [g for (g,) in wh.rows("SELECT DISTINCT gse FROM core.included_contrasts ORDER BY 1")]
    random.Random(seed).shuffle(series)
    per_series = max(wh.scalar("SELECT count(*) FROM core.included_contrasts") / len(series), 1)
    chosen = series[: max(1, round(n_contrasts / per_series))]
    jobs = []
    for (gse,), rows in (
        wh.frame(SAMPLE_JOBS, {"series": chosen})
        .partition_by("gse", as_dict=True, maintain_order=True)
        .items()
    ):
        contrasts = tuple(
            ContrastJob(r["contrast_id"], tuple(r["runs_a"]), tuple(r["runs_b"]), "")
            for r in rows.iter_rows(named=True)
        )
        jobs.append(SeriesJob(gse, str(db.parent / rows["parquet_path"][0]), contrasts))
    result = fit_chunk(jobs, DEConfig())
    return pl.concat(result.results)


def used_bytes(path: Path) -> int:
    con = duckdb.connect(str(path))
    try:
        con.execute("CHECKPOINT")
        used, block = con.sql(
            "SELECT used_blocks, block_size FROM pragma_database_size()"
        ).fetchall()[0]
    finally:
        con.close()
    return int(used) * int(block)


def before_after(values: pl.DataFrame, folder: Path) -> dict:
    """Bytes per row of the same rows in the old layout and in core.de_values."""
    old, new, empty = folder / "old.duckdb", folder / "new.duckdb", folder / "empty.duckdb"
    con = duckdb.connect(str(old))
    con.execute(OLD_LAYOUT)
    con.register("incoming", values.sort("contrast_id", "gene_index").to_arrow())
    con.execute("INSERT INTO de_results BY NAME SELECT * FROM incoming")
    con.close()
    duckdb.connect(str(folder / "old_empty.duckdb")).execute(OLD_LAYOUT).close()
    Warehouse.open(empty, write=True, create=True).close()
    shutil.copy(empty, new)
    ids = values["contrast_id"].unique(maintain_order=True).to_list()
    with Warehouse.open(new, write=True) as wh:
        write_de_results(wh, values, [RunRow(c, "done") for c in ids], source="bench", config=None)
    n = values.height
    old_bytes = used_bytes(old) - used_bytes(folder / "old_empty.duckdb")
    new_bytes = used_bytes(new) - used_bytes(empty)
    con = duckdb.connect(str(new), read_only=True)
    by_column = table_bytes(con, "core.de_values")["by_column"]
    con.close()
    return {
        "contrasts": len(ids),
        "rows": n,
        "before_bytes_per_row": round(old_bytes / n, 2),
        "after_bytes_per_row": round(new_bytes / n, 2),
        "ratio": round(old_bytes / max(new_bytes, 1), 2),
        "after_bytes_per_row_by_column": {c: round(b / n, 2) for c, b in sorted(by_column.items())},
    }


def query_times(db: Path, n_queries: int, seed: int) -> dict:
    """Milliseconds per one-contrast query, cold (new connection) and warm (open connection)."""
    con = duckdb.connect(str(db), read_only=True)
    ids = [c for (c,) in con.sql("SELECT contrast_id FROM core.contrast_keys").fetchall()]
    con.close()
    picked = random.Random(seed).sample(ids, min(n_queries, len(ids)))
    result = {}
    for name, sql in (("de_genes", DE_GENES), ("de_results", DE_RESULTS)):
        cold, warm, rows = [], [], []
        for cid in picked:
            started = time.perf_counter()
            con = duckdb.connect(str(db), read_only=True)
            con.sql(sql, params={"c": cid}).to_arrow_table()
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            rows.append(con.sql(sql, params={"c": cid}).to_arrow_table().num_rows)
            warm.append(time.perf_counter() - started)
            con.close()
        result[name] = {
            "queries": len(picked),
            "rows_median": float(np.median(rows)),
            "cold_ms_median": round(float(np.median(cold)) * 1e3, 1),
            "cold_ms_max": round(float(np.max(cold)) * 1e3, 1),
            "warm_ms_median": round(float(np.median(warm)) * 1e3, 1),
            "warm_ms_max": round(float(np.max(warm)) * 1e3, 1),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=100, help="contrasts fitted for before/after")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "storage.json")
    args = parser.parse_args()
    whole = whole_table(args.db)
    with tempfile.TemporaryDirectory() as tmp:
        compared = before_after(sample_fit(args.db, args.sample, args.seed), Path(tmp))
    queries = query_times(args.db, args.queries, args.seed)
    result = {
        "benchmark": "DE results on disk, before and after the compact layout; one-contrast query",
        "warehouse": str(args.db),
        "whole_table": whole,
        "same_rows_before_after": compared,
        "one_contrast_query": queries,
        "target_bytes_per_row": 16,
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
    }
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = previous.get("runs", {})
    runs[f"{whole['rows']}_rows"] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
