"""degae_tools.limma against R limma: per-dataset time for the full DE pipeline on 48,978 genes.

Both sides run log-CPM → lmFit → contrasts.fit → eBayes → topTable(number = Inf) on the same
simulated counts; R is timed inside R (system.time over a loop) so its start-up does not count.
degae gets the counts as the `de` step does: integers, one run's counts after another (a
samples x genes stack, passed transposed). `single` times `de_table`'s rows in gene order, as R's
topTable(sort.by = "none") returns them; `step` times the call the de step makes, rows by
p-value with their gene indexes (the order they are stored in), the acceptance figure.
The floor is one pass over the same data: each count's log2 looked up in a table (the log-CPM
transform, the one step that must read every count), so `degae / floor` says how many such
passes the whole pipeline costs.
Run: ``python bench/de.py`` (a few minutes); writes ``bench/results/de.json``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import polars as pl

from degae_tools.limma import DEConfig, de_table, limma, limma_batch

RESULTS = Path(__file__).parent / "results" / "de.json"

R_LOOP = r"""
suppressPackageStartupMessages(library(limma))
args <- commandArgs(trailingOnly = TRUE)
n_datasets <- as.integer(args[2]); n_genes <- as.integer(args[3]); n_samples <- as.integer(args[4])
raw <- readBin(args[1], "double", n = n_datasets * n_genes * n_samples)
counts_all <- array(raw, dim = c(n_samples, n_genes, n_datasets))
g <- factor(rep(c("A", "B"), each = n_samples / 2))
design <- model.matrix(~ 0 + g)
colnames(design) <- levels(g)
cm <- matrix(c(-1, 1), 2, 1)
datasets <- lapply(seq_len(n_datasets), function(d) t(counts_all[, , d]))
first <- NULL
use_voom <- args[6] == "voom"
tm <- system.time(for (counts in datasets) {
  if (use_voom) {
    y <- voom(counts, design)
  } else {
    lib <- colSums(counts)
    y <- t(log2(t(counts + 0.5) / (lib + 1) * 1e6))
  }
  fit <- eBayes(contrasts.fit(lmFit(y, design), cm))
  top <- topTable(fit, coef = 1, number = Inf, sort.by = "none")
  if (is.null(first)) first <- top
})
writeBin(as.double(c(first$logFC, first$t, first$P.Value)), args[5])
cat(sprintf("%.6f %.6f\n", tm[["elapsed"]], tm[["user.self"]] + tm[["sys.self"]]))
"""


def simulate_counts(
    rng: np.random.Generator, n_datasets: int, n_genes: int, n_samples: int
) -> np.ndarray:
    """Negative-binomial counts (datasets x genes x samples) with 5% of genes changed in B."""
    mean = rng.gamma(0.3, 300.0, (n_datasets, n_genes, 1))
    depth = rng.uniform(0.5, 2.0, (n_datasets, 1, n_samples))
    change = np.where(rng.random((n_datasets, n_genes, 1)) < 0.05, rng.lognormal(0, 1, 1), 1.0)
    in_b = (np.arange(n_samples) >= n_samples // 2)[None, None, :]
    mu = mean * depth * np.where(in_b, change, 1.0)
    return rng.negative_binomial(5, 5.0 / (5.0 + mu)).astype(np.float64)


def time_r(
    counts: np.ndarray, workdir: Path, voom: bool = False
) -> tuple[float, float, np.ndarray]:
    """R limma's per-dataset (wall, cpu) seconds over ``counts``, and its first topTable."""
    n_datasets, n_genes, n_samples = counts.shape
    data, first, script = workdir / "counts.bin", workdir / "first.bin", workdir / "loop.R"
    counts.tofile(data)
    script.write_text(R_LOOP)
    args = [str(data), str(n_datasets), str(n_genes), str(n_samples), str(first)]
    args.append("voom" if voom else "log-cpm")
    out = subprocess.run(
        ["Rscript", str(script), *args], capture_output=True, text=True, check=True
    ).stdout.split()
    wall, cpu = float(out[0]) / n_datasets, float(out[1]) / n_datasets
    return wall, cpu, np.fromfile(first).reshape(3, n_genes)


def by_sample(datasets: np.ndarray) -> np.ndarray:
    """The counts as the step stacks them: int32, datasets x samples x genes."""
    return np.ascontiguousarray(datasets.transpose(0, 2, 1)).astype(np.int32)


def time_single(
    datasets: np.ndarray, config: DEConfig = DEConfig(), by_p: bool = False
) -> tuple[float, float, pl.DataFrame]:
    """degae's per-dataset (wall, cpu) seconds calling de_table() once per dataset on the counts
    the step gives it (``by_p``: as the step calls it, rows by p-value with gene indexes), and
    the first dataset's limma() table (for the comparison with R)."""
    n_samples = datasets.shape[-1]
    groups = ["A"] * (n_samples // 2) + ["B"] * (n_samples - n_samples // 2)
    stacked = by_sample(datasets)
    gene_index = np.arange(datasets.shape[1])
    wall = cpu = 0.0
    for counts in stacked:
        w0, c0 = time.perf_counter(), time.process_time()
        de_table(counts.T, groups, ("B", "A"), config, gene_index, by_p=by_p)
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
    first = limma(datasets[0], groups, ("B", "A"), config)
    return wall / len(datasets), cpu / len(datasets), first


def time_floor(datasets: np.ndarray, repeats: int = 20) -> tuple[float, float]:
    """The floor's per-dataset (wall, cpu) seconds: one pass over each dataset's counts that
    reads every count and writes its log2 (a table lookup, as degae's log-CPM does)."""
    stacked = by_sample(datasets)
    table = np.log2(np.arange(1 << 16) + 0.5)
    wall = cpu = 0.0
    for _ in range(repeats):
        for counts in stacked:
            w0, c0 = time.perf_counter(), time.process_time()
            np.take(table, counts.astype(np.intp), mode="clip")
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
    return wall / (repeats * len(stacked)), cpu / (repeats * len(stacked))


def max_difference(ours: pl.DataFrame, r_first: np.ndarray) -> dict[str, float]:
    """Largest absolute difference from R's first topTable in logFC, t and P.Value."""
    columns = {"log_fc": "logFC", "t": "t", "p_value": "P.Value"}
    return {
        name: float(np.max(np.abs(ours[col].to_numpy() - r_first[i])))
        for i, (name, col) in enumerate(columns.items())
    }


def time_degae(pool: np.ndarray, n_datasets: int) -> tuple[float, float]:
    """degae's batched per-dataset (wall, cpu) seconds: limma_batch over ``pool`` repeatedly."""
    n_samples = pool.shape[-1]
    groups = ["A"] * (n_samples // 2) + ["B"] * (n_samples - n_samples // 2)
    stacked = by_sample(pool).transpose(0, 2, 1)
    wall = cpu = 0.0
    for start in range(0, n_datasets, len(pool)):
        batch = stacked[: min(len(pool), n_datasets - start)]
        w0, c0 = time.perf_counter(), time.process_time()
        limma_batch(batch, groups, ("B", "A"))
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
    return wall / n_datasets, cpu / n_datasets


def summary(times: list[tuple[float, float]]) -> dict[str, float]:
    """Per-dataset milliseconds, the best and the median of the rounds, wall and cpu."""
    wall, cpu = np.array(times).T * 1e3
    return {
        "wall_min": float(wall.min()),
        "wall_median": float(np.median(wall)),
        "cpu_min": float(cpu.min()),
        "cpu_median": float(np.median(cpu)),
    }


def speedup(r: dict[str, float], ours: dict[str, float]) -> dict[str, float]:
    """R's time over degae's, per statistic."""
    return {key: r[key] / ours[key] for key in r}


@click.command()
@click.option("--datasets", default=200, show_default=True, help="datasets degae runs batched")
@click.option("--r-datasets", default=10, show_default=True, help="datasets R runs in its loop")
@click.option("--genes", default=48_978, show_default=True)
@click.option("--chunk", default=50, show_default=True, help="datasets per limma_batch call")
@click.option("--rounds", default=3, show_default=True, help="alternating R / degae rounds")
@click.option("--voom-datasets", default=2, show_default=True, help="datasets for the voom case")
@click.option("--seed", default=69, show_default=True)
def main(
    datasets: int,
    r_datasets: int,
    genes: int,
    chunk: int,
    rounds: int,
    voom_datasets: int,
    seed: int,
) -> None:
    """Time degae and R limma on 6- and 12-sample designs and write bench/results/de.json."""
    rng = np.random.default_rng(seed)
    load_before = os.getloadavg()
    cases = []
    for n_samples in (6, 12):
        pool = simulate_counts(rng, max(chunk, r_datasets), genes, n_samples)
        shared = pool[:r_datasets]
        r_times, batch_times, single_times, step_times, floor_times = [], [], [], [], []
        for _ in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                r_wall, r_cpu, r_first = time_r(shared, Path(tmp))
            r_times.append((r_wall, r_cpu))
            batch_times.append(time_degae(pool[:chunk], datasets))
            single_wall, single_cpu, ours = time_single(shared)
            single_times.append((single_wall, single_cpu))
            step_times.append(time_single(shared, by_p=True)[:2])
            floor_times.append(time_floor(shared))
        r_ms, batch_ms, single_ms = summary(r_times), summary(batch_times), summary(single_times)
        step_ms, floor_ms = summary(step_times), summary(floor_times)
        cases.append(
            {
                "genes": genes,
                "samples": n_samples,
                "degae_batched_datasets": datasets,
                "degae_batch_size": chunk,
                "r_datasets": r_datasets,
                "rounds": rounds,
                "r_ms_per_dataset": r_ms,
                "degae_batched_ms_per_dataset": batch_ms,
                "degae_single_ms_per_dataset": single_ms,
                "degae_step_ms_per_dataset": step_ms,
                "floor_ms_per_dataset": floor_ms,
                "speedup_batched": speedup(r_ms, batch_ms),
                "speedup_single": speedup(r_ms, single_ms),
                "speedup_step": speedup(r_ms, step_ms),
                "acceptance_speedup_step_at_least": 25,
                "single_over_floor": speedup(single_ms, floor_ms),
                "step_over_floor": speedup(step_ms, floor_ms),
                "max_abs_difference_vs_r_first_dataset": max_difference(ours, r_first),
            }
        )
        click.echo(
            f"{genes} genes x {n_samples} samples, ms/dataset (best of {rounds}): "
            f"R {r_ms['wall_min']:.1f} wall, {r_ms['cpu_min']:.1f} cpu; degae batched "
            f"{batch_ms['wall_min']:.1f} wall, {batch_ms['cpu_min']:.1f} cpu; single "
            f"{single_ms['wall_min']:.1f} wall, {single_ms['cpu_min']:.1f} cpu; step "
            f"{step_ms['cpu_min']:.1f} cpu (median {step_ms['cpu_median']:.1f}, "
            f"{r_ms['cpu_median'] / step_ms['cpu_median']:.1f}x R's median); floor "
            f"{floor_ms['cpu_min']:.2f} cpu; speed-up single "
            f"{r_ms['wall_min'] / single_ms['wall_min']:.1f}x wall, "
            f"{r_ms['cpu_min'] / single_ms['cpu_min']:.1f}x cpu; batched "
            f"{r_ms['cpu_min'] / batch_ms['cpu_min']:.1f}x cpu; degae = "
            f"{single_ms['cpu_min'] / floor_ms['cpu_min']:.0f} floors"
        )
    shared = simulate_counts(rng, voom_datasets, genes, 6)
    with tempfile.TemporaryDirectory() as tmp:
        r_wall, r_cpu, r_first = time_r(shared, Path(tmp), voom=True)
    single_wall, single_cpu, ours = time_single(shared, DEConfig(voom=True))
    voom_case = {
        "genes": genes,
        "samples": 6,
        "datasets": voom_datasets,
        "r_ms_per_dataset": {"wall": r_wall * 1e3, "cpu": r_cpu * 1e3},
        "degae_single_ms_per_dataset": {"wall": single_wall * 1e3, "cpu": single_cpu * 1e3},
        "speedup_single": {"wall": r_wall / single_wall, "cpu": r_cpu / single_cpu},
        "max_abs_difference_vs_r_first_dataset": max_difference(ours, r_first),
    }
    click.echo(
        f"voom, {genes} genes x 6 samples: R {r_wall * 1e3:.0f} ms/dataset "
        f"(cpu {r_cpu * 1e3:.0f}); degae {single_wall * 1e3:.0f} ms (cpu {single_cpu * 1e3:.0f})"
        f"; speed-up {r_wall / single_wall:.1f}x wall, {r_cpu / single_cpu:.1f}x cpu"
    )
    result = {
        "benchmark": "limma pipeline per dataset: degae_tools.limma vs R limma",
        "method": (
            "log-CPM, lmFit, contrasts.fit, eBayes, topTable(number = Inf) on the same simulated "
            "negative-binomial counts; R timed by system.time inside one Rscript loop (counts as "
            "doubles); degae timed around each de_table call on int32 counts stacked run by run "
            "(single: rows in gene order; step: as the de step calls it, rows by p-value with "
            "gene indexes) and each limma_batch call (batched); floor: one table-lookup log2 "
            "pass over the same int32 counts; R, degae "
            "and the floor alternate for `rounds` rounds; cpu = user + system CPU seconds of the "
            "process; speed-up = R time / degae time"
        ),
        "r_limma": subprocess.run(
            ["Rscript", "-e", "cat(as.character(packageVersion('limma')))"],
            capture_output=True,
            text=True,
        ).stdout,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "cases": cases,
        "voom": voom_case,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    click.echo(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
