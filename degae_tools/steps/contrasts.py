"""The compendium's datasets, samples and contrasts, rebuilt from what ingest loaded.

Groups are inferred on all GEO samples of a series (the experimental design, `degae_tools.groups`),
then each group keeps the samples with a DEE2 run that passes QC and has counts; a sample with
several such runs keeps them all ("SRR1+SRR2"), and DE sums their counts. Deterministic, so
contrast IDs are stable across rebuilds. Groups and series that give no contrast are rejections
of stage `groups`; a series with no counted sample at all gives none (its count file or QC is
the cause, which `core.dataset_inclusion` names).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import polars as pl

from degae_tools import groups as rule
from degae_tools.sources import Rejection
from degae_tools.steps.counts import RUN_SEPARATOR
from degae_tools.steps.runs import record_rejections
from warehouse import Query, Warehouse

CHARACTERISTICS = Query("ingest/series_characteristics")
COUNTED_RUNS = Query("ingest/counted_runs")
DATASET_KEYS = Query("ingest/dataset_keys")
RESOLVE = Query("ingest/resolve_rejections")
SAMPLES = Query("ingest/series_samples")
SERIES = Query("ingest/series_for_datasets")

STAGE = "groups"
LIST = pl.List(pl.Utf8)
DATASET_SCHEMA = {
    "gse": pl.Utf8,
    "species": pl.Utf8,
    "title": pl.Utf8,
    "platforms": LIST,
    "n_geo_samples": pl.Int32,
    "group_key": pl.Utf8,
    "n_groups": pl.Int32,
    "grouping_note": pl.Utf8,
}
SAMPLE_SCHEMA = {"gse": pl.Utf8, "gsm": pl.Utf8, "srr": pl.Utf8, "group_label": pl.Utf8}
CONTRAST_SCHEMA = {
    "contrast_id": pl.Utf8,
    "gse": pl.Utf8,
    "group_key": pl.Utf8,
    "group_a": pl.Utf8,
    "group_b": pl.Utf8,
    "samples_a": LIST,
    "samples_b": LIST,
    "runs_a": LIST,
    "runs_b": LIST,
    "mode": pl.Utf8,
}


@dataclass(frozen=True)
class Series:
    """A GEO series with a series matrix (`ingest/series_for_datasets`)."""

    gse: str
    title: str | None
    platforms: list[str] | None
    species: str | None


@dataclass(frozen=True)
class Inputs:
    """What the rebuild reads, by series: GEO samples with their usable runs, characteristics,
    and the runs that have counts."""

    series: list[Series]
    samples: dict[str, pl.DataFrame]
    characteristics: dict[str, pl.DataFrame]
    counted_runs: dict[str, set[str]]


@dataclass
class Design:
    """What one series gives: its dataset row, its samples' rows and its contrasts' rows."""

    dataset: dict
    samples: list[dict]
    contrasts: list[dict]


def rebuild(wh: Warehouse, mode: rule.Mode = "degae", min_replicates: int = 2) -> int:
    """Rebuild core.datasets, core.samples and core.contrasts; returns the contrasts made."""
    inputs = read_inputs(wh)
    rejected: list[Rejection] = []
    designs = [design(s, inputs, mode, min_replicates, rejected) for s in inputs.series]
    write(wh, designs, rejected)
    return sum(len(d.contrasts) for d in designs)


def read_inputs(wh: Warehouse) -> Inputs:
    with wh.session():
        samples = wh.frame(SAMPLES)
        characteristics = wh.frame(CHARACTERISTICS)
        counted = {gse: set(runs) for gse, runs in wh.rows(COUNTED_RUNS)}
        series = [Series(*row) for row in wh.rows(SERIES)]
    return Inputs(series, by_series(samples), by_series(characteristics), counted)


def by_series(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    if frame.height == 0:
        return {}
    return {gse: rows for (gse,), rows in frame.partition_by("gse", as_dict=True).items()}


def design(
    series: Series, inputs: Inputs, mode: rule.Mode, min_replicates: int, rejected: list
) -> Design:
    """One series: its groups, its samples' counted runs, and a contrast per usable group."""
    samples = inputs.samples.get(series.gse)
    characteristics = inputs.characteristics.get(series.gse)
    grouping = None
    if characteristics is not None:
        grouping = rule.infer_groups(
            characteristics, mode=mode, gse=series.gse, on_reject=rejected.append
        )
    runs = counted_sample_runs(samples, inputs.counted_runs.get(series.gse, set()))
    label_of = {}
    if grouping is not None:
        label_of = {gsm: label for label, gsms in grouping.groups.items() for gsm in gsms}
    gsms = [] if samples is None else samples["gsm"].to_list()
    return Design(
        dataset=dataset_row(series, len(gsms), grouping),
        samples=[
            {"gse": series.gse, "gsm": g, "srr": runs.get(g), "group_label": label_of.get(g)}
            for g in gsms
        ],
        contrasts=contrast_rows(grouping, runs, mode, min_replicates, rejected),
    )


def counted_sample_runs(samples: pl.DataFrame | None, counted: set[str]) -> dict[str, str]:
    """{gsm: its usable runs with counts, '+'-joined} for the samples that have any."""
    if samples is None:
        return {}
    runs = {}
    for gsm, srrs in zip(samples["gsm"], samples["srrs"].to_list(), strict=True):
        with_counts = [r for r in (srrs or []) if r in counted]
        if with_counts:  # several runs of one sample are summed by DE
            runs[gsm] = RUN_SEPARATOR.join(with_counts)
    return runs


def dataset_row(series: Series, n_samples: int, grouping: rule.Grouping | None) -> dict:
    return {
        "gse": series.gse,
        "species": series.species,
        "title": series.title,
        "platforms": series.platforms,
        "n_geo_samples": n_samples,
        "group_key": grouping.key if grouping else None,
        "n_groups": len(grouping.groups) if grouping else 0,
        "grouping_note": None if grouping else "no characteristic defines groups",
    }


def contrast_rows(
    grouping: rule.Grouping | None,
    runs: dict[str, str],
    mode: rule.Mode,
    min_replicates: int,
    rejected: list,
) -> list[dict]:
    """A contrast per group with enough counted samples against the reference. A series with
    no counted sample at all gives none and no rejection: its counts or QC are the cause."""
    if grouping is None or not runs:
        return []
    counted = {label: [g for g in gsms if g in runs] for label, gsms in grouping.groups.items()}
    made = rule.contrasts(
        replace(grouping, groups=counted), min_replicates=min_replicates, on_reject=rejected.append
    )
    return [
        asdict(c)
        | {
            "group_key": grouping.key,
            "runs_a": [runs[g] for g in c.samples_a],
            "runs_b": [runs[g] for g in c.samples_b],
            "mode": mode,
        }
        for c in made
    ]


def write(wh: Warehouse, designs: list[Design], rejected: list[Rejection]) -> None:
    """Replace the compendium's rows in one transaction; the groups stage's earlier rejections
    are resolved and this rebuild's recorded (open again when seen before)."""
    datasets = pl.DataFrame([d.dataset for d in designs], schema=DATASET_SCHEMA)
    samples = pl.DataFrame([s for d in designs for s in d.samples], schema=SAMPLE_SCHEMA)
    contrasts = pl.DataFrame([c for d in designs for c in d.contrasts], schema=CONTRAST_SCHEMA)
    with wh.transaction():
        gses = sorted({gse for (gse,) in wh.rows(DATASET_KEYS)} | set(datasets["gse"]))
        wh.replace_rows("core.contrasts", contrasts, where={"gse": gses})
        wh.replace_rows("core.samples", samples, where={"gse": gses})
        wh.replace_rows("core.datasets", datasets, where={"gse": gses})
        wh.execute(RESOLVE, {"stage": STAGE, "source": None})
        record_rejections(wh, rejected, STAGE)
