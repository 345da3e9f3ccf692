"""Commands that make and load the warehouse: init, sql, export, simulate, ingest, import-*,
refresh and fetch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from degae_tools import console
from degae_tools.cli.base import db_option, friendly_errors, main, resolve_db
from degae_tools.cli.options import config_options
from degae_tools.signature_config import DETableImport, SignatureImport
from degae_tools.sources.fetch import FetchConfig
from degae_tools.sources.simulate import SimulationConfig
from degae_tools.steps.ingest import IngestConfig


@main.command()
@db_option
@friendly_errors
def init(db: Path | None) -> None:
    """Create the warehouse (or bring it up to date): schemas raw, core, ml and their views.

    Like every command that creates a warehouse, only in a folder that exists."""
    from warehouse import Warehouse

    path = resolve_db(db, create=True)
    with Warehouse.open(path, write=True, create=True) as wh:
        applied = wh.migrate()
    console.show_record({"warehouse": str(path), "sql_files_applied": len(applied)})


@main.command()
@click.argument("query")
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.option("--write", is_flag=True, help="Allow the query to change the warehouse.")
@click.option(
    "--allow-files",
    is_flag=True,
    help="Let a read-only query read and write files (read_csv, COPY … TO); off by default.",
)
@click.option("--limit", default=50, show_default=True, help="Rows shown as a table (0: all).")
@friendly_errors
def sql(
    query: str,
    db: Path | None,
    fmt: str,
    out: Path | None,
    write: bool,
    allow_files: bool,
    limit: int,
) -> None:
    """Run QUERY on the warehouse (read-only unless --write) and print or export the result.

    Without --write, one statement runs, sandboxed: no file outside the warehouse is read or
    written (unless --allow-files), no extension loaded, and settings cannot be changed. A
    result wider than the terminal is shown one row per block.
    """
    from warehouse.query import run_query

    path = resolve_db(db)
    run_query(path, query, fmt=fmt, out=out, write=write, limit=limit, allow_files=allow_files)


@main.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@db_option
@click.option("--table", "tables", multiple=True, help="A table to export (default: all).")
@friendly_errors
def export_tables(out_dir: Path, db: Path | None, tables: tuple[str, ...]) -> None:
    """Parquet exports for other engines: DE/GO results by series, ml tables by model."""
    from warehouse import Warehouse
    from warehouse.parquet import export_parquet

    with Warehouse.open(resolve_db(db)).session() as con:
        try:
            rows = export_parquet(con, out_dir, list(tables))
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
    console.show_table(["table", "rows"], sorted(rows.items()))


@main.command()
@db_option
@friendly_errors
def check(db: Path | None) -> None:
    """Verify the warehouse file: read every table whole (DuckDB checks each block's checksum),
    verify every other block (indexes, catalogue) against its checksum, compare row counts, and
    check the table contracts of sql/contracts.toml. Exit status 2 when anything is damaged or
    broken, with the commands that rebuild it from the source folders."""
    from degae_tools.errors import DamagedWarehouseError, WarehouseError
    from warehouse import Warehouse
    from warehouse.check import check_warehouse

    path = resolve_db(db)
    try:
        report = check_warehouse(Warehouse.open(path))
    except DamagedWarehouseError as exc:  # `check` cannot send the user to `check`
        raise WarehouseError(
            f"the warehouse {path} is damaged where DuckDB reads its catalogue ({exc.detail}), "
            "so no table can be checked; restore it from a copy, or move it aside and rebuild "
            "it with `degae-tools ingest` on the source folder"
        ) from exc
    if console.mode.json:
        console.show_record(
            {
                "warehouse": str(report.path),
                "tables": {t.table: t.rows for t in report.tables},
                "damaged": {t.table: t.problem for t in report.damaged},
                "bad_blocks": [str(b) for b in report.bad_blocks],
                "violations": [str(v) for v in report.violations],
                "rebuild": report.rebuild(),
            }
        )
    else:
        rows = [[t.table, t.rows, t.problem or "ok"] for t in report.tables]
        console.show_table(["table", "rows", "read whole"], rows, title=str(report.path))
        for violation in report.violations:
            click.echo(f"contract: {violation}", err=True)
        for block in report.bad_blocks:
            click.echo(f"block: {block}", err=True)
        if report.damaged or report.bad_blocks:
            names = ", ".join(t.table for t in report.damaged) or "blocks outside table data"
            click.echo(f"damaged: {names}. Rebuild them in a fresh warehouse:", err=True)
            for step in report.rebuild():
                click.echo(f"  {step}", err=True)
    if not report.ok:
        sys.exit(2)


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@config_options(
    SimulationConfig, only=("datasets", "genes", "go_terms", "seed", "ontology", "annotations")
)
@friendly_errors
def simulate(out_dir: Path, **fields: Any) -> None:
    """Write a simulated mouse compendium (DEE2, GEO, counts, GO) to OUT_DIR, with ground truth."""
    from degae_tools.sources.simulate import simulate as run

    config = SimulationConfig(**fields)
    summary = run(out_dir, config)
    console.show_record(
        {k: v for k, v in vars(summary).items() if not k.startswith("_")}, "simulated"
    )


@main.command()
@click.argument("source_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@db_option
@config_options(IngestConfig)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit with status 2 when input was rejected (open rejections of stage ingest) or no "
    "contrast came out: for scripts.",
)
@click.option("--no-prefect", is_flag=True, help="Run without Prefect (no flow run recorded).")
@friendly_errors
def ingest(
    source_dir: Path, db: Path | None, strict: bool, no_prefect: bool, **fields: Any
) -> None:
    """Load SOURCE_DIR (DEE2 metadata and counts, GEO series matrices, GO) into the warehouse.

    A bad row is rejected alone (file, line and reason in core.open_rejections), a file that
    cannot be parsed is rejected whole; the lines after the summary say how many are open and
    why no contrast came out when none did.

    Example: degae-tools ingest demo/compendium --strict
    """
    from degae_tools.steps.ingest import ingest as run
    from flows.ingest import ingest_flow

    config = IngestConfig(**fields)
    path = resolve_db(db, create=True)
    if no_prefect:
        summary = run(source_dir, path, config).as_dict()
    else:
        summary = ingest_flow(str(source_dir), str(path), config)
    errors, notes = summary.pop("errors"), summary.pop("notes")
    warnings = summary.pop("warnings")  # a Prefect run has logged them already
    by_stage = summary.pop("open_rejections")
    shown = ", ".join(f"{s} {n}" for s, n in by_stage.items() if s in ("ingest", "groups"))
    if console.mode.json:  # one JSON record: the notes go in it, not after it
        console.show_record(summary | {"open_rejections": by_stage, "notes": notes})
    else:
        console.show_record(summary | {"open_rejections": shown or "none"}, "ingest")
    for line in errors + ([f"warning: {w}" for w in warnings] if no_prefect else []):
        click.echo(line, err=True)
    show_summary(path)
    for line in [] if console.mode.json else notes:
        click.echo(line)
    if strict and (by_stage.get("ingest", 0) or not summary["included_contrasts"]):
        sys.exit(2)


def show_summary(path: Path) -> None:
    """Row counts of the main tables."""
    from warehouse.query import run_query

    if not console.mode.json:
        run_query(path, "SELECT * FROM core.summary", limit=0)


@main.command("import-de")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--contrast",
    "contrast_id",
    default=None,
    help="The compendium contrast the tables belong to (default: each table a signature of "
    "--collection).",
)
@config_options(DETableImport)
@db_option
@friendly_errors
def import_de(files: tuple[Path, ...], contrast_id: str | None, db: Path | None, **fields) -> None:
    """Load DE tables R writes (limma topTable, DESeq2 results(), edgeR topTags; the format is
    read from the header) as a contrast's DE results, or as signatures of a collection.

    Example: degae-tools import-de SRP253951_SARS-CoV-2-vs-mock.deseq2.tsv.gz
    """
    from degae_tools.steps.imports import import_de as run
    from warehouse import Warehouse, default_db_path

    create = contrast_id is None  # a new signature may start a warehouse, a contrast's may not
    with Warehouse.open(db or default_db_path(), write=True, create=create) as wh:
        _show_imports(run(wh, files, contrast_id, DETableImport(**fields)))


@main.command("import-go")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--contrast", "contrast_id", required=True, help="The contrast the table belongs to.")
@db_option
@friendly_errors
def import_go(files: tuple[Path, ...], contrast_id: str, db: Path | None) -> None:
    """Load GOfuncR go_enrich()$results tables as a contrast's GO enrichment."""
    from degae_tools.steps.imports import import_go as run
    from warehouse import Warehouse

    with Warehouse.open(resolve_db(db), write=True) as wh:
        _show_imports(run(wh, files, contrast_id))


def _show_imports(reports) -> None:
    console.show_table(
        ["file", "status", "rows", "rows rejected"],
        [[r.path, r.status, r.n_rows, r.n_rejected] for r in reports],
    )
    failed = [r for r in reports if r.status == "rejected"]
    for r in failed:
        click.echo(f"error: {r.message}", err=True)
    if failed:
        sys.exit(2)


@main.command("import-signatures")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--collection", required=True, help="Collection the signatures join (e.g. l1000).")
@config_options(SignatureImport, exclude=("collection",))
@db_option
@friendly_errors
def import_signatures(file: Path, collection: str, db: Path | None, **fields) -> None:
    """Load a wide matrix of signatures (one row per signature, one column per gene) as a
    collection: one contrast per signature, its genes mapped onto the warehouse's.

    Example: degae-tools import-signatures l1000_drugbank_consensus_signatures.tsv.gz
    --collection l1000 --value z --gene-id entrez
    """
    from degae_tools.steps.signatures import run
    from warehouse import Warehouse, default_db_path

    config = SignatureImport(collection=collection, **fields)
    with Warehouse.open(db or default_db_path(), write=True, create=True) as wh:
        summary = run(wh, file, config)
    console.show_record(summary.as_dict(), "import-signatures")


@main.command()
@click.argument("source_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@db_option
@click.option("--retrain", is_flag=True, help="Retrain, predict and attribute when results change.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write the report.")
@click.option(
    "--serve",
    "cron",
    default=None,
    help="Instead of running once, register the scheduled deployment refresh/nightly with this "
    "cron schedule (e.g. '0 3 * * *') and serve its runs (needs PREFECT_API_URL of a server). "
    "Its warehouse, SOURCE_DIR and --report are fixed here: a run cannot change them.",
)
@friendly_errors
def refresh(
    source_dir: Path, db: Path | None, retrain: bool, report_path: str | None, cron: str | None
) -> None:
    """The whole pipeline once (ingest → DE → GO → retrain → report), only for what is new."""
    from flows.refresh import refresh_flow, serve

    path = str(resolve_db(db, create=True).resolve())
    source = str(source_dir.resolve())
    if cron:
        report = str(Path(report_path).resolve()) if report_path else None
        serve(source, path, cron, report=report, retrain=retrain)
        return
    result = refresh_flow(source, path, retrain=retrain, report=report_path)
    console.show_record(result, "refresh")


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@config_options(FetchConfig)
@click.option(
    "--series-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file of GEO series, one per line.",
)
@friendly_errors
def fetch(out_dir: Path, series_file: Path | None, **fields: Any) -> None:
    """Download DEE2 metadata and runs, and GEO series matrices, into OUT_DIR (for `ingest`)."""
    from degae_tools.sources.fetch import fetch as run_fetch
    from degae_tools.sources.fetch import read_series_file

    if series_file:
        fields["series"] = fields["series"] + read_series_file(series_file)
    config = FetchConfig(**fields)
    summary = run_fetch(out_dir, config)
    record = summary.as_dict()
    if not console.mode.json:
        for key in ("fetched", "up_to_date", "failed"):
            record[key] = len(record[key])
    console.show_record(record, "fetch")
    if summary.failed and not console.mode.json:
        console.show_table(("series", "reason"), sorted(summary.failed.items()), title="failed")
    if summary.failed:
        sys.exit(1)
