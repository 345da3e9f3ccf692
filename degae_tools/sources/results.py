"""Reader for precomputed GO enrichment from the R pipeline: GOfuncR `go_enrich(...)$results`
tables (TSV or CSV, R's column names). DE tables (limma, DESeq2, edgeR) are `de_tables`'."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from degae_tools.errors import ResultTableError
from degae_tools.sources.de_tables import read_r_table

GOFUNCR_COLUMNS = ("node_id", "raw_p_underrep", "raw_p_overrep", "FWER_underrep", "FWER_overrep")


def read_gofuncr(path: str | Path) -> pl.DataFrame:
    """`go_id, p_under, p_over, fwer_under, fwer_over` from a GOfuncR results table."""
    path = Path(path)
    table = read_r_table(path, ResultTableError)
    missing = [c for c in GOFUNCR_COLUMNS if c not in table.columns]
    if missing:
        raise ResultTableError(
            path, 1, f"expected columns {list(GOFUNCR_COLUMNS)}, missing {missing}"
        )
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
