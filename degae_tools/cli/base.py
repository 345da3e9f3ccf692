"""The `degae-tools` group, its shared options and the edge where errors become one line."""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from degae_tools import console
from degae_tools.errors import DegaeError, NothingToDo

# Defaults the CLI sets before Prefect or TensorFlow is imported; a user's own setting of any of
# them wins. Prefect's telemetry and TensorFlow's C++ log lines say nothing a user can act on:
# level 3 keeps only TensorFlow's fatal lines, as level 2 still prints an ERROR-level
# "E0000 … NodeDef mentions attribute use_unbounded_threadpool" on every `train` (TF 2.21's
# Python and C++ op definitions disagree; the attribute is ignored). TensorFlow's real errors
# reach the CLI as Python exceptions. A temporary Prefect server on a busy machine can take
# longer than Prefect's 20 s to start.
CLI_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}
for _name, _value in CLI_DEFAULTS.items():
    os.environ.setdefault(_name, _value)

db_option = click.option(
    "--db",
    "db",
    # readable=False: a warehouse the user may not read is explained by the warehouse layer.
    type=click.Path(dir_okay=False, readable=False, path_type=Path),
    default=None,
    help="Warehouse file (default: $DEGAE_DB, then ./degae.duckdb).",
)


def resolve_db(db: Path | None, *, create: bool = False) -> Path:
    """The warehouse path a command uses: `--db`, else `$DEGAE_DB`, else the default.

    The one rule for `--db`: the file must exist, unless the command creates warehouses
    (`create`: init, ingest, import-*, refresh), which it does only in an existing folder. A
    command that would fail on a missing file stops here with one line and creates nothing.
    """
    from warehouse.handle import check_path, default_db_path

    path = db if db is not None else default_db_path()
    check_path(path, create=create)
    return path


# A write refused by the disk: full, over the file-size limit or quota, or a read-only mount.
STORAGE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS)


def storage_error(exc: BaseException) -> str | None:
    """One line on a write the disk refused (what it said, and what to do), or on a warehouse
    file DuckDB could not use (damaged, truncated, locked, no permission); None when `exc` is
    something else."""
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        detail = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
        read_only = exc.errno == errno.EROFS
    else:
        duckdb = sys.modules.get("duckdb")  # loaded already if DuckDB raised it
        if duckdb is None or not isinstance(exc, duckdb.Error):
            return None
        detail = str(exc)
        from warehouse.handle import DISK_FULL, file_error

        lower = detail.lower()
        read_only = "read-only file system" in lower
        if not read_only and not any(w in lower for w in DISK_FULL):
            named = file_error(exc)
            return None if named is None else str(named)
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
    from flows.server import manage

    console.mode.quiet = quiet
    console.mode.json = as_json
    manage()  # a temporary Prefect server, if a command starts one, stops when it does


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
