"""Reader for the DE tables R users write: limma `topTable`, DESeq2 `results()` and edgeR
`topTags`, told apart by their column names (TSV or CSV, plain or gzip).

R's `write.table(res, sep="\t", quote=FALSE)` writes a header one field shorter than the rows
(no cell above the row names); DESeq2's row names may carry the symbol after the Ensembl ID
(`ENSG00000000003 TSPAN6`); `NA` marks a p-value DESeq2 filtered. Every format comes out in
degae's column names (`core.de_results`), and `z` is a signed normal score comparable across
formats: DESeq2's Wald `stat`, or, for limma and edgeR, the normal quantile of the two-sided
p-value with the sign of the fold change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
from scipy import stats

from degae_tools.errors import ResultTableError
from degae_tools.sources import OnReject, Rejection, read_bytes

# Columns that identify each format (every one must be present), and how each maps onto
# core.de_results. Checked in this order: DESeq2 and edgeR before limma (edgeR also has logFC).
FORMATS: dict[str, tuple[str, ...]] = {
    "deseq2": ("baseMean", "log2FoldChange", "pvalue", "padj"),
    "edger": ("logFC", "logCPM", "PValue", "FDR"),
    "limma": ("logFC", "AveExpr", "t", "P.Value", "adj.P.Val"),
}
COLUMNS: dict[str, dict[str, str]] = {
    "deseq2": {"log2FoldChange": "log_fc", "stat": "z", "pvalue": "p_value", "padj": "adj_p_value"},
    "edger": {"logFC": "log_fc", "logCPM": "ave_expr", "PValue": "p_value", "FDR": "adj_p_value"},
    "limma": {
        "logFC": "log_fc",
        "AveExpr": "ave_expr",
        "t": "t",
        "P.Value": "p_value",
        "adj.P.Val": "adj_p_value",
        "B": "b",
    },
}
VALUES = ("log_fc", "ave_expr", "t", "z", "p_value", "adj_p_value", "b")
ID_COLUMNS = ("ID", "gene_id", "gene", "genes", "GeneID", "Row.names", "SYMBOL", "symbol")
# Which column says a gene's direction, for the signed score of formats without a statistic.
SIGN_OF = {"deseq2": "log_fc", "edger": "log_fc", "limma": "t"}
SMALLEST_P = 1e-300  # p-values below it (or 0) give the largest finite normal score


@dataclass(frozen=True)
class DETable:
    """One DE table in degae's columns: `line, gene, symbol` and every value column in `VALUES`
    (null where the format has none), with the format it was read as."""

    path: Path
    format: str
    rows: pl.DataFrame

    @property
    def value_kinds(self) -> tuple[str, ...]:
        """The value columns this table fills."""
        return tuple(c for c in VALUES if self.rows[c].null_count() < self.rows.height)


def read_de_table(path: str | Path, on_reject: OnReject | None = None) -> DETable:
    """The table at `path`, its format detected from the header. Rows whose numbers cannot be
    read are reported to `on_reject` with their line and left out."""
    path = Path(path)
    table = read_r_table(path, ResultTableError)
    fmt = detect_format(path, table.columns)
    gene, symbol = gene_names(path, table)
    renamed = [pl.col(k).alias(v) for k, v in COLUMNS[fmt].items() if k in table.columns]
    rows = table.select(
        pl.int_range(2, table.height + 2, dtype=pl.Int64).alias("line"),
        gene.alias("gene"),
        symbol.alias("symbol"),
        *renamed,
    )
    rows = numeric(path, rows, on_reject or (lambda r: None))
    rows = rows.with_columns(
        *(pl.lit(None, dtype=pl.Float64).alias(c) for c in VALUES if c not in rows.columns)
    )
    if fmt != "deseq2" or rows["z"].null_count() == rows.height:
        rows = rows.with_columns(signed_normal_score(rows, SIGN_OF[fmt]).alias("z"))
    return DETable(path, fmt, rows.select("line", "gene", "symbol", *VALUES))


def read_r_table(path: Path, error: type[ResultTableError]) -> pl.DataFrame:
    """A table as R's `write.table` or `write.csv` writes it, every cell a string (`NA` null);
    the row names' column, which has no header cell, is named `ID`."""
    data = read_bytes(path, error)
    if not data.strip():
        raise error(path, 1, "empty file")
    lines = data.split(b"\n", 2)
    first = lines[0].decode("utf-8", "replace")
    sep = "\t" if "\t" in first else ","
    if len(lines) > 1 and lines[1].count(sep.encode()) == first.count(sep) + 1:
        # write.table(row.names = TRUE, col.names = TRUE) omits the row names' header cell.
        data = b"ID" + sep.encode() + data
    try:
        table = pl.read_csv(data, separator=sep, infer_schema=False, null_values=["NA", ""])
    except pl.exceptions.PolarsError as exc:
        raise error(path, None, f"not a {sep!r}-separated table: {exc}") from exc
    header = [c.strip().strip('"') for c in table.columns]
    # write.table(row.names = TRUE) leaves the first header cell empty: that column holds the IDs.
    if header and header[0] == "":
        header[0] = "ID"
    table.columns = header
    return table


def detect_format(path: Path, columns: list[str]) -> str:
    """`deseq2`, `edger` or `limma`, from the column names."""
    for fmt, required in FORMATS.items():
        if all(c in columns for c in required):
            return fmt
    expected = "; ".join(f"{fmt}: {', '.join(cols)}" for fmt, cols in FORMATS.items())
    raise ResultTableError(
        path,
        1,
        f"not a DE table R writes: expected the columns of one of ({expected}), got {columns[:8]}",
    )


def gene_names(path: Path, table: pl.DataFrame) -> tuple[pl.Expr, pl.Expr]:
    """The gene ID (the first word of the ID column: `ENSG… SYMBOL` row names carry both, an
    Ensembl version suffix dropped) and the symbol after it, if any."""
    id_columns = [c for c in ID_COLUMNS if c in table.columns]
    if not id_columns:
        raise ResultTableError(path, 1, f"no gene ID column ({', '.join(ID_COLUMNS)}) or row names")
    words = pl.col(id_columns[0]).str.strip_chars().str.splitn(" ", 2)
    gene = words.struct.field("field_0").str.replace(r"^(ENS[A-Z]*G\d+)\.\d+$", "${1}")
    return gene, words.struct.field("field_1").str.strip_chars()


def numeric(path: Path, rows: pl.DataFrame, on_reject: OnReject) -> pl.DataFrame:
    """The value columns as floats; a row with a cell that is not a number is rejected."""
    columns = [c for c in rows.columns if c in VALUES]
    cast = rows.with_columns(pl.col(columns).cast(pl.Float64, strict=False))
    bad = pl.any_horizontal(
        [rows[c].is_not_null() & cast[c].is_null() for c in columns] or [pl.lit(False)]
    )
    rejected = rows.filter(bad)
    for row in rejected.iter_rows(named=True):
        cells = {c: row[c] for c in columns}
        on_reject(Rejection(str(path), row["line"], "not a number in a value column", str(cells)))
    return cast.filter(~bad)


def signed_normal_score(rows: pl.DataFrame, sign_column: str) -> pl.Series:
    """sign · Φ⁻¹(1 − p/2): the z a two-sided p-value stands for, signed like the fold change."""
    p = rows["p_value"].to_numpy().clip(SMALLEST_P, 1.0)
    sign = rows[sign_column].fill_null(0.0).to_numpy()
    score = stats.norm.isf(p / 2) * ((sign > 0).astype(float) - (sign < 0).astype(float))
    return pl.Series("z", score, dtype=pl.Float64).fill_nan(None)
