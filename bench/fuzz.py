"""Malformed input for every reader, at bench size: 1,000 hypothesis examples per reader and
strategy (CI runs 50). Only the named InputFileError subclasses may escape a reader.
Then whole commands on damaged inputs and warehouses (a tab inside a GeneInfo gene ID, an OBO
whose is_a edges loop; a warehouse with a damaged header, truncated, with a damaged index block,
or copied without its counts folder): each must end with exit status 0 or 2 and without a
traceback (an uncaught exception), and a command that fails on a damaged warehouse should leave
the file as it was (counted).

    python bench/fuzz.py [--examples 1000]

Writes bench/results/fuzz.json: examples, tests run and passed, the command cases, how many
ended in an uncaught exception and how many failed commands changed the file, wall time.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def degae(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "DEGAE_MIN_FREE_MB": "0"}
    command = [sys.executable, "-m", "degae_tools.cli", "--quiet", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)


def tab_in_a_gene_id(src: Path) -> None:
    info = src / "GeneInfo.tsv"
    lines = info.read_text().splitlines(keepends=True)
    lines[5] = lines[5].replace("ENSMUSG", "ENSMUS\tG", 1)
    info.write_text("".join(lines))


def obo_cycle(src: Path) -> None:
    """Term B is_a A and, added here, A is_a B (and one term is_a itself)."""
    obo = src / "go" / "go-basic.obo.gz"
    text = gzip.decompress(obo.read_bytes()).decode()
    child, parent = re.search(r"id: (GO:\d+)\n(?:.+\n)*?is_a: (GO:\d+)", text).groups()
    text = text.replace(f"id: {parent}\n", f"id: {parent}\nis_a: {child} ! a cycle\n", 1)
    text = text.replace(f"id: {child}\n", f"id: {child}\nis_a: {child} ! itself\n", 1)
    obo.write_bytes(gzip.compress(text.encode()))


def damaged_header(db: Path) -> None:
    with db.open("r+b") as f:
        f.seek(4096)
        f.write(bytes(range(64)))


def truncated(db: Path) -> None:
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 2)


def damaged_index(db: Path) -> None:
    """Damage a block that holds no table data and no catalogue: an index."""
    from warehouse import Warehouse
    from warehouse.check import block_owners

    wh = Warehouse.open(db)
    tables = [t for (t,) in wh.rows("SELECT schema_name || '.' || table_name FROM duckdb_tables()")]
    known = block_owners(wh, tables)
    total, block_size = wh.one("SELECT total_blocks, block_size FROM pragma_database_size()")
    wh.close()
    block = min(set(range(total)) - set(known))
    with db.open("r+b") as f:
        f.seek(3 * 4096 + block * block_size + 1024)
        f.write(bytes(range(256)))


def without_counts(db: Path) -> None:
    """The file was copied without its `<name>_counts` folder; its DE results are dropped so
    that `de` has contrasts to fit and must look for their counts."""
    import duckdb

    with duckdb.connect(str(db)) as con:
        for table in ("core.go_enrichment", "core.go_runs", "core.de_values", "core.de_runs"):
            con.execute(f"DELETE FROM {table}")


INPUT_CASES: dict[str, Callable[[Path], None]] = {
    "tab_in_a_geneinfo_gene_id": tab_in_a_gene_id,
    "obo_is_a_cycle": obo_cycle,
}
WAREHOUSE_CASES: dict[str, Callable[[Path], None]] = {
    "warehouse_header_damaged": damaged_header,
    "warehouse_truncated": truncated,
    "warehouse_index_block_damaged": damaged_index,
    "warehouse_without_its_counts_folder": without_counts,
}
ON_A_WAREHOUSE = {
    "sql": ["sql", "SELECT count(*) FROM core.de_results"],
    "de": ["de", "--task-runner", "none"],
    "enrich": ["enrich", "--task-runner", "none"],
    "check": ["check"],
    "ingest": ["ingest", "{src}", "--no-prefect"],
}


def outcome(case: str, command: str, done: subprocess.CompletedProcess) -> dict:
    output = done.stdout + done.stderr
    uncaught = "Traceback" in output or done.returncode not in (0, 2)
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    return {
        "case": case,
        "command": command,
        "exit": done.returncode,
        "uncaught_exception": uncaught,
        "said": last[:300],
    }


def loaded(db: Path) -> dict[str, int]:
    """What an ingest of a damaged input kept: one bad row should stay one bad row."""
    from warehouse import Warehouse

    if not db.exists():
        return {}
    wh = Warehouse.open(db)
    tables = ("core.genes", "core.contrasts", "core.go_edges", "raw.rejected")
    return {t: wh.scalar(f"SELECT count(*) FROM {t}") for t in tables}


def command_cases() -> list[dict]:
    """Each damaged input through ingest, each damaged warehouse through every command."""
    from degae_tools.sources.simulate import SimulationConfig, simulate

    work = Path(tempfile.mkdtemp(prefix="degae-fuzz-"))
    clean = work / "clean"
    simulate(clean, SimulationConfig(datasets=6, genes=300, go_terms=40, seed=5))
    results = []
    for case, damage in INPUT_CASES.items():
        src = work / case
        shutil.copytree(clean, src)
        damage(src)
        (work / f"{case}-db").mkdir()
        db = work / f"{case}-db" / "w.duckdb"
        done = degae("ingest", str(src), "--db", str(db), "--no-prefect", cwd=work)
        results.append({**outcome(case, "ingest", done), "loaded": loaded(db)})
    good = work / "good" / "w.duckdb"
    good.parent.mkdir()
    degae("ingest", str(clean), "--db", str(good), "--no-prefect", cwd=work)
    degae("de", "--task-runner", "none", "--db", str(good), cwd=work)
    for case, damage in WAREHOUSE_CASES.items():
        for command, args in ON_A_WAREHOUSE.items():
            folder = work / f"{case}-{command}"
            folder.mkdir()
            db = folder / "w.duckdb"
            shutil.copy(good, db)  # the file alone: no counts folder beside it
            damage(db)
            before = hashlib.sha256(db.read_bytes()).hexdigest()
            args = [a.format(src=clean) for a in args]
            done = outcome(case, command, degae(*args, "--db", str(db), cwd=work))
            changed = hashlib.sha256(db.read_bytes()).hexdigest() != before
            results.append({**done, "file_changed": changed})
    shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fuzz.json")
    args = parser.parse_args()
    env = {**os.environ, "DEGAE_FUZZ_EXAMPLES": str(args.examples), "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_sources_fuzz.py",
            "--hypothesis-show-statistics",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    cases = command_cases()
    seconds = time.monotonic() - started
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", tail)) else 0
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", tail)) else 0
    result = {
        "benchmark": "hypothesis fuzzing of every reader (DEE2 metadata/counts/gene info, GEO, "
        "OBO, GAF, gene2go): damaged and garbage files must raise only named errors",
        "examples_per_reader_and_strategy": args.examples,
        "tests_passed": passed,
        "tests_failed": failed,
        "seconds": round(seconds, 1),
        "pytest_summary": tail,
        "command_cases": len(cases),
        "uncaught_exceptions": sum(c["uncaught_exception"] for c in cases),
        "failed_commands_that_changed_the_file": sum(
            c.get("file_changed", False) and c["exit"] != 0 for c in cases
        ),
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if proc.returncode != 0:
        print(proc.stdout[-4000:])
        raise SystemExit(proc.returncode)
    if result["uncaught_exceptions"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
