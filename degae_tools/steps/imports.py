"""The `import-de` and `import-go` steps: DE and GO tables computed elsewhere, loaded into the
same tables as degae's own.

`import-de` reads limma `topTable`, DESeq2 `results()` and edgeR `topTags` tables
(`sources.de_tables`). With `--contrast` a table is the DE result of a compendium contrast;
without, it becomes a signature of its own in a `de_tables` collection (named by the file), its
genes mapped onto `core.genes` as `import-signatures` maps them. Each file loads in one
transaction with its `raw.source_files` row (keyed on its content: loading it again changes
nothing); a file that cannot be read is recorded as rejected, with the reason, and the others
still load.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl

from degae_tools.errors import InputFileError, ResultTableError
from degae_tools.signature_config import DETableImport
from degae_tools.sources import Rejection, file_sha256
from degae_tools.sources.de_tables import VALUES, DETable, read_de_table
from degae_tools.sources.results import read_gofuncr
from degae_tools.steps.gene_map import SPECIES, gene_table, map_genes
from degae_tools.steps.ingest import LoadReport
from degae_tools.steps.runs import (
    ChunkResult,
    RunRow,
    record_rejections,
    write_de_results,
    write_runs,
)
from degae_tools.steps.signatures import (
    GENE_KEY_COUNT,
    STAGE,
    Collection,
    Signatures,
    check_mapped,
    record_file,
    retry_annotations,
    unmapped_rejections,
    values_hash,
    write_signatures,
)
from degae_tools.thresholds import DE_ADJ_P
from warehouse import Query, Warehouse

LOADED = Query("signatures/loaded")
CONTRAST_EXISTS = Query("imports/contrast_exists")
GENES = Query("imports/genes")
LIVE_TERMS = Query("imports/live_terms")
ENSEMBL_PREFIXES = {"ENSMUSG": "mmusculus", "ENSG0": "hsapiens"}


Loader = Callable[[Warehouse, Path, list[Rejection]], int]


def import_de(
    wh: Warehouse,
    files: tuple[Path, ...],
    contrast_id: str | None = None,
    config: DETableImport = DETableImport(),
) -> list[LoadReport]:
    """Load each DE table as the result of `contrast_id`, or (None) as a signature of the
    collection in `config`."""
    if contrast_id is not None:
        require_contrast(wh, files[0] if files else Path("-"), contrast_id)
        return [
            load_one(wh, Path(p), f"de_table:{contrast_id}", contrast_loader(contrast_id))
            for p in files
        ]
    keys_before = wh.scalar(GENE_KEY_COUNT)
    reports = [
        load_one(wh, Path(p), f"de_table:{config.collection}", collection_loader(config))
        for p in files
    ]
    retry_annotations(wh, keys_before)
    return reports


def import_go(wh: Warehouse, files: tuple[Path, ...], contrast_id: str) -> list[LoadReport]:
    """Load GOfuncR `go_enrich()$results` tables as the GO enrichment of `contrast_id`."""
    require_contrast(wh, files[0] if files else Path("-"), contrast_id)
    return [
        load_one(wh, Path(p), f"gofuncr:{contrast_id}", gofuncr_loader(contrast_id)) for p in files
    ]


def load_one(wh: Warehouse, path: Path, kind: str, loader: Loader) -> LoadReport:
    """Load one file with `loader` in one transaction, or record why it was rejected."""
    sha = file_sha256(path)
    if wh.scalar(LOADED, {"kind": kind, "sha": sha}):
        return LoadReport(str(path), kind, "skipped", message="already loaded")
    rejections: list[Rejection] = []
    try:
        with wh.transaction():
            n_rows = loader(wh, path, rejections)
            record_rejections(wh, rejections, STAGE)
            record_file(wh, path, kind, sha, n_rows)
        return LoadReport(str(path), kind, "loaded", n_rows, len(rejections))
    except (InputFileError, pl.exceptions.PolarsError) as exc:
        if not isinstance(exc, InputFileError):
            exc = ResultTableError(path, None, f"unreadable table: {exc}".splitlines()[0])
        with wh.transaction():
            record_rejections(wh, [Rejection(str(path), exc.line, str(exc), None)], STAGE)
            record_file(wh, path, kind, sha, 0, status="rejected")
        return LoadReport(str(path), kind, "rejected", 0, 1, str(exc))


def require_contrast(wh: Warehouse, path: Path, contrast_id: str) -> None:
    if not wh.scalar(CONTRAST_EXISTS, {"contrast_id": contrast_id}):
        raise ResultTableError(
            path, None, f"unknown contrast {contrast_id!r}: ingest its series first (--contrast)"
        )


def json_source(path: Path, fmt: str | None = None) -> str:
    """The `config` recorded for imported results: where they came from (and their format)."""
    return json.dumps({"imported_from": str(path)} | ({"format": fmt} if fmt else {}))


# --- a DE table as a compendium contrast's result ----------------------------------------------


def contrast_loader(contrast_id: str) -> Loader:
    def load(wh: Warehouse, path: Path, rejections: list[Rejection]) -> int:
        return contrast_table(wh, path, contrast_id, rejections)

    return load


def contrast_table(wh: Warehouse, path: Path, contrast_id: str, rejections: list[Rejection]) -> int:
    """A DE table → core.de_results/de_runs of an existing contrast (source `<format>_export`).

    Genes are matched by Ensembl ID, then symbol; unknown genes are rejected row by row. The BH
    adjustment is kept as exported, not recomputed; `z` stays NULL, as for degae's own fits."""
    table = read_de_table(path, rejections.append)
    genes = wh.frame(GENES)
    by_id = genes.select("gene_index", pl.col("gene_id").alias("gene"))
    by_symbol = genes.select(
        pl.col("gene_index").alias("symbol_index"), pl.col("symbol").alias("gene")
    ).unique("gene", keep="first")
    rows = (
        table.rows.join(by_id, on="gene", how="left")
        .join(by_symbol, on="gene", how="left")
        .with_columns(pl.coalesce("gene_index", "symbol_index").alias("gene_index"))
    )
    for row in rows.filter(pl.col("gene_index").is_null()).iter_rows(named=True):
        rejections.append(Rejection(str(path), row["line"], "unknown gene", row["gene"]))
    rows = rows.filter(pl.col("gene_index").is_not_null()).unique("gene_index", keep="first")
    rows = rows.select(
        pl.lit(contrast_id).alias("contrast_id"),
        pl.col("gene_index").cast(pl.Int32),
        *(c for c in VALUES if c != "z"),
    )
    n_de = int((rows["adj_p_value"] < DE_ADJ_P).sum())
    run = RunRow(contrast_id, "done", None, None, n_de=n_de, n_genes=rows.height)
    source, config = f"{table.format}_export", json_source(path, table.format)
    write_de_results(wh, rows, [run], source=source, config=config)
    return rows.height


# --- a DE table as a signature of a collection --------------------------------------------------


def collection_loader(config: DETableImport) -> Loader:
    def load(wh: Warehouse, path: Path, rejections: list[Rejection]) -> int:
        return collection_table(wh, path, config, rejections)

    return load


def collection_table(
    wh: Warehouse, path: Path, config: DETableImport, rejections: list[Rejection]
) -> int:
    """A DE table → one signature of `config.collection`, named after the file, every value
    column it has stored; genes it names that the warehouse lacks are added."""
    table = read_de_table(path, rejections.append)
    genes = table.rows["gene"].to_list()
    system = gene_id_system(genes) if config.gene_id == "auto" else config.gene_id
    species = species_of_ids(genes) or SPECIES[config.species]
    reference, reference_path = gene_table(wh, config.gene_table, path, species)
    symbols = table.rows["symbol"].to_list()
    mapping = map_genes(wh, genes, system, species, reference, symbols)
    check_mapped(path, mapping, system, reference_path)
    rejections += unmapped_rejections(path, mapping, table.rows["line"].to_list())
    collection = Collection(config.collection, "de_tables", table.value_kinds, "z", species, system)
    signature = table_signature(table, mapping.gene_index, collection)
    write_signatures(wh, collection, signature, mapping, [])
    return int(mapping.mapped.sum())


def table_signature(table: DETable, gene_index, collection: Collection) -> Signatures:
    """The mapped rows of a DE table as one signature of `collection`."""
    name = table.path.name.split(".")[0]
    contrast_id = f"{collection.name}:{name}"
    rows = (
        table.rows.with_columns(pl.Series("gene_index", gene_index))
        .filter(pl.col("gene_index") >= 0)
        .select(
            pl.lit(contrast_id).alias("contrast_id"), pl.col("gene_index").cast(pl.Int32), *VALUES
        )
        .sort("gene_index")
    )
    digest = values_hash(
        rows["gene_index"].to_numpy(),
        rows.select(VALUES).fill_null(float("nan")).to_numpy().ravel(),
        ",".join(VALUES),
    )
    n_de = int((rows["adj_p_value"] < DE_ADJ_P).sum())
    signature = pl.DataFrame(
        {
            "contrast_id": [contrast_id],
            "collection": [collection.name],
            "name": [name],
            "source_file": [str(table.path)],
            "line": [1],
            "content_hash": [digest],
            "n_genes": [rows.height],
        }
    )
    run = RunRow(contrast_id, "done", None, digest, n_de=n_de, n_genes=rows.height)
    return Signatures(signature, ChunkResult([rows], [run]))


def gene_id_system(genes: list[str]) -> str:
    """`ensembl`, `entrez` or `symbol`: what most of a table's gene IDs look like."""
    sample = [g for g in genes[:2000] if g]
    if sum(g.startswith("ENS") for g in sample) > len(sample) / 2:
        return "ensembl"
    if sum(g.isdigit() for g in sample) > len(sample) / 2:
        return "entrez"
    return "symbol"


def species_of_ids(genes: list[str]) -> str | None:
    """The species most of a table's Ensembl gene IDs belong to, or None."""
    sample = [g for g in genes[:2000] if g]
    for prefix, species in ENSEMBL_PREFIXES.items():
        if sample and sum(g.startswith(prefix) for g in sample) > len(sample) / 2:
            return species
    return None


# --- a GOfuncR table as a compendium contrast's GO enrichment ----------------------------------


def gofuncr_loader(contrast_id: str) -> Loader:
    def load(wh: Warehouse, path: Path, rejections: list[Rejection]) -> int:
        return gofuncr_table(wh, path, contrast_id, rejections)

    return load


def gofuncr_table(wh: Warehouse, path: Path, contrast_id: str, rejections: list[Rejection]) -> int:
    """A GOfuncR `go_enrich()$results` table → core.go_enrichment/go_runs for a contrast.

    GOfuncR reports no counts or leading edge; those columns stay NULL. GO IDs not in the
    warehouse's ontology are rejected row by row."""
    table = read_gofuncr(path).with_row_index("line", offset=2)
    terms = wh.frame(LIVE_TERMS)
    known = table.join(terms, on="go_id", how="semi")
    for row in table.join(terms, on="go_id", how="anti").iter_rows(named=True):
        rejections.append(
            Rejection(str(path), row["line"], "GO ID not in the ontology", row["go_id"])
        )
    rows = known.drop("line").with_columns(
        pl.lit(contrast_id).alias("contrast_id"), pl.lit(None, dtype=pl.Float64).alias("fdr_over")
    )
    from degae_tools.steps.go import RUN_COLUMNS as GO_RUN_COLUMNS

    run = RunRow(contrast_id, "done", None, None, n_enriched=rows.height)
    tables = ("core.go_enrichment", "core.go_runs")
    chunk = ChunkResult([rows], [run])
    write_runs(wh, "go", tables, chunk, GO_RUN_COLUMNS, "gofuncr_export", json_source(path))
    return rows.height
