"""The `import-signatures` step: a wide matrix of signatures becomes a collection, one contrast per
signature, its genes mapped onto `core.genes`.

Each signature is a row of `core.signatures` (`contrast_id` "{collection}:{name}"), its values a
column of `core.de_results` (`z`, `t` or `log_fc`, as the file holds them) written by the one
writer every step uses, and a `core.de_runs` row (done, source `import:<collection>`), so GO
enrichment, training and `similar` see it like any contrast. The file is loaded in one
transaction, keyed on its content hash (`raw.source_files`): loading it again changes nothing. A
signature whose values are unchanged keeps its rows (and its GO labels); unmapped genes and
unreadable rows are counted in `core.collections` and listed in `raw.rejected` (stage `import`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from degae_tools.errors import SignatureFileError
from degae_tools.signature_config import SignatureImport
from degae_tools.sources import Rejection, file_sha256
from degae_tools.sources.signatures import SignatureMatrix, read_signature_matrix
from degae_tools.steps.gene_map import SPECIES, GeneMapping, gene_table, map_genes, write_genes
from degae_tools.steps.runs import ChunkResult, RunRow, record_rejections, write_de_results
from warehouse import Query, Warehouse

COLLECTION_COUNTS = Query("signatures/collection_counts")
STORED_HASHES = Query("signatures/stored_hashes")
LOADED = Query("signatures/loaded")
GENE_KEY_COUNT = Query("signatures/gene_key_count")
# Rejected rows of imported files are recorded as ingest records those of its files.
STAGE = "ingest"


@dataclass
class ImportSummary:
    """What one file's import did."""

    file: str
    status: str  # loaded | skipped (already loaded)
    collection: str = ""
    signatures: int = 0
    written: int = 0  # new or changed signatures
    unchanged: int = 0
    genes_mapped: int = 0
    genes_unmapped: int = 0
    genes_added: int = 0
    rows_rejected: int = 0
    gene_table: str | None = None

    def as_dict(self) -> dict:
        return dict(vars(self))


@dataclass(frozen=True)
class Collection:
    """A collection's description, as `core.collections` keeps it."""

    name: str
    kind: str  # signatures | de_tables
    value_kinds: tuple[str, ...]
    score: str
    species: str
    gene_id_system: str


@dataclass
class Signatures:
    """Signatures ready to write: their `core.signatures` rows, their values in `core.de_results`
    layout, and their run rows."""

    rows: pl.DataFrame
    chunk: ChunkResult


def run(wh: Warehouse, path: str | Path, config: SignatureImport) -> ImportSummary:
    """Import the signature matrix at `path` into `config.collection`; a file already imported
    (same content) is skipped."""
    path = Path(path)
    sha = file_sha256(path)
    kind = f"signatures:{config.collection}"
    if wh.scalar(LOADED, {"kind": kind, "sha": sha}):
        return ImportSummary(str(path), "skipped", config.collection)
    rejections: list[Rejection] = []
    matrix = read_signature_matrix(path, config.transpose, on_reject=rejections.append)
    species = SPECIES[config.species]
    keys_before = wh.scalar(GENE_KEY_COUNT)
    table, table_path = gene_table(wh, config.gene_table, path, species)
    mapping = map_genes(wh, matrix.genes, config.gene_id, species, table)
    check_mapped(path, mapping, config.gene_id, table_path)
    rejections += unmapped_rejections(path, mapping, matrix.gene_lines)
    collection = Collection(
        config.collection, "signatures", (config.column,), config.column, species, config.gene_id
    )
    signatures = matrix_signatures(matrix, mapping, collection, path, config)
    with wh.transaction():
        written = write_signatures(wh, collection, signatures, mapping, rejections)
        record_file(wh, path, kind, sha, len(matrix.names))
    retry_annotations(wh, keys_before)
    return ImportSummary(
        str(path), "loaded", config.collection, len(matrix.names), written,
        len(matrix.names) - written, int(mapping.mapped.sum()), mapping.n_unmapped,
        mapping.new_genes.height, len(rejections) - mapping.n_unmapped, table_path,
    )  # fmt: skip


def check_mapped(path: Path, mapping: GeneMapping, system: str, table_path: str | None) -> None:
    """Refuse a file none of whose genes maps: the gene ID system or the table is wrong."""
    if mapping.mapped.any():
        return
    fix = "check --gene-id and --species"
    if table_path is None:
        fix += ", and give the gene table with --gene-table"
    raise SignatureFileError(
        path,
        1,
        f"none of its {len(mapping.names)} genes (e.g. {mapping.names[:3]}) maps onto "
        f"a gene as {system} IDs: {fix}",
    )


def unmapped_rejections(path: Path, mapping: GeneMapping, lines: list[int]) -> list[Rejection]:
    """One `raw.rejected` row per gene that did not map, at the line that names it."""
    return [
        Rejection(str(path), lines[i], f"{reason}: {name}", name)
        for i, (name, reason) in enumerate(zip(mapping.names, mapping.reasons, strict=True))
        if reason is not None
    ]


def matrix_signatures(
    matrix: SignatureMatrix,
    mapping: GeneMapping,
    collection: Collection,
    path: Path,
    config: SignatureImport,
) -> Signatures:
    """Every row of the matrix as a signature: values of its mapped genes (missing cells left
    out) under the collection's column, and a content hash of what is stored."""
    keep = np.flatnonzero(mapping.mapped)
    gene_index = mapping.gene_index[keep].astype(np.int32)
    values = matrix.values[:, keep]
    ids = [f"{collection.name}:{name}" for name in matrix.names]
    present = ~np.isnan(values)
    results = pl.DataFrame(
        {
            "contrast_id": np.repeat(np.array(ids, dtype=object), present.sum(axis=1)),
            "gene_index": np.broadcast_to(gene_index, values.shape)[present],
            collection.score: values[present],
        },
        schema={"contrast_id": pl.Utf8, "gene_index": pl.Int32, collection.score: pl.Float64},
    )
    hashes = [values_hash(gene_index, row, collection.score) for row in values]
    rows = pl.DataFrame(
        {
            "contrast_id": ids,
            "collection": collection.name,
            "name": matrix.names,
            "source_file": str(path),
            "line": matrix.lines,
            "content_hash": hashes,
            "n_genes": present.sum(axis=1).astype(np.int32),
        }
    )
    runs = [
        RunRow(cid, "done", None, h, n_genes=int(n))
        for cid, h, n in zip(ids, hashes, rows["n_genes"], strict=True)
    ]
    return Signatures(rows, ChunkResult([results], runs))


def values_hash(gene_index: np.ndarray, values: np.ndarray, column: str) -> str:
    """md5 of what a signature stores: its genes, its values and the column they go to."""
    digest = hashlib.md5(column.encode())
    digest.update(np.ascontiguousarray(gene_index, dtype=np.int32).tobytes())
    digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return digest.hexdigest()


def write_signatures(
    wh: Warehouse,
    collection: Collection,
    signatures: Signatures,
    mapping: GeneMapping | None,
    rejections: list[Rejection],
) -> int:
    """Write new and changed signatures with their genes, the collection's row and the
    rejections, inside the caller's transaction; returns the number written."""
    check_collection(wh, collection)
    if mapping is not None:
        write_genes(wh, mapping)
    changed = changed_only(wh, signatures)
    wh.upsert("core.signatures", signatures.rows)
    source = f"import:{collection.name}"
    source_file = signatures.rows["source_file"][0]
    config = json.dumps({"collection": collection.name, "imported_from": source_file})
    values = pl.concat(changed.results, how="diagonal_relaxed") if changed.results else None
    # A signature's new values make its GO enrichment stale: the writer drops it with them.
    write_de_results(wh, values, changed.runs, source=source, config=config, stage=STAGE)
    record_rejections(wh, rejections, STAGE)
    upsert_collection(wh, collection, source_file)
    return len(changed.runs)


def changed_only(wh: Warehouse, signatures: Signatures) -> ChunkResult:
    """The signatures whose stored values differ from these (new ones included)."""
    ids = signatures.rows["contrast_id"].to_list()
    stored = dict(wh.rows(STORED_HASHES, {"contrast_ids": ids}))
    runs = [r for r in signatures.chunk.runs if stored.get(r.contrast_id) != r.inputs_hash]
    wanted = pl.Series([r.contrast_id for r in runs], dtype=pl.Utf8)
    results = [
        frame.filter(pl.col("contrast_id").is_in(wanted)) for frame in signatures.chunk.results
    ]
    return ChunkResult(results, runs)


def check_collection(wh: Warehouse, collection: Collection) -> None:
    """A collection keeps one kind, species and gene naming (and one value, for signatures)."""
    row = wh.one(
        "SELECT kind, species, gene_id_system, score FROM core.collections "
        "WHERE collection = $name",
        {"name": collection.name},
    )
    if row is None:
        return
    expected = (collection.kind, collection.species, collection.gene_id_system, collection.score)
    if collection.kind == "de_tables":
        row, expected = row[:2], expected[:2]
    if tuple(row) != expected:
        raise SignatureFileError(
            collection.name,
            None,
            f"collection {collection.name!r} holds {row}, this import "
            f"is {expected} (kind, species, gene IDs, value): import into another --collection",
        )


def upsert_collection(wh: Warehouse, collection: Collection, source: str) -> None:
    """The collection's row with its counts as they now are in the warehouse."""
    counts = wh.frame(COLLECTION_COUNTS, {"collection": collection.name})
    held = counts["value_kinds"].to_list()[0] or []
    value_kinds = sorted(set(held) | set(collection.value_kinds))
    row = counts.drop("value_kinds").with_columns(
        pl.lit(collection.name).alias("collection"),
        pl.lit(collection.kind).alias("kind"),
        pl.lit(value_kinds, dtype=pl.List(pl.Utf8)).alias("value_kinds"),
        pl.lit(collection.score).alias("score"),
        pl.lit(collection.species).alias("species"),
        pl.lit(collection.gene_id_system).alias("gene_id_system"),
        pl.lit(source).alias("source"),
    )
    wh.upsert("core.collections", row)


def record_file(
    wh: Warehouse, path: Path, kind: str, sha: str, n_rows: int, status: str = "loaded"
) -> None:
    """The file's `raw.source_files` row: imported once, by content."""
    wh.upsert(
        "raw.source_files",
        pl.DataFrame(
            {
                "path": [str(path)],
                "kind": [kind],
                "sha256": [sha],
                "size_bytes": [path.stat().st_size],
                "status": [status],
                "n_rows": [n_rows],
            }
        ),
    )


def retry_annotations(wh: Warehouse, keys_before: int) -> None:
    """When an import added genes or cross-references (the count of both moved from
    `keys_before`), annotation files ingested before they existed load again for them (gene2go
    rows rejected as 'unknown gene' then), so the order of ingest and import does not matter."""
    if wh.scalar(GENE_KEY_COUNT) == keys_before:
        return
    from degae_tools.steps.ingest import retry_rejected_rows

    retry_rejected_rows(wh)
