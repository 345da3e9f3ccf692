"""The `degae-tools` group, its shared options and the edge where errors become one line."""

from __future__ import annotations

import errno
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from degae_tools import console
from degae_tools.errors import DegaeError, NothingToDo

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


# A write refused by the disk: full, over the file-size limit or quota, or a read-only mount.
STORAGE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS)


def storage_error(exc: BaseException) -> str | None:
    """One line on a write the disk refused (what it said, and what to do), or None when `exc`
    is something else."""
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        detail = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
        read_only = exc.errno == errno.EROFS
    else:
        duckdb = sys.modules.get("duckdb")  # loaded already if DuckDB raised it
        if duckdb is None or not isinstance(exc, duckdb.IOException):
            return None
        detail = str(exc)
        read_only = "read-only file system" in detail.lower()
    if read_only:
        advice = "Point it at a writable place (--db, --model-dir, --out) and run it again."
    else:
        advice = "Free space (or raise the file-size limit) and run the same command again."
    return f"could not write to disk ({detail}). {advice}"


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a DegaeError, or a write the disk refused, into one clear line on stderr and exit
    status 2, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DegaeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except Exception as exc:
            message = storage_error(exc)
            if message is None:
                raise
            click.echo(f"error: {message}", err=True)
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


strict_option = click.option(
    "--strict", is_flag=True, help="Exit with status 2 when nothing was computed (for scripts)."
)


@contextmanager
def unless_empty(strict: bool) -> Iterator[None]:
    """A step that found nothing to do says why on one line: exit 0, or 2 under --strict."""
    try:
        yield
    except NothingToDo as exc:
        click.echo(f"nothing done: {exc}", err=True)
        sys.exit(2 if strict else 0)
