"""Benchmark: held-out reconstruction of every autoencoder kind against PCA of the same size.

Simulates a compendium (default: the README's, 200 GEO series × 5,000 genes × 800 GO terms,
seed 1), runs ingest, limma and GO once, then trains the demo's architecture (256 × 2, latent 128,
30 epochs) as dense, sparse, denoising and variational autoencoders on signed log2FC and on
|log2FC|, plus regularised dense variants (weight-free ones the CLI offers: input dropout, early
stopping, a 10× smaller learning rate), plus the dense shape at other latent sizes (two layers of
2k → k units for k in `--latents`, default 4, 16 and 64) in both representations. Each row is the
autoencoder's test R² next to PCA's, fit in the same `train` call on the same training split; the
ratio printed is AE R² / PCA R².

Run: ``python bench/ae_vs_pca.py [--datasets 200] [--kinds-only] [--latents 4,16,64]`` from the
repository root;
writes ``bench/results/ae_vs_pca.json`` (``--datasets 1000`` writes ``ae_vs_pca_1000.json``).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

KINDS = {
    "dense": {},
    "sparse": {"kind": "sparse"},
    "denoising": {"kind": "denoising"},
    "variational": {"kind": "variational"},
}
# Run once, on the study's signed log2FC.
REGULARISED = {
    "dense, input dropout 0.5": {"kind": "denoising", "noise": 0.0, "dropout": 0.5},
    "dense, early stopping (patience 3)": {"early_stopping": True, "patience": 3},
    "dense, learning rate 1e-4": {"learning_rate": 1e-4},
}


def sweep_shape(latent: int) -> dict[str, int]:
    """Two layers, 2k then k units: the demo's shape with a latent code of size k."""
    return {"neurons": 2 * latent, "layers": 2}


def main() -> None:
    from go_prediction import build, compendium_arguments

    parser = compendium_arguments(__doc__.splitlines()[0])
    parser.add_argument(
        "--kinds-only", action="store_true", help="only the four kinds (for large compendia)"
    )
    parser.add_argument(
        "--latents",
        default="4,16,64",
        help="latent sizes for the dense sweep, comma-separated ('' for none)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    suffix = "" if args.datasets == 200 else f"_{args.datasets}"
    out = args.out or Path(__file__).parent / "results" / f"ae_vs_pca{suffix}.json"

    from degae_tools import console
    from degae_tools.models import AutoencoderConfig
    from degae_tools.steps.train import train
    from warehouse import Warehouse

    console.mode.quiet = True
    tmp = Path(tempfile.mkdtemp(prefix="degae-bench-ae-"))
    rows = []
    try:
        db, _, build_seconds = build(tmp, args)
        extra = {} if args.kinds_only else REGULARISED
        shape = {"neurons": args.neurons, "layers": args.layers}
        runs = [("signed", name, options, shape) for name, options in {**KINDS, **extra}.items()]
        runs += [("magnitude", name, options, shape) for name, options in KINDS.items()]
        for latent in (int(k) for k in args.latents.split(",") if k):
            for representation in ("signed", "magnitude"):
                runs.append((representation, f"dense, latent {latent}", {}, sweep_shape(latent)))
        for representation, name, options, architecture in runs:
            config = AutoencoderConfig(
                epochs=args.epochs, representation=representation, **architecture, **options
            )
            folder = tmp / f"model-{len(rows)}"
            with Warehouse.open(db, write=True) as wh:
                result = train(wh, config, model_dir=folder)
            test = {r["method"]: r for r in result.reconstruction if r["split"] == "test"}
            row = {
                "representation": representation,
                "variant": name,
                "latent_dim": config.latent_dim,
                "epochs_run": result.metrics["epochs_run"],
                "ae_test_r2": test["autoencoder"]["r2"],
                "pca_test_r2": test["pca"]["r2"],
                "ae_test_mse": test["autoencoder"]["mse"],
                "pca_test_mse": test["pca"]["mse"],
                "ae_over_pca_r2": test["autoencoder"]["r2"] / test["pca"]["r2"],
                "n_train": result.metrics["n_train"],
            }
            rows.append(row)
            shutil.rmtree(folder, ignore_errors=True)
            print(
                f"{representation:9} {name:36} AE R² {row['ae_test_r2']:.3f}  "
                f"PCA R² {row['pca_test_r2']:.3f}  ratio {row['ae_over_pca_r2']:.2f}",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    console.mode.quiet = False
    result = {
        "what": "held-out reconstruction R², autoencoder kinds vs PCA of the same latent size",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "size": {k: v for k, v in vars(args).items() if k != "out"},
        "build_seconds": build_seconds,
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
