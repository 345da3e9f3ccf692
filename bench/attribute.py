"""Integrated gradients at full width: (contrast, GO term) pairs per second on 48,978 genes.

The model is the study's: 48,978 genes -> 2,000 ReLU units (the latent code) -> a linear GO head,
behind the standardising preprocessor. Each `--batch` value of the Gauss-Legendre rule runs in its
own process so its peak RSS is its own, and so does the exact rule (ReLU segments, no steps); the
peer, in the same run, is the textbook loop (one forward/backward pass per path point), so the
ratios are what batching the path, and walking its segments, buy. Completeness (the share of
pairs whose attributions sum to F(x) - F(0) within 5%) is reported for each rule.
Run: ``python bench/attribute.py`` (about 3 minutes on 2 cores); writes
``bench/results/attribute.json``.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import click

RESULTS = Path(__file__).parent / "results" / "attribute.json"


def build(n_genes: int, latent: int, n_terms: int, seed: int):
    """Preprocessor, encoder and head with the study's shapes and random weights."""
    import keras
    import numpy as np

    from degae_tools.preprocess import Preprocessor

    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    prep = Preprocessor()
    prep.n_genes = n_genes
    prep.keep = np.arange(n_genes)
    prep.mean = rng.normal(scale=0.1, size=n_genes).astype(np.float32)
    prep.scale = rng.uniform(0.5, 2.0, n_genes).astype(np.float32)
    inp = keras.Input((n_genes,))
    encoder = keras.Model(inp, keras.layers.Dense(latent, activation="relu")(inp))
    code = keras.Input((latent,))
    head = keras.Model(code, keras.layers.Dense(n_terms)(code))
    x = rng.normal(scale=1.5, size=(8, n_genes)).astype(np.float32)
    return prep, encoder, head, x


def rss_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    """Hand freed heap back to the OS, then reset VmHWM to the current RSS (Linux >= 4.0).

    Without the trim, memory freed while the 98M-weight model was initialised stays resident
    and later allocations reuse it, hiding what the attribution itself needs.
    """
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")


def worker(args: dict) -> dict:
    """Time IG over `pairs` pairs (or the per-point peer) and report peak RSS of this process."""
    import numpy as np
    import tensorflow as tf

    from degae_tools.models.integrated_gradients import (
        integrated_gradients,
        logit_function,
        path_points,
    )

    prep, encoder, head, x = build(args["genes"], args["latent"], args["terms"], args["seed"])
    f = logit_function(prep, encoder, head)
    pairs = args["pairs"]
    rows = np.arange(pairs) % len(x)
    terms = (np.arange(pairs) * 7) % args["terms"]
    if args["mode"] == "peer":
        alphas, weights = path_points(args["steps"], "riemann-middle")

        @tf.function
        def grad(point, term):
            with tf.GradientTape() as tape:
                tape.watch(point)
                out = f(point)[0, term]
            return tape.gradient(out, point)

        grad(tf.constant(x[:1]), tf.constant(0))
        reset_peak_rss()
        rss_before = rss_mib("VmRSS")
        started = time.perf_counter()
        for r, t in zip(rows, terms, strict=True):
            total = np.zeros(x.shape[1])
            for a, w in zip(alphas, weights, strict=True):
                total += w * grad(tf.constant(x[r : r + 1] * a), tf.constant(int(t))).numpy()[0]
        seconds = time.perf_counter() - started
        completeness = {}
    else:
        rule = "exact" if args["mode"] == "exact" else "gauss-legendre"
        options = {"steps": args["steps"], "batch": args["batch"], "rule": rule}
        integrated_gradients(f, x, rows[:1], terms[:1], **options)
        reset_peak_rss()
        rss_before = rss_mib("VmRSS")
        started = time.perf_counter()
        attr = integrated_gradients(f, x, rows, terms, **options)
        seconds = time.perf_counter() - started
        completeness = _completeness(f, x, rows, terms, attr)
    return {
        **args,
        **completeness,
        "seconds": seconds,
        "pairs_per_second": pairs / seconds,
        "rss_before_mib": rss_before,
        "peak_rss_mib": rss_mib("VmHWM"),
        "peak_rss_above_model_mib": rss_mib("VmHWM") - rss_before,
        "process_max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _completeness(f, x, rows, terms, attr) -> dict:
    import numpy as np

    from degae_tools.models.go_metrics import relative_gap
    from degae_tools.models.integrated_gradients import logits

    delta = logits(f, x)[rows, terms] - logits(f, np.zeros((1, x.shape[1]), np.float32))[0, terms]
    gap = attr.sum(axis=1) - delta
    rel = relative_gap(gap, delta)
    return {
        "completeness_within_5pct": float(np.mean(rel <= 0.05)),
        "max_abs_gap": float(np.abs(gap).max()),
    }


def run_child(args: dict) -> dict:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@click.command()
@click.option("--genes", default=48_978, show_default=True)
@click.option("--latent", default=2_000, show_default=True)
@click.option("--terms", default=1_000, show_default=True)
@click.option("--steps", default=50, show_default=True)
@click.option("--pairs", default=16, show_default=True, help="Pairs timed per batch value.")
@click.option("--peer-pairs", default=2, show_default=True, help="Pairs timed for the peer.")
@click.option(
    "--exact-pairs", default=64, show_default=True, help="Pairs timed (in one pass), exact rule."
)
@click.option("--batch", "batches", multiple=True, type=int, default=(50, 800), show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--worker", "worker_args", default=None, hidden=True)
def main(genes, latent, terms, steps, pairs, peer_pairs, exact_pairs, batches, seed, worker_args):
    """Measure IG throughput and peak memory at two batch sizes and against the per-point loop."""
    if worker_args is not None:
        print(json.dumps(worker(json.loads(worker_args))))
        return
    base = {"genes": genes, "latent": latent, "terms": terms, "steps": steps, "seed": seed}
    runs = [run_child({**base, "mode": "batched", "batch": b, "pairs": pairs}) for b in batches]
    exact = run_child({**base, "mode": "exact", "batch": exact_pairs, "pairs": exact_pairs})
    peer = run_child({**base, "mode": "peer", "batch": 1, "pairs": peer_pairs})
    best = max(runs, key=lambda r: r["pairs_per_second"])
    result = {
        "what": "integrated gradients, gauss-legendre and exact, (contrast, GO term) pairs/s",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "device": "cpu"},
        "model": f"{genes} genes -> {latent} ReLU latent -> {terms} GO logits",
        "steps": steps,
        "runs": runs,
        "exact": exact,
        "peer": peer,
        "speedup_vs_per_point_loop": best["pairs_per_second"] / peer["pairs_per_second"],
        "exact_speed_vs_best_gauss_legendre": exact["pairs_per_second"] / best["pairs_per_second"],
        "path_points_mib_per_pass_by_batch": {str(b): b * genes * 4 / 2**20 for b in batches},
        "peak_rss_above_model_mib_by_batch": {
            str(r["batch"]): r["peak_rss_above_model_mib"] for r in runs
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    for r in runs:
        print(
            f"batch {r['batch']:>4}: {r['pairs_per_second']:.2f} pairs/s, "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB, {r['peak_rss_above_model_mib']:.0f} MiB above "
            f"the loaded model"
        )
    print(
        f"exact: {exact['pairs_per_second']:.2f} pairs/s, "
        f"peak RSS {exact['peak_rss_mib']:.0f} MiB, "
        f"completeness {exact['completeness_within_5pct']:.2f} (Gauss-Legendre "
        f"{best['completeness_within_5pct']:.2f}); exact / Gauss-Legendre speed "
        f"{result['exact_speed_vs_best_gauss_legendre']:.2f}x"
    )
    print(f"peer (one pass per path point): {peer['pairs_per_second']:.3f} pairs/s")
    print(f"ratio batched / peer: {result['speedup_vs_per_point_loop']:.1f}x")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
