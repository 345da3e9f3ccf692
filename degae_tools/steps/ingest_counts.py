"""A series' count file → one Parquet file of its counts beside the warehouse, streamed.

DuckDB's CSV reader parses the file with the types given, not sniffed (`ingest/wide_counts`), and
maps each gene to its core.genes index as it streams; lines it cannot parse are skipped and come
back with their line number from its rejects table. The counts reach the Parquet writer in Arrow
batches of about CHUNK_BYTES, so peak memory is a chunk, not the file. (A long file, DEE2's
per-run STAR counts of a few runs, is pivoted in memory.) A row the step refuses (a count that is
not a non-negative integer, an unknown or repeated gene) is rejected alone, at its line.

Why a Parquet file per series rather than a warehouse table: DE reads one series' matrix at a
time and reads it whole (`steps.counts.read_counts`: one file, no filter, no row keys to decode);
a series downloaded again replaces one file atomically instead of deleting and inserting rows
among the compendium's 10^9 counts; and the warehouse stays the size of its results. The file is
wide: `gene_index`, then one int32 column per run, byte-stream-split and zstd-compressed, which
makes it smaller than the gzipped source (measured in bench/ingest.py).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from degae_tools.atomic import atomic_path
from degae_tools.errors import DEE2CountsError
from degae_tools.sources import GZIP_MAGIC, Rejection, line_numbers
from degae_tools.sources.dee2 import RUN, CountLayout, count_layout
from warehouse import Query, Warehouse

GENES = Query("ingest/genes")
LONG_COUNTS = Query("ingest/long_counts")
NEXT_GENE_INDEX = Query("ingest/next_gene_index")
READER_REJECTS = Query("ingest/count_rejects")
RECORD_COUNT_FILE = Query("ingest/record_count_file")
SERIES_OF_RUNS = Query("ingest/series_of_runs")
WIDE_COUNTS = Query("ingest/wide_counts")

UNKNOWN_GENE = "unknown gene ID"
BAD_COUNT = "expected non-negative integer counts (at most 2^31 - 1)"
CHUNK_BYTES = 32 << 20
MIN_CHUNK_ROWS = 1024
INT32_MAX = np.iinfo(np.int32).max
FIELD_COUNT_ERRORS = ("MISSING COLUMNS", "TOO MANY COLUMNS")
GSE_NAME = re.compile(r"^(GSE[0-9]+)[._]")
PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": False}


@dataclass(frozen=True)
class Problem:
    """A row refused after parsing: the fields that find its line, the reason, and which of the
    lines with those fields it is (a gene's second line is its duplicate)."""

    key: tuple[str, ...]
    reason: str
    occurrence: int = 0


@dataclass
class Checked:
    """A batch of counts ready to write (`gene_index`, one int32 column per run) and the rows
    refused on the way."""

    table: pa.Table
    problems: list[Problem] = field(default_factory=list)


def load_counts(wh: Warehouse, path: Path, rejected: list[Rejection]) -> int:
    """A series' counts → `<warehouse>_counts/gse=<GSE>/counts.parquet` and its raw.count_files
    row; returns the counts written. Written to a temporary name and renamed, so a kill never
    leaves half a file; a file with no usable row is rejected whole."""
    layout = count_layout(path)
    refuse_damaged_end(path)
    next_index = wh.scalar(NEXT_GENE_INDEX)
    if next_index == 0:
        raise DEE2CountsError(path, None, "no genes in core.genes yet: load GeneInfo.tsv first")
    if layout.kind == "long":
        runs, chunks = read_long(wh, path, layout)
    else:
        runs, chunks = layout.runs, read_wide(wh, path, layout, next_index)
    gse = series_of(wh, path, runs)
    target = wh.counts_dir / f"gse={gse}" / "counts.parquet"
    with atomic_path(target, ".tmp") as tmp:
        n_genes, problems = write_parquet(tmp, runs, chunks)
        rejected.extend(locate(path, problems) + reader_rejects(wh, path, layout))
        if n_genes == 0:
            first = min(rejected, key=lambda r: r.line or 0).reason if rejected else "none"
            raise DEE2CountsError(path, None, f"no usable gene row (first problem: {first})")
    unknown = len({p.key[-1] for p in problems if p.reason == UNKNOWN_GENE})
    record_count_file(wh, gse, target, path, runs, n_genes, unknown)
    return n_genes * len(runs)


def refuse_damaged_end(path: Path) -> None:
    """A plain file that ends in NUL bytes (a sparse or unfinished copy) cannot be trusted, and
    DuckDB's reader skips such an end without a word: refuse it whole. (A gzip stream checks
    itself: a damaged one fails to decompress.)"""
    with open(path, "rb") as handle:
        if handle.read(2) == GZIP_MAGIC:
            return
        handle.seek(max(path.stat().st_size - 4096, 0))
        if b"\x00" in handle.read():
            raise DEE2CountsError(
                path, None, "the file ends in NUL bytes (a sparse or unfinished copy?)"
            )


def read_wide(wh: Warehouse, path: Path, layout: CountLayout, next_index: int) -> Iterator[Checked]:
    """The file's counts streamed in chunks of about CHUNK_BYTES, each checked."""
    columns = {"gene_id": "VARCHAR"} | {run: "DOUBLE" for run in layout.runs}
    rows = max(MIN_CHUNK_ROWS, CHUNK_BYTES // (8 * (len(layout.runs) + 1)))
    genes = gene_lookup(wh, next_index)
    seen = np.zeros(next_index, dtype=bool)
    with reading(path):
        for batch in wh.record_batches(WIDE_COUNTS, {"path": str(path), "columns": columns}, rows):
            yield check_wide(batch, layout.runs, genes.index(batch.column(0)), seen)


@dataclass
class GeneLookup:
    """Gene IDs → core.genes' gene_index (-1: unknown) while core.genes has `n_genes` rows.

    The count files of a compendium list the same genes in the same order, so the last list's
    indexes are kept and reused when the next file's list is equal: one comparison of two
    string arrays instead of a join per file."""

    n_genes: int
    genes: pl.DataFrame
    last_ids: pa.Array | None = None
    last_index: np.ndarray | None = None

    def index(self, ids: pa.Array) -> np.ndarray:
        if self.last_ids is None or not ids.equals(self.last_ids):
            found = pl.DataFrame({"gene_id": pl.Series(ids)}).join(
                self.genes, on="gene_id", how="left", maintain_order="left"
            )
            self.last_ids = ids
            self.last_index = found["gene_index"].fill_null(-1).to_numpy().astype(np.int64)
        return self.last_index


# One lookup per warehouse handle (one command), dropped with it.
LOOKUPS: weakref.WeakKeyDictionary[Warehouse, GeneLookup] = weakref.WeakKeyDictionary()


def gene_lookup(wh: Warehouse, n_genes: int) -> GeneLookup:
    """The handle's gene lookup, read again when genes were added since."""
    lookup = LOOKUPS.get(wh)
    if lookup is None or lookup.n_genes != n_genes:
        lookup = LOOKUPS[wh] = GeneLookup(n_genes, wh.frame(GENES))
    return lookup


def check_wide(
    batch: pa.RecordBatch, runs: tuple[str, ...], gene_index: np.ndarray, seen: np.ndarray
) -> Checked:
    """Keep the rows with a known gene not seen before and counts that are non-negative
    integers (the query's int32 columns, NULL where a count is not); the others become
    problems. `seen` marks the genes met so far."""
    known = gene_index >= 0
    index = np.where(known, gene_index, 0)
    counts = [batch.column(j + 1) for j in range(len(runs))]
    good_counts = complete_rows(counts, len(index))
    first = np.zeros(len(index), dtype=bool)
    first[np.unique(index, return_index=True)[1]] = True
    repeated = known & (seen[index] | ~first)
    keep = known & good_counts & ~repeated
    seen[index[known]] = True
    gene_ids = batch.column(0)
    problems = [
        row_problem(gene_ids[i].as_py(), known[i], good_counts[i], repeated[i])
        for i in np.flatnonzero(~keep)
    ]
    if problems:
        kept = int32_array(np.flatnonzero(keep))
        index, counts = index[keep], [c.take(kept) for c in counts]
    columns = [int32_array(index), *counts]
    return Checked(pa.table(columns, names=["gene_index", *runs]), problems)


def int32_array(values: np.ndarray) -> pa.Array:
    """NumPy values as an Arrow int32 array (pa.array would import pandas: a second of a
    command's start)."""
    values = np.ascontiguousarray(values, dtype=np.int32)
    return pa.Array.from_buffers(pa.int32(), len(values), [None, pa.py_buffer(values)])


def complete_rows(columns: list[pa.Array], n_rows: int) -> np.ndarray:
    """The rows where no column is null (every count usable), from the validity bitmaps."""
    good = np.ones(n_rows, dtype=bool)
    for column in columns:
        if column.null_count:
            bits = np.frombuffer(column.buffers()[0], dtype=np.uint8)
            valid = np.unpackbits(bits, count=column.offset + n_rows, bitorder="little")
            good &= valid[column.offset :].view(bool)
    return good


def row_problem(gene_id: str | None, known: bool, good_counts: bool, repeated: bool) -> Problem:
    """Why one wide row was refused."""
    if gene_id is None:
        return Problem(("",), "expected a gene ID, got an empty cell")
    if not known:
        return Problem((gene_id,), UNKNOWN_GENE)
    if repeated:
        return Problem((gene_id,), f"duplicate gene ID {gene_id!r}", occurrence=1)
    return Problem((gene_id,), BAD_COUNT)


def read_long(
    wh: Warehouse, path: Path, layout: CountLayout
) -> tuple[tuple[str, ...], list[Checked]]:
    """(runs, [one checked chunk]) of a long file: rows with a bad run, an unknown gene, a
    repeated (run, gene) or a bad count are refused, then the rows of genes that lack a count
    in some run."""
    with reading(path):
        table = wh.frame(LONG_COUNTS, {"path": str(path), "header": layout.has_header})
    table = table.with_columns(long_row_problem().alias("reason"))
    good = table.filter(pl.col("reason").is_null())
    runs = tuple(good["run"].unique(maintain_order=True))
    per_gene = good.group_by("gene_index").agg(pl.len().alias("n_runs"))
    complete = good.join(per_gene.filter(pl.col("n_runs") == len(runs)), on="gene_index")
    partial = good.join(complete, on=["run", "gene_id"], how="anti")
    lacking = f"expected a count in each of the file's {len(runs)} runs for this gene"
    problems = [
        Problem((run or "", gene or ""), reason)
        for run, gene, reason in table.filter(pl.col("reason").is_not_null())
        .select("run", "gene_id", "reason")
        .rows()
    ]
    problems += [Problem(key, lacking) for key in partial.select("run", "gene_id").rows()]
    if complete.height == 0:
        raise DEE2CountsError(path, None, "no gene has a usable count in every run of the file")
    wide = complete.pivot(on="run", index="gene_index", values="count", maintain_order=True)
    wide = wide.select(pl.col(c).cast(pl.Int32) for c in ("gene_index", *runs))
    return runs, [Checked(wide.to_arrow(), problems)]


def long_row_problem() -> pl.Expr:
    """Why a long row is refused (null: kept)."""
    pair = pl.struct("run", "gene_id")
    good_run = pl.col("run").str.contains(f"^{RUN.pattern}$").fill_null(False)
    count = pl.col("count")
    good_count = (count.is_between(0, INT32_MAX) & (count == count.floor())).fill_null(False)
    return (
        pl.when(~good_run)
        .then(pl.lit("expected a run accession"))
        .when(pl.col("gene_id").is_null())
        .then(pl.lit("expected a gene ID, got an empty cell"))
        .when(pl.col("gene_index").is_null())
        .then(pl.lit(UNKNOWN_GENE))
        .when(~pair.is_first_distinct())
        .then(pl.lit("duplicate run and gene pair; expected one count each"))
        .when(~good_count)
        .then(pl.lit(BAD_COUNT))
    )


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """DuckDB's errors while it reads the file (a truncated gzip stream, an unreadable file)
    raised as the file's own error."""
    try:
        yield
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        if "gzip" in message.lower() and "end" in message.lower():
            message = "truncated gzip stream"
        raise DEE2CountsError(path, None, f"unreadable file ({message})") from exc


def reader_rejects(wh: Warehouse, path: Path, layout: CountLayout) -> list[Rejection]:
    """The lines DuckDB's CSV reader refused in the file just read, with the reason (taken out
    of its rejects table, which every read with `store_rejects` makes, so that the next file
    starts from an empty one)."""
    names = ["gene_id", *layout.runs] if layout.kind == "wide" else ["run", "gene_id", "count"]
    refused = {}
    for line, error_type, column_idx, column, text in wh.rows(READER_REJECTS):
        # one reason per line: a wrong field count explains the cast errors that come with it
        rank = (error_type not in FIELD_COUNT_ERRORS, column_idx)
        if line not in refused or rank < refused[line][0]:
            refused[line] = (rank, error_type, column, text)
    rejections = []
    for line, (_, error_type, column, text) in sorted(refused.items()):
        fields = (text or "").rstrip("\r\n").split("\t")
        if error_type == "CAST" and column in names:
            value = fields[names.index(column)] if names.index(column) < len(fields) else ""
            reason = f"expected a count for {column}, got {value[:40]!r}"
        elif error_type in FIELD_COUNT_ERRORS:
            reason = f"expected {len(names)} tab-separated fields, got {len(fields)}"
        else:
            reason = f"unreadable line ({error_type.lower()})"
        rejections.append(Rejection(str(path), int(line), reason, (text or "")[:500]))
    return rejections


def locate(path: Path, problems: list[Problem]) -> list[Rejection]:
    """The problems as rejections at their lines, found by a second, streaming read of the file
    that happens only when there are problems."""
    if not problems:
        return []
    lines = line_numbers(path, {p.key for p in problems}, DEE2CountsError)
    taken: dict[tuple[str, ...], int] = {}
    rejections = []
    for p in problems:
        at = lines.get(p.key, [])
        nth = max(p.occurrence, taken.get(p.key, 0))
        taken[p.key] = nth + 1
        line = at[nth] if nth < len(at) else None
        rejections.append(Rejection(str(path), line, p.reason, "\t".join(p.key)))
    return rejections


def series_of(wh: Warehouse, path: Path, runs: tuple[str, ...]) -> str:
    """The GEO series of a count file: from its name (`GSE1234_GeneCountMatrix.tsv.gz`,
    `GSE1234.long.tsv.gz`), else from its runs' DEE2 metadata (a DEE2 bundle's
    `GeneCountMatrix.tsv`)."""
    named = GSE_NAME.match(path.name)
    gse = named.group(1) if named else wh.scalar(SERIES_OF_RUNS, {"runs": list(runs)})
    if gse is None:
        raise DEE2CountsError(
            path,
            None,
            "cannot tell which GEO series these counts belong to: name the file "
            "GSEnnn_GeneCountMatrix.tsv.gz, or put the DEE2 metadata of its runs beside it",
        )
    return gse


def write_parquet(target: Path, runs: tuple[str, ...], chunks) -> tuple[int, list[Problem]]:
    """Write the chunks' tables to one Parquet file; (gene rows written, problems)."""
    schema = pa.schema([("gene_index", pa.int32()), *((run, pa.int32()) for run in runs)])
    encoding = dict.fromkeys(schema.names, "BYTE_STREAM_SPLIT")
    n_genes, problems = 0, []
    with pq.ParquetWriter(target, schema, column_encoding=encoding, **PARQUET_OPTIONS) as writer:
        for chunk in chunks:
            writer.write_table(chunk.table)
            n_genes += chunk.table.num_rows
            problems += chunk.problems
    return n_genes, problems


def record_count_file(
    wh: Warehouse,
    gse: str,
    target: Path,
    source: Path,
    runs: tuple[str, ...],
    n_genes: int,
    n_unknown: int,
) -> None:
    """Where the series' counts are, from which file, with which runs and genes."""
    row = {
        "gse": gse,
        "parquet_path": str(target.relative_to(wh.path.parent)),
        "source_file": str(source),
        "runs": list(runs),
        "n_runs": len(runs),
        "n_genes": n_genes,
        "n_unknown_genes": n_unknown,
    }
    wh.execute(RECORD_COUNT_FILE, row)
