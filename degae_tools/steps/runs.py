"""What every per-contrast step records: one run row per contrast (done or skipped, and why),
its results replacing the contrast's earlier ones, and rejections in `raw.rejected`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import polars as pl
import pyarrow as pa

from degae_tools.sources import Rejection
from warehouse import Query, Warehouse

INSERT_REJECTIONS = Query("warehouse/insert_rejections")

# How a step maps its chunk function over its chunks, `(chunks, **fixed) -> results in order`:
# `serially(function)` here, Prefect tasks in a flow (`flows.tasks`).
Mapper = Callable[..., Iterable["ChunkResult"]]


def serially(function: Callable[..., ChunkResult]) -> Mapper:
    """A mapper that calls `function` on each chunk in turn, lazily."""

    def map_chunks(chunks: Iterable, **fixed) -> Iterator[ChunkResult]:
        return (function(chunk, **fixed) for chunk in chunks)

    return map_chunks


def chunked(items: list, size: int) -> list[list]:
    """`items` in consecutive lists of at most `size`."""
    size = max(size, 1)
    return [items[start : start + size] for start in range(0, len(items), size)]


@dataclass(frozen=True)
class RunRow:
    """The outcome of one contrast in one stage: done or skipped, with the reason."""

    contrast_id: str
    status: str
    reason: str | None = None
    inputs_hash: str | None = None
    n_de: int | None = None
    n_genes: int | None = None
    n_terms_tested: int | None = None
    n_enriched: int | None = None


@dataclass
class ChunkResult:
    """What fitting a chunk of contrasts gave: result frames and one run row per contrast."""

    results: list[pl.DataFrame] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)

    def extend(self, other: ChunkResult) -> None:
        self.results += other.results
        self.runs += other.runs


@dataclass
class StepSummary:
    """Contrasts done and skipped by one run of a step, with the skip reasons counted."""

    done: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def count(self, runs: Iterable[RunRow]) -> None:
        """Add a chunk's outcomes."""
        for r in runs:
            if r.status == "done":
                self.done += 1
            else:
                self.skipped += 1
                self.reasons[r.reason or ""] = self.reasons.get(r.reason or "", 0) + 1


def record_rejections(wh: Warehouse, rejections: Sequence[Rejection], stage: str) -> None:
    """Insert rejections (idempotent: the same source/line/reason is recorded once)."""
    if not rejections:
        return
    rows = pa.table(
        {
            "source": [r.source for r in rejections],
            "stage": [stage] * len(rejections),
            "line": [r.line if r.line is not None else 0 for r in rejections],
            "reason": [r.reason for r in rejections],
            "record": [(r.record or "")[:500] for r in rejections],
        }
    )
    wh.execute(INSERT_REJECTIONS, tables={"rejections_in": rows})


def write_runs(
    wh: Warehouse,
    stage: str,
    tables: tuple[str, str],
    chunk: ChunkResult,
    run_columns: dict[str, pl.DataType],
    source: str,
    config: str,
    stale: tuple[str, ...] = (),
) -> None:
    """Replace the chunk's contrasts in the results table (and in `stale` tables that were
    computed from them), upsert their run rows and their skip reasons, in one transaction."""
    results_table, runs_table = tables
    ids = [r.contrast_id for r in chunk.runs]
    extra = {"source": source, "config": config}
    runs = pl.DataFrame(
        [{k: getattr(r, k) for k in run_columns if hasattr(r, k)} | extra for r in chunk.runs],
        schema=run_columns,
    )
    results = pl.concat(chunk.results) if chunk.results else None
    with wh.transaction():
        for table in stale:
            wh.delete(table, {"contrast_id": ids})
        wh.delete(results_table, {"contrast_id": ids})
        if results is not None:
            wh.insert(results_table, results)
        wh.upsert(runs_table, runs)
        wh.delete("raw.rejected", {"stage": stage, "source": ids})
        skipped = [
            Rejection(r.contrast_id, 0, r.reason or "", None)
            for r in chunk.runs
            if r.status != "done"
        ]
        record_rejections(wh, skipped, stage)
