"""Compendium-scale ingest, limma and GO: wall time, rows/s and peak RSS per stage.

    python bench/pipeline.py --datasets 1000 --genes 48978 --go-terms 11130 --work /tmp/degae-bench

Each stage runs in its own process (peak RSS measured with wait4), on a simulated compendium
of the study's gene and term counts. Run it at two sizes to see that peak memory does not grow
with the number of datasets (counts are streamed per series). Writes bench/results/pipeline.json
(or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STAGES = {
    "simulate": (
        "from degae_tools.sources.simulate import SimulationConfig, simulate; "
        "simulate({src!r}, SimulationConfig(datasets={datasets}, genes={genes}, "
        "go_terms={go_terms}, seed=1))"
    ),
    "ingest": "from pathlib import Path; from degae_tools.steps.ingest import ingest; "
    "print(ingest(Path({src!r}), Path({db!r})).rows)",
    "differential": "from tests.helpers import run_de as differential; "
    "print(differential({db!r}))",
    "enrichment": "from tests.helpers import run_go as enrichment; "
    "print(enrichment({db!r}))",
}


def run_stage(name: str, code: str) -> dict:
    """Run one stage in a fresh interpreter; wall seconds and peak RSS (MiB) of that process."""
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {name} failed")
    return {
        "seconds": round(time.monotonic() - started, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
    }


def table_counts(db: Path) -> dict[str, int]:
    sys.path.insert(0, str(REPO))
    import warehouse

    con = warehouse.connect(db)
    counts = dict(con.sql("SELECT * FROM core.summary").fetchall())
    con.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--genes", type=int, default=48978)
    parser.add_argument("--go-terms", type=int, default=11130)
    parser.add_argument("--work", type=Path, default=Path("/tmp/degae-bench"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pipeline.json")
    parser.add_argument("--keep", action="store_true", help="Keep the compendium and warehouse.")
    args = parser.parse_args()
    work = args.work / f"{args.datasets}x{args.genes}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    src, db = work / "compendium", work / "degae.duckdb"
    fields = {
        "src": str(src),
        "db": str(db),
        "datasets": args.datasets,
        "genes": args.genes,
        "go_terms": args.go_terms,
    }
    stages = {}
    for name, template in STAGES.items():
        stages[name] = run_stage(name, template.format(**fields))
        print(name, stages[name], flush=True)
    counts = table_counts(db)
    stages["ingest"]["count_rows_per_s"] = round(_count_rows(db) / stages["ingest"]["seconds"])
    stages["differential"]["contrasts_per_s"] = round(
        counts["core.included_contrasts"] / stages["differential"]["seconds"], 2
    )
    result = {
        "benchmark": "simulate → ingest → limma → GO at compendium scale (one process per stage)",
        "config": {k: v for k, v in fields.items() if k not in ("src", "db")},
        "stages": stages,
        "tables": counts,
        "disk_mib": {
            "compendium": round(_du(src) / 2**20, 1),
            "warehouse_file": round(db.stat().st_size / 2**20, 1),
            "counts_parquet": round(_du(db.parent / f"{db.stem}_counts") / 2**20, 1),
        },
        "machine": {"cpus": os.cpu_count(), "load_average_after": os.getloadavg()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = previous.get("runs", {})
    runs[f"{args.datasets}x{args.genes}x{args.go_terms}"] = result
    args.out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def _count_rows(db: Path) -> int:
    import warehouse

    con = warehouse.connect(db)
    n = con.sql("SELECT sum(n_runs * n_genes) FROM raw.count_files").fetchall()[0][0]
    con.close()
    return int(n)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


if __name__ == "__main__":
    main()
