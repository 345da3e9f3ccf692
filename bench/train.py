"""Benchmark: degae's streamed training at full width against a plain `model.fit(numpy_array)`.

A temporary warehouse holds synthetic low-rank log2FC for N contrasts × 48,978 genes. The same
autoencoder (2,000 hidden units, 1 layer, the study's best) is trained for the same epochs
  * streamed: `degae_tools.train.train` end to end (DuckDB → Arrow spill → tf.data → Keras, then
    PCA, embeddings and the ml rows), and
  * in memory: the matrix loaded as NumPy, the same preprocessing, `model.fit(x, x)`,
each in its own subprocess so that peak RSS (`ru_maxrss`) is that side's alone. Throughput is
training samples per second of the epochs after the first (which traces the graph); GFLOP/s
counts 10·n·h per training sample (forward 2 matmuls of 2·n·h, backward 3 of 2·n·h) and
4·n·h per validation sample, compared with a large float32 matmul on the same machine.

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


def build_warehouse(path: Path, n_contrasts: int, n_genes: int, seed: int = 0) -> float:
    """Synthetic DE results (rank 20 plus noise, 2% of genes missing) in a fresh warehouse."""
    import warehouse

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(20, n_genes)).astype(np.float32) * 0.5
    con = warehouse.connect(path, write=True)
    warehouse.migrate(con)
    genes = pa.table(
        {
            "gene_index": np.arange(n_genes, dtype=np.int32),
            "gene_id": [f"ENSMUSG{g:011d}" for g in range(n_genes)],
        }
    )
    con.register("genes_in", genes)
    con.execute("INSERT INTO core.genes (gene_index, gene_id) SELECT * FROM genes_in")
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
        meta = pa.table({"contrast_id": ids, "gse": [i.split(":")[0] for i in ids]})
        con.register("de_in", de)
        con.register("meta_in", meta)
        con.execute(
            "INSERT INTO core.contrasts SELECT contrast_id, gse, NULL, 'a', 'b', [], [], [], [], "
            "'degae' FROM meta_in"
        )
        con.execute(
            "INSERT INTO core.de_runs (contrast_id, status, source) "
            "SELECT contrast_id, 'done', 'degae' FROM meta_in"
        )
        con.execute(
            "INSERT INTO core.de_results (contrast_id, gene_index, log_fc) "
            "SELECT contrast_id, gene_index, log_fc FROM de_in"
        )
        con.unregister("de_in")
    con.close()
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def side_streamed(db: Path, epochs: int, out: Path, neurons: int) -> dict:
    """degae's trainer, end to end."""
    from degae_tools import console
    from degae_tools.models import AutoencoderConfig
    from degae_tools.train import train

    console.mode.quiet = True
    started = time.perf_counter()
    config = AutoencoderConfig(neurons=neurons, layers=1, epochs=epochs, batch_size=BATCH)
    result = train(db, config, model_dir=out / f"streamed-model-{neurons}")
    seconds = [h["seconds"] for h in result.history]
    return {
        "epoch_seconds": seconds,
        "n_train": result.metrics["n_train"],
        "n_validation": result.metrics["n_validation"],
        "total_seconds": time.perf_counter() - started,
        "test_mse": result.metrics.get("autoencoder_test_mse"),
        "pca_test_mse": result.metrics.get("pca_test_mse"),
    }


def side_numpy(db: Path, epochs: int, out: Path, neurons: int) -> dict:
    """The same model and preprocessing, the whole matrix in memory, `model.fit(x, x)`."""
    import keras

    import warehouse
    from degae_tools.models import AutoencoderConfig, build_autoencoder
    from degae_tools.preprocess import Preprocessor
    from degae_tools.train import configure_runtime
    from warehouse import export

    started = time.perf_counter()
    config = AutoencoderConfig(neurons=neurons, layers=1, epochs=epochs, batch_size=BATCH)
    con = warehouse.connect(db, write=True)
    export.ensure_split(con)
    _, x_train = export.load_matrix(con, "degae", ("train",))
    _, x_val = export.load_matrix(con, "degae", ("validation",))
    con.close()
    pre = Preprocessor().fit([x_train])
    x_train, x_val = pre.transform(x_train), pre.transform(x_val)
    configure_runtime(config)
    autoencoder, _ = build_autoencoder(x_train.shape[1], config)
    autoencoder.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    seconds: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.t)

    autoencoder.fit(
        x_train,
        x_train,
        batch_size=BATCH,
        epochs=epochs,
        validation_data=(x_val, x_val),
        callbacks=[Clock()],
        verbose=0,
    )
    return {
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


def run_side(name: str, db: Path, epochs: int, out: Path, neurons: int = NEURONS) -> dict:
    """Run one side in a fresh Python process; returns its figures plus its peak RSS."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        __file__,
        "--side",
        name,
        "--db",
        str(db),
        "--epochs",
        str(epochs),
        "--out",
        str(out),
        "--neurons",
        str(neurons),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} side failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def throughput(side: dict, n_genes: int, neurons: int) -> dict:
    """Samples/s and GFLOP/s over the epochs after the first."""
    steady = side["epoch_seconds"][1:] or side["epoch_seconds"]
    seconds = float(np.median(steady))
    flops = (10 * side["n_train"] + 4 * side["n_validation"]) * n_genes * neurons
    return {
        "samples_per_second": side["n_train"] / seconds,
        "epoch_seconds_steady": seconds,
        "gflops": flops / seconds / 1e9,
    }


def report(name: str, side: dict) -> None:
    """One progress line per measured side."""
    print(
        f"{name}: {side['samples_per_second']:.1f} samples/s, {side['gflops']:.0f} GFLOP/s, "
        f"peak RSS {side['peak_rss_mb']:.0f} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contrasts", type=int, default=1200)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--genes", type=int, default=N_GENES)
    parser.add_argument("--side", choices=[*SIDES, "matmul"])
    parser.add_argument("--db", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--neurons", type=int, default=NEURONS)
    parser.add_argument(
        "--small-neurons", type=int, default=256, help="second, data-dominated configuration"
    )
    args = parser.parse_args()
    if args.side == "matmul":
        print(json.dumps({**side_matmul(), "peak_rss_mb": peak_rss_mb()}))
        return
    if args.side:
        figures = SIDES[args.side](args.db, args.epochs, args.out, args.neurons)
        print(json.dumps({**figures, "peak_rss_mb": peak_rss_mb()}))
        return

    with tempfile.TemporaryDirectory(prefix="degae-bench-train-") as tmp:
        out = Path(tmp)
        db = out / "bench.duckdb"
        build_seconds = build_warehouse(db, args.contrasts, args.genes)
        print(f"warehouse: {args.contrasts} × {args.genes} in {build_seconds:.0f} s", flush=True)
        matmul = run_side("matmul", db, args.epochs, out)
        print(f"matmul: {matmul['gflops']:.0f} GFLOP/s", flush=True)
        sides = {}
        for name in ("numpy", "streamed"):
            sides[name] = run_side(name, db, args.epochs, out)
            sides[name].update(throughput(sides[name], args.genes, NEURONS))
            report(name, sides[name])
        small = {}
        for name in ("numpy", "streamed"):
            small[name] = run_side(name, db, args.epochs, out, args.small_neurons)
            small[name].update(throughput(small[name], args.genes, args.small_neurons))
            report(f"{name} ({args.small_neurons} hidden)", small[name])
    streamed, numpy_side = sides["streamed"], sides["numpy"]
    result = {
        "what": "dense AE, 1 hidden layer, full width: streamed trainer vs model.fit(numpy)",
        "contrasts": args.contrasts,
        "genes": args.genes,
        "neurons": NEURONS,
        "batch_size": BATCH,
        "epochs": args.epochs,
        "warehouse_build_seconds": build_seconds,
        "streamed": streamed,
        "numpy": numpy_side,
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
        "fraction_of_matmul_gflops": streamed["gflops"] / matmul["gflops"],
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
        f"peak RSS ratio {result['peak_rss_ratio_streamed_over_numpy']:.2f}, "
        f"{result['fraction_of_matmul_gflops']:.0%} of matmul GFLOP/s"
    )


if __name__ == "__main__":
    main()
