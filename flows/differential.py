"""Prefect flow: limma for every included contrast without a result, in chunks of series.

Each chunk's results and run rows are written in one transaction, so a killed flow leaves only
whole contrasts and a rerun resumes; a contrast that cannot be fitted (one replicate, no counts,
a design not of full rank) is recorded as skipped with the reason, and the flow goes on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from prefect import flow, task
from prefect.context import FlowRunContext

import warehouse
from degae_tools import console
from degae_tools.errors import DegaeError, DesignError
from degae_tools.limma import DEConfig, de_table
from warehouse.connect import fetch_frame
from warehouse.load import RUN_SEPARATOR, counts_dir, read_counts, sample_counts
from warehouse.migrate import read_query
from warehouse.results import RunRow, write_de


@dataclass(frozen=True)
class SeriesJob:
    """The contrasts of one series, fitted together on the series' counts."""

    gse: str
    parquet_path: str
    contrasts: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...], str], ...]


@dataclass
class DESummary:
    """Contrasts fitted and skipped by one run."""

    done: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def count(self, runs: list[RunRow]) -> None:
        """Add a chunk's outcomes."""
        for r in runs:
            if r.status == "done":
                self.done += 1
            else:
                self.skipped += 1
                self.reasons[r.reason or ""] = self.reasons.get(r.reason or "", 0) + 1


def plan(con, config: DEConfig = DEConfig()) -> list[SeriesJob]:
    """Group the included contrasts without results for their current inputs by series."""
    pending = fetch_frame(con, read_query("de/pending"), [json.dumps(asdict(config))])
    root = counts_dir(con).parent
    jobs = []
    for (gse,), rows in pending.partition_by("gse", as_dict=True, maintain_order=True).items():
        contrasts = tuple(
            (
                r["contrast_id"],
                r["group_a"],
                r["group_b"],
                tuple(r["runs_a"]),
                tuple(r["runs_b"]),
                r["inputs_hash"],
            )
            for r in rows.iter_rows(named=True)
        )
        jobs.append(SeriesJob(gse, str(root / rows["parquet_path"][0]), contrasts))
    return jobs


def fit_series(job: SeriesJob, config: DEConfig) -> tuple[list[pl.DataFrame], list[RunRow]]:
    """limma for each contrast of a series: logFC = mean(B) - mean(A) on log-CPM (or raw counts)."""
    results, runs = [], []
    try:
        gene_index, by_run = read_counts(job.parquet_path)
    except (OSError, ValueError) as exc:
        reason = f"counts unreadable: {exc}"
        return [], [RunRow(c[0], "skipped", reason, c[5]) for c in job.contrasts]
    for contrast_id, _a, _b, runs_a, runs_b, inputs_hash in job.contrasts:
        try:
            samples = runs_a + runs_b
            missing = [r for s in samples for r in s.split(RUN_SEPARATOR) if r not in by_run]
            if missing:
                raise DesignError(f"no counts for runs {missing[:3]}")
            counts = np.stack([sample_counts(by_run, s) for s in samples], axis=1)
            groups = ["A"] * len(runs_a) + ["B"] * len(runs_b)
            table = de_table(counts, groups, ("B", "A"), config, gene_index=gene_index)
        except DesignError as exc:
            runs.append(RunRow(contrast_id, "skipped", str(exc), inputs_hash))
            continue
        n_de = int((table["adj_p_value"] < 0.05).sum())
        results.append(table.with_columns(pl.lit(contrast_id).alias("contrast_id")))
        runs.append(RunRow(contrast_id, "done", None, inputs_hash, n_de=n_de, n_genes=table.height))
    return results, runs


@task(name="fit-series-chunk")
def fit_chunk(jobs: list[SeriesJob], config: DEConfig) -> tuple[list[pl.DataFrame], list[RunRow]]:
    """limma for a chunk of series (pure computation: reads Parquet, never the warehouse)."""
    results, runs = [], []
    for job in jobs:
        r, s = fit_series(job, config)
        results += r
        runs += s
    return results, runs


def write_chunk(db_path: Path, results, runs, config: DEConfig, summary: DESummary) -> None:
    """Write a chunk's results, its run rows and the skip reasons in one transaction."""
    con = warehouse.connect(db_path, write=True)
    try:
        write_de(con, results, runs, "degae", json.dumps(asdict(config)))
    finally:
        con.close()
    summary.count(runs)


def differential(db_path: Path, config: DEConfig = DEConfig(), chunk_size: int = 25) -> DESummary:
    """Fit every pending included contrast; safe to rerun (finished contrasts are skipped)."""
    con = warehouse.connect(db_path, write=True)
    warehouse.migrate(con)
    jobs = plan(con, config)
    con.close()
    summary = DESummary()
    chunks = [jobs[i : i + chunk_size] for i in range(0, len(jobs), chunk_size)]
    if FlowRunContext.get():
        futures = [fit_chunk.submit(chunk, config) for chunk in chunks]
        for future in console.progress(futures, len(futures), "limma"):
            results, runs = future.result()
            write_chunk(db_path, results, runs, config, summary)
    else:
        for chunk in console.progress(chunks, len(chunks), "limma"):
            results, runs = fit_chunk.fn(chunk, config)
            write_chunk(db_path, results, runs, config, summary)
    return summary


@flow(name="differential")
def differential_flow(
    db_path: str,
    prior_count: float = 0.5,
    input: str = "counts",
    voom: bool = False,
    chunk_size: int = 25,
) -> dict:
    """limma (lmFit → contrasts.fit → eBayes → topTable) over the included contrasts."""
    config = DEConfig(prior_count=prior_count, input=input, voom=voom)
    return differential(Path(db_path), config, chunk_size).as_dict()


def runner(name: str):
    """A Prefect task runner by name: `thread` (default) or `dask` (prefect-dask LocalCluster or
    the Dask scheduler at $DEGAE_DASK_ADDRESS)."""
    import os

    if name == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:  # pragma: no cover - prefect-dask is a dependency
            raise DegaeError("--task-runner dask needs prefect-dask installed") from exc
        address = os.environ.get("DEGAE_DASK_ADDRESS")
        return DaskTaskRunner(address=address) if address else DaskTaskRunner()
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=1)
