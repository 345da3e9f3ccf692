"""Reader for an NCBI gene ID table (`GeneID Symbol Ensembl [GeneType]`, tab-separated, `-` where
a gene has no Ensembl ID), the bridge between Entrez IDs, symbols and Ensembl gene IDs."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from degae_tools.errors import SignatureFileError
from degae_tools.sources import read_bytes

REQUIRED = ("GeneID", "Symbol", "Ensembl")
# Ensembl gene IDs of each species start with these letters (ENSG: human, ENSMUSG: mouse).
ENSEMBL_PREFIX = {"hsapiens": "ENSG0", "mmusculus": "ENSMUSG"}


def read_gene_table(path: str | Path) -> pl.DataFrame:
    """`entrez, symbol, gene_id` (Ensembl) rows in file order, rows without an Ensembl ID dropped.

    NCBI lists a gene once per Ensembl ID (alternative haplotypes give several), so an Entrez ID
    may have several rows; the first is the primary assembly's in NCBI's own files."""
    path = Path(path)
    data = read_bytes(path, SignatureFileError)
    try:
        table = pl.read_csv(data, separator="\t", infer_schema=False, quote_char=None)
    except pl.exceptions.PolarsError as exc:
        raise SignatureFileError(path, None, f"not a tab-separated gene table: {exc}") from exc
    table = table.rename({c: c.lstrip("#") for c in table.columns})
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise SignatureFileError(
            path,
            1,
            f"expected the columns {list(REQUIRED)} of an NCBI gene ID table, missing {missing}",
        )
    return table.select(
        pl.col("GeneID").alias("entrez"),
        pl.col("Symbol").alias("symbol"),
        pl.col("Ensembl").alias("gene_id"),
    ).filter(pl.col("gene_id").is_not_null() & (pl.col("gene_id") != "-"))


def species_of(table: pl.DataFrame) -> str | None:
    """The species whose Ensembl IDs the table holds (most of them), or None when unknown."""
    for species, prefix in ENSEMBL_PREFIX.items():
        if table.height and table["gene_id"].str.starts_with(prefix).mean() > 0.5:
            return species
    return None
