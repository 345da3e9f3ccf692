"""Transactional, idempotent loads of input files into raw.* and core.* tables.

Every file is loaded in one transaction together with its `raw.source_files` row, keyed on the
file's content hash: loading the same file twice changes nothing, a file killed half-way leaves
nothing, and a file that fails to parse becomes a `raw.rejected` row instead of aborting the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from degae_tools.atomic import atomic_path
from degae_tools.errors import InputFileError
from degae_tools.sources import Rejection
from degae_tools.steps.counts import RUN_SEPARATOR, read_counts, sample_counts  # noqa: F401
from warehouse.connect import fetch_frame, fetch_one, transaction
from warehouse.migrate import read_query


@dataclass
class LoadReport:
    """What one file's load did: loaded, skipped (already loaded) or rejected, with row counts."""

    path: str
    kind: str
    status: str
    n_rows: int = 0
    n_rejected: int = 0
    message: str = ""


@dataclass
class RejectionLog:
    """Row-level rejections collected while a file is read, written in the file's transaction."""

    stage: str = "ingest"
    rows: list[Rejection] = field(default_factory=list)

    def __call__(self, rejection: Rejection) -> None:
        self.rows.append(rejection)


def file_sha256(path: Path) -> str:
    """Content hash of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def already_loaded(con: duckdb.DuckDBPyConnection, kind: str, sha: str) -> bool:
    """True when a file with this content was loaded before (a rejected file is tried again)."""
    row = fetch_one(
        con,
        "SELECT count(*) FROM raw.source_files WHERE kind = ? AND sha256 = ? AND status = 'loaded'",
        [kind, sha],
    )
    return bool(row and row[0])


def record_rejections(
    con: duckdb.DuckDBPyConnection, rejections: list[Rejection], stage: str
) -> None:
    """Insert rejections (idempotent: the same source/line/reason is recorded once)."""
    if not rejections:
        return
    frame = pa.table(
        {
            "source": [r.source for r in rejections],
            "stage": [stage] * len(rejections),
            "line": [r.line if r.line is not None else 0 for r in rejections],
            "reason": [r.reason for r in rejections],
            "record": [(r.record or "")[:500] for r in rejections],
        }
    )
    con.register("rejections_in", frame)
    con.execute(read_query("warehouse/insert_rejections"))
    con.unregister("rejections_in")


def upsert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame | pa.Table) -> int:
    """INSERT OR REPLACE the frame's rows into `table` (keyed on its primary key) by name."""
    arrow = frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
    if arrow.num_rows == 0:
        return 0
    con.register("upsert_in", arrow)
    # `table` is one of our own table names (a constant in this module), never text from a file.
    con.execute(f"INSERT OR REPLACE INTO {table} BY NAME SELECT * FROM upsert_in")
    con.unregister("upsert_in")
    return arrow.num_rows


def load_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    kind: str,
    loader: Callable[[duckdb.DuckDBPyConnection, Path, RejectionLog], int],
) -> LoadReport:
    """Load one file with `loader` inside a transaction, or record why it was rejected.

    The loader returns the number of rows it wrote and reports row-level problems to the log.
    """
    sha = file_sha256(path)
    if already_loaded(con, kind, sha):
        return LoadReport(str(path), kind, "skipped", message="already loaded")
    log = RejectionLog()
    try:
        with transaction(con):
            n_rows = loader(con, path, log)
            record_rejections(con, log.rows, "ingest")
            con.execute(
                read_query("ingest/insert_source_file"),
                [str(path), kind, sha, path.stat().st_size, "loaded", n_rows],
            )
        return LoadReport(str(path), kind, "loaded", n_rows, len(log.rows))
    except (InputFileError, pl.exceptions.PolarsError, pa.ArrowException) as exc:
        if not isinstance(exc, InputFileError):
            exc = InputFileError(path, None, f"unreadable {kind} file: {exc}".splitlines()[0])
        with transaction(con):
            record_rejections(con, [Rejection(str(path), exc.line, str(exc), None)], "ingest")
            con.execute(
                read_query("ingest/insert_source_file"),
                [str(path), kind, sha, path.stat().st_size, "rejected", 0],
            )
        return LoadReport(str(path), kind, "rejected", 0, 1, str(exc))


RETRYABLE_ANNOTATION_REASONS = ("unknown gene", "GO ID not in the ontology")


def retry_annotations(con: duckdb.DuckDBPyConnection, skip: Iterable[str] = ()) -> list[LoadReport]:
    """Load again every annotation file whose rows were rejected for a gene or GO ID unknown at
    the time, after genes, cross-references or an ontology arrived later: its rejections are
    replaced by what is still unknown now. A file moved away, or whose content changed since
    (the new content loads as a new file), is left as it is, and so are the paths in `skip`
    (files this ingest has just loaded, after the genes and terms it brought)."""
    sources = con.sql(
        read_query("ingest/annotations_to_retry"), params=[list(RETRYABLE_ANNOTATION_REASONS)]
    ).fetchall()
    reports = []
    skip = set(skip)
    for path_text, sha in sources:
        path = Path(path_text)
        if path_text in skip or not path.exists() or file_sha256(path) != sha:
            continue
        log = RejectionLog()
        with transaction(con):
            con.execute(
                "DELETE FROM raw.rejected WHERE source = ? AND stage = 'ingest'", [path_text]
            )
            n_rows = load_annotations(con, path, log)
            record_rejections(con, log.rows, "ingest")
            con.execute(
                "UPDATE raw.source_files SET n_rows = ? WHERE kind = 'annotations' AND sha256 = ?",
                [n_rows, sha],
            )
        reports.append(LoadReport(path_text, "annotations", "retried", n_rows, len(log.rows)))
    return reports


# --- one loader per kind of file -------------------------------------------------------------


def load_gene_info(con: duckdb.DuckDBPyConnection, path: Path, log: RejectionLog) -> int:
    """DEE2 GeneInfo.tsv → core.genes; new genes get the next gene_index, known ones keep theirs."""
    from degae_tools.sources.dee2 import read_gene_info

    genes = read_gene_info(path).unique(subset="gene_id", keep="first", maintain_order=True)
    known = fetch_frame(con, "SELECT gene_id, gene_index FROM core.genes")
    start = int(fetch_one(con, "SELECT coalesce(max(gene_index) + 1, 0) FROM core.genes")[0])
    new = genes.join(known, on="gene_id", how="anti")
    new = new.with_columns(
        pl.int_range(start, start + new.height, dtype=pl.Int32).alias("gene_index"),
        pl.lit(species_from_name(path)).alias("species"),
    )
    upsert(con, "core.genes", new.select("gene_index", "gene_id", "symbol", "length", "species"))
    return new.height


def species_from_name(path: Path) -> str:
    """`mmusculus` from `mmusculus_metadata.tsv.cut`; mouse by default (degae's compendium)."""
    head = path.name.split("_")[0]
    return head if head.isalpha() and head.islower() and len(head) > 3 else "mmusculus"


def load_dee2_metadata(con: duckdb.DuckDBPyConnection, path: Path, log: RejectionLog) -> int:
    """DEE2 metadata (species `.tsv.cut` or a bundle's MetadataSummary.tsv) → raw.dee2_runs."""
    from degae_tools.sources.dee2 import iter_metadata

    n = 0
    for batch in iter_metadata(path, on_reject=log):
        frame = batch.drop("line").with_columns(pl.lit(str(path)).alias("source_file"))
        n += upsert(con, "raw.dee2_runs", frame)
    return n


def load_series_matrix(con: duckdb.DuckDBPyConnection, path: Path, log: RejectionLog) -> int:
    """GEO series matrix → raw.geo_series, raw.geo_samples, raw.geo_characteristics (replaced)."""
    from degae_tools.sources.geo import read_series_matrix

    sm = read_series_matrix(path)
    for statement in ("ingest/delete_geo_samples", "ingest/delete_geo_characteristics"):
        con.execute(read_query(statement), [sm.gse])
    upsert(
        con,
        "raw.geo_series",
        pl.DataFrame(
            {"gse": [sm.gse], "title": [sm.title], "platforms": [sm.platforms]},
            schema={"gse": pl.Utf8, "title": pl.Utf8, "platforms": pl.List(pl.Utf8)},
        ).with_columns(pl.lit(str(path)).alias("source_file")),
    )
    samples = sm.samples.with_row_index("position").with_columns(
        pl.lit(sm.gse).alias("gse"), pl.col("position").cast(pl.Int32)
    )
    upsert(con, "raw.geo_samples", samples.select("gse", "gsm", "position", "title", "source_name"))
    chars = sm.characteristics.with_columns(pl.lit(sm.gse).alias("gse"))
    upsert(con, "raw.geo_characteristics", chars.select("gse", "gsm", "row", "key", "value"))
    return samples.height


def counts_dir(con: duckdb.DuckDBPyConnection) -> Path:
    """Where this warehouse keeps its counts: `<db folder>/<db name>_counts/`."""
    db_file = fetch_one(con, "SELECT path FROM duckdb_databases() WHERE NOT internal")[0]
    db = Path(db_file)
    return db.parent / f"{db.stem}_counts"


def series_of_count_file(path: Path) -> str:
    """`GSE1234` from `GSE1234_GeneCountMatrix.tsv.gz` or `GSE1234.long.tsv.gz`."""
    name = path.name
    for sep in ("_", "."):
        head = name.split(sep)[0]
        if head.startswith("GSE") and head[3:].isdigit():
            return head
    return name.split(".")[0]


def load_counts(con: duckdb.DuckDBPyConnection, path: Path, log: RejectionLog) -> int:
    """A series' gene counts → Parquet `(srr, gene_index, count)` + a raw.count_files row.

    Genes are mapped to core.genes.gene_index; unknown gene IDs are rejected row by row.
    The Parquet file is written to a temporary name and renamed, so a kill never leaves half a file.
    """
    from degae_tools.sources.dee2 import read_count_matrix

    gse = series_of_count_file(path)
    matrix = read_count_matrix(path)
    genes = fetch_frame(con, "SELECT gene_id, gene_index FROM core.genes")
    if genes.height == 0:
        raise InputFileError(path, None, "no genes in core.genes yet: load GeneInfo.tsv first")
    ids = pl.DataFrame({"gene_id": matrix.gene_ids, "row": np.arange(len(matrix.gene_ids))})
    mapped = ids.join(genes, on="gene_id", how="left").sort("row")
    index = mapped["gene_index"].to_numpy()
    unknown = np.flatnonzero(mapped["gene_index"].is_null().to_numpy())
    for row in unknown:
        log(Rejection(str(path), int(row) + 2, "unknown gene ID", matrix.gene_ids[row]))
    keep = np.flatnonzero(~mapped["gene_index"].is_null().to_numpy())
    gene_index = index[keep].astype(np.int32)
    counts = matrix.counts[keep]
    n_genes, n_runs = counts.shape
    table = pa.table(
        {
            "srr": pa.array(
                np.repeat(np.array(matrix.runs, dtype=object), n_genes)
            ).dictionary_encode(),
            "gene_index": np.tile(gene_index, n_runs),
            "count": counts.T.reshape(-1).astype(np.int32),
        }
    )
    target = counts_dir(con) / f"gse={gse}" / "counts.parquet"
    with atomic_path(target, ".tmp") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    upsert(
        con,
        "raw.count_files",
        pl.DataFrame(
            {
                "gse": [gse],
                "parquet_path": [str(target.relative_to(target.parents[2]))],
                "source_file": [str(path)],
                "runs": [list(matrix.runs)],
                "n_runs": [n_runs],
                "n_genes": [n_genes],
                "n_unknown_genes": [len(unknown)],
            },
            schema_overrides={"n_runs": pl.Int32, "n_genes": pl.Int32, "n_unknown_genes": pl.Int32},
        ),
    )
    return n_genes * n_runs


def load_ontology(con: duckdb.DuckDBPyConnection, path: Path, log: RejectionLog) -> int:
    """A GO OBO file → core.go_terms and core.go_edges, replacing the previous ontology version."""
    from degae_tools.sources.obo import read_obo

    ontology = read_obo(path)
    con.execute("DELETE FROM core.go_edges")
    con.execute("DELETE FROM core.go_terms")
    upsert(con, "core.go_terms", ontology.terms.select("go_id", "name", "namespace", "is_obsolete"))
    upsert(con, "core.go_edges", ontology.edges.select("child", "parent", "relation").unique())
    alt = pl.DataFrame(
        {"alt_id": list(ontology.alt_ids), "go_id": list(ontology.alt_ids.values())},
        schema={"alt_id": pl.Utf8, "go_id": pl.Utf8},
    )
    con.execute("DELETE FROM core.go_alt_ids")
    upsert(con, "core.go_alt_ids", alt)
    return ontology.terms.height


def _annotation_batches(path: Path, log: RejectionLog) -> Iterator[pl.DataFrame]:
    """(line, symbol, gene_id, go_id, evidence) batches from a GAF file or an NCBI gene2go file."""
    from degae_tools.sources.gaf import iter_gaf, iter_gene2go

    if "gene2go" in path.name:
        for batch in iter_gene2go(path, on_reject=log):
            yield batch.select(
                pl.col("line"),
                pl.lit(None, dtype=pl.Utf8).alias("symbol"),
                pl.col("gene_id").cast(pl.Utf8).alias("entrez"),
                "go_id",
                "evidence",
            )
        return
    for batch in iter_gaf(path, on_reject=log):
        batch = batch.filter(~pl.col("qualifier").fill_null("").str.contains("NOT"))
        yield batch.select(
            "line", "symbol", pl.lit(None, dtype=pl.Utf8).alias("entrez"), "go_id", "evidence"
        )


def load_annotations(con: duckdb.DuckDBPyConnection, path: Path, log: RejectionLog) -> int:
    """GAF or gene2go → core.go_annotations, genes matched by symbol (GAF) or Entrez ID (gene2go).

    GO IDs are mapped through alt_ids; obsolete or unknown GO IDs and unknown genes are rejected
    row by row with the reason. NOT-qualified GAF rows are not annotations and are skipped.
    """
    genes = fetch_frame(con, "SELECT gene_index, symbol, entrez FROM core.gene_keys")
    by_symbol = genes.select("gene_index", "symbol").drop_nulls().unique("symbol", keep="first")
    by_entrez = (
        genes.select(pl.col("gene_index").alias("entrez_gene_index"), "entrez")
        .drop_nulls()
        .unique("entrez", keep="first")
    )
    terms = fetch_frame(con, "SELECT go_id, is_obsolete FROM core.go_terms")
    if terms.height == 0:
        raise InputFileError(path, None, "no GO terms in core.go_terms yet: load the OBO first")
    alt = fetch_frame(con, "SELECT alt_id, go_id AS primary_id FROM core.go_alt_ids")
    n = 0
    for batch in _annotation_batches(path, log):
        batch = (
            batch.join(alt, left_on="go_id", right_on="alt_id", how="left")
            .with_columns(pl.coalesce("primary_id", "go_id").alias("go_id"))
            .drop("primary_id")
            .join(terms, on="go_id", how="left")
        )
        batch = (
            batch.join(by_symbol, on="symbol", how="left")
            .join(by_entrez, on="entrez", how="left")
            .with_columns(pl.coalesce("gene_index", "entrez_gene_index").alias("gene_index"))
        )
        bad_gene = batch.filter(pl.col("gene_index").is_null())
        bad_term = batch.filter(
            pl.col("gene_index").is_not_null() & pl.col("is_obsolete").is_null()
        )
        obsolete = batch.filter(pl.col("gene_index").is_not_null() & pl.col("is_obsolete").eq(True))
        for frame, reason in (
            (bad_gene, "unknown gene"),
            (bad_term, "GO ID not in the ontology"),
            (obsolete, "obsolete GO term"),
        ):
            for row in frame.iter_rows(named=True):
                key = row["symbol"] or row["entrez"]
                log(Rejection(str(path), row["line"], reason, f"{key}\t{row['go_id']}"))
        good = batch.filter(pl.col("gene_index").is_not_null() & pl.col("is_obsolete").eq(False))
        good = good.select(
            pl.col("gene_index").cast(pl.Int32),
            "go_id",
            pl.col("evidence").fill_null(""),
            pl.lit(path.name).alias("source"),
        ).unique(subset=["gene_index", "go_id", "evidence"])
        n += upsert(con, "core.go_annotations", good)
    return n


def load_gene_xrefs(con: duckdb.DuckDBPyConnection, path: Path, log: RejectionLog) -> int:
    """An NCBI ID table (`GeneID Symbol Ensembl ...`) → core.gene_xrefs for genes we know."""
    table = pl.read_csv(path, separator="\t", infer_schema=False, quote_char=None)
    needed = {"GeneID", "Ensembl"}
    if not needed <= set(table.columns):
        raise InputFileError(path, 1, f"expected columns {sorted(needed)}, got {table.columns}")
    genes = fetch_frame(con, "SELECT gene_index, gene_id FROM core.genes")
    xrefs = (
        table.select(pl.col("GeneID").alias("entrez"), pl.col("Ensembl").alias("gene_id"))
        .join(genes, on="gene_id", how="inner")
        .select(pl.col("gene_index").cast(pl.Int32), "entrez")
        .unique()
    )
    return upsert(con, "core.gene_xrefs", xrefs)


def rebuild_contrasts(
    con: duckdb.DuckDBPyConnection, mode: str = "degae", min_replicates: int = 2
) -> int:
    """Rebuild core.datasets, core.samples and core.contrasts from GEO characteristics.

    Groups are inferred on all GEO samples of a series (the experimental design), then each group
    keeps the samples with a DEE2 run that passes QC and has counts; a sample with several such
    runs keeps them all ("SRR1+SRR2"), and DE sums their counts. Deterministic, so contrast IDs are
    stable across rebuilds. Skipped groups and series are recorded in raw.rejected (stage groups).
    """
    from degae_tools import groups as grouping_rule

    samples = fetch_frame(con, read_query("ingest/series_samples"))
    chars = fetch_frame(con, read_query("ingest/series_characteristics"))
    counted = fetch_frame(con, "SELECT gse, runs FROM raw.count_files")
    counted_runs = {row[0]: set(row[1]) for row in counted.iter_rows()}
    series = fetch_frame(con, read_query("ingest/series_for_datasets"))
    log = RejectionLog(stage="groups")
    datasets, sample_rows, contrast_rows = [], [], []
    chars_by_gse = chars.partition_by("gse", as_dict=True) if chars.height else {}
    samples_by_gse = samples.partition_by("gse", as_dict=True) if samples.height else {}
    for gse, title, platforms, species in series.iter_rows():
        these = samples_by_gse.get((gse,))
        characteristics = chars_by_gse.get((gse,))
        grouping = None
        if characteristics is not None:
            grouping = grouping_rule.infer_groups(
                characteristics, mode=mode, gse=gse, on_reject=log
            )
        runs = {}
        if these is not None:
            usable = counted_runs.get(gse, set())
            for g, srrs in zip(these["gsm"], these["srrs"].to_list(), strict=True):
                counted_here = [r for r in (srrs or []) if r in usable]
                if counted_here:  # several runs of one sample are summed by DE
                    runs[g] = RUN_SEPARATOR.join(counted_here)
        label_of = {}
        if grouping is not None:
            label_of = {g: label for label, gsms in grouping.groups.items() for g in gsms}
        datasets.append(
            {
                "gse": gse,
                "species": species,
                "title": title,
                "platforms": platforms,
                "n_geo_samples": 0 if these is None else these.height,
                "group_key": grouping.key if grouping else None,
                "n_groups": len(grouping.groups) if grouping else 0,
                "grouping_note": None if grouping else "no characteristic defines groups",
            }
        )
        if these is not None:
            sample_rows += [
                {"gse": gse, "gsm": g, "srr": runs.get(g), "group_label": label_of.get(g)}
                for g in these["gsm"]
            ]
        if grouping is None:
            continue
        usable_groups = {
            label: [g for g in gsms if g in runs] for label, gsms in grouping.groups.items()
        }
        usable = type(grouping)(**{**grouping.__dict__, "groups": usable_groups})
        for c in grouping_rule.contrasts(usable, min_replicates=min_replicates, on_reject=log):
            contrast_rows.append(
                {
                    "contrast_id": c.contrast_id,
                    "gse": gse,
                    "group_key": grouping.key,
                    "group_a": c.group_a,
                    "group_b": c.group_b,
                    "samples_a": c.samples_a,
                    "samples_b": c.samples_b,
                    "runs_a": [runs[g] for g in c.samples_a],
                    "runs_b": [runs[g] for g in c.samples_b],
                    "mode": mode,
                }
            )
    with transaction(con):
        for table in ("core.contrasts", "core.samples", "core.datasets"):
            con.execute(f"DELETE FROM {table}")
        con.execute("DELETE FROM raw.rejected WHERE stage = 'groups'")
        list_str = pl.List(pl.Utf8)
        upsert(
            con,
            "core.datasets",
            pl.DataFrame(
                datasets,
                schema_overrides={
                    "platforms": list_str,
                    "n_geo_samples": pl.Int32,
                    "n_groups": pl.Int32,
                    "group_key": pl.Utf8,
                    "grouping_note": pl.Utf8,
                    "title": pl.Utf8,
                    "species": pl.Utf8,
                },
            ),
        )
        if sample_rows:
            upsert(
                con,
                "core.samples",
                pl.DataFrame(
                    sample_rows, schema_overrides={"srr": pl.Utf8, "group_label": pl.Utf8}
                ),
            )
        if contrast_rows:
            upsert(
                con,
                "core.contrasts",
                pl.DataFrame(
                    contrast_rows,
                    schema_overrides={
                        c: list_str for c in ("samples_a", "samples_b", "runs_a", "runs_b")
                    },
                ),
            )
        record_rejections(con, log.rows, "groups")
    return len(contrast_rows)
