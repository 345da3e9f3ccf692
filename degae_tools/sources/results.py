"""Readers for precomputed results from the R pipeline: limma `topTable` exports and GOfuncR
`go_enrich(...)$results` tables (TSV or CSV, R's column names)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from degae_tools.errors import ResultTableError
from degae_tools.sources import read_bytes

TOPTABLE_COLUMNS = ("logFC", "AveExpr", "t", "P.Value", "adj.P.Val")
GOFUNCR_COLUMNS = ("node_id", "raw_p_underrep", "raw_p_overrep", "FWER_underrep", "FWER_overrep")


def _read_table(path: Path, required: tuple[str, ...]) -> pl.DataFrame:
    data = read_bytes(path, ResultTableError)
    if not data.strip():
        raise ResultTableError(path, 1, "empty file")
    lines = data.split(b"\n", 2)
    first = lines[0].decode("utf-8", "replace")
    sep = "\t" if "\t" in first else ","
    if len(lines) > 1 and lines[1].count(sep.encode()) == first.count(sep) + 1:
        # write.table(row.names = TRUE, col.names = TRUE) omits the row names' header cell.
        data = b"ID" + sep.encode() + data
    try:
        table = pl.read_csv(data, separator=sep, infer_schema=False, null_values=["NA", ""])
    except pl.exceptions.PolarsError as exc:
        raise ResultTableError(path, None, f"not a {sep!r}-separated table: {exc}") from exc
    header = [c.strip().strip('"') for c in table.columns]
    # write.table(row.names = TRUE) leaves the first header cell empty: that column holds the IDs.
    if header and header[0] == "":
        header[0] = "ID"
    table.columns = header
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ResultTableError(path, 1, f"expected columns {list(required)}, missing {missing}")
    return table


def read_toptable(path: str | Path) -> pl.DataFrame:
    """`gene, log_fc, ave_expr, t, p_value, adj_p_value, b` from a limma topTable export.

    The gene column is `ID`, `gene`, `gene_id`, `GeneID`, `SYMBOL` or the row names.
    """
    path = Path(path)
    table = _read_table(path, TOPTABLE_COLUMNS)
    id_columns = [c for c in ("ID", "gene_id", "gene", "GeneID", "SYMBOL", "symbol") if c in table]
    if not id_columns:
        raise ResultTableError(path, 1, "no gene ID column (ID, gene_id, gene, GeneID, SYMBOL)")
    renamed = {
        "logFC": "log_fc",
        "AveExpr": "ave_expr",
        "t": "t",
        "P.Value": "p_value",
        "adj.P.Val": "adj_p_value",
    }
    out = table.select(
        pl.col(id_columns[0]).alias("gene"),
        *(pl.col(k).alias(v) for k, v in renamed.items()),
        (pl.col("B") if "B" in table.columns else pl.lit(None)).alias("b"),
    )
    numeric = ["log_fc", "ave_expr", "t", "p_value", "adj_p_value", "b"]
    try:
        return out.with_columns(pl.col(numeric).cast(pl.Float64, strict=True))
    except pl.exceptions.PolarsError as exc:
        raise ResultTableError(path, None, f"non-numeric value in a numeric column: {exc}") from exc


def read_gofuncr(path: str | Path) -> pl.DataFrame:
    """`go_id, p_under, p_over, fwer_under, fwer_over` from a GOfuncR results table."""
    path = Path(path)
    table = _read_table(path, GOFUNCR_COLUMNS)
    out = table.select(
        pl.col("node_id").alias("go_id"),
        pl.col("raw_p_underrep").alias("p_under"),
        pl.col("raw_p_overrep").alias("p_over"),
        pl.col("FWER_underrep").alias("fwer_under"),
        pl.col("FWER_overrep").alias("fwer_over"),
    )
    bad = out.filter(~pl.col("go_id").str.contains(r"^GO:\d{7}$"))
    if bad.height:
        raise ResultTableError(path, None, f"not a GO ID in node_id: {bad['go_id'][0]!r}")
    try:
        return out.with_columns(pl.exclude("go_id").cast(pl.Float64, strict=True))
    except pl.exceptions.PolarsError as exc:
        raise ResultTableError(path, None, f"non-numeric p-value: {exc}") from exc
