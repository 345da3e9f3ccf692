"""Prefect flow: load a compendium folder (DEE2, GEO, counts, GO) into the warehouse.

Each file is one transactional task step, so a killed flow leaves only whole files behind and a
rerun picks up where it stopped; a file that fails to parse is recorded in `raw.rejected` and the
other files still load.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
from prefect import flow, get_run_logger, task
from prefect.context import FlowRunContext

import warehouse
from degae_tools.errors import DegaeError
from degae_tools.sources.layout import IGNORED_DIRS, KINDS, discover
from warehouse import load
from warehouse.migrate import read_query

# Newly loaded files of these kinds may name genes or GO IDs that earlier annotations lacked.
RETRY_AFTER = ("gene_info", "gene_xrefs", "ontology")
LOADERS = {
    "gene_info": load.load_gene_info,
    "gene_xrefs": load.load_gene_xrefs,
    "ontology": load.load_ontology,
    "annotations": load.load_annotations,
    "dee2_metadata": load.load_dee2_metadata,
    "series_matrix": load.load_series_matrix,
    "counts": load.load_counts,
}


@dataclass
class IngestSummary:
    """Files loaded, skipped (already loaded) and rejected, and contrasts built."""

    loaded: int = 0
    skipped: int = 0
    rejected: int = 0
    retried: int = 0
    rows: int = 0
    rows_rejected: int = 0
    contrasts: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, report: load.LoadReport) -> None:
        setattr(self, report.status, getattr(self, report.status) + 1)
        self.rows += report.n_rows
        self.rows_rejected += report.n_rejected
        if report.status == "rejected":
            self.errors.append(report.message)

    def as_dict(self) -> dict:
        return asdict(self)


@task(name="load-files")
def load_files(db_path: Path, kind: str, paths: list[Path]) -> list[load.LoadReport]:
    """Load every file of one kind, each in its own transaction."""
    con = warehouse.connect(db_path, write=True)
    try:
        return [load.load_file(con, path, kind, LOADERS[kind]) for path in paths]
    finally:
        con.close()


@task(name="retry-annotations")
def retry_annotations(db_path: Path, just_loaded: list[str]) -> list[load.LoadReport]:
    """Annotation files with rows rejected for genes or GO IDs that have arrived since."""
    con = warehouse.connect(db_path, write=True)
    try:
        return load.retry_annotations(con, skip=just_loaded)
    finally:
        con.close()


@task(name="build-contrasts")
def build_contrasts(db_path: Path, mode: str, min_replicates: int) -> int:
    """Infer groups from GEO characteristics and rebuild core.datasets/samples/contrasts."""
    con = warehouse.connect(db_path, write=True)
    try:
        return load.rebuild_contrasts(con, mode=mode, min_replicates=min_replicates)
    finally:
        con.close()


def ingest(
    source_dir: Path, db_path: Path, mode: str = "degae", min_replicates: int = 2
) -> IngestSummary:
    """Load `source_dir` into the warehouse at `db_path` (the flow's body, callable directly)."""
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise DegaeError(f"{source_dir} is not a folder")
    found = discover(source_dir)
    if not any(found.values()):
        if not has_loaded_files(db_path):
            raise DegaeError(nothing_to_ingest(source_dir))
        # A scheduled refresh of a folder emptied (or not mounted) since: keep what is loaded.
        warning = f"{nothing_to_ingest(source_dir)}. Nothing new is loaded; the warehouse is kept."
        if FlowRunContext.get():
            get_run_logger().warning(warning)
        return IngestSummary(warnings=[warning])
    con = warehouse.connect(db_path, write=True)
    warehouse.migrate(con)
    con.close()
    summary = IngestSummary()
    keys_changed, just_loaded = False, []
    for kind, paths in found.items():
        if paths:
            for report in run_step(load_files, db_path, kind, paths):
                summary.add(report)
                keys_changed |= report.status == "loaded" and kind in RETRY_AFTER
                if report.status == "loaded" and kind == "annotations":
                    just_loaded.append(report.path)
    if keys_changed:
        for report in run_step(retry_annotations, db_path, just_loaded):
            summary.retried += 1
            summary.rows += report.n_rows
    summary.contrasts = run_step(build_contrasts, db_path, mode, min_replicates)
    return summary


def has_loaded_files(db_path: Path) -> bool:
    """Whether the warehouse at `db_path` exists and holds at least one loaded input file."""
    if not Path(db_path).exists():
        return False
    con = warehouse.connect(db_path)
    try:
        return con.sql(read_query("ingest/loaded_files")).fetchall()[0][0] > 0
    except duckdb.CatalogException:  # not migrated yet
        return False
    finally:
        con.close()


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


def run_step(step, *args):
    """Run a task as a Prefect task inside a flow, or as a plain function outside one."""
    return step(*args) if FlowRunContext.get() else step.fn(*args)


@flow(name="ingest", log_prints=True)
def ingest_flow(
    source_dir: str, db_path: str, mode: str = "degae", min_replicates: int = 2
) -> dict:
    """Prefect flow wrapper of `ingest`: returns the summary as a dict."""
    return ingest(Path(source_dir), Path(db_path), mode, min_replicates).as_dict()
