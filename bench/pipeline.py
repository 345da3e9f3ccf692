"""Compendium-scale simulate → ingest → limma → GO: wall, CPU, peak RSS and disk per stage.

    python bench/pipeline.py --datasets 7130 --genes 48978 --go-terms 11130 --work /tmp/degae-bench

Each stage is the command a user runs (`degae-tools simulate / ingest / de / enrich`, Prefect
flows with their default task runner), in its own process: wall seconds, CPU seconds and peak
RSS from wait4, and the disk the work folder holds after it. The totals (ingest + DE + GO, the
study's pipeline; the simulated source is input, not output) are set against the targets: 12
minutes and 12 GB. bench/storage.py then measures the DE results on disk and one contrast's
query time on the warehouse made. Writes bench/results/pipeline.json (or --out), keyed by size.
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
TARGET_SECONDS = 12 * 60
TARGET_BYTES = 12 * 10**9


def commands(src: Path, db: Path, datasets: int, genes: int, go_terms: int) -> dict[str, list]:
    """The stages: the CLI command lines, in order."""
    cli = [sys.executable, "-m", "degae_tools.cli", "--quiet", "--json"]
    size = ["--datasets", str(datasets), "--genes", str(genes), "--go-terms", str(go_terms)]
    return {
        "simulate": [*cli, "simulate", str(src), *size, "--seed", "1"],
        "ingest": [*cli, "ingest", str(src), "--db", str(db)],
        "differential": [*cli, "de", "--db", str(db)],
        "enrichment": [*cli, "enrich", "--db", str(db)],
    }


def run_stage(name: str, command: list[str], log: Path) -> dict:
    """Run one stage in its own process; wall and CPU seconds and peak RSS (MiB) of it."""
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {name} failed: see {log}")
    return {
        "seconds": round(time.monotonic() - started, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def disk(src: Path, db: Path) -> dict[str, int]:
    """Bytes of the simulated source, the warehouse file and its counts folder."""
    return {
        "source": du(src),
        "warehouse_file": db.stat().st_size if db.exists() else 0,
        "counts_parquet": du(db.parent / f"{db.stem}_counts"),
    }


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def table_counts(db: Path) -> dict[str, int]:
    sys.path.insert(0, str(REPO))
    from warehouse import Warehouse

    wh = Warehouse.open(db)
    counts = dict(wh.rows("SELECT * FROM core.summary"))
    counts["count_rows"] = int(wh.scalar("SELECT sum(n_runs * n_genes) FROM raw.count_files") or 0)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--genes", type=int, default=48978)
    parser.add_argument("--go-terms", type=int, default=11130)
    parser.add_argument("--work", type=Path, default=Path("/tmp/degae-bench"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pipeline.json")
    parser.add_argument("--keep", action="store_true", help="Keep the compendium and warehouse.")
    parser.add_argument("--no-storage", action="store_true", help="Skip bench/storage.py.")
    parser.add_argument(
        "--source",
        type=Path,
        help="A compendium simulate wrote earlier at this size (outside --work): simulate is "
        "skipped; it is the pipeline's input, not part of its totals.",
    )
    args = parser.parse_args()
    work = args.work / f"{args.datasets}x{args.genes}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    src, db = args.source or work / "compendium", work / "degae.duckdb"
    stages = {}
    for name, command in commands(src, db, args.datasets, args.genes, args.go_terms).items():
        if name == "simulate" and args.source:
            continue
        stages[name] = run_stage(name, command, work / f"{name}.log")
        stages[name]["disk_after_bytes"] = disk(src, db)
        print(name, json.dumps(stages[name]), flush=True)
    counts = table_counts(db)
    stages["ingest"]["count_rows_per_s"] = round(counts["count_rows"] / stages["ingest"]["seconds"])
    stages["differential"]["contrasts_per_s"] = round(
        counts["core.included_contrasts"] / stages["differential"]["seconds"], 2
    )
    pipeline = ("ingest", "differential", "enrichment")
    final = stages["enrichment"]["disk_after_bytes"]
    totals = {
        "seconds": round(sum(stages[s]["seconds"] for s in pipeline), 1),
        "cpu_seconds": round(sum(stages[s]["cpu_seconds"] for s in pipeline), 1),
        "peak_rss_mib": max(stages[s]["peak_rss_mib"] for s in pipeline),
        "disk_bytes": final["warehouse_file"] + final["counts_parquet"],
        "target_seconds": TARGET_SECONDS,
        "target_disk_bytes": TARGET_BYTES,
    }
    totals["within_time"] = totals["seconds"] <= TARGET_SECONDS
    totals["within_disk"] = totals["disk_bytes"] <= TARGET_BYTES
    result = {
        "benchmark": "simulate → ingest → de → enrich, the CLI commands, one process per stage",
        "config": {"datasets": args.datasets, "genes": args.genes, "go_terms": args.go_terms},
        "source_reused": str(args.source) if args.source else None,
        "stages": stages,
        "totals_ingest_de_go": totals,
        "tables": counts,
        "machine": {"cpus": os.cpu_count(), "load_average_after": os.getloadavg()},
    }
    key = f"{args.datasets}x{args.genes}x{args.go_terms}"
    save(args.out, key, result)
    print(json.dumps(result, indent=2), flush=True)
    if not args.no_storage:
        storage = [sys.executable, str(REPO / "bench" / "storage.py"), "--db", str(db)]
        subprocess.run(storage, cwd=REPO, check=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def save(out: Path, key: str, result: dict) -> None:
    previous = json.loads(out.read_text()) if out.exists() else {}
    runs = previous.get("runs", {})
    runs[key] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
