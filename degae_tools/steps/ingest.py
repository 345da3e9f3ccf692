"""The `ingest` step: every input file of a folder into the warehouse, then the compendium's
datasets, samples and contrasts rebuilt from what is there (`steps.contrasts`).

Each file loads in one transaction with its `raw.source_files` row, keyed on its content: a file
loaded before is skipped, a killed run leaves only whole files, a rerun carries on. A file that
cannot be parsed at all is rejected whole and tried again next time; a bad row rejects that row
(file and line in `raw.rejected`) and the rest of the file loads. Rejections that a later load
resolves are marked resolved; the summary says how many are still open and, when no contrast
came out, why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from degae_tools.errors import DegaeError, InputFileError
from degae_tools.groups import Mode
from degae_tools.sources import Rejection, file_sha256
from degae_tools.sources.layout import IGNORED_DIRS, KINDS, discover
from degae_tools.steps import contrasts, ingest_counts, ingest_files
from degae_tools.steps.runs import Mapper, record_rejections, serially
from warehouse import Query, Warehouse

EXCLUSION_CAUSES = Query("ingest/exclusion_causes")
FILE_STATE = Query("ingest/file_state")
FILES_TO_RETRY = Query("ingest/files_to_retry")
INCLUSION_TOTALS = Query("ingest/inclusion_totals")
OPEN_REJECTIONS = Query("ingest/open_rejections_by_stage")
LOADED_FILES = Query("ingest/loaded_files")
RECORD_FILE = Query("ingest/record_source_file")
REJECTION_EXAMPLES = Query("ingest/rejection_examples")
RESOLVE = Query("ingest/resolve_rejections")

STAGE = "ingest"
# The stages whose rejections are ingest's: input files and rows, and series or groups that give
# no contrast (the de and go stages' skipped contrasts are theirs, reported by those steps).
INGEST_STAGES = (STAGE, contrasts.STAGE)
# Rejected input lines ingest's notes name (file, line, reason); the SQL lists the rest.
N_EXAMPLES = 3
LIST_REJECTIONS = (
    "SELECT stage, source, line, reason FROM core.open_rejections "
    "WHERE stage IN ('ingest', 'groups')"
)
LIST_EXCLUSIONS = (
    "SELECT gse, failed_criteria FROM core.dataset_inclusion WHERE exclusion_reason IS NOT NULL"
)
# What to do about each inclusion criterion a series fails (core.dataset_inclusion).
ADVICE = {
    "no GEO series matrix": "add its GSEnnn_series_matrix.txt.gz (degae-tools fetch gets it)",
    "GEO series matrix rejected": "fix the file named in core.open_rejections",
    "count file rejected": "fix the file named in core.open_rejections",
    "no counts": "add its GSEnnn_GeneCountMatrix.tsv.gz",
    "fewer than two groups": "no GEO characteristic separates its samples",
}
Loader = Callable[[Warehouse, Path, list[Rejection]], int]
LOADERS: dict[str, Loader] = {
    "gene_info": ingest_files.load_gene_info,
    "gene_xrefs": ingest_files.load_gene_xrefs,
    "ontology": ingest_files.load_ontology,
    "annotations": ingest_files.load_annotations,
    "dee2_metadata": ingest_files.load_dee2_metadata,
    "series_matrix": ingest_files.load_series_matrix,
    "counts": ingest_counts.load_counts,
}
# Newly loaded files of these kinds may name genes or GO IDs that loaded files lacked; files
# with rows rejected for these reasons are loaded again after them.
KEY_KINDS = ("gene_info", "gene_xrefs", "ontology")
RETRY_REASONS = (ingest_files.UNKNOWN_GENE, ingest_files.UNKNOWN_TERM, ingest_counts.UNKNOWN_GENE)


@dataclass(frozen=True)
class IngestConfig:
    """How ingest turns GEO characteristics into contrasts (see `degae_tools.groups`)."""

    mode: Mode = field(
        default="degae",
        metadata={
            "help": "Group rule: every value a group vs the control (degae), or first value vs "
            "rest (study)."
        },
    )
    min_replicates: int = field(
        default=2, metadata={"help": "Samples each group needs for a contrast."}
    )


@dataclass(frozen=True)
class KindBatch:
    """The files of one kind, loaded one after another in the order `layout.KINDS` gives."""

    kind: str
    paths: tuple[Path, ...]


@dataclass
class LoadReport:
    """What one file's load did: loaded, skipped (already loaded), rejected (whole) or retried,
    with the rows written and the rows rejected."""

    path: str
    kind: str
    status: str
    n_rows: int = 0
    n_rejected: int = 0
    message: str = ""


@dataclass
class IngestSummary:
    """Files loaded, skipped and rejected; rows and rejected rows; contrasts built; the open
    rejections by stage (the count `core.open_rejections` gives); and notes saying why."""

    loaded: int = 0
    skipped: int = 0
    rejected: int = 0
    retried: int = 0
    rows: int = 0
    rows_rejected: int = 0
    contrasts: int = 0
    included_contrasts: int = 0
    open_rejections: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, report: LoadReport) -> None:
        setattr(self, report.status, getattr(self, report.status) + 1)
        self.rows += report.n_rows
        self.rows_rejected += report.n_rejected
        if report.status == "rejected":
            self.errors.append(report.message)

    def as_dict(self) -> dict:
        return asdict(self)


def ingest(
    source_dir: Path,
    db_path: Path,
    config: IngestConfig = IngestConfig(),
    map_kinds: Mapper | None = None,
) -> IngestSummary:
    """Load `source_dir` into the warehouse at `db_path` (made if missing). A folder without one
    input file is refused before the warehouse is made, unless the warehouse already holds loaded
    files: then a scheduled refresh of an emptied folder keeps them and warns."""
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise DegaeError(f"{source_dir} is not a folder")
    found = discover(source_dir)
    if not any(found.values()):
        if not has_loaded_files(Path(db_path)):
            raise DegaeError(nothing_to_ingest(source_dir))
        kept = f"{nothing_to_ingest(source_dir)}. Nothing new is loaded; the warehouse is kept."
        with Warehouse.open(db_path) as wh, suppress(duckdb.CatalogException):  # not migrated
            return describe(wh, IngestSummary(warnings=[kept]))
        return IngestSummary(warnings=[kept])
    with Warehouse.open(db_path, write=True, create=True) as wh:
        return run(wh, found, config, map_kinds)


def run(
    wh: Warehouse,
    found: dict[str, list[Path]],
    config: IngestConfig = IngestConfig(),
    map_kinds: Mapper | None = None,
) -> IngestSummary:
    """Load the files found (by kind, in load order), load again the files whose rejected rows
    newly loaded genes or terms resolve, rebuild the contrasts and say what came out.
    `map_kinds` runs `load_kind` over the kinds (default: one after another, here)."""
    summary = IngestSummary()
    batches = [KindBatch(kind, tuple(paths)) for kind, paths in found.items() if paths]
    just_loaded: list[LoadReport] = []
    for reports in (map_kinds or serially(load_kind))(batches, wh=wh):
        for report in reports:
            summary.add(report)
            just_loaded += [report] if report.status == "loaded" else []
    with wh.session():
        if {r.kind for r in just_loaded} & set(KEY_KINDS):
            for report in retry_rejected_rows(wh, skip=[r.path for r in just_loaded]):
                summary.retried += 1
                summary.rows += report.n_rows
        summary.contrasts = contrasts.rebuild(wh, config.mode, config.min_replicates)
        return describe(wh, summary)


def describe(wh: Warehouse, summary: IngestSummary) -> IngestSummary:
    """The summary with what the warehouse now holds: open rejections by stage, the included
    contrasts, and notes saying where the rejections are and why series give no contrast."""
    summary.open_rejections = dict(wh.rows(OPEN_REJECTIONS))
    totals = Totals(*wh.one(INCLUSION_TOTALS))
    summary.included_contrasts = totals.n_contrasts
    examples = wh.rows(REJECTION_EXAMPLES, {"n": N_EXAMPLES})
    notes = rejection_notes(summary.open_rejections, examples)
    summary.notes = notes + inclusion_notes(wh, totals)
    return summary


@dataclass(frozen=True)
class Totals:
    """Series seen, series included and included contrasts (`ingest/inclusion_totals`)."""

    n_series: int
    n_included: int
    n_contrasts: int


def rejection_notes(open_rejections: dict[str, int], examples: list[tuple]) -> list[str]:
    """How many of ingest's rejections are open, by stage, and the SQL that lists them; then the
    first rejected input lines (`examples`: source, line, reason), one line each, so what was
    rejected (a file, a row, the terms of an ontology cycle) is named where the user looks."""
    counts = {stage: open_rejections.get(stage, 0) for stage in INGEST_STAGES}
    if not sum(counts.values()):
        return []
    by_stage = ", ".join(f"{stage} {n}" for stage, n in counts.items())
    lines = [f"{sum(counts.values())} open rejections ({by_stage}): {LIST_REJECTIONS}"]
    for source, line, reason in examples:
        lines.append(f"  {source}{f' line {line}' if line else ''}: {reason}")
    if counts[STAGE] > len(examples):
        lines.append(f"  … and {counts[STAGE] - len(examples)} more rejected input lines")
    return lines


def inclusion_notes(wh: Warehouse, totals: Totals) -> list[str]:
    """Why series give no contrast: one line per cause, largest first, when no contrast came out;
    otherwise one line with the included series and the causes of the rest."""
    if totals.n_series == 0:
        return ["no DEE2 run or GEO series loaded yet, so no contrast"]
    causes = wh.rows(EXCLUSION_CAUSES)
    if totals.n_contrasts == 0:
        lines = [f"no contrast came out of {totals.n_series} series:"]
        lines += [f"  {line}" for line in exclusion_lines(wh, causes)]
        return [*lines, f"  list them: {LIST_EXCLUSIONS}"]
    if totals.n_included == totals.n_series:
        return []
    others = ", ".join(f"{n} {criterion}" for criterion, n, _, _ in causes[:4])
    return [
        f"{totals.n_included} of {totals.n_series} series included ({totals.n_contrasts} "
        f"contrasts); the others: {others} ({LIST_EXCLUSIONS})"
    ]


def exclusion_lines(wh: Warehouse, causes: list[tuple] | None = None) -> list[str]:
    """One line per failed inclusion criterion, largest first: how many series fail it (a series
    may fail several), the first of them, and what to do about it where there is advice."""
    lines = []
    for criterion, n_series, n_runs, examples in causes or wh.rows(EXCLUSION_CAUSES):
        named = ", ".join(examples) + (", …" if n_series > len(examples) else "")
        runs = f", {n_runs} runs" if criterion == "no run passes DEE2 QC" else ""
        advice = f": {ADVICE[criterion]}" if criterion in ADVICE else ""
        lines.append(f"{n_series} series ({named}{runs}): {criterion}{advice}")
    return lines


def load_kind(batch: KindBatch, wh: Warehouse) -> list[LoadReport]:
    """Load every file of one kind, each in its own transaction, on one connection."""
    with wh.session():
        return [load_file(wh, path, batch.kind) for path in batch.paths]


def load_file(wh: Warehouse, path: Path, kind: str) -> LoadReport:
    """Load one file with its kind's loader in a transaction, or record why it was rejected.

    A load resolves the file's earlier rejections (its row-level ones are recorded anew)."""
    sha = file_sha256(path)
    loaded, has_open = wh.one(FILE_STATE, {"kind": kind, "sha256": sha, "path": str(path)})
    if loaded:
        return LoadReport(str(path), kind, "skipped", message="already loaded")
    rejected: list[Rejection] = []
    try:
        with wh.transaction():
            n_rows = LOADERS[kind](wh, path, rejected)
            settle_rejections(wh, path, rejected, has_open)
            record_file(wh, path, kind, sha, "loaded", n_rows)
        return LoadReport(str(path), kind, "loaded", n_rows, len(rejected))
    except (InputFileError, pl.exceptions.PolarsError, pa.ArrowException) as exc:
        error = as_input_error(exc, path, kind)
        with wh.transaction():
            record_rejections(wh, [Rejection(str(path), error.line, str(error), None)], STAGE)
            record_file(wh, path, kind, sha, "rejected", 0)
        return LoadReport(str(path), kind, "rejected", 0, 0, str(error))


def retry_rejected_rows(wh: Warehouse, skip: Iterable[str] = ()) -> list[LoadReport]:
    """Load again every loaded file (annotations, counts) with rows rejected for a gene or GO ID
    unknown at the time, after genes, cross-references or an ontology arrived: what is known now
    loads and its rejections are resolved; what is still unknown stays rejected. A file moved
    away or changed since (the new content loads as a new file) is left as it is, and so are
    the paths in `skip` (files this ingest has just loaded, after the genes and terms)."""
    skip = set(skip)
    reports = []
    for path_text, kind, sha in wh.rows(FILES_TO_RETRY, {"reasons": list(RETRY_REASONS)}):
        path = Path(path_text)
        if path_text in skip or not path.exists() or file_sha256(path) != sha:
            continue
        rejected: list[Rejection] = []
        with wh.transaction():
            n_rows = LOADERS[kind](wh, path, rejected)
            settle_rejections(wh, path, rejected)
            record_file(wh, path, kind, sha, "loaded", n_rows)
        reports.append(LoadReport(path_text, kind, "retried", n_rows, len(rejected)))
    return reports


def settle_rejections(
    wh: Warehouse, path: Path, rejected: list[Rejection], has_open: bool = True
) -> None:
    """The file's earlier rejections resolved, this load's recorded (open again if seen before)."""
    if has_open:
        wh.execute(RESOLVE, {"stage": STAGE, "source": str(path)})
    record_rejections(wh, rejected, STAGE)


def record_file(wh: Warehouse, path: Path, kind: str, sha: str, status: str, n_rows: int) -> None:
    """The file's `raw.source_files` row: its content hash, whether it loaded, its rows."""
    row = {"path": str(path), "kind": kind, "sha256": sha, "size_bytes": path.stat().st_size}
    wh.execute(RECORD_FILE, row | {"status": status, "n_rows": n_rows})


def as_input_error(exc: Exception, path: Path, kind: str) -> InputFileError:
    """A reader's or Arrow's error about a file as the named error that says which file."""
    if isinstance(exc, InputFileError):
        return exc
    return InputFileError(path, None, f"unreadable {kind} file: {exc}".splitlines()[0])


def has_loaded_files(db_path: Path) -> bool:
    """Whether the warehouse at `db_path` exists and holds at least one loaded input file."""
    if not db_path.exists():
        return False
    try:
        return Warehouse.open(db_path).scalar(LOADED_FILES) > 0
    except duckdb.CatalogException:  # not migrated yet
        return False


def nothing_to_ingest(source_dir: Path) -> str:
    """Why a folder without one recognised file name has nothing to ingest, naming a few of its
    files and every name pattern `layout.KINDS` reads."""
    files = [
        p
        for p in sorted(source_dir.rglob("*"))
        if p.is_file() and not IGNORED_DIRS & set(p.relative_to(source_dir).parts)
    ]
    shown = ", ".join(str(p.relative_to(source_dir)) for p in files[:5])
    more = ", …" if len(files) > 5 else ""
    count = f"{len(files)} file{'s' if len(files) != 1 else ''}"
    held = f"it holds {count} ({shown}{more})" if files else "it holds no input file"
    names = "; ".join(f"{kind.replace('_', ' ')}: {', '.join(globs)}" for kind, globs in KINDS)
    return (
        f"{source_dir}: no file to ingest, {held}. degae reads files by name ({names}; "
        "see the README, 'A compendium of your own')"
    )
