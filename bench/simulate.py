"""Benchmark: the simulator at the default size and at the reference study's gene and term count.

Runs ``simulate`` at 200 series x 5,000 genes x 800 terms and at 1,000 series x 48,978 genes x
11,130 terms (the study's genes and terms), then times a straightforward peer on the same
per-series job at 48,978 genes: NumPy's negative binomial sampler, ``csv.writer`` into
``gzip.open`` at its default level. Prints seconds per series and the peer/ours ratio.

Run: ``python bench/simulate.py [--series 1000]`` from the repository root; writes
``bench/results/simulate.json``.
"""

import argparse
import csv
import gzip
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from degae_tools.sources.simulate import REFERENCE_GENES, SimulationConfig, simulate

PEER_SERIES = 10


def run(config: SimulationConfig, root: Path) -> dict:
    out = root / f"sim-{config.datasets}x{config.genes}"
    started = time.perf_counter()
    summary = simulate(out, config)
    seconds = time.perf_counter() - started
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    shutil.rmtree(out)
    return {
        "series": config.datasets,
        "genes": config.genes,
        "go_terms": summary.go_terms,
        "runs": summary.runs,
        "contrasts": summary.contrasts,
        "seconds": round(seconds, 2),
        "seconds_per_series": round(seconds / config.datasets, 4),
        "bytes_written": size,
    }


def peer(root: Path, runs_per_series: int) -> float:
    """Seconds per series for the straightforward NB sampler and csv writer at full gene count."""
    rng = np.random.default_rng(0)
    mean = rng.lognormal(np.log(75), 1.9, REFERENCE_GENES)
    phi = 0.04 + 0.5 / np.sqrt(mean + 1)
    gene_ids = [f"ENSMUSG{i:011d}" for i in range(1, REFERENCE_GENES + 1)]
    started = time.perf_counter()
    for series in range(PEER_SERIES):
        size = 1.0 / phi[:, None]
        counts = rng.negative_binomial(
            size, size / (size + mean[:, None]), (REFERENCE_GENES, runs_per_series)
        )
        with gzip.open(root / f"peer{series}.tsv.gz", "wt", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t")
            writer.writerow(["GeneID", *(f"SRR{j}" for j in range(runs_per_series))])
            for gene_id, row in zip(gene_ids, counts.tolist(), strict=True):
                writer.writerow([gene_id, *row])
    return (time.perf_counter() - started) / PEER_SERIES


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=1000, help="series at full gene count")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="degae-bench-simulate-") as tmp:
        root = Path(tmp)
        default = run(SimulationConfig(), root)
        print(f"default  {default}")
        setup = run(SimulationConfig(datasets=1, genes=48_978, go_terms=11_130), root)
        full = run(SimulationConfig(datasets=args.series, genes=48_978, go_terms=11_130), root)
        # The ontology, annotations and gene table are built once; the rest scales per series.
        full["seconds_per_series"] = round(
            (full["seconds"] - setup["seconds"]) / max(1, full["series"] - 1), 4
        )
        print(f"full     {full}")
        runs_per_series = round(full["runs"] / full["series"])
        peer_seconds = peer(root, runs_per_series)
    ratio = peer_seconds / full["seconds_per_series"]
    print(
        f"per series at {REFERENCE_GENES} genes: degae {full['seconds_per_series']:.3f} s, "
        f"peer (np NB + csv.writer + gzip default) {peer_seconds:.3f} s: {ratio:.1f}x faster"
    )
    result = {
        "default": default,
        "full_genes": full,
        "full_genes_one_series": setup,
        "peer": {
            "what": "np.random.negative_binomial + csv.writer into gzip.open (level 9)",
            "runs_per_series": runs_per_series,
            "seconds_per_series": round(peer_seconds, 4),
        },
        "speedup_vs_peer": round(ratio, 2),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    out = Path(__file__).parent / "results" / "simulate.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
