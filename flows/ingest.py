"""Prefect flow `ingest`: the ingest step (`degae_tools.steps.ingest`), each kind of input file
loaded as a task, so the UI shows which files loaded, which were skipped and which rejected."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from degae_tools.steps import ingest
from degae_tools.steps.ingest import IngestConfig
from flows.tasks import one_by_one

# The task writes the warehouse through the handle it is given: nothing to cache or hash.
load_kind = task(name="load-files", task_run_name="load-{batch.kind}", cache_policy=NO_CACHE)(
    ingest.load_kind
)


@flow(name="ingest", log_prints=True)
def ingest_flow(source_dir: str, db_path: str, config: IngestConfig = IngestConfig()) -> dict:
    """Load a compendium folder (DEE2, GEO, counts, GO) and rebuild the contrasts."""
    summary = ingest.ingest(Path(source_dir), Path(db_path), config, one_by_one(load_kind))
    for warning in summary.warnings:
        get_run_logger().warning(warning)
    return summary.as_dict()
