"""What every per-contrast step records: one run row per contrast (done or skipped, and why),
its results replacing the contrast's earlier ones, and rejections in `raw.rejected`.

Per-gene values go through one writer, `write_de_results`, whatever made them (limma, an imported
signature or DE table): it stores them compactly in `core.de_values` under integer contrast keys
(`sql/schema/045_de_values.sql`), and every reader sees them in the view `core.de_results`."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa

from degae_tools.sources import Rejection
from warehouse import Query, Warehouse

INSERT_REJECTIONS = Query("warehouse/insert_rejections")
CONTRAST_KEYS = Query("de/contrast_keys")
ASSIGN_CONTRAST_KEYS = Query("de/assign_contrast_keys")
DELETE_VALUES = Query("de/delete_values")
CLAIMS_OF = Query("de/claims_of")
# How long another machine's claim holds (this machine's claims hold while their process lives).
CLAIM_LEASE = timedelta(hours=6)

DE_RESULTS = "core.de_results"
# The value columns of core.de_results and the types core.de_values stores them as.
DE_VALUES = {
    "log_fc": pl.Float64,
    "ave_expr": pl.Float32,
    "t": pl.Float32,
    "p_value": pl.Float64,
    "adj_p_value": pl.Float64,
    "b": pl.Float32,
    "z": pl.Float32,
}
DE_RUN_COLUMNS = {
    "contrast_id": pl.Utf8,
    "status": pl.Utf8,
    "reason": pl.Utf8,
    "source": pl.Utf8,
    "inputs_hash": pl.Utf8,
    "n_genes": pl.Int32,
    "n_de": pl.Int32,
    "config": pl.Utf8,
}
# New values of a contrast make its GO enrichment stale: dropped in the same transaction.
GO_TABLES = ("core.go_enrichment", "core.go_runs")

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
    """Contrasts done and skipped by one run of a step, with the skip reasons counted, and those
    left to another run that holds them."""

    done: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    held: int = 0
    held_by: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The summary as a record; the held fields only when another run held contrasts."""
        record = asdict(self)
        if not self.held:
            del record["held"], record["held_by"]
        return record

    def count(self, runs: Iterable[RunRow]) -> None:
        """Add a chunk's outcomes."""
        for r in runs:
            if r.status == "done":
                self.done += 1
            else:
                self.skipped += 1
                self.reasons[r.reason or ""] = self.reasons.get(r.reason or "", 0) + 1


@dataclass(frozen=True)
class Holder:
    """A process that holds contrasts: its machine and process id."""

    host: str
    pid: int

    @classmethod
    def this_process(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid())

    def __str__(self) -> str:
        return f"PID {self.pid} on {self.host}"

    def is_alive(self) -> bool:
        """Whether the process still runs (one on another machine is taken to run)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process
            return True
        return True


def claim(wh: Warehouse, stage: str, ids: list[str]) -> tuple[list[str], dict[str, Holder]]:
    """Hold contrasts `ids` for this process, in one short transaction: (the ids it now holds,
    the others with the live process that holds each). Claims of a process that is gone, or
    expired, are taken over."""
    me = Holder.this_process()
    now = datetime.now()
    held: dict[str, Holder] = {}
    with wh.transaction():
        for cid, host, pid, expires in wh.rows(CLAIMS_OF, {"stage": stage, "contrast_ids": ids}):
            holder = Holder(host, pid)
            if holder != me and expires > now and holder.is_alive():
                held[cid] = holder
        mine = [cid for cid in ids if cid not in held]
        if mine:
            wh.delete("core.claims", {"stage": stage, "contrast_id": mine})
            claims = {
                "stage": [stage] * len(mine),
                "contrast_id": mine,
                "host": [me.host] * len(mine),
                "pid": [me.pid] * len(mine),
                "expires_at": [now + CLAIM_LEASE] * len(mine),
            }
            wh.insert("core.claims", pa.table(claims))
    return mine, held


def release(wh: Warehouse, stage: str, ids: Sequence[str]) -> None:
    """Drop this process's claims on `ids` (joins the caller's transaction, if any)."""
    if not ids:
        return
    me = Holder.this_process()
    wh.delete(
        "core.claims", {"stage": stage, "contrast_id": list(ids), "host": me.host, "pid": me.pid}
    )


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


def write_de_results(
    wh: Warehouse,
    values: pl.DataFrame | pa.Table | None,
    runs: Sequence[RunRow],
    *,
    source: str,
    config: str | None,
    stage: str = "de",
    run_columns: dict[str, pl.DataType] = DE_RUN_COLUMNS,
    stale: tuple[str, ...] = GO_TABLES,
) -> None:
    """The one writer of per-gene values. `values` has `contrast_id, gene_index` and any of
    DE_VALUES' columns (the others are stored NULL); `runs` has one row per contrast, done or
    skipped. In one transaction the runs' contrasts lose their earlier values and their `stale`
    results, and get `values`, their `core.de_runs` rows and their skip reasons."""
    frames = (
        []
        if values is None
        else [values if isinstance(values, pl.DataFrame) else pl.from_arrow(values)]
    )
    chunk = ChunkResult(frames, list(runs))
    write_runs(wh, stage, (DE_RESULTS, "core.de_runs"), chunk, run_columns, source, config, stale)


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
    results = pl.concat(chunk.results, how="diagonal_relaxed") if chunk.results else None
    with wh.transaction():
        for table in stale:
            wh.delete(table, {"contrast_id": ids})
        if results_table == DE_RESULTS:
            replace_de_values(wh, ids, results)
        else:
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


def replace_de_values(wh: Warehouse, ids: list[str], values: pl.DataFrame | None) -> None:
    """Inside the caller's transaction: drop the stored values of contrasts `ids`, then store
    `values` under their contrasts' keys (given now to contrasts that have none). A contrast's
    rows are stored together, in the order given (limma's by p-value, which compresses best:
    `sql/schema/045_de_values.sql`)."""
    keys = wh.frame(CONTRAST_KEYS, {"contrast_ids": ids})
    if keys.height:
        bounds = {"low": keys["contrast_key"].min(), "high": keys["contrast_key"].max()}
        wh.execute(DELETE_VALUES, bounds | {"keys": keys["contrast_key"].to_list()})
    if values is None or values.height == 0:
        return
    values = grouped_by_contrast(values)
    runs = values["contrast_id"].rle()
    written = runs.struct.field("value").to_list()
    wh.execute(ASSIGN_CONTRAST_KEYS, {"contrast_ids": written})
    keys = dict(wh.rows(CONTRAST_KEYS, {"contrast_ids": written}))
    key_of_run = np.array([keys[c] for c in written], dtype=np.int32)
    columns = [
        (pl.col(c) if c in values.columns else pl.lit(None)).cast(dtype).alias(c)
        for c, dtype in DE_VALUES.items()
    ]
    compact = values.select(
        pl.Series("contrast_key", np.repeat(key_of_run, runs.struct.field("len").to_numpy())),
        pl.col("gene_index").cast(pl.Int32),
        *columns,
    )
    wh.insert("core.de_values", compact)


def grouped_by_contrast(values: pl.DataFrame) -> pl.DataFrame:
    """`values` with each contrast's rows together (as they are when written contrast by
    contrast; a frame made gene by gene is sorted, keeping each contrast's row order)."""
    runs = values["contrast_id"].rle_id()
    if runs[-1] + 1 == values["contrast_id"].n_unique():
        return values
    return values.sort("contrast_id", maintain_order=True)
