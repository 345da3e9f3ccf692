"""Shared fixtures: a tiny simulated compendium and warehouses built from it (once per session)."""

from __future__ import annotations

import os

# Tests compare training runs bit for bit. TensorFlow's op determinism covers its own CPU kernels,
# not oneDNN's (TF's default on x86; oneDNN's `deterministic` attribute stays off). CI once saw a
# resumed run part from the uninterrupted one on a CPU we could not inspect, so the tests run on
# TF's own kernels. This must be set before anything imports TensorFlow.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import shutil
import sys
from pathlib import Path

import pytest

from degae_tools.sources.simulate import SimulationConfig, simulate

REPO = Path(__file__).resolve().parents[1]


def cli_command(*args: str) -> list[str]:
    """`degae-tools ARGS` as a command line run by this Python (for tests in a subprocess)."""
    return [sys.executable, "-m", "degae_tools.cli", *args]


def checkout_env(**extra: str) -> dict[str, str]:
    """This process's environment with the checkout importable, plus `extra` variables."""
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


# `../shared/data` beside the checkout (as CI lays it), else the development machine's copy.
SHARED_DATA = next(
    (
        p
        for p in (
            Path(__file__).resolve().parents[1].parent / "shared" / "data",
            Path("/work/shared/data"),
        )
        if p.is_dir()
    ),
    Path(__file__).resolve().parents[1].parent / "shared" / "data",
)


@pytest.fixture()
def quiet():
    """Progress bars and tables off for one test (modules opt in with `usefixtures`)."""
    from degae_tools import console

    console.mode.quiet = True
    yield
    console.mode.quiet = False


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`: the real Gene Ontology, gene2go and a DEE2 download (read-only)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def compendium(tmp_path_factory) -> Path:
    """A 24-series simulated mouse compendium (600 genes, 80 GO terms) in DEE2/GEO/GO formats."""
    out = tmp_path_factory.mktemp("compendium")
    simulate(out, SimulationConfig(datasets=24, genes=600, go_terms=80, seed=7))
    return out


@pytest.fixture(scope="session")
def ingested(compendium, tmp_path_factory) -> Path:
    """The compendium ingested (without Prefect) into a warehouse; copy it before changing it."""
    from flows.ingest import ingest

    db = tmp_path_factory.mktemp("ingested") / "degae.duckdb"
    ingest(compendium, db)
    return db


@pytest.fixture(scope="session")
def analysed(ingested, tmp_path_factory) -> Path:
    """The ingested warehouse with limma DE and GO enrichment for every included contrast."""
    from flows.differential import differential
    from flows.enrichment import enrichment

    db = copy_warehouse(ingested, tmp_path_factory.mktemp("analysed"))
    differential(db)
    enrichment(db)
    return db


def copy_warehouse(db: Path, folder: Path) -> Path:
    """Copy a warehouse file and its counts folder into `folder`; returns the new file."""
    target = folder / db.name
    shutil.copy(db, target)
    counts = db.parent / f"{db.stem}_counts"
    if counts.exists():
        shutil.copytree(counts, folder / counts.name)
    return target
