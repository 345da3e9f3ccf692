"""Benchmark: GO-term prediction and attribution quality, signed log2FC against |log2FC|.

Simulates the README's compendium (200 GEO series × 5,000 genes × 800 GO terms, seed 1), runs
ingest, limma and GO enrichment once, then for each representation the model reads (`signed`, the
study's log2FC, and `magnitude`, |log2FC|) trains the demo's autoencoder (256 × 2, 30 epochs),
fits the GO head with its three baselines, attributes every (test contrast, term) pair with the
exact rule and with 50 Gauss-Legendre steps, and runs the validation checks against the
simulator's ground truth. Every figure is measured in this run; the ratios printed are degae's
against its peer in the same run (autoencoder vs PCA R², latent head vs the best baseline's
AUPRC, IG vs |log2FC| precision@20 against the driver genes).

Run: ``python bench/go_prediction.py [--datasets 200] [--epochs 30]`` from the repository root;
writes ``bench/results/go_prediction.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULT = Path(__file__).parent / "results" / "go_prediction.json"
REPRESENTATIONS = ("signed", "magnitude")


def build(tmp: Path, args: argparse.Namespace) -> tuple[Path, Path, dict]:
    """Simulate, ingest, limma and GO into one warehouse; returns (db, ground truth, seconds)."""
    from degae_tools.sources.simulate import SimulationConfig, simulate
    from degae_tools.steps.ingest import ingest
    from tests.helpers import run_de as differential
    from tests.helpers import run_go as enrichment

    seconds = {}
    started = time.perf_counter()
    sim = SimulationConfig(
        datasets=args.datasets, genes=args.genes, go_terms=args.go_terms, seed=args.seed
    )
    simulate(tmp / "compendium", sim)
    seconds["simulate"] = time.perf_counter() - started
    db = tmp / "warehouse" / "degae.duckdb"
    db.parent.mkdir()
    for name, step in (
        ("ingest", lambda: ingest(tmp / "compendium", db)),
        ("limma", lambda: differential(db)),
        ("go", lambda: enrichment(db)),
    ):
        started = time.perf_counter()
        step()
        seconds[name] = time.perf_counter() - started
    return db, tmp / "compendium" / "ground_truth" / "perturbations.tsv", seconds


def one_representation(db: Path, truth: Path, representation: str, args) -> dict:
    """Train, predict, attribute (exact and Gauss-Legendre 50) and validate one model."""
    from degae_tools.models import AutoencoderConfig
    from degae_tools.models.go_config import AttributeConfig
    from degae_tools.steps import attribute, predict, validate
    from degae_tools.steps.train import train
    from warehouse import Warehouse

    config = AutoencoderConfig(
        neurons=args.neurons, layers=args.layers, epochs=args.epochs, representation=representation
    )
    started = time.perf_counter()
    with Warehouse.open(db, write=True) as wh:
        trained = train(wh, config, model_dir=db.parent / f"model-{representation}")
    train_s = time.perf_counter() - started
    recon = {(r["method"], r["split"]): r for r in trained.reconstruction}
    model_dir, exact_rule = trained.model_dir, AttributeConfig(rule="exact")
    with Warehouse.open(db, write=True) as wh:
        predicted = predict.run(wh, model_dir)
        gauss = attribute.run(wh, model_dir, AttributeConfig(rule="gauss-legendre", steps=50))
        exact = attribute.run(wh, model_dir, exact_rule)
        checks = validate.run(wh, model_dir, exact_rule, ground_truth=truth)
    check = {
        f"{row['check_name']}:{row['method']}": row["value"] for row in checks.iter_rows(named=True)
    }
    pairs_checked = {
        f"{row['check_name']}:{row['method']}": row["n"] for row in checks.iter_rows(named=True)
    }
    summary = predicted.summary
    baselines = ("prior", "pca_logreg", "genes_ridge")
    best_baseline = max(baselines, key=lambda name: summary[name]["macro_auprc"])
    return {
        "model_id": trained.model_id,
        "train_seconds": train_s,
        "reconstruction_test_r2": {
            "autoencoder": recon[("autoencoder", "test")]["r2"],
            "pca": recon[("pca", "test")]["r2"],
        },
        "go_prediction": summary,
        "go_terms": len(predicted.go_ids),
        "latent_head_over_best_baseline_auprc": summary["latent_head"]["macro_auprc"]
        / summary[best_baseline]["macro_auprc"],
        "best_baseline": best_baseline,
        "attribution": {
            "pairs": exact.n_pairs,
            "exact": {
                "completeness_within_5pct": exact.completeness_ok,
                "max_relative_gap": exact.max_relative_gap,
                "pairs_per_second": exact.pairs_per_second,
            },
            "gauss_legendre_50": {
                "completeness_within_5pct": gauss.completeness_ok,
                "max_relative_gap": gauss.max_relative_gap,
                "pairs_per_second": gauss.pairs_per_second,
            },
        },
        "validation": check,
        "validation_pairs": pairs_checked,
    }


def compendium_arguments(description: str) -> argparse.ArgumentParser:
    """The options both model benches share: the simulated compendium and the demo's model."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--genes", type=int, default=5000)
    parser.add_argument("--go-terms", type=int, default=800)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--neurons", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    return parser


def main() -> None:
    parser = compendium_arguments(__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()

    from degae_tools import console

    console.mode.quiet = True
    tmp = Path(tempfile.mkdtemp(prefix="degae-bench-go-"))
    try:
        db, truth, build_seconds = build(tmp, args)
        runs = {r: one_representation(db, truth, r, args) for r in REPRESENTATIONS}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    console.mode.quiet = False
    gt = "ground_truth_precision@20"
    for name, run in runs.items():
        head = run["go_prediction"]["latent_head"]
        best = run["go_prediction"][run["best_baseline"]]
        r2 = run["reconstruction_test_r2"]
        v = run["validation"]
        print(
            f"{name}: AE/PCA test R² {r2['autoencoder']:.3f}/{r2['pca']:.3f}; latent head "
            f"AUROC(>=20 pos) {head['macro_auroc_pos20']:.3f}, AUPRC {head['macro_auprc']:.3f} "
            f"vs {run['best_baseline']} {best['macro_auroc_pos20']:.3f}/{best['macro_auprc']:.3f} "
            f"(ratio {run['latent_head_over_best_baseline_auprc']:.2f}); completeness exact "
            f"{run['attribution']['exact']['completeness_within_5pct']:.3f}, GL50 "
            f"{run['attribution']['gauss_legendre_50']['completeness_within_5pct']:.3f}; "
            f"{gt} IG {v.get(gt + ':ig', float('nan')):.3f}, |log2FC| "
            f"{v.get(gt + ':abs_log2fc', float('nan')):.3f}, random weights "
            f"{v.get(gt + ':ig_random_weights', float('nan')):.3f}",
            flush=True,
        )
    result = {
        "what": "GO prediction and attribution quality, signed log2FC vs |log2FC| (CPU)",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "size": vars(args) | {"out": str(args.out)},
        "build_seconds": build_seconds,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
