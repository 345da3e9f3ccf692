"""Count-file ingest: degae's counts/s beside DuckDB's own read_csv of the same .tsv.gz files.

    python bench/ingest.py --datasets 40 --genes 48978 --repeats 3 --big-runs 1000

On a simulated compendium (`degae_tools.sources.simulate`), each measurement runs in a fresh
process (peak RSS from wait4), the peers and degae interleaved, `--repeats` times; the median
is reported:
- `duckdb_read_csv`: `SELECT * FROM read_csv(file)` into Arrow, DuckDB sniffing the file, as a
  user types it;
- `duckdb_read_csv_typed`: the same with the column types given (what degae's query does);
- `degae`: `steps.ingest.load_kind` on the count files of a warehouse that already holds the
  genes (parse, map genes, check every count, write Parquet, record the file), in one process.
Wall-clock rates are the acceptance figure; CPU-second rates of the timed part are given beside
them because a shared machine's load moves wall time more than work. Then one wide file of
`--big-runs` runs × all genes, and its first half, are ingested alone: the same peak memory for
both shows it follows a chunk, not the file. Writes bench/results/ingest.json (or --out) with the
sizes of the gzipped sources and of the Parquet files ingest wrote.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

DUCKDB_READ = """
import duckdb, glob, gzip, json, time
files = sorted(glob.glob({pattern!r}))
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
TYPED = "SELECT * FROM read_csv($p, delim='\\t', header=true, columns=$c, auto_detect=false)"

def read(path):
    if not {typed!r}:
        return con.sql("SELECT * FROM read_csv($p)", params={{"p": path}}).to_arrow_table()
    names = gzip.open(path, "rt").readline().rstrip("\\n").split("\\t")
    types = {{n: "VARCHAR" if i == 0 else "DOUBLE" for i, n in enumerate(names)}}
    return con.sql(TYPED, params={{"p": path, "c": types}}).to_arrow_table()

start, cpu = time.perf_counter(), time.process_time()
counts = 0
for path in files:
    table = read(path)
    counts += table.num_rows * (table.num_columns - 1)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({{"seconds": seconds, "cpu_seconds_timed": cpu, "counts": counts}}))
"""
DEGAE_LOAD = """
import json, shutil, time
from pathlib import Path
from degae_tools.steps import ingest
from warehouse import Warehouse
db = Path({db!r})
for p in [db, Path(str(db) + ".wal")]:
    p.unlink(missing_ok=True)
shutil.rmtree(db.parent / (db.stem + "_counts"), ignore_errors=True)
with Warehouse.open(db, write=True, create=True) as wh:
    assert ingest.load_file(wh, Path({gene_info!r}), "gene_info").status == "loaded"
    paths = tuple(sorted(Path({folder!r}).glob({glob!r})))
    start, cpu = time.perf_counter(), time.process_time()
    reports = ingest.load_kind(ingest.KindBatch("counts", paths), wh)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert all(r.status == "loaded" for r in reports), [r.message for r in reports]
    counts = sum(r.n_rows for r in reports)
    parquet = sum(p.stat().st_size for p in wh.counts_dir.rglob("*.parquet"))
print(json.dumps({{"seconds": seconds, "cpu_seconds_timed": cpu, "counts": counts,
                  "parquet_bytes": parquet}}))
"""


def measure(code: str) -> dict:
    """Run `code` in a fresh interpreter: its JSON line, plus peak RSS (MiB) and CPU seconds."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"a measurement failed:\n{code}")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
    return result


def simulate(folder: Path, datasets: int, genes: int) -> None:
    if (folder / "GeneInfo.tsv").exists():
        return
    from degae_tools.sources.simulate import SimulationConfig
    from degae_tools.sources.simulate import simulate as run

    run(folder, SimulationConfig(datasets=datasets, genes=genes, go_terms=40, seed=1))


def big_file(folder: Path, source: Path, runs: int) -> Path:
    """One wide count file of `runs` runs over the compendium's genes (negative binomial)."""
    path = folder / "GSE9999999_GeneCountMatrix.tsv.gz"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    genes = [line.split("\t", 1)[0] for line in (source / "GeneInfo.tsv").read_text().split("\n")]
    genes = [g for g in genes[1:] if g]
    rng = np.random.default_rng(1)
    with gzip.open(path, "wt", compresslevel=1) as out:
        out.write("\t".join(["GeneID", *(f"SRR{9_000_000 + j}" for j in range(runs))]) + "\n")
        for start in range(0, len(genes), 2000):
            block = rng.negative_binomial(2, 0.02, size=(min(2000, len(genes) - start), runs))
            rows = [
                gene + "\t" + "\t".join(map(str, row))
                for gene, row in zip(genes[start:], block.tolist(), strict=False)
            ]
            out.write("\n".join(rows) + "\n")
    return path


def first_half(path: Path, folder: Path) -> Path:
    """The header and the first half of the gene rows of a gzipped count file, in `folder`."""
    half = folder / path.name
    if not half.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "rt") as source:
            lines = source.read().splitlines(keepends=True)
        with gzip.open(half, "wt", compresslevel=1) as out:
            out.writelines(lines[: 1 + (len(lines) - 1) // 2])
    return half


def ingest_one(path: Path, work: Path, gene_info: str) -> dict:
    """degae's ingest of one count file in a fresh process, with its sizes."""
    run = measure(
        DEGAE_LOAD.format(
            db=str(work / "big.duckdb"),
            gene_info=gene_info,
            folder=str(path.parent),
            glob=path.name,
        )
    )
    with gzip.open(path, "rb") as stream:
        text = sum(len(block) for block in iter(lambda: stream.read(1 << 20), b""))
    return {
        "gzip_mib": round(path.stat().st_size / 2**20, 1),
        "text_mib": round(text / 2**20, 1),
        "counts": run["counts"],
        "seconds": round(run["seconds"], 2),
        "peak_rss_mib": run["peak_rss_mib"],
        "parquet_mib": round(run["parquet_bytes"] / 2**20, 1),
    }


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", type=int, default=40)
    parser.add_argument("--genes", type=int, default=48978)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big-runs", type=int, default=1000, help="Runs of the one big file.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/degae-bench-ingest"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ingest.json")
    args = parser.parse_args()
    source = args.work / f"compendium_{args.datasets}x{args.genes}"
    simulate(source, args.datasets, args.genes)
    counts_glob = str(source / "counts" / "*_GeneCountMatrix.tsv.gz")
    gene_info, db = str(source / "GeneInfo.tsv"), str(args.work / "bench.duckdb")
    codes = {
        "duckdb_read_csv": DUCKDB_READ.format(pattern=counts_glob, typed=False),
        "duckdb_read_csv_typed": DUCKDB_READ.format(pattern=counts_glob, typed=True),
        "degae": DEGAE_LOAD.format(
            db=db,
            gene_info=gene_info,
            folder=str(source / "counts"),
            glob="*_GeneCountMatrix.tsv.gz",
        ),
    }
    runs: dict[str, list[dict]] = {name: [] for name in codes}
    for repeat in range(args.repeats):
        for name, code in codes.items():
            runs[name].append(measure(code))
            print(repeat, name, runs[name][-1], flush=True)
    rates = {
        name: round(median_of(r, "counts") / median_of(r, "seconds")) for name, r in runs.items()
    }
    cpu_rates = {
        name: round(median_of(r, "counts") / median_of(r, "cpu_seconds_timed"))
        for name, r in runs.items()
    }
    files = sorted(Path(source / "counts").glob("*_GeneCountMatrix.tsv.gz"))
    gz_bytes = sum(p.stat().st_size for p in files)
    big = big_file(args.work / f"big_{args.big_runs}", source, args.big_runs)
    half = first_half(big, args.work / f"big_{args.big_runs}_half")
    one_big = {
        "runs": args.big_runs,
        "file": ingest_one(big, args.work, gene_info),
        "its_first_half": ingest_one(half, args.work, gene_info),
    }
    result = {
        "benchmark": "count files → warehouse: degae's ingest beside DuckDB's read_csv, same run",
        "config": {"datasets": args.datasets, "genes": args.genes, "repeats": args.repeats},
        "files": len(files),
        "counts": runs["degae"][0]["counts"],
        "counts_per_s": rates,
        "ratio_to_duckdb_read_csv": round(rates["degae"] / rates["duckdb_read_csv"], 2),
        "ratio_to_duckdb_read_csv_typed": round(rates["degae"] / rates["duckdb_read_csv_typed"], 2),
        "acceptance_ratio_at_least": 0.5,
        "paired_ratios_to_duckdb_read_csv_typed": [
            round(peer["seconds"] / ours["seconds"], 2)
            for peer, ours in zip(runs["duckdb_read_csv_typed"], runs["degae"], strict=True)
        ],
        "counts_per_cpu_s": cpu_rates,
        "cpu_ratio_to_duckdb_read_csv_typed": round(
            cpu_rates["degae"] / cpu_rates["duckdb_read_csv_typed"], 2
        ),
        "peak_rss_mib": {name: median_of(r, "peak_rss_mib") for name, r in runs.items()},
        "sizes": {
            "gzipped_sources_bytes": gz_bytes,
            "parquet_bytes": runs["degae"][0]["parquet_bytes"],
            "parquet_to_gzip": round(runs["degae"][0]["parquet_bytes"] / gz_bytes, 3),
            "parquet_layout": "gene_index + one int32 column per run, BYTE_STREAM_SPLIT, zstd",
        },
        "one_big_file": one_big,
        "runs": runs,
        "machine": {"cpus": os.cpu_count(), "load_average_after": os.getloadavg()},
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
