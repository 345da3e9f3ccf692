"""How a flow runs a step's chunks as Prefect tasks, and the task runners by name."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from prefect import Task

from degae_tools.errors import DegaeError


def fan_out(task: Task) -> Any:
    """A step mapper that submits every chunk at once to the flow's task runner (threads, or a
    Dask cluster) and yields their results in order, so writes stay in chunk order."""

    def map_chunks(chunks: Iterable, **fixed: Any) -> Iterator:
        futures = [task.submit(chunk, **fixed) for chunk in chunks]
        return (future.result() for future in futures)

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
