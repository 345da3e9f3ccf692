"""`degae-tools`: a thin Click skin over the library; every command calls one library function."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from degae_tools import console
from degae_tools.errors import DegaeError

db_option = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Warehouse file (default: $DEGAE_DB, then warehouse/degae.duckdb).",
)


def resolve_db(db: Path | None) -> Path:
    """The warehouse path a command uses: `--db`, else `$DEGAE_DB`, else the default."""
    from warehouse import default_db_path

    return db if db is not None else default_db_path()


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a DegaeError into one clear line on stderr and exit status 2, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DegaeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--quiet", is_flag=True, help="No progress bars or chatter.")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON (for scripts).")
@click.version_option(package_name="degae")
def main(quiet: bool, as_json: bool) -> None:
    """degae: a DuckDB warehouse of limma DE and GO-enrichment results, and autoencoders on it."""
    console.mode.quiet = quiet
    console.mode.json = as_json


@main.command()
@db_option
@friendly_errors
def init(db: Path | None) -> None:
    """Create the warehouse (or bring it up to date): schemas raw, core, ml and their views."""
    import warehouse

    path = resolve_db(db)
    con = warehouse.connect(path, write=True)
    applied = warehouse.migrate(con)
    con.close()
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
@click.option("--limit", default=50, show_default=True, help="Rows shown as a table (0: all).")
@friendly_errors
def sql(
    query: str, db: Path | None, fmt: str, out: Path | None, write: bool, limit: int
) -> None:
    """Run QUERY on the warehouse (read-only unless --write) and print or export the result."""
    from warehouse.query import run_query

    run_query(resolve_db(db), query, fmt=fmt, out=out, write=write, limit=limit)


# Commands below are grouped by the module they call. Each block is owned by one module's author.

# --- simulate / ingest ---

# --- de / enrich ---

# --- train / search ---

# --- predict / attribute ---

# --- reduce / report ---

# --- refresh / fetch ---


if __name__ == "__main__":
    main()
