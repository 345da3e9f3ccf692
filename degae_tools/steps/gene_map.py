"""Genes named by a foreign file (Entrez IDs, symbols or Ensembl IDs) mapped onto `core.genes`.

`core.genes` is keyed by Ensembl gene ID with a stable `gene_index`, for every species at once
(`species` says which). A name is first looked up among the warehouse's own genes of the species
(Ensembl ID, symbol, or an Entrez ID of `core.gene_xrefs`); the rest go through an NCBI gene
table (GeneID → Ensembl): a gene the warehouse lacks is added with the next `gene_index`, and its
Entrez IDs are recorded in `core.gene_xrefs`, so GO annotations by Entrez ID (gene2go) reach it.
So an L1000 column `7157` and a DESeq2 row `ENSG00000141510 TP53` land on one `gene_index`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from degae_tools.errors import SignatureFileError
from degae_tools.sources.gene_table import ENSEMBL_PREFIX, read_gene_table, species_of
from warehouse import Query, Warehouse

KNOWN_GENES = Query("signatures/known_genes")
LOADED_GENE_TABLES = Query("signatures/loaded_gene_tables")
SPECIES = {"human": "hsapiens", "mouse": "mmusculus"}
SYSTEMS = ("entrez", "symbol", "ensembl")
# The table `import-signatures` looks for beside its file when none is given (NCBI's, human).
DEFAULT_TABLE = {"hsapiens": "human_gene_ids.tsv.gz"}
GENE_COLUMNS = {
    "gene_index": pl.Int32,
    "gene_id": pl.Utf8,
    "symbol": pl.Utf8,
    "length": pl.Int32,
    "species": pl.Utf8,
}


@dataclass(frozen=True)
class GeneMapping:
    """Where each name went: its `gene_index` (-1: unmapped, with the reason), and the genes and
    cross-references to add to the warehouse for it."""

    names: list[str]
    gene_index: np.ndarray
    reasons: list[str | None]
    new_genes: pl.DataFrame
    xrefs: pl.DataFrame

    @property
    def mapped(self) -> np.ndarray:
        return self.gene_index >= 0

    @property
    def n_unmapped(self) -> int:
        return int((~self.mapped).sum())


def map_genes(
    wh: Warehouse,
    names: list[str],
    system: str,
    species: str,
    table: pl.DataFrame | None,
    symbols: list[str | None] | None = None,
) -> GeneMapping:
    """Map `names` (of the gene ID `system`) onto the warehouse's genes of `species`, through the
    gene `table` (`read_gene_table`) for those it lacks. `symbols` name new genes added by
    Ensembl ID when the table does not (a DESeq2 row name carries one)."""
    if system not in SYSTEMS:
        raise ValueError(f"gene ID system {system!r}; expected one of {SYSTEMS}")
    known = wh.frame(KNOWN_GENES, {"species": species})
    names_frame = pl.DataFrame({"name": names, "symbol_given": symbols or [None] * len(names)})
    chosen = _known(names_frame, known, system)
    chosen = _through_table(chosen, known, table, system, species)
    start = int(wh.scalar("SELECT coalesce(max(gene_index) + 1, 0) FROM core.genes"))
    return _assign(chosen, known, table, species, start)


def _known(names: pl.DataFrame, known: pl.DataFrame, system: str) -> pl.DataFrame:
    """`names` with the `gene_id` of the warehouse's gene each one names (null: none)."""
    key = {"ensembl": "gene_id", "symbol": "symbol", "entrez": "entrez"}[system]
    lookup = (
        known.filter(pl.col(key).is_not_null())
        .sort("gene_index")
        .unique(key, keep="first", maintain_order=True)
        .select(pl.col(key).alias("name"), pl.col("gene_id").alias("known_id"))
    )
    return names.join(lookup, on="name", how="left", maintain_order="left")


def _through_table(
    names: pl.DataFrame, known: pl.DataFrame, table: pl.DataFrame | None, system: str, species: str
) -> pl.DataFrame:
    """The Ensembl ID of every name: the warehouse's, else the table's (preferring an ID the
    warehouse already has when the table lists several), else the name itself when it is an
    Ensembl ID of the species."""
    key = {"ensembl": "gene_id", "symbol": "symbol", "entrez": "entrez"}[system]
    if table is not None and table.height:
        known_ids = known.select("gene_id").unique().with_columns(pl.lit(0).alias("_known_first"))
        candidates = (
            table.with_row_index("_row")
            .join(known_ids, on="gene_id", how="left")
            .sort(pl.col("_known_first").fill_null(1), "_row")
            .unique(key, keep="first", maintain_order=True)
            .select(pl.col(key).alias("name"), pl.col("gene_id").alias("table_id"))
        )
        names = names.join(candidates, on="name", how="left", maintain_order="left")
    else:
        names = names.with_columns(pl.lit(None, dtype=pl.Utf8).alias("table_id"))
    own_ensembl = pl.lit(None, dtype=pl.Utf8)
    if system == "ensembl":
        prefix = ENSEMBL_PREFIX.get(species, "ENS")
        own_ensembl = pl.when(pl.col("name").str.starts_with(prefix)).then(pl.col("name"))
    return names.with_columns(pl.coalesce("known_id", "table_id", own_ensembl).alias("gene_id"))


def _assign(
    names: pl.DataFrame, known: pl.DataFrame, table: pl.DataFrame | None, species: str, start: int
) -> GeneMapping:
    """gene_index per name (known genes keep theirs, new ones count up from `start`); a second
    name of a gene already named is unmapped, so no gene gets two values."""
    indexes = dict(zip(known["gene_id"], known["gene_index"], strict=True))
    symbol_of = {} if table is None else dict(zip(table["gene_id"], table["symbol"], strict=False))
    gene_index = np.full(names.height, -1, dtype=np.int64)
    reasons: list[str | None] = []
    first_name: dict[str, str] = {}
    new_rows = []
    for i, (name, given, gene_id) in enumerate(
        names.select("name", "symbol_given", "gene_id").iter_rows()
    ):
        if gene_id is None:
            reasons.append(_why_unmapped(table))
            continue
        if gene_id in first_name:
            reasons.append(f"the same gene ({gene_id}) as {first_name[gene_id]}")
            continue
        first_name[gene_id] = name
        if gene_id not in indexes:
            indexes[gene_id] = start + len(new_rows)
            new_rows.append(
                (indexes[gene_id], gene_id, symbol_of.get(gene_id) or given, None, species)
            )
        gene_index[i] = indexes[gene_id]
        reasons.append(None)
    new_genes = pl.DataFrame(new_rows, schema=GENE_COLUMNS, orient="row")
    mapped_ids = pl.DataFrame({"gene_id": list(first_name)}, schema={"gene_id": pl.Utf8})
    return GeneMapping(
        list(names["name"]), gene_index, reasons, new_genes, _xrefs(mapped_ids, indexes, table)
    )


def _why_unmapped(table: pl.DataFrame | None) -> str:
    if table is None:
        return "unmapped gene: not among the warehouse's genes, and no gene table (--gene-table)"
    return "unmapped gene: not in the warehouse or the gene table (or no Ensembl ID there)"


def _xrefs(
    mapped: pl.DataFrame, indexes: dict[str, int], table: pl.DataFrame | None
) -> pl.DataFrame:
    """`gene_index, entrez` of every mapped gene, from the table (the bridge gene2go needs)."""
    schema = {"gene_index": pl.Int32, "entrez": pl.Utf8}
    if table is None or not mapped.height:
        return pl.DataFrame(schema=schema)
    rows = table.join(mapped, on="gene_id", how="semi").select("gene_id", "entrez").unique()
    index = pl.Series([indexes[g] for g in rows["gene_id"]], dtype=pl.Int32)
    return rows.select(pl.lit(index).alias("gene_index"), "entrez").cast(schema)


def write_genes(wh: Warehouse, mapping: GeneMapping) -> None:
    """Add the mapping's new genes and cross-references (inside the caller's transaction)."""
    wh.insert("core.genes", mapping.new_genes)
    wh.upsert("core.gene_xrefs", mapping.xrefs)


def gene_table(
    wh: Warehouse, given: str | Path | None, near: Path, species: str
) -> tuple[pl.DataFrame | None, str | None]:
    """The gene table to map through, and its path: `given`, else a gene ID table of the species
    that ingest loaded, else `human_gene_ids.tsv.gz` in the folder of `near` or one above it.
    (None, None) when there is none: names then map onto the warehouse's genes only."""
    if given is not None:
        table = read_gene_table(given)
        found = species_of(table)
        if found not in (species, None):
            raise SignatureFileError(
                given,
                None,
                f"a gene table of {found} genes, but the import is of {species} "
                "genes: give the table of the import's species (--gene-table, --species)",
            )
        return table, str(given)
    for path in _candidate_tables(wh, near, species):
        table = read_gene_table(path)
        if species_of(table) == species:
            return table, str(path)
    return None, None


def _candidate_tables(wh: Warehouse, near: Path, species: str) -> list[Path]:
    loaded = [Path(p) for (p,) in wh.rows(LOADED_GENE_TABLES)]
    default = DEFAULT_TABLE.get(species)
    folders = [near.resolve().parent, *list(near.resolve().parents)[1:3]]
    beside = [folder / default for folder in folders] if default else []
    return [p for p in loaded + beside if p.is_file()]
