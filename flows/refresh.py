"""Prefect flow: the whole pipeline as one scheduled refresh, with a subflow per stage.

ingest (new files only) → limma for new or changed contrasts → GO enrichment for those →
optionally retrain, predict and attribute → report. Each stage skips finished work, so a refresh
with nothing new only checks hashes and finishes in seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow

from flows.differential import differential_flow
from flows.enrichment import enrichment_flow
from flows.ingest import ingest_flow

DEPLOYMENT = "nightly"
DEFAULT_CRON = "0 3 * * *"


@flow(name="train-predict-attribute")
def model_flow(
    db_path: str, neurons: int, layers: int, epochs: int, representation: str = "magnitude"
) -> dict:
    """Retrain the autoencoder, fit GO prediction on its code and attribute terms to genes."""
    from degae_tools.models import AutoencoderConfig
    from degae_tools.steps import attribute, predict
    from degae_tools.train import train
    from warehouse import Warehouse

    config = AutoencoderConfig(
        neurons=neurons, layers=layers, epochs=epochs, representation=representation
    )
    trained = train(Path(db_path), config)
    with Warehouse.open(db_path, write=True) as wh:
        predict.run(wh, trained.model_dir)
        attribute.run(wh, trained.model_dir)
    return {"model_id": trained.model_id}


@flow(name="refresh", log_prints=True)
def refresh_flow(
    source_dir: str,
    db_path: str = "warehouse/degae.duckdb",
    retrain: bool = False,
    neurons: int = 256,
    layers: int = 2,
    epochs: int = 20,
    representation: str = "magnitude",
    report: str | None = None,
) -> dict:
    """Bring the warehouse up to date with `source_dir`; returns what each stage did."""
    started = time.monotonic()
    result = {
        "ingest": ingest_flow(source_dir, db_path),
        "differential": differential_flow(db_path),
        "enrichment": enrichment_flow(db_path),
    }
    new_results = result["differential"]["done"] + result["enrichment"]["done"]
    if retrain and new_results:
        result["model"] = model_flow(db_path, neurons, layers, epochs, representation)
    if report:
        from degae_tools.steps.report import write_report
        from warehouse import Warehouse

        with Warehouse.open(db_path) as wh:
            result["report"] = str(write_report(wh, Path(report)))
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def serve(source_dir: str, db_path: str, cron: str = DEFAULT_CRON, **parameters) -> None:
    """Register the `refresh/nightly` deployment with a cron schedule and run its flow runs.

    Blocks, like `prefect worker start`: the Prefect UI shows the deployment and its schedule,
    and a run triggered there (or with `prefect deployment run refresh/nightly`) executes here.
    """
    deployment = refresh_flow.to_deployment(
        name=DEPLOYMENT,
        cron=cron,
        parameters={"source_dir": source_dir, "db_path": db_path, **parameters},
        description="degae: ingest new DEE2/GEO files, then DE, GO, (retrain) and report.",
    )
    from prefect import serve as prefect_serve

    prefect_serve(deployment)
