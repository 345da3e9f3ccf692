"""Prefect flow `enrichment`: the `go` step (GO over-representation of each contrast's DE genes),
one task per chunk of contrasts."""

from __future__ import annotations

from prefect import flow, task

from degae_tools.enrichment import EnrichmentConfig
from degae_tools.steps import go
from degae_tools.strongest_genes import StrongestGenes
from flows.tasks import one_by_one
from warehouse import Warehouse

enrich_chunk = task(name="enrich-chunk")(go.enrich_chunk)


@flow(name="enrichment")
def enrichment_flow(
    db_path: str,
    config: EnrichmentConfig = EnrichmentConfig(),
    rule: StrongestGenes = StrongestGenes(),
) -> dict:
    """GO over-representation (hypergeometric, BH FDR, GOfuncR-style FWER) for DE genes (an
    imported signature's: its strongest genes up and down)."""
    with Warehouse.open(db_path, write=True) as wh:
        return go.run(wh, config, map_chunks=one_by_one(enrich_chunk), rule=rule).as_dict()
