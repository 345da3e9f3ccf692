"""Commands that compute results in the warehouse: de (limma) and enrich (GO)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from degae_tools import console
from degae_tools.cli.base import (
    db_option,
    friendly_errors,
    main,
    resolve_db,
    strict_option,
    unless_empty,
)
from degae_tools.cli.options import config_options
from degae_tools.enrichment import EnrichmentConfig
from degae_tools.errors import NothingToDo
from degae_tools.limma import DEConfig
from degae_tools.strongest_genes import StrongestGenes

task_runner_option = click.option(
    "--task-runner",
    type=click.Choice(["thread", "dask", "none"]),
    default="thread",
    show_default=True,
    help="Prefect task runner; dask fans out on prefect-dask ($DEGAE_DASK_ADDRESS or local); "
    "none runs the same step without Prefect.",
)


@main.command()
@db_option
@config_options(DEConfig, only=("prior_count", "input", "voom"))
@click.option("--chunk-size", default=25, show_default=True, help="Series per transaction.")
@task_runner_option
@strict_option
@friendly_errors
def de(db: Path | None, chunk_size: int, task_runner: str, strict: bool, **fields: Any) -> None:
    """limma for every included contrast without results (lmFit, contrasts.fit, eBayes).

    With nothing to test it says why (no included contrast, and the series' reasons; or all
    done already), and contrasts another running `de` holds are left to it.
    Example: degae-tools de --strict
    """
    from degae_tools.steps import de as step
    from warehouse import Warehouse

    config = DEConfig(**fields)
    path = resolve_db(db)
    with unless_empty(strict):
        with Warehouse.open(path, write=True) as wh:
            step.nothing_to_test(wh, config)
            if task_runner == "none":
                summary = step.run(wh, config, chunk_size)
        if task_runner != "none":
            from flows.differential import differential_flow
            from flows.tasks import runner

            flow = differential_flow.with_options(task_runner=runner(task_runner))
            summary = step.DESummary(**flow(str(path), config, chunk_size))
        held = step.held_note(summary)
        if held and not (summary.done or summary.skipped):
            raise NothingToDo(held)
    if held:
        console.say(held)
    console.show_record(summary.as_dict(), "differential expression")


@main.command()
@db_option
@config_options(
    EnrichmentConfig, only=("candidate_p", "min_size", "max_size", "n_randsets", "seed", "keep")
)
@config_options(StrongestGenes)
@task_runner_option
@strict_option
@friendly_errors
def enrich(
    db: Path | None,
    task_runner: str,
    strict: bool,
    signature_min_score: float,
    signature_max_genes: int,
    **fields: Any,
) -> None:
    """GO enrichment of every contrast's DE genes (hypergeometric, BH FDR, GOfuncR-style FWER);
    an imported signature's candidates are its strongest genes, up and down separately.

    With nothing to enrich it says why (no ontology or annotations loaded, no DE results, or
    all enriched already).
    Example: degae-tools enrich --strict
    """
    from degae_tools.steps import go as step
    from warehouse import Warehouse

    config = EnrichmentConfig(**fields)
    rule = StrongestGenes(signature_min_score, signature_max_genes)
    path = resolve_db(db)
    with unless_empty(strict):
        with Warehouse.open(path, write=True) as wh:
            step.nothing_to_enrich(wh, config, rule)
            if task_runner == "none":
                summary = step.run(wh, config, rule=rule).as_dict()
        if task_runner != "none":
            from flows.enrichment import enrichment_flow
            from flows.tasks import runner

            flow = enrichment_flow.with_options(task_runner=runner(task_runner))
            summary = flow(str(path), config, rule)
    console.show_record(summary, "GO enrichment")
