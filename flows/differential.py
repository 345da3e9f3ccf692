"""Prefect flow `differential`: the `de` step (limma per included contrast), its series chunks
fanned out as tasks on the flow's task runner."""

from __future__ import annotations

from prefect import flow, task

from degae_tools.limma import DEConfig
from degae_tools.steps import de
from flows.tasks import fan_out
from warehouse import Warehouse

fit_chunk = task(name="fit-series-chunk")(de.fit_chunk)


@flow(name="differential")
def differential_flow(db_path: str, config: DEConfig = DEConfig(), chunk_size: int = 25) -> dict:
    """limma (lmFit → contrasts.fit → eBayes → topTable) over the included contrasts."""
    with Warehouse.open(db_path, write=True) as wh:
        return de.run(wh, config, chunk_size, map_chunks=fan_out(fit_chunk)).as_dict()
