"""t-SNE backends on the same data: scikit-learn (what `reduce` uses) against openTSNE.

The input is what `reduce` feeds t-SNE: 50 PCA scores per contrast of a low-rank log2FC matrix
with cluster structure. Both run perplexity 50 (the study's) with the same seed; each is timed
once per size and scored by trustworthiness (k = 10). openTSNE is optional: without it only
scikit-learn is measured and the JSON says so. `python bench/tsne.py [--sizes 1000 4000]`;
writes bench/results/tsne.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from degae_tools.reduction import tsne  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "tsne.json"


def pca_scores(n: int, n_genes: int = 2000, seed: int = 0) -> np.ndarray:
    """50 PCA scores of n contrasts drawn from 12 clusters in an 8-factor log2FC space."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, 8)) * 2
    factors = centres[rng.integers(0, 12, size=n)] + rng.normal(size=(n, 8))
    log_fc = factors @ rng.normal(size=(8, n_genes)) + rng.normal(size=(n, n_genes))
    return PCA(50, random_state=seed).fit_transform(log_fc).astype(np.float32)


def measure(x: np.ndarray, backend: str) -> dict[str, float]:
    """Seconds and trustworthiness of one t-SNE run."""
    start = time.perf_counter()
    coords, perplexity = tsne(x, 50.0, seed=69, backend=backend)
    seconds = time.perf_counter() - start
    sample = np.random.default_rng(1).choice(len(x), size=min(len(x), 2000), replace=False)
    trust = trustworthiness(x[sample], coords[sample], n_neighbors=10)
    return {"seconds": round(seconds, 2), "trustworthiness": round(float(trust), 4)}


def main() -> None:
    """Time both backends at each size and write the comparison."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    args = parser.parse_args()
    try:
        import openTSNE

        opentsne_version = openTSNE.__version__
    except ImportError:
        opentsne_version = None
    runs = []
    for n in args.sizes:
        x = pca_scores(n)
        row: dict[str, object] = {"n_contrasts": n, "sklearn": measure(x, "sklearn")}
        if opentsne_version:
            row["opentsne"] = measure(x, "opentsne")
            row["opentsne_over_sklearn_seconds"] = round(
                row["opentsne"]["seconds"] / row["sklearn"]["seconds"], 3
            )
        runs.append(row)
        print(json.dumps(row))
    result = {
        "what": "t-SNE (perplexity 50, seed 69) of 50 PCA scores; seconds per run, "
        "trustworthiness at k=10 on up to 2,000 points",
        "sklearn_version": sklearn.__version__,
        "opentsne_version": opentsne_version or "not installed: scikit-learn measured alone",
        "sklearn_method": "exact up to 250 points, Barnes-Hut above (as degae_tools.reduction)",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "runs": runs,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for row in runs:
        if "opentsne" in row:
            ratio = row["opentsne_over_sklearn_seconds"]
            print(f"n={row['n_contrasts']}: openTSNE takes {ratio:.2f}x the time of scikit-learn")
        else:
            print(f"n={row['n_contrasts']}: scikit-learn {row['sklearn']['seconds']} s (alone)")


if __name__ == "__main__":
    main()
