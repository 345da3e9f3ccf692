"""Benchmark: `compare-study` at the reduced size it documents, end to end on CPU.

Simulates the README's compendium (200 GEO series × 5,000 genes × 800 GO terms, seed 1), then
runs the reference study's pipeline and degae's defaults on it in one process
(`degae_tools.steps.study.compare_study`): two warehouses, limma, GO enrichment, 1/2/4/10-layer
autoencoders of 2,000 first-layer units for 20 epochs (the reduced size; the study: 50), and the
GO head on the 1-layer models (terms with at least 5 positive training contrasts). Prints the
table and the study/degae ratios of held-out MSE measured in the same run; writes
``bench/results/compare_study.json``.

Run: ``python bench/compare_study.py [--datasets 200] [--genes 5000] [--epochs 20]`` from the
repository root (``TF_CPP_MIN_LOG_LEVEL=2`` keeps TensorFlow quiet).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULT = Path(__file__).parent / "results" / "compare_study.json"
# The study's published figures (its own data: 7,130 contrasts × 48,978 genes), for context only.
STUDY_PUBLISHED = {
    "best_validation_mse": 0.929,
    "cv4_validation_mse": [0.858, 0.857, 0.809, 1.329],
    "two_or_more_layers_validation_mse": 0.9724,
}


def main() -> None:
    """Simulate, compare, print and write the JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--genes", type=int, default=5000)
    parser.add_argument("--go-terms", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--layers", default="1,2,4,10")
    parser.add_argument("--neurons", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-positives", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()

    from degae_tools import console
    from degae_tools.sources.simulate import SimulationConfig, simulate
    from degae_tools.steps.study import CompareConfig, compare_study

    layers = tuple(int(v) for v in args.layers.split(","))
    with tempfile.TemporaryDirectory(prefix="compare_study_") as tmp:
        started = time.perf_counter()
        sim = SimulationConfig(
            datasets=args.datasets, genes=args.genes, go_terms=args.go_terms, seed=args.seed
        )
        simulate(Path(tmp) / "compendium", sim)
        simulate_s = time.perf_counter() - started
        note = f"simulated {args.datasets} series x {args.genes} genes, seed {args.seed}"
        config = CompareConfig(
            layers=layers,
            epochs=args.epochs,
            neurons=args.neurons,
            note=note,
            min_positives=args.min_positives,
            run_id="bench",
        )
        console.mode.quiet = True
        comparison = compare_study(Path(tmp) / "compendium", Path(tmp) / "work", config)
        console.mode.quiet = False
        total_s = time.perf_counter() - started

    columns, rows = comparison.table()
    console.show_table(columns, rows, title="reference study recipe vs degae defaults")
    mse = {
        layers_: (
            comparison.value("study", "test_mse", layers_),
            comparison.value("degae", "test_mse", layers_),
        )
        for layers_ in layers
    }
    ratios = {str(k): s / d for k, (s, d) in mse.items() if s is not None and d}
    result = {
        "what": "compare-study end to end at the documented reduced size (CPU)",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "size": {
            "datasets": args.datasets,
            "genes": args.genes,
            "go_terms": args.go_terms,
            "epochs": args.epochs,
            "layers": list(layers),
            "neurons": args.neurons,
            "seed": args.seed,
            "min_positives": args.min_positives,
        },
        "seconds": {"simulate": simulate_s, "total": total_s},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "test_mse_ratio_study_over_degae": ratios,
        "rows": comparison.rows,
        "notes": comparison.notes(),
        "study_published_different_data": STUDY_PUBLISHED,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(
        f"total {total_s / 60:.1f} min; held-out MSE study/degae by layers: "
        + ", ".join(f"{k}: {v:.2f}" for k, v in ratios.items())
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
