"""Readers for DEE2 (Digital Expression Explorer 2) metadata, gene counts and gene info.

DEE2 serves ``<species>_metadata.tsv.cut`` (getDEE2's ``getDEE2Metadata`` downloads
``http://dee2.io/metadata/<species>_metadata.tsv.cut``; its vignette prints the header
``SRR_accession QC_summary SRX_accession SRS_accession SRP_accession Experiment_title
GEO_series``), and older releases wrote ``... SRP_accession GSE_accession GSM_accession
[experiment_title]`` (markziemann/dee2 ``sradb`` scripts). A ``request.sh`` bundle's
``MetadataSummary.tsv`` says ``GSE_accession Sample_name Library_name`` but holds the GSM, the
GSE and the title. So the five leading accession columns are checked by name and the rest are
recognised by pattern.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from degae_tools.errors import DEE2CountsError, DEE2MetadataError
from degae_tools.sources import (
    OnReject,
    Rejection,
    first_line,
    iter_lines,
    read_bytes,
    reject,
)

METADATA_LEADING_COLUMNS = (
    "SRR_accession",
    "QC_summary",
    "SRX_accession",
    "SRS_accession",
    "SRP_accession",
)
METADATA_SCHEMA = {
    "srr": pl.String,
    "qc_summary": pl.String,
    "qc_status": pl.String,
    "srx": pl.String,
    "srs": pl.String,
    "srp": pl.String,
    "gse": pl.String,
    "gsm": pl.String,
    "title": pl.String,
    "species": pl.String,
    "line": pl.Int64,
}
LONG_COUNT_HEADER = ("SRR_accession", "GeneID", "count")
GENE_INFO_COLUMNS = ("GeneID", "GeneSymbol", "longest_isoform")
# STAR's ReadsPerGene summary rows are not genes.
STAR_SUMMARY_ROWS = ("N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous")
MISSING = ("", "NA")
TAB = "\t"
INT32_MAX = np.iinfo(np.int32).max

RUN = re.compile(r"[SED]RR[0-9]+")
EXPERIMENT = re.compile(r"[SED]RX[0-9]+")
SAMPLE = re.compile(r"[SED]RS[0-9]+")
STUDY = re.compile(r"[SED]RP[0-9]+")
GSE_LIST = re.compile(r"GSE[0-9]+(?:\s*[;,]\s*GSE[0-9]+)*")
GSM = re.compile(r"GSM[0-9]+")
QC = re.compile(r"(PASS|WARN|FAIL)(?:\(.*\))?")
SPECIES_FILE = re.compile(r"([a-z]+)_metadata\.tsv")
COUNT = re.compile(r"[0-9]+")
ACCESSION_PATTERNS = {"srx": EXPERIMENT, "srs": SAMPLE, "srp": STUDY}


@dataclass(frozen=True)
class CountLayout:
    """How a count file is laid out, read from its first line: ``wide`` (``GeneID`` then one
    column per run, ``runs``) or ``long`` (run, gene, count lines, with or without a header)."""

    kind: Literal["wide", "long"]
    runs: tuple[str, ...] = ()
    has_header: bool = True


@dataclass(frozen=True)
class CountMatrix:
    """Gene counts of some runs: ``counts[i, j]`` is gene ``gene_ids[i]`` in run ``runs[j]``."""

    gene_ids: list[str]
    runs: list[str]
    counts: np.ndarray


def qc_status(qc_summary: str) -> str:
    """``PASS``, ``WARN`` or ``FAIL`` from a DEE2 QC summary such as ``WARN(2,6)``."""
    match = QC.fullmatch(qc_summary.strip())
    if match is None:
        raise ValueError(
            f"unknown QC summary {qc_summary!r}; expected PASS, WARN(...) or FAIL(...)"
        )
    return match.group(1)


def iter_metadata(
    path: str | Path, batch_size: int = 50_000, on_reject: OnReject | None = None
) -> Iterator[pl.DataFrame]:
    """Yield DEE2 run metadata in batches of at most ``batch_size`` rows (columns: METADATA_SCHEMA).

    Rows with a bad accession or QC summary go to ``on_reject`` and are skipped; so do rows with
    the wrong number of fields (without ``on_reject`` these raise).
    """
    species_match = SPECIES_FILE.match(Path(path).name)
    species = species_match.group(1) if species_match else None
    lines = iter_lines(path, DEE2MetadataError)
    n_fields = _metadata_header(path, lines)
    numbers: list[int] = []
    records: list[str] = []
    for number, line in lines:
        if not line.strip():
            continue
        if line.count(TAB) != n_fields - 1:
            got = len(line.split(TAB))
            message = f"expected {n_fields} tab-separated fields, got {got}"
            reject(on_reject, DEE2MetadataError(path, number, message), line)
            continue
        numbers.append(number)
        records.append(line)
        if len(records) >= batch_size:
            batch = _metadata_batch(path, numbers, records, species, on_reject)
            if batch.height:
                yield batch
            numbers, records = [], []
    if records:
        batch = _metadata_batch(path, numbers, records, species, on_reject)
        if batch.height:
            yield batch


def _metadata_header(path: str | Path, lines: Iterator[tuple[int, str]]) -> int:
    expected = "\t".join(METADATA_LEADING_COLUMNS)
    for number, line in lines:
        fields = line.lstrip("\ufeff").split("\t")
        if tuple(fields[:5]) != METADATA_LEADING_COLUMNS or len(fields) < 7:
            raise DEE2MetadataError(
                path,
                number,
                f"expected a header starting {expected!r} and at least 7 columns, "
                f"got {line[:120]!r}",
            )
        return len(fields)
    raise DEE2MetadataError(path, None, f"empty file; expected a header starting {expected!r}")


def _cell(index: int) -> pl.Expr:
    value = pl.col(f"field_{index}").str.strip_chars()
    return pl.when(value.is_in(MISSING)).then(None).otherwise(value)


def _metadata_batch(
    path: str | Path,
    numbers: list[int],
    records: list[str],
    species: str | None,
    on_reject: OnReject | None,
) -> pl.DataFrame:
    """Validate and classify one batch of metadata lines with polars expressions."""
    frame = pl.DataFrame(
        {"line": numbers, "record": records}, schema={"line": pl.Int64, "record": pl.String}
    )
    # Only the three columns after the accessions: MetadataFull.tsv adds many more.
    frame = frame.with_columns(pl.col("record").str.split_exact(TAB, 7).alias("f")).unnest("f")
    extras = ["x5", "x6", "x7"]
    frame = frame.select(
        "line",
        "record",
        _cell(0).alias("srr"),
        pl.col("field_1").str.strip_chars().alias("qc_summary"),
        _cell(2).alias("srx"),
        _cell(3).alias("srs"),
        _cell(4).alias("srp"),
        *(_cell(i).alias(name) for i, name in zip((5, 6, 7), extras, strict=True)),
    )
    frame = frame.with_columns(
        pl.col("qc_summary").str.extract(f"^{QC.pattern}$").alias("qc_status"),
        *(_matches(x, GSE_LIST).alias(f"{x}_gse") for x in extras),
        *(_matches(x, GSM).alias(f"{x}_gsm") for x in extras),
    )
    title = pl.coalesce(
        [pl.when(~pl.col(f"{x}_gse") & ~pl.col(f"{x}_gsm")).then(pl.col(x)) for x in extras]
    )
    frame = frame.with_columns(title.alias("title"))
    frame = frame.with_columns(
        pl.coalesce(
            [
                pl.when(pl.col(f"{x}_gse")).then(pl.col(x).str.extract(r"^(GSE[0-9]+)"))
                for x in extras
            ]
        ).alias("gse"),
        pl.coalesce(
            [pl.when(pl.col(f"{x}_gsm")).then(pl.col(x)) for x in extras]
            + [pl.col("title").str.extract(r"^(GSM[0-9]+)")]
        ).alias("gsm"),
        pl.lit(species, dtype=pl.String).alias("species"),
        pl.all_horizontal(
            _matches("srr", RUN),
            pl.col("qc_status").is_not_null(),
            *(_matches(c, p) | pl.col(c).is_null() for c, p in ACCESSION_PATTERNS.items()),
        ).alias("valid"),
    )
    if on_reject is not None:
        for row in frame.filter(~pl.col("valid")).iter_rows(named=True):
            on_reject(Rejection(str(path), row["line"], _rejection_reason(row), row["record"]))
    return frame.filter(pl.col("valid")).select(list(METADATA_SCHEMA))


def _matches(column: str, pattern: re.Pattern[str]) -> pl.Expr:
    return pl.col(column).str.contains(f"^(?:{pattern.pattern})$").fill_null(False)


def _rejection_reason(row: dict) -> str:
    if not RUN.fullmatch(row["srr"] or ""):
        return f"bad run accession {row['srr']!r}; expected SRR/ERR/DRR followed by digits"
    if row["qc_status"] is None:
        return f"unknown QC summary {row['qc_summary']!r}; expected PASS, WARN(...) or FAIL(...)"
    for column, pattern in ACCESSION_PATTERNS.items():
        if not pattern.fullmatch(row[column]):
            return f"bad {column.upper()} accession {row[column]!r}"
    raise AssertionError(f"row {row['line']} is valid")


def read_count_matrix(path: str | Path) -> CountMatrix:
    """Read DEE2 gene counts into memory, strictly: wide (``GeneID SRR...``) or long (``SRR
    GeneID count``). The long form may lack its header (DEE2's per-run STAR counts).

    Ingest streams count files instead (`degae_tools.steps.ingest_counts`), by the same layout.
    """
    data = read_bytes(path, DEE2CountsError)
    layout = _layout(path, _first_line(path, data))
    if layout.kind == "wide":
        return _read_wide_counts(path, data, ["GeneID", *layout.runs])
    return _read_long_counts(path, data, has_header=layout.has_header)


def count_layout(path: str | Path) -> CountLayout:
    """The layout of a count file from its first line, read in bounded memory."""
    header = first_line(path, DEE2CountsError)
    if header is None:
        raise DEE2CountsError(path, None, "empty file; expected a gene count table")
    return _layout(path, header.split(TAB))


def _layout(path: str | Path, header: list[str]) -> CountLayout:
    if header[0] == "GeneID":
        runs = header[1:]
        if not runs:
            raise DEE2CountsError(path, 1, "expected at least one run column after 'GeneID'")
        for run in runs:
            if not RUN.fullmatch(run):
                raise DEE2CountsError(
                    path, 1, f"expected run accessions as column names, got {run!r}"
                )
        if len(set(runs)) != len(runs):
            raise DEE2CountsError(path, 1, "duplicate run columns in the header")
        return CountLayout("wide", tuple(runs))
    if tuple(header) == LONG_COUNT_HEADER:
        return CountLayout("long", has_header=True)
    if len(header) == 3 and RUN.fullmatch(header[0]):
        return CountLayout("long", has_header=False)
    raise DEE2CountsError(
        path,
        1,
        "expected a header 'GeneID<TAB>SRR...' (wide), 'SRR_accession<TAB>GeneID<TAB>count' "
        f"or three headerless columns run, gene, count; got {_shown(header)}",
    )


def _shown(fields: list[str]) -> str:
    return repr("\t".join(fields)[:120])


def _first_line(path: str | Path, data: bytes) -> list[str]:
    if not data.strip():
        raise DEE2CountsError(path, None, "empty file; expected a gene count table")
    first = data.split(b"\n", 1)[0]
    if b"\x00" in first:
        raise DEE2CountsError(path, 1, "binary data (NUL byte) in a text file")
    try:
        return first.decode("utf-8").lstrip("\ufeff").rstrip("\r").split("\t")
    except UnicodeDecodeError as exc:
        raise DEE2CountsError(path, 1, "not UTF-8 text") from exc


def _read_table(
    path: str | Path, data: bytes, n_fields: int, has_header: bool, count_fields: range
) -> pl.DataFrame:
    """All cells as strings, blank lines dropped, plus ``_line`` (1-based line in the file)."""
    try:
        table = pl.read_csv(
            io.BytesIO(data),
            separator="\t",
            has_header=has_header,
            infer_schema=False,
            quote_char=None,
            encoding="utf8",
        )
    except pl.exceptions.PolarsError as exc:
        _diagnose(path, data, n_fields, has_header, count_fields)
        raise DEE2CountsError(path, None, f"unreadable table ({exc})") from exc
    if table.width != n_fields:
        _diagnose(path, data, n_fields, has_header, count_fields)
        raise DEE2CountsError(path, None, f"expected {n_fields} columns, got {table.width}")
    offset = 2 if has_header else 1
    table = table.with_row_index("_line", offset=offset)
    return table.filter(~pl.all_horizontal(pl.exclude("_line").is_null()))


def _check_counts(
    path: str | Path,
    data: bytes,
    table: pl.DataFrame,
    columns: list[str],
    has_header: bool,
    count_fields: range,
) -> pl.DataFrame:
    """Cast count columns to Int64; any bad cell sends the file to the line-by-line diagnosis."""
    counts = table.select(pl.col(columns).cast(pl.Int64, strict=False))
    bad = pl.any_horizontal(
        [pl.col(c).is_null() | (pl.col(c) < 0) | (pl.col(c) > INT32_MAX) for c in columns]
    )
    if counts.select(bad.any()).item():
        _diagnose(path, data, table.width - 1, has_header, count_fields)
        raise DEE2CountsError(path, None, "expected non-negative integer counts")
    return counts


def _diagnose(
    path: str | Path, data: bytes, n_fields: int, has_header: bool, count_fields: range
) -> None:
    """Find the first bad line of a count table the fast reader refused, and raise naming it."""
    text = data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if (number == 1 and has_header) or not line:
            continue
        fields = line.split("\t")
        if len(fields) != n_fields:
            raise DEE2CountsError(
                path, number, f"expected {n_fields} tab-separated fields, got {len(fields)}"
            )
        for index in count_fields:
            value = fields[index]
            if not COUNT.fullmatch(value) or int(value) > INT32_MAX:
                raise DEE2CountsError(
                    path, number, f"expected a non-negative integer count, got {value[:40]!r}"
                )


def _read_wide_counts(path: str | Path, data: bytes, header: list[str]) -> CountMatrix:
    runs = header[1:]
    count_fields = range(1, len(header))
    table = _read_table(path, data, len(header), True, count_fields)
    table = table.filter(~pl.col("GeneID").is_in(STAR_SUMMARY_ROWS))
    if table.height == 0:
        raise DEE2CountsError(path, None, "expected gene rows after the header, got none")
    _check_gene_ids(path, table, "GeneID")
    counts = _check_counts(path, data, table, runs, True, count_fields)
    return CountMatrix(
        gene_ids=table["GeneID"].to_list(),
        runs=runs,
        counts=counts.to_numpy().astype(np.int32, copy=False).reshape(table.height, len(runs)),
    )


def _read_long_counts(path: str | Path, data: bytes, has_header: bool) -> CountMatrix:
    count_fields = range(2, 3)
    table = _read_table(path, data, 3, has_header, count_fields)
    table = table.rename(dict(zip(table.columns[1:], ("run", "gene", "count"), strict=True)))
    table = table.filter(~pl.col("gene").is_in(STAR_SUMMARY_ROWS))
    bad_run = table.filter(~pl.col("run").str.contains(r"^[SED]RR\d+$") | pl.col("run").is_null())
    if bad_run.height:
        row = bad_run.row(0, named=True)
        raise DEE2CountsError(path, row["_line"], f"expected a run accession, got {row['run']!r}")
    _check_gene_ids(path, table, "gene")
    if table.height == 0:
        raise DEE2CountsError(path, None, "expected count rows, got none")
    counts = _check_counts(path, data, table, ["count"], has_header, count_fields)["count"]
    runs = table["run"].unique(maintain_order=True)
    genes = table["gene"].unique(maintain_order=True)
    rows = table["gene"].cast(pl.Enum(genes)).to_physical().to_numpy().astype(np.int64)
    cols = table["run"].cast(pl.Enum(runs)).to_physical().to_numpy().astype(np.int64)
    cell = rows * len(runs) + cols
    seen = np.bincount(cell, minlength=len(genes) * len(runs))
    if (seen > 1).any():
        second = np.flatnonzero(cell == np.flatnonzero(seen > 1)[0])[1]
        raise DEE2CountsError(
            path,
            table["_line"][int(second)],
            "duplicate run and gene pair; expected one count each",
        )
    if (seen == 0).any():
        gene, run = divmod(int(np.flatnonzero(seen == 0)[0]), len(runs))
        raise DEE2CountsError(
            path,
            None,
            f"expected a count for every run and gene; {runs[run]} lacks {genes[gene]} "
            f"({int((seen == 0).sum())} missing)",
        )
    matrix = np.zeros((len(genes), len(runs)), dtype=np.int32)
    matrix[rows, cols] = counts.to_numpy()
    return CountMatrix(gene_ids=genes.to_list(), runs=runs.to_list(), counts=matrix)


def _check_gene_ids(path: str | Path, table: pl.DataFrame, column: str) -> None:
    missing = table.filter(pl.col(column).is_null() | (pl.col(column).str.strip_chars() == ""))
    if missing.height:
        raise DEE2CountsError(path, missing["_line"][0], "expected a gene ID, got an empty cell")
    if column == "GeneID":
        duplicated = table.filter(pl.col(column).is_duplicated())
        if duplicated.height:
            raise DEE2CountsError(
                path, duplicated["_line"][1], f"duplicate gene ID {duplicated[column][1]!r}"
            )


def read_gene_info(path: str | Path, on_reject: OnReject | None = None) -> pl.DataFrame:
    """DEE2 ``GeneInfo.tsv`` as ``gene_id, symbol, length`` (length: the longest isoform, bp).

    A row with the wrong number of fields (a tab inside a gene ID), no gene ID, a bad length or a
    gene ID seen before goes to ``on_reject`` and the rest is read; without ``on_reject`` it
    raises, naming the line.
    """
    lines = iter_lines(path, DEE2CountsError)
    first = next(((n, line) for n, line in lines if line.strip()), None)
    if first is None:
        raise DEE2CountsError(path, None, "empty file; expected a GeneInfo.tsv header")
    header = first[1].lstrip("\ufeff").split(TAB)
    if header[:2] != list(GENE_INFO_COLUMNS[:2]) or GENE_INFO_COLUMNS[2] not in header:
        raise DEE2CountsError(
            path,
            first[0],
            "expected a header 'GeneID<TAB>GeneSymbol<TAB>...<TAB>longest_isoform...', "
            f"got {_shown(header)}",
        )
    length_at = header.index(GENE_INFO_COLUMNS[2])
    rows: dict[str, tuple[str | None, int]] = {}
    for number, line in lines:
        if not line.strip():
            continue
        fields = line.split(TAB)
        problem = _gene_info_problem(fields, len(header), length_at, rows)
        if problem:
            reject(on_reject, DEE2CountsError(path, number, problem), line)
            continue
        symbol = fields[1] if fields[1] not in MISSING else None
        rows[fields[0]] = (symbol, int(fields[length_at]))
    return pl.DataFrame(
        {
            "gene_id": list(rows),
            "symbol": [symbol for symbol, _ in rows.values()],
            "length": [length for _, length in rows.values()],
        },
        schema={"gene_id": pl.String, "symbol": pl.String, "length": pl.Int64},
    )


def _gene_info_problem(
    fields: list[str], n_fields: int, length_at: int, seen: dict[str, object]
) -> str | None:
    """What is wrong with one GeneInfo row, or None."""
    if len(fields) != n_fields:
        return f"expected {n_fields} tab-separated fields, got {len(fields)}"
    if not fields[0].strip():
        return "expected a gene ID, got an empty cell"
    if fields[0] in seen:
        return f"duplicate gene ID {fields[0]!r}"
    if not COUNT.fullmatch(fields[length_at]):
        return f"expected a non-negative integer longest_isoform, got {fields[length_at]!r}"
    return None
