"""Shared fixtures: a tiny simulated compendium and warehouses built from it (once per session)."""

from __future__ import annotations

import os

# Tests compare training runs bit for bit. TensorFlow's op determinism covers its own CPU kernels,
# not oneDNN's (TF's default on x86; oneDNN's `deterministic` attribute stays off). CI once saw a
# resumed run part from the uninterrupted one on a CPU we could not inspect, so the tests run on
# TF's own kernels. This must be set before anything imports TensorFlow.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from pathlib import Path

import pytest

from degae_tools.sources.simulate import SimulationConfig, simulate
from tests.helpers import SHARED_DATA, copy_warehouse, run_de, run_go


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
    from degae_tools.steps.ingest import ingest

    db = tmp_path_factory.mktemp("ingested") / "degae.duckdb"
    ingest(compendium, db)
    return db


@pytest.fixture(scope="session")
def analysed(ingested, tmp_path_factory) -> Path:
    """The ingested warehouse with limma DE and GO enrichment for every included contrast."""
    db = copy_warehouse(ingested, tmp_path_factory.mktemp("analysed"))
    run_de(db)
    run_go(db)
    return db


# The longest test files, first: with `pytest -n 2 --dist loadfile` (the Makefile's test command)
# each file runs whole on one worker, so starting the longest ones first keeps one worker from
# being left with a long file at the end (longest-processing-time-first scheduling).
LONGEST_FIRST = ("test_readme.py", "test_cli_process.py", "test_scale_out.py", "test_refresh.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order
