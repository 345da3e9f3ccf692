"""One loader per kind of input file (counts aside: `steps.ingest_counts`), each
`(wh, path, rejected) -> rows written`: it reads the file with its reader in `sources/`, writes
raw.* or core.* rows inside the transaction `steps.ingest.load_file` holds, and appends the rows
it could not use to `rejected` with their line and reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from degae_tools.errors import InputFileError
from degae_tools.sources import Rejection
from degae_tools.sources.dee2 import iter_metadata, read_gene_info
from degae_tools.sources.gaf import iter_gaf, iter_gene2go
from degae_tools.sources.geo import read_series_matrix
from degae_tools.sources.obo import read_obo
from warehouse import Query, Warehouse

CLEAR_GO_ALT_IDS = Query("ingest/clear_go_alt_ids")
CLEAR_GO_EDGES = Query("ingest/clear_go_edges")
CLEAR_GO_TERMS = Query("ingest/clear_go_terms")
GENE_KEYS = Query("ingest/gene_keys")
GENES = Query("ingest/genes")
GO_ALT_IDS = Query("ingest/go_alt_ids")
GO_TERMS = Query("ingest/go_terms")
NEXT_GENE_INDEX = Query("ingest/next_gene_index")

UNKNOWN_GENE = "unknown gene"
UNKNOWN_TERM = "GO ID not in the ontology"
OBSOLETE_TERM = "obsolete GO term"


def load_gene_info(wh: Warehouse, path: Path, rejected: list[Rejection]) -> int:
    """DEE2 GeneInfo.tsv → core.genes; new genes get the next gene_index, known ones keep theirs."""
    genes = read_gene_info(path, on_reject=rejected.append)
    start = wh.scalar(NEXT_GENE_INDEX)
    new = genes.join(wh.frame(GENES), on="gene_id", how="anti")
    new = new.with_columns(
        pl.int_range(start, start + new.height, dtype=pl.Int32).alias("gene_index"),
        pl.lit(species_from_name(path)).alias("species"),
    )
    return wh.upsert(
        "core.genes", new.select("gene_index", "gene_id", "symbol", "length", "species")
    )


def species_from_name(path: Path) -> str:
    """`mmusculus` from `mmusculus_metadata.tsv.cut`; mouse by default (degae's compendium)."""
    head = path.name.split("_")[0]
    return head if head.isalpha() and head.islower() and len(head) > 3 else "mmusculus"


def load_gene_xrefs(wh: Warehouse, path: Path, rejected: list[Rejection]) -> int:
    """An NCBI ID table (`GeneID Symbol Ensembl ...`) → core.gene_xrefs for genes we know."""
    table = pl.read_csv(path, separator="\t", infer_schema=False, quote_char=None)
    needed = {"GeneID", "Ensembl"}
    if not needed <= set(table.columns):
        raise InputFileError(path, 1, f"expected columns {sorted(needed)}, got {table.columns}")
    xrefs = (
        table.select(pl.col("GeneID").alias("entrez"), pl.col("Ensembl").alias("gene_id"))
        .join(wh.frame(GENES), on="gene_id", how="inner")
        .select(pl.col("gene_index").cast(pl.Int32), "entrez")
        .unique()
    )
    return wh.upsert("core.gene_xrefs", xrefs)


def load_dee2_metadata(wh: Warehouse, path: Path, rejected: list[Rejection]) -> int:
    """DEE2 metadata (species `.tsv.cut` or a bundle's MetadataSummary.tsv) → raw.dee2_runs.
    A run listed twice keeps its first line; the later ones are rejected."""
    first_line: dict[str, int] = {}
    n = 0
    for batch in iter_metadata(path, on_reject=rejected.append):
        repeated = ~batch["srr"].is_first_distinct() | batch["srr"].is_in(list(first_line))
        first_line.update(batch.filter(~repeated).select("srr", "line").rows())
        for srr, line in batch.filter(repeated).select("srr", "line").rows():
            reason = f"run {srr} listed again (first at line {first_line[srr]})"
            rejected.append(Rejection(str(path), line, reason, srr))
        batch = batch.filter(~repeated)
        runs = batch.drop("line").with_columns(pl.lit(str(path)).alias("source_file"))
        n += wh.upsert("raw.dee2_runs", runs)
    return n


def load_series_matrix(wh: Warehouse, path: Path, rejected: list[Rejection]) -> int:
    """GEO series matrix → raw.geo_series, raw.geo_samples, raw.geo_characteristics (replaced)."""
    sm = read_series_matrix(path)
    series = pl.DataFrame(
        {"gse": [sm.gse], "title": [sm.title], "platforms": [sm.platforms]},
        schema={"gse": pl.Utf8, "title": pl.Utf8, "platforms": pl.List(pl.Utf8)},
    )
    wh.upsert("raw.geo_series", series.with_columns(pl.lit(str(path)).alias("source_file")))
    samples = sm.samples.with_row_index("position").with_columns(
        pl.lit(sm.gse).alias("gse"), pl.col("position").cast(pl.Int32)
    )
    wh.replace_rows(
        "raw.geo_samples",
        samples.select("gse", "gsm", "position", "title", "source_name"),
        where={"gse": sm.gse},
    )
    chars = sm.characteristics.with_columns(pl.lit(sm.gse).alias("gse"))
    wh.replace_rows(
        "raw.geo_characteristics",
        chars.select("gse", "gsm", "row", "key", "value"),
        where={"gse": sm.gse},
    )
    return samples.height


def load_ontology(wh: Warehouse, path: Path, rejected: list[Rejection]) -> int:
    """A GO OBO file → core.go_terms, core.go_edges and core.go_alt_ids, replacing the previous
    ontology version. Edges that would close an is_a/part_of cycle are rejected, naming it."""
    ontology = read_obo(path, on_reject=rejected.append)
    for statement in (CLEAR_GO_EDGES, CLEAR_GO_TERMS, CLEAR_GO_ALT_IDS):
        wh.execute(statement)
    wh.upsert("core.go_terms", ontology.terms.select("go_id", "name", "namespace", "is_obsolete"))
    wh.upsert("core.go_edges", ontology.edges.select("child", "parent", "relation").unique())
    alt = pl.DataFrame(
        {"alt_id": list(ontology.alt_ids), "go_id": list(ontology.alt_ids.values())},
        schema={"alt_id": pl.Utf8, "go_id": pl.Utf8},
    )
    wh.upsert("core.go_alt_ids", alt)
    return ontology.terms.height


def load_annotations(wh: Warehouse, path: Path, rejected: list[Rejection]) -> int:
    """GAF or gene2go → core.go_annotations, genes matched by symbol (GAF) or Entrez ID (gene2go).

    GO IDs are mapped through alt_ids; obsolete or unknown GO IDs and unknown genes are rejected
    row by row with the reason. NOT-qualified GAF rows are not annotations and are skipped.
    """
    terms = wh.frame(GO_TERMS)
    if terms.height == 0:
        raise InputFileError(path, None, "no GO terms in core.go_terms yet: load the OBO first")
    keys = AnnotationKeys.read(wh, terms)
    n = 0
    for batch in annotation_batches(path, rejected):
        batch = keys.match(batch)
        rejected.extend(annotation_rejections(path, batch))
        good = batch.filter(pl.col("gene_index").is_not_null() & pl.col("is_obsolete").eq(False))
        good = good.select(
            pl.col("gene_index").cast(pl.Int32),
            "go_id",
            pl.col("evidence").fill_null(""),
            pl.lit(path.name).alias("source"),
        ).unique(subset=["gene_index", "go_id", "evidence"])
        n += wh.upsert("core.go_annotations", good)
    return n


@dataclass(frozen=True)
class AnnotationKeys:
    """How annotation rows find their gene (symbol or Entrez ID) and term (alt IDs mapped)."""

    by_symbol: pl.DataFrame
    by_entrez: pl.DataFrame
    terms: pl.DataFrame
    alt: pl.DataFrame

    @classmethod
    def read(cls, wh: Warehouse, terms: pl.DataFrame) -> AnnotationKeys:
        genes = wh.frame(GENE_KEYS)
        by_symbol = genes.select("gene_index", "symbol").drop_nulls().unique("symbol", keep="first")
        by_entrez = (
            genes.select(pl.col("gene_index").alias("entrez_gene_index"), "entrez")
            .drop_nulls()
            .unique("entrez", keep="first")
        )
        return cls(by_symbol, by_entrez, terms, wh.frame(GO_ALT_IDS))

    def match(self, batch: pl.DataFrame) -> pl.DataFrame:
        """The batch with `gene_index` (null: unknown) and `is_obsolete` (null: unknown term)."""
        return (
            batch.join(self.alt, left_on="go_id", right_on="alt_id", how="left")
            .with_columns(pl.coalesce("primary_id", "go_id").alias("go_id"))
            .drop("primary_id")
            .join(self.terms, on="go_id", how="left")
            .join(self.by_symbol, on="symbol", how="left")
            .join(self.by_entrez, on="entrez", how="left")
            .with_columns(pl.coalesce("gene_index", "entrez_gene_index").alias("gene_index"))
        )


def annotation_rejections(path: Path, batch: pl.DataFrame) -> list[Rejection]:
    """A matched batch's rows with an unknown gene, an unknown GO ID or an obsolete term."""
    known_gene = pl.col("gene_index").is_not_null()
    problems = (
        (batch.filter(~known_gene), UNKNOWN_GENE),
        (batch.filter(known_gene & pl.col("is_obsolete").is_null()), UNKNOWN_TERM),
        (batch.filter(known_gene & pl.col("is_obsolete").eq(True)), OBSOLETE_TERM),
    )
    return [
        Rejection(str(path), line, reason, f"{symbol or entrez}\t{go_id}")
        for rows, reason in problems
        for line, symbol, entrez, go_id in rows.select("line", "symbol", "entrez", "go_id").rows()
    ]


def annotation_batches(path: Path, rejected: list[Rejection]) -> Iterator[pl.DataFrame]:
    """(line, symbol, entrez, go_id, evidence) batches from a GAF file or an NCBI gene2go file."""
    if "gene2go" in path.name:
        for batch in iter_gene2go(path, on_reject=rejected.append):
            yield batch.select(
                pl.col("line"),
                pl.lit(None, dtype=pl.Utf8).alias("symbol"),
                pl.col("gene_id").cast(pl.Utf8).alias("entrez"),
                "go_id",
                "evidence",
            )
        return
    for batch in iter_gaf(path, on_reject=rejected.append):
        batch = batch.filter(~pl.col("qualifier").fill_null("").str.contains("NOT"))
        yield batch.select(
            "line", "symbol", pl.lit(None, dtype=pl.Utf8).alias("entrez"), "go_id", "evidence"
        )
