"""What tests share besides fixtures: paths, the CLI as a subprocess, warehouse copies, and the
steps run on a warehouse file (tests import these; fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# `../shared/data` beside the checkout (as CI lays it), else the development machine's copy.
SHARED_DATA = next(
    (p for p in (REPO.parent / "shared" / "data", Path("/work/shared/data")) if p.is_dir()),
    REPO.parent / "shared" / "data",
)


def cli_command(*args: str) -> list[str]:
    """`degae-tools ARGS` as a command line run by this Python (for tests in a subprocess)."""
    return [sys.executable, "-m", "degae_tools.cli", *args]


def checkout_env(**extra: str) -> dict[str, str]:
    """This process's environment with the checkout importable, plus `extra` variables."""
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def copy_warehouse(db: Path, folder: Path) -> Path:
    """Copy a warehouse file and its counts folder into `folder`; returns the new file."""
    target = folder / db.name
    shutil.copy(db, target)
    counts = db.parent / f"{db.stem}_counts"
    if counts.exists():
        shutil.copytree(counts, folder / counts.name)
    return target


def run_de(db: Path, *args: Any, **kwargs: Any):
    """The `de` step on the warehouse file `db` (without Prefect); returns its summary."""
    from degae_tools.steps import de
    from warehouse import Warehouse

    with Warehouse.open(db, write=True) as wh:
        return de.run(wh, *args, **kwargs)


def run_go(db: Path, *args: Any, **kwargs: Any):
    """The `go` step on the warehouse file `db` (without Prefect); returns its summary."""
    from degae_tools.steps import go
    from warehouse import Warehouse

    with Warehouse.open(db, write=True) as wh:
        return go.run(wh, *args, **kwargs)


def rows(db: Path, query: str, params: dict | None = None) -> list[tuple]:
    """A query's rows, read through the warehouse handle."""
    from warehouse import Warehouse

    return Warehouse.open(db).rows(query, params)
