"""Benchmark: TensorFlow's oneDNN ops (its default on x86) against its own kernels, for training.

TensorFlow's op determinism covers its own CPU kernels; oneDNN's ops thread themselves and leave
oneDNN's `deterministic` attribute off. The tests therefore run with `TF_ENABLE_ONEDNN_OPTS=0`,
and users who need bit-for-bit reruns and resumes can do the same. This measures what that costs,
each setting in its own process (the variable is read when TensorFlow is imported):

  * speed: the train step (`degae_tools.steps.train`) end to end at full width (48,978 genes,
    2,000 hidden units), training samples per second of the epochs after the first;
  * reproducibility: on a small warehouse, one run, a second identical run, and a run cut after 3
    epochs then resumed to 15, compared bit for bit (weights and the per-epoch history).

Run: ``python bench/kernels.py [--contrasts 1200] [--epochs 3]`` from the repository root; writes
``bench/results/kernels.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.train import BATCH, N_GENES, NEURONS, build_warehouse, throughput  # noqa: E402

RESULT = Path(__file__).parent / "results" / "kernels.json"
SETTINGS = {"onednn": "1", "tensorflow": "0"}


def side_speed(db: Path, epochs: int, out: Path) -> dict:
    """degae's trainer at full width; epoch seconds and split sizes."""
    from degae_tools import console
    from degae_tools.models import AutoencoderConfig
    from degae_tools.steps.train import train
    from warehouse import Warehouse

    console.mode.quiet = True
    config = AutoencoderConfig(neurons=NEURONS, layers=1, epochs=epochs, batch_size=BATCH)
    with Warehouse.open(db, write=True) as wh:
        result = train(wh, config, model_dir=out / "model")
    return {
        "epoch_seconds": [h["seconds"] for h in result.history],
        "n_train": result.metrics["n_train"],
        "n_validation": result.metrics["n_validation"],
    }


def side_reproducible(out: Path) -> dict:
    """A run, the same run again, and the run cut at epoch 3 and resumed: equal bit for bit?"""
    from degae_tools import console
    from degae_tools.models import AutoencoderConfig
    from degae_tools.models.bundle import load_bundle
    from degae_tools.steps import train as step
    from tests.warehouse_fixtures import tiny_warehouse
    from warehouse import Warehouse

    console.mode.quiet = True
    db = tiny_warehouse(out / "tiny.duckdb", n_contrasts=60, n_genes=200)

    def train(db, config, **options):
        with Warehouse.open(db, write=True) as wh:
            return step.train(wh, config, **options)

    quick = {"neurons": 8, "layers": 1, "batch_size": 8, "learning_rate": 1e-2}
    config = AutoencoderConfig(kind="denoising", epochs=15, **quick)
    first = train(db, config, model_dir=out / "first")
    again = train(db, config, model_dir=out / "again")
    cut = AutoencoderConfig(kind="denoising", epochs=3, **quick)
    train(db, cut, model_dir=out / "resumed", keep_checkpoint=True)
    resumed = train(db, config, model_dir=out / "resumed", resume=True)

    def same(a, b) -> bool:
        history = [
            [(h["loss"], h["val_loss"], h["learning_rate"]) for h in r.history] for r in (a, b)
        ]
        weights = zip(
            load_bundle(a.model_dir).autoencoder.weights,
            load_bundle(b.model_dir).autoencoder.weights,
            strict=True,
        )
        return history[0] == history[1] and all(
            np.array_equal(x.numpy(), y.numpy()) for x, y in weights
        )

    return {"rerun_identical": same(first, again), "resume_identical": same(first, resumed)}


def run_side(setting: str, args: list[str]) -> dict:
    """One side in a fresh process with TF_ENABLE_ONEDNN_OPTS set for `setting`."""
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(ROOT),
        "TF_ENABLE_ONEDNN_OPTS": SETTINGS[setting],
    }
    done = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{setting} {args[:2]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contrasts", type=int, default=1200)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--genes", type=int, default=N_GENES)
    parser.add_argument("--side", choices=["speed", "reproducible"])
    parser.add_argument("--db", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.side == "speed":
        print(json.dumps(side_speed(args.db, args.epochs, args.out)))
        return
    if args.side == "reproducible":
        print(json.dumps(side_reproducible(args.out)))
        return

    sides: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="degae-bench-kernels-") as tmp:
        out = Path(tmp)
        db = out / "bench.duckdb"
        build_warehouse(db, args.contrasts, args.genes)
        for setting in SETTINGS:
            folder = out / setting
            folder.mkdir()
            repro = run_side(setting, ["--side", "reproducible", "--out", str(folder)])
            speed = run_side(
                setting,
                ["--side", "speed", "--db", str(db), "--epochs", str(args.epochs)]
                + ["--out", str(folder)],
            )
            shutil.rmtree(folder / "model", ignore_errors=True)
            sides[setting] = {**repro, **speed, **throughput(speed, args.genes, NEURONS)}
            print(
                f"{setting}: {sides[setting]['samples_per_second']:.1f} samples/s; "
                f"rerun identical {repro['rerun_identical']}, "
                f"resume identical {repro['resume_identical']}",
                flush=True,
            )
    ratio = sides["tensorflow"]["samples_per_second"] / sides["onednn"]["samples_per_second"]
    result = {
        "what": "training with TF_ENABLE_ONEDNN_OPTS=1 (oneDNN ops) vs 0 (TensorFlow's kernels)",
        "contrasts": args.contrasts,
        "genes": args.genes,
        "neurons": NEURONS,
        "batch_size": BATCH,
        "epochs": args.epochs,
        **sides,
        "speed_ratio_tensorflow_over_onednn": ratio,
        "machine": {
            "platform": platform.platform(),
            "processor": _cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"speed ratio TensorFlow's kernels / oneDNN ops: {ratio:.2f}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
