"""Fault injection: kill -9 each stage at a random moment, rerun, compare with a clean run.

    python bench/faults.py --cycles 20 [--with-train]

A clean run (simulate → ingest → limma → GO [→ train]) gives the reference warehouse. Each
cycle starts from an empty warehouse, kills one stage (round robin) with SIGKILL after a random
delay within that stage's clean duration, then reruns every stage to completion. The final
warehouse must match the clean one: the row count and an order-independent checksum of every
table (`warehouse.fingerprint`). Writes bench/results/faults.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STAGES = {
    "ingest": "from pathlib import Path; from flows.ingest import ingest; "
    "ingest(Path({src!r}), Path({db!r}))",
    "differential": "from tests.helpers import run_de as differential; "
    "differential({db!r}, chunk_size=2)",
    "enrichment": "from tests.helpers import run_go as enrichment; "
    "enrichment({db!r}, chunk_size=4)",
    "train": "from pathlib import Path; from degae_tools.models import AutoencoderConfig; "
    "from degae_tools.train import train; "
    "train(Path({db!r}), AutoencoderConfig(neurons=32, layers=2, epochs=6, batch_size=16), "
    "model_dir=Path({db!r}).parent / 'model', resume=True)",
}


def start(stage: str, src: Path, db: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = STAGES[stage].format(src=str(src), db=str(db))
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def run(stage: str, src: Path, db: Path) -> float:
    started = time.monotonic()
    proc = start(stage, src, db)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{stage} failed:\n{err.decode()[-2000:]}")
    return time.monotonic() - started


def fingerprint(db: Path) -> dict[str, tuple[int, int]]:
    import warehouse
    from warehouse.fingerprint import fingerprint as of

    con = warehouse.connect(db)
    try:
        return of(con)
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--with-train", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "faults.json")
    args = parser.parse_args()
    stages = ["ingest", "differential", "enrichment"] + (["train"] if args.with_train else [])
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="degae-faults-"))
    src = work / "compendium"
    from degae_tools.sources.simulate import SimulationConfig, simulate

    simulate(src, SimulationConfig(datasets=16, genes=800, go_terms=100, seed=3))
    clean_db = work / "clean" / "degae.duckdb"
    clean_db.parent.mkdir()
    durations = {s: run(s, src, clean_db) for s in stages}
    reference = fingerprint(clean_db)
    cycles = []
    for cycle in range(args.cycles):
        victim = stages[cycle % len(stages)]
        db = work / f"cycle{cycle}" / "degae.duckdb"
        db.parent.mkdir()
        for stage in stages[: stages.index(victim)]:
            run(stage, src, db)
        delay = rng.uniform(0.05, durations[victim])
        proc = start(victim, src, db)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for stage in stages[stages.index(victim) :]:
            run(stage, src, db)
        final = fingerprint(db)
        differing = sorted(t for t in reference if reference[t] != final.get(t))
        cycles.append(
            {
                "cycle": cycle,
                "stage": victim,
                "kill_after_s": round(delay, 2),
                "killed": killed,
                "matched": not differing,
                "differing_tables": differing,
            }
        )
        print(cycles[-1], flush=True)
    matched = sum(c["matched"] for c in cycles)
    result = {
        "benchmark": "kill -9 at random points, rerun, compare with an uninterrupted run",
        "cycles_run": len(cycles),
        "cycles_killed_mid_stage": sum(c["killed"] for c in cycles),
        "cycles_matching_clean_run": matched,
        "stages": stages,
        "clean_stage_seconds": {k: round(v, 2) for k, v in durations.items()},
        "tables_compared": len(reference),
        "cycles": cycles,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{matched}/{len(cycles)} cycles matched the clean run")
    if matched != len(cycles):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
