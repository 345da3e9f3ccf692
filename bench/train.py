"""Benchmark: degae's streamed training at full width, as a fraction of the machine's matmul speed
and against a plain `model.fit(numpy_array)`.

A temporary warehouse holds synthetic low-rank log2FC for N contrasts × 48,978 genes. The same
autoencoder (2,000 hidden units, 1 layer, the study's best) is trained for the same epochs
  * streamed: the train step end to end (DuckDB → Arrow spill → tf.data → Keras with the fused
    Adam update, then the baselines, embeddings and the ml rows), at the study's batch of 128,
    at 512, and at 128 with the training step compiled by XLA, and
  * in memory: the matrix loaded as NumPy, the same preprocessing, Keras' own Adam,
    `model.fit(x, x)` at batch 128,
each in its own subprocess so that peak RSS (`ru_maxrss`) is that side's alone. Throughput is
training samples per second of the epochs after the first (which traces the graph); GFLOP/s
counts 10·n·h per training sample (forward 2 matmuls of 2·n·h, backward 3 of 2·n·h) and
4·n·h per validation sample, compared with a 4096² float32 matmul that each side's process
measures just before it trains (on a shared machine the capacity drifts between sides).

A second configuration with 256 hidden units, where the model and Adam's state are small beside
the data, shows where streaming saves memory.

Run: ``python bench/train.py [--contrasts 1200] [--epochs 3]`` from the repository root; writes
``bench/results/train.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULT = Path(__file__).parent / "results" / "train.json"
N_GENES, NEURONS, BATCH = 48_978, 2_000, 128
# The streamed configurations measured: (name, batch size, XLA).
STREAMED = (
    ("streamed", BATCH, False),
    ("streamed_batch512", 512, False),
    ("streamed_xla", BATCH, True),
)


def build_warehouse(path: Path, n_contrasts: int, n_genes: int, seed: int = 0) -> float:
    """Synthetic DE results (rank 20 plus noise, 2% of genes missing) in a fresh warehouse,
    written through the one writer of per-gene values."""
    from degae_tools.steps.runs import RunRow, write_de_results
    from warehouse import Warehouse

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(20, n_genes)).astype(np.float32) * 0.5
    genes = pa.table(
        {
            "gene_index": np.arange(n_genes, dtype=np.int32),
            "gene_id": [f"ENSMUSG{g:011d}" for g in range(n_genes)],
        }
    )
    with Warehouse.open(path, write=True, create=True) as wh:
        wh.insert("core.genes", genes)
        chunk = 25
        for start in range(0, n_contrasts, chunk):
            ids = [f"GSE{10_000 + i // 3}:b{i}-vs-a" for i in range(start, start + chunk)]
            factors = rng.normal(size=(len(ids), 20)).astype(np.float32)
            values = factors @ loadings + rng.normal(size=(len(ids), n_genes)).astype(np.float32)
            keep = rng.random((len(ids), n_genes)) >= 0.02
            rows, cols = np.nonzero(keep)
            de = pa.table(
                {
                    "contrast_id": pa.DictionaryArray.from_arrays(
                        pa.array(rows.astype(np.int32)), pa.array(ids)
                    ).cast(pa.string()),
                    "gene_index": cols.astype(np.int32),
                    "log_fc": values[rows, cols].astype(np.float64),
                }
            )
            contrasts = pa.table(
                {
                    "contrast_id": ids,
                    "gse": [i.split(":")[0] for i in ids],
                    "group_a": ["a"] * len(ids),
                    "group_b": ["b"] * len(ids),
                    "samples_a": [[]] * len(ids),
                    "samples_b": [[]] * len(ids),
                    "runs_a": [[]] * len(ids),
                    "runs_b": [[]] * len(ids),
                    "mode": ["degae"] * len(ids),
                },
                schema=CONTRASTS,
            )
            with wh.transaction():
                wh.insert("core.contrasts", contrasts)
                runs = [RunRow(i, "done") for i in ids]
                write_de_results(wh, de, runs, source="degae", config="{}")
    return time.perf_counter() - started


CONTRASTS = pa.schema(
    [
        ("contrast_id", pa.string()),
        ("gse", pa.string()),
        ("group_a", pa.string()),
        ("group_b", pa.string()),
        ("samples_a", pa.list_(pa.string())),
        ("samples_b", pa.list_(pa.string())),
        ("runs_a", pa.list_(pa.string())),
        ("runs_b", pa.list_(pa.string())),
        ("mode", pa.string()),
    ]
)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def side_streamed(
    db: Path, epochs: int, out: Path, neurons: int, batch: int = BATCH, xla: bool = False
) -> dict:
    """degae's train step, end to end."""
    from degae_tools import console
    from degae_tools.models import AutoencoderConfig, Runtime
    from degae_tools.steps.train import train
    from warehouse import Warehouse

    console.mode.quiet = True
    started = time.perf_counter()
    config = AutoencoderConfig(neurons=neurons, layers=1, epochs=epochs, batch_size=batch)
    model_dir = out / f"streamed-model-{neurons}-{batch}-{xla}"
    with Warehouse.open(db, write=True) as wh:
        result = train(wh, config, runtime=Runtime(xla=xla), model_dir=model_dir)
    seconds = [h["seconds"] for h in result.history]
    return {
        "batch_size": batch,
        "xla": xla,
        "epoch_seconds": seconds,
        "n_train": result.metrics["n_train"],
        "n_validation": result.metrics["n_validation"],
        "total_seconds": time.perf_counter() - started,
        "test_mse": result.metrics.get("autoencoder_test_mse"),
        "pca_test_mse": result.metrics.get("pca_test_mse"),
        "baselines_skipped": sorted(result.metrics.get("baselines_skipped", {})),
    }


def side_numpy(
    db: Path, epochs: int, out: Path, neurons: int, batch: int = BATCH, xla: bool = False
) -> dict:
    """The same model and preprocessing, the whole matrix in memory, Keras' own Adam,
    `model.fit(x, x)`."""
    import keras

    from degae_tools.models import AutoencoderConfig, Runtime, build_autoencoder
    from degae_tools.models.training import configure_runtime
    from degae_tools.preprocess import Preprocessor
    from warehouse import Warehouse, export

    started = time.perf_counter()
    config = AutoencoderConfig(neurons=neurons, layers=1, epochs=epochs, batch_size=batch)
    with Warehouse.open(db, write=True) as wh:
        export.ensure_split(wh)
        _, x_train = export.load_matrix(wh, "degae", ("train",))
        _, x_val = export.load_matrix(wh, "degae", ("validation",))
    pre = Preprocessor().fit([x_train])
    x_train, x_val = pre.transform(x_train), pre.transform(x_val)
    configure_runtime(Runtime(xla=xla), config.training.seed)
    autoencoder, _ = build_autoencoder(x_train.shape[1], config)
    optimizer = keras.optimizers.Adam(config.training.learning_rate)
    autoencoder.compile(optimizer=optimizer, loss="mse", jit_compile=xla)
    seconds: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.t)

    autoencoder.fit(
        x_train,
        x_train,
        batch_size=batch,
        epochs=epochs,
        validation_data=(x_val, x_val),
        callbacks=[Clock()],
        verbose=0,
    )
    return {
        "batch_size": batch,
        "epoch_seconds": seconds,
        "n_train": len(x_train),
        "n_validation": len(x_val),
        "total_seconds": time.perf_counter() - started,
    }


def side_matmul(size: int = 4096, repeats: int = 10) -> dict:
    """GFLOP/s of a float32 (size × size) @ (size × size) matmul, best of `repeats`."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    (a @ b).numpy()
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        (a @ b).numpy()
        best = min(best, time.perf_counter() - t)
    return {"size": size, "seconds": best, "gflops": 2 * size**3 / best / 1e9}


SIDES = {"streamed": side_streamed, "numpy": side_numpy}


def run_side(
    name: str,
    db: Path,
    epochs: int,
    out: Path,
    neurons: int = NEURONS,
    batch: int = BATCH,
    xla: bool = False,
) -> dict:
    """Run one side in a fresh Python process; returns its figures plus its peak RSS."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, __file__, "--side", name, "--db", str(db), "--epochs", str(epochs)]
    cmd += ["--out", str(out), "--neurons", str(neurons), "--batch", str(batch)]
    cmd += ["--xla"] if xla else []
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} side failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def throughput(side: dict, n_genes: int, neurons: int, matmul_gflops: float | None = None) -> dict:
    """Samples/s and GFLOP/s over the epochs after the first (and the fraction of matmul's)."""
    steady = side["epoch_seconds"][1:] or side["epoch_seconds"]
    seconds = float(np.median(steady))
    flops = (10 * side["n_train"] + 4 * side["n_validation"]) * n_genes * neurons
    figures = {
        "samples_per_second": side["n_train"] / seconds,
        "epoch_seconds_steady": seconds,
        "gflops": flops / seconds / 1e9,
    }
    if matmul_gflops:
        figures["fraction_of_matmul_gflops"] = figures["gflops"] / matmul_gflops
    return figures


def report(name: str, side: dict) -> None:
    """One progress line per measured side."""
    share = side.get("fraction_of_matmul_gflops")
    print(
        f"{name}: {side['samples_per_second']:.1f} samples/s, {side['gflops']:.0f} GFLOP/s"
        + (f" ({share:.0%} of matmul's {side['matmul_gflops']:.0f})" if share else "")
        + f", peak RSS {side['peak_rss_mb']:.0f} MiB",
        flush=True,
    )


def measure(args: argparse.Namespace, db: Path, out: Path) -> dict:
    """Every side at full width and the data-dominated pair, with the matmul measured first."""
    matmul = run_side("matmul", db, args.epochs, out)
    print(f"matmul: {matmul['gflops']:.0f} GFLOP/s", flush=True)
    sides = {"numpy": run_side("numpy", db, args.epochs, out)}
    for name, batch, xla in STREAMED:
        sides[name] = run_side("streamed", db, args.epochs, out, NEURONS, batch, xla)
    for name, side in sides.items():
        side.update(throughput(side, args.genes, NEURONS, side["matmul_gflops"]))
        report(name, side)
    small = {}
    for name in ("numpy", "streamed"):
        small[name] = run_side(name, db, args.epochs, out, args.small_neurons)
        small[name].update(
            throughput(small[name], args.genes, args.small_neurons, small[name]["matmul_gflops"])
        )
        report(f"{name} ({args.small_neurons} hidden)", small[name])
    return {"matmul": matmul, "sides": sides, "small": small}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contrasts", type=int, default=1200)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--genes", type=int, default=N_GENES)
    parser.add_argument("--side", choices=[*SIDES, "matmul"])
    parser.add_argument("--db", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--neurons", type=int, default=NEURONS)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--xla", action="store_true")
    parser.add_argument(
        "--small-neurons", type=int, default=256, help="second, data-dominated configuration"
    )
    args = parser.parse_args()
    if args.side == "matmul":
        print(json.dumps({**side_matmul(), "peak_rss_mb": peak_rss_mb()}))
        return
    if args.side:
        matmul = side_matmul()["gflops"]  # the machine's capacity now, beside this side's run
        side = SIDES[args.side]
        figures = side(args.db, args.epochs, args.out, args.neurons, args.batch, args.xla)
        print(json.dumps({**figures, "matmul_gflops": matmul, "peak_rss_mb": peak_rss_mb()}))
        return

    with tempfile.TemporaryDirectory(prefix="degae-bench-train-") as tmp:
        out = Path(tmp)
        db = out / "bench.duckdb"
        build_seconds = build_warehouse(db, args.contrasts, args.genes)
        print(f"warehouse: {args.contrasts} × {args.genes} in {build_seconds:.0f} s", flush=True)
        measured = measure(args, db, out)
    sides, small, matmul = measured["sides"], measured["small"], measured["matmul"]
    streamed, numpy_side = sides["streamed"], sides["numpy"]
    result = {
        "what": "dense AE, 1 hidden layer, full width: streamed trainer vs model.fit(numpy), "
        "as a fraction of a 4096² float32 matmul's GFLOP/s in the same run",
        "contrasts": args.contrasts,
        "genes": args.genes,
        "neurons": NEURONS,
        "batch_size": BATCH,
        "epochs": args.epochs,
        "warehouse_build_seconds": build_seconds,
        **sides,
        "speed_ratio_streamed_over_numpy": streamed["samples_per_second"]
        / numpy_side["samples_per_second"],
        "peak_rss_ratio_streamed_over_numpy": streamed["peak_rss_mb"] / numpy_side["peak_rss_mb"],
        "matmul": matmul,
        "data_dominated": {
            "neurons": args.small_neurons,
            "why": "model + Adam state small beside the data: where streaming saves memory",
            "streamed": small["streamed"],
            "numpy": small["numpy"],
            "speed_ratio_streamed_over_numpy": small["streamed"]["samples_per_second"]
            / small["numpy"]["samples_per_second"],
            "peak_rss_ratio_streamed_over_numpy": small["streamed"]["peak_rss_mb"]
            / small["numpy"]["peak_rss_mb"],
        },
        "fraction_of_matmul_gflops": streamed["fraction_of_matmul_gflops"],
        "fraction_of_matmul_gflops_by_config": {
            name: side["fraction_of_matmul_gflops"] for name, side in sides.items()
        },
        "gpu": "none lent to this run: CPU only",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": os.getloadavg(),
        },
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{NEURONS} hidden: speed ratio streamed/numpy "
        f"{result['speed_ratio_streamed_over_numpy']:.2f}, "
        f"peak RSS ratio {result['peak_rss_ratio_streamed_over_numpy']:.2f}; of matmul GFLOP/s: "
        + ", ".join(
            f"{name} {share:.0%}"
            for name, share in result["fraction_of_matmul_gflops_by_config"].items()
        )
    )


if __name__ == "__main__":
    main()
