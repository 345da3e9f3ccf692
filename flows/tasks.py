"""How a flow runs a step's chunks as Prefect tasks, and the task runners by name."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from prefect import Task

from degae_tools.errors import DegaeError

# Chunks a fanned-out step keeps in flight: enough to keep every worker busy while the flow
# writes the results before them, few enough that results waiting to be written stay bounded
# (a chunk of 25 series at 48,978 genes holds about 200 MB of rows).
AHEAD = 4


def fan_out(task: Task, ahead: int = AHEAD) -> Any:
    """A step mapper that keeps `ahead` chunks submitted to the flow's task runner (threads, or
    a Dask cluster) and yields their results in order, so writes stay in chunk order; a chunk
    is submitted as the result of one before it is taken."""

    def map_chunks(chunks: Iterable, **fixed: Any) -> Iterator:
        pending = iter(chunks)
        in_flight = deque(task.submit(c, **fixed) for c in islice(pending, max(ahead, 1)))
        while in_flight:
            result = in_flight.popleft().result()
            in_flight.extend(task.submit(c, **fixed) for c in islice(pending, 1))
            yield result

    return map_chunks


def one_by_one(task: Task) -> Any:
    """A step mapper that runs each chunk as a task when the step asks for its result, so a
    chunk's input is produced (read from the warehouse) only just before it runs."""

    def map_chunks(chunks: Iterable, **fixed: Any) -> Iterator:
        return (task(chunk, **fixed) for chunk in chunks)

    return map_chunks


def runner(name: str):
    """A Prefect task runner by name: `thread` (default) or `dask` (prefect-dask LocalCluster or
    the Dask scheduler at $DEGAE_DASK_ADDRESS)."""
    if name == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:  # pragma: no cover - prefect-dask is a dependency
            raise DegaeError("--task-runner dask needs prefect-dask installed") from exc
        address = os.environ.get("DEGAE_DASK_ADDRESS")
        return DaskTaskRunner(address=address) if address else DaskTaskRunner()
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=1)
