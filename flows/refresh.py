"""Prefect flow: the whole pipeline as one scheduled refresh, with a subflow per stage.

ingest (new files only) → limma for new or changed contrasts → GO enrichment for those →
optionally retrain, predict and attribute → report. Each stage skips finished work, so a refresh
with nothing new only checks hashes and finishes in seconds.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from prefect import flow

from degae_tools.errors import DegaeError
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
    from degae_tools.steps import attribute, predict, train
    from warehouse import Warehouse

    config = AutoencoderConfig(
        neurons=neurons, layers=layers, epochs=epochs, representation=representation
    )
    with Warehouse.open(db_path, write=True) as wh:
        trained = train.train(wh, config)
        predict.run(wh, trained.model_dir)
        attribute.run(wh, trained.model_dir)
    return {"model_id": trained.model_id}


@flow(name="refresh", log_prints=True)
def refresh_flow(
    source_dir: str,
    db_path: str = "degae.duckdb",
    retrain: bool = False,
    neurons: int = 256,
    layers: int = 2,
    epochs: int = 20,
    representation: str = "magnitude",
    report: str | None = None,
) -> dict:
    """Bring the warehouse up to date with `source_dir`; returns what each stage did."""
    return refresh(
        RefreshPaths(source_dir, db_path, report), retrain, neurons, layers, epochs, representation
    )


@flow(name="refresh", log_prints=True)
def served_refresh(
    retrain: bool = False,
    neurons: int = 256,
    layers: int = 2,
    epochs: int = 20,
    representation: str = "magnitude",
) -> dict:
    """The served deployment's refresh. Its warehouse, source folder and report path were fixed
    when it was served (`degae-tools refresh --serve`): a run's parameters reach these options,
    never the file system, and a run that names a path is refused."""
    paths = RefreshPaths.from_environment()
    return refresh(paths, retrain, neurons, layers, epochs, representation)


@dataclass(frozen=True)
class RefreshPaths:
    """Where a refresh reads and writes. A served deployment's are fixed in the serving
    process's environment, which its flow runs inherit and a run's parameters cannot reach."""

    source_dir: str
    db_path: str
    report: str | None = None

    ENVIRONMENT: ClassVar[dict[str, str]] = {
        "source_dir": "DEGAE_SERVED_SOURCE_DIR",
        "db_path": "DEGAE_SERVED_DB",
        "report": "DEGAE_SERVED_REPORT",
    }

    def export(self) -> None:
        """Fix these paths for the flow runs this process serves."""
        for field_name, variable in self.ENVIRONMENT.items():
            os.environ[variable] = getattr(self, field_name) or ""

    @classmethod
    def from_environment(cls) -> RefreshPaths:
        values = {f: os.environ.get(v) for f, v in cls.ENVIRONMENT.items()}
        if not values["source_dir"] or not values["db_path"]:
            raise DegaeError(
                "the served refresh runs only under `degae-tools refresh --serve`, which fixes "
                "its warehouse and source folder"
            )
        return cls(values["source_dir"], values["db_path"], values["report"] or None)


def refresh(
    paths: RefreshPaths,
    retrain: bool,
    neurons: int,
    layers: int,
    epochs: int,
    representation: str,
) -> dict:
    """The refresh's stages, in order; returns what each did."""
    source_dir, db_path, report = paths.source_dir, paths.db_path, paths.report
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


def serve(
    source_dir: str,
    db_path: str,
    cron: str = DEFAULT_CRON,
    report: str | None = None,
    **options: Any,
) -> None:
    """Register the `refresh/nightly` deployment with a cron schedule and run its flow runs.

    Blocks, like `prefect worker start`: the Prefect UI shows the deployment and its schedule,
    and a run triggered there (or with `prefect deployment run refresh/nightly`) executes here.
    The warehouse, source folder and report path are fixed now, for every run: a run's
    parameters are only `options` (retrain, neurons, layers, epochs, representation).
    """
    RefreshPaths(str(Path(source_dir).resolve()), str(Path(db_path).resolve()), report).export()
    deployment = served_refresh.to_deployment(
        name=DEPLOYMENT,
        cron=cron,
        parameters=options,
        enforce_parameter_schema=True,
        description=f"degae: ingest new DEE2/GEO files from {source_dir} into {db_path}, then "
        "DE, GO, (retrain) and report. Paths are fixed where it is served.",
    )
    from prefect import serve as prefect_serve

    prefect_serve(deployment)
