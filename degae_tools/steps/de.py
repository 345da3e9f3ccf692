"""The `de` step: limma for every included contrast without a current result, in chunks of series.

Each chunk's results and run rows are written in one transaction, so a killed run leaves only
whole contrasts and a rerun resumes; a contrast that cannot be fitted (one replicate, no counts,
a design not of full rank) is recorded as skipped with the reason, and the run goes on. A run
first claims the contrasts it will fit (`core.claims`): a second `de` meanwhile leaves them to it
and fits only the others.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from degae_tools import console
from degae_tools.errors import DesignError, NothingToDo, WarehouseError
from degae_tools.limma import DEConfig, de_table
from degae_tools.steps.counts import RUN_SEPARATOR, read_counts, sample_counts
from degae_tools.steps.ingest import exclusion_lines
from degae_tools.steps.runs import (
    ChunkResult,
    Mapper,
    RunRow,
    StepSummary,
    chunked,
    claim,
    release,
    serially,
    write_de_results,
)
from degae_tools.thresholds import DE_ADJ_P
from warehouse import Query, Warehouse

PENDING = Query("de/pending")
INCLUDED = Query("de/included_contrasts")
STAGE = "de"


@dataclass(frozen=True)
class ContrastJob:
    """One contrast to fit: its two groups' samples (each a run, or runs summed with '+')."""

    contrast_id: str
    runs_a: tuple[str, ...]
    runs_b: tuple[str, ...]
    inputs_hash: str


@dataclass(frozen=True)
class SeriesJob:
    """The contrasts of one series, fitted together on the series' counts."""

    gse: str
    parquet_path: str
    contrasts: tuple[ContrastJob, ...]


DESummary = StepSummary


def settings(config: DEConfig) -> str:
    """The settings as stored with each run (and hashed into its inputs)."""
    return json.dumps(asdict(config))


def plan(wh: Warehouse, config: DEConfig = DEConfig()) -> list[SeriesJob]:
    """The included contrasts without results for their current inputs, grouped by series."""
    pending = wh.frame(PENDING, {"settings": settings(config)})
    jobs = []
    for (gse,), rows in pending.partition_by("gse", as_dict=True, maintain_order=True).items():
        contrasts = tuple(
            ContrastJob(r["contrast_id"], tuple(r["runs_a"]), tuple(r["runs_b"]), r["inputs_hash"])
            for r in rows.iter_rows(named=True)
        )
        jobs.append(SeriesJob(gse, str(wh.path.parent / rows["parquet_path"][0]), contrasts))
    return jobs


def fit_contrast(job: ContrastJob, gene_index, by_run, config: DEConfig) -> ChunkResult:
    """limma for one contrast: logFC = mean(B) - mean(A) on log-CPM (or raw counts)."""
    samples = job.runs_a + job.runs_b
    missing = [r for s in samples for r in s.split(RUN_SEPARATOR) if r not in by_run]
    try:
        if missing:
            raise DesignError(f"no counts for runs {missing[:3]}")
        # One sample's counts after another (limma reads them so), as a genes x samples view;
        # rows by p-value, the order they are stored in.
        counts = np.stack([sample_counts(by_run, s) for s in samples])
        groups = ["A"] * len(job.runs_a) + ["B"] * len(job.runs_b)
        table = de_table(counts.T, groups, ("B", "A"), config, gene_index, by_p=True)
    except DesignError as exc:
        return ChunkResult([], [RunRow(job.contrast_id, "skipped", str(exc), job.inputs_hash)])
    n_de = int((table["adj_p_value"] < DE_ADJ_P).sum())
    run = RunRow(job.contrast_id, "done", None, job.inputs_hash, n_de=n_de, n_genes=table.height)
    return ChunkResult([table.with_columns(pl.lit(job.contrast_id).alias("contrast_id"))], [run])


def fit_series(job: SeriesJob, config: DEConfig) -> ChunkResult:
    """limma for each contrast of a series, on the series' counts read once."""
    result = ChunkResult()
    try:
        gene_index, by_run = read_counts(job.parquet_path)
    except (OSError, ValueError) as exc:
        reason = f"counts unreadable: {exc}"
        result.runs = [
            RunRow(c.contrast_id, "skipped", reason, c.inputs_hash) for c in job.contrasts
        ]
        return result
    for contrast in job.contrasts:
        result.extend(fit_contrast(contrast, gene_index, by_run, config))
    return result


def fit_chunk(jobs: list[SeriesJob], config: DEConfig) -> ChunkResult:
    """limma for a chunk of series (pure computation: reads Parquet, never the warehouse)."""
    result = ChunkResult()
    for job in jobs:
        result.extend(fit_series(job, config))
    return result


def write_chunk(wh: Warehouse, chunk: ChunkResult, config: DEConfig, summary: DESummary) -> None:
    """Write a chunk's results, its run rows and the skip reasons in one transaction (their GO
    enrichment, computed from the results they replace, is dropped with them), and give up the
    chunk's claims."""
    values = pl.concat(chunk.results) if chunk.results else None
    with wh.transaction():
        write_de_results(wh, values, chunk.runs, source="degae", config=settings(config))
        release(wh, STAGE, [r.contrast_id for r in chunk.runs])
    summary.count(chunk.runs)


def run(
    wh: Warehouse,
    config: DEConfig = DEConfig(),
    chunk_size: int = 25,
    map_chunks: Mapper | None = None,
) -> DESummary:
    """Fit every pending included contrast that no other live `de` run holds; safe to rerun
    (finished contrasts are skipped). `map_chunks` runs `fit_chunk` over the chunks (default:
    one after another, here)."""
    check_counts_folder(wh, config)  # before any claim is written: a refusal changes nothing
    jobs, summary = claimed(wh, config)
    chunks = chunked(jobs, chunk_size)
    try:
        fitted = (map_chunks or serially(fit_chunk))(chunks, config=config)
        for chunk in console.progress(fitted, len(chunks), "limma"):
            write_chunk(wh, chunk, config, summary)
    finally:
        release(wh, STAGE, [c.contrast_id for job in jobs for c in job.contrasts])
    return summary


def check_counts_folder(wh: Warehouse, config: DEConfig) -> None:
    """Stop, naming the folder, when none of the pending jobs' counts can be found because the
    warehouse's counts folder is gone (a warehouse copied without it): every contrast would
    otherwise be skipped as unreadable. A few missing files are skipped with that reason."""
    if wh.counts_dir.is_dir():
        return
    jobs = plan(wh, config)
    if jobs and not any(Path(j.parquet_path).exists() for j in jobs):
        raise WarehouseError(
            f"the counts of {wh.path} are missing: the folder {wh.counts_dir} does not exist (a "
            "warehouse copied without it?); copy it beside the warehouse, or run `degae-tools "
            "ingest` on the source folder again"
        )


def claimed(wh: Warehouse, config: DEConfig) -> tuple[list[SeriesJob], DESummary]:
    """The pending jobs this run holds, and a summary that counts the contrasts left to other
    runs. Pending is read again once claimed: a contrast another run finished meanwhile (and
    gave up) is not fitted twice."""
    mine, held = claim(
        wh, STAGE, [c.contrast_id for job in plan(wh, config) for c in job.contrasts]
    )
    holding = set(mine)
    jobs = [
        replace(job, contrasts=tuple(c for c in job.contrasts if c.contrast_id in holding))
        for job in plan(wh, config)
    ]
    jobs = [job for job in jobs if job.contrasts]
    kept = {c.contrast_id for job in jobs for c in job.contrasts}
    release(wh, STAGE, [cid for cid in mine if cid not in kept])
    held_by = sorted({str(holder) for holder in held.values()})
    return jobs, DESummary(held=len(held), held_by=held_by)


def nothing_to_test(wh: Warehouse, config: DEConfig = DEConfig()) -> None:
    """Raise NothingToDo, saying why on one line per cause, when no contrast is pending: none
    is included (every inclusion criterion the series fail, largest first), or every
    included one already has results for its current inputs and these settings."""
    if wh.frame(PENDING, {"settings": settings(config)}).height:
        return
    included = wh.scalar(INCLUDED)
    if included:
        raise NothingToDo(
            f"all {included} included contrasts already ran on their current counts with these "
            "settings (core.de_runs: done, or skipped with the reason); another --prior-count, "
            "--input or --voom refits them"
        )
    lines = exclusion_lines(wh) or ["no series loaded (run ingest)"]
    raise NothingToDo(
        "no included contrast to test (SELECT * FROM core.dataset_inclusion says why):\n  "
        + "\n  ".join(lines)
    )


def held_note(summary: DESummary) -> str | None:
    """One line on the contrasts left to another run, if any."""
    if not summary.held:
        return None
    holders = ", ".join(summary.held_by)
    return f"{summary.held} contrasts left to the de run that holds them ({holders})"
