"""Fault injection: kill -9 a command after its flow has started, rerun, compare with a clean run.

    python bench/faults.py --cycles 9

A clean run of the commands a user types (`degae-tools ingest`, `de`, `enrich`, each a Prefect
flow on its own temporary server) gives the reference warehouse, with its fingerprint after each
command. Each cycle starts from an empty warehouse, runs the commands before the victim, starts
the victim (round robin), waits until its flow run is RUNNING in Prefect's database, then kills
it with SIGKILL after a random delay within the flow's clean duration, and reruns every command
from the victim on. It records:

- whether the kill landed mid-write: the warehouse after the kill is neither as it was before
  the command nor as the clean run left it (`warehouse.fingerprint`, every table);
- whether the command's temporary Prefect server outlived it (an orphaned uvicorn);
- whether the next command marked the killed flow run CRASHED;
- whether the final warehouse matches the clean one, table by table.

Writes bench/results/faults.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STAGES = {
    "ingest": ["ingest", "{src}"],
    "de": ["de", "--chunk-size", "1"],
    "enrich": ["enrich"],
}


def command(stage: str, src: Path, db: Path) -> list[str]:
    args = [a.format(src=src) for a in STAGES[stage]]
    return [sys.executable, "-m", "degae_tools.cli", "--quiet", *args, "--db", str(db)]


def environment(prefect_home: Path) -> dict[str, str]:
    """A user's environment: a Prefect home of the bench's own, no server URL."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(prefect_home)}
    env.pop("PREFECT_API_URL", None)
    return env


def run(stage: str, src: Path, db: Path, env: dict[str, str]) -> float:
    """Run one command to the end; returns how long its flow ran (Prefect's start to end)."""
    proc = subprocess.Popen(
        command(stage, src, db),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{stage} failed:\n{err.decode()[-2000:]}")
    return flow_seconds(Path(env["PREFECT_HOME"]), proc.pid)


def flow_seconds(prefect_home: Path, pid: int) -> float:
    """From the start of the first flow run the process `pid` made to the end of its last (0
    when it made none: a rerun after a kill that came when every write was done has nothing to
    do, and says so before any flow starts)."""
    with sqlite3.connect(prefect_home / "prefect.db", timeout=30) as db:
        runs = db.execute("SELECT tags, start_time, end_time FROM flow_run").fetchall()
    mine = [(start, end) for tags, start, end in runs if f":{pid}:" in tags and start and end]
    if not mine:
        return 0.0
    start = min(datetime.fromisoformat(s) for s, _ in mine)
    end = max(datetime.fromisoformat(e) for _, e in mine)
    return (end - start).total_seconds()


def run_states(prefect_home: Path, pid: int) -> set[str]:
    """States of the flow runs the process `pid` made (tagged `degae-pid:<host>:<pid>:…`)."""
    try:
        with sqlite3.connect(prefect_home / "prefect.db", timeout=30) as db:
            runs = db.execute("SELECT tags, state_type FROM flow_run").fetchall()
    except sqlite3.Error:
        return set()
    return {state for tags, state in runs if f":{pid}:" in tags}


def wait_for_flow(proc: subprocess.Popen, prefect_home: Path) -> float:
    """Block until `proc`'s flow run is RUNNING (or `proc` ended); returns that moment."""
    while proc.poll() is None and "RUNNING" not in run_states(prefect_home, proc.pid):
        time.sleep(0.02)
    return time.monotonic()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def fingerprint(db: Path) -> dict[str, tuple[int, int]]:
    from warehouse import Warehouse
    from warehouse.fingerprint import fingerprint as of

    if not db.exists():
        return {}
    with Warehouse.open(db).session() as con:
        return of(con)


def kill_after_flow_starts(
    stage: str, src: Path, db: Path, env: dict[str, str], delay: float
) -> dict:
    """Start `stage`, SIGKILL it `delay` seconds after its flow run is RUNNING; what was left."""
    proc = subprocess.Popen(
        command(stage, src, db),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    home = Path(env["PREFECT_HOME"])
    wait_for_flow(proc, home)
    time.sleep(delay)
    servers = children(proc.pid) if proc.poll() is None else []
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while any(alive(p) for p in servers) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = [p for p in servers if alive(p)]
    for p in orphans:  # the bench cleans up what the command failed to
        os.kill(p, signal.SIGKILL)
    return {
        "pid": proc.pid,
        "killed": killed,
        "mid_flow": killed and "RUNNING" in run_states(home, proc.pid),
        "orphaned_servers": len(orphans),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "faults.json")
    args = parser.parse_args()
    stages = list(STAGES)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="degae-faults-"))
    env = environment(work / "prefect")
    src = work / "compendium"
    from degae_tools.sources.simulate import SimulationConfig, simulate

    simulate(src, SimulationConfig(datasets=12, genes=600, go_terms=60, seed=3))
    clean_db = work / "clean" / "degae.duckdb"
    clean_db.parent.mkdir()
    durations, after = {}, {}
    for stage in stages:
        durations[stage] = run(stage, src, clean_db, env)
        after[stage] = fingerprint(clean_db)
    reference = after[stages[-1]]
    cycles = []
    for cycle in range(args.cycles):
        victim = stages[cycle % len(stages)]
        db = work / f"cycle{cycle}" / "degae.duckdb"
        db.parent.mkdir()
        for stage in stages[: stages.index(victim)]:
            run(stage, src, db, env)
        before = fingerprint(db)
        delay = rng.uniform(0, durations[victim])
        outcome = kill_after_flow_starts(victim, src, db, env, delay)
        left = fingerprint(db)
        for stage in stages[stages.index(victim) :]:
            run(stage, src, db, env)
        final = fingerprint(db)
        differing = sorted(t for t in reference if reference[t] != final.get(t))
        cycles.append(
            {
                "cycle": cycle,
                "stage": victim,
                "kill_after_flow_started_s": round(delay, 2),
                "killed": outcome["killed"],
                "killed_mid_flow": outcome["mid_flow"],
                "mid_write": outcome["killed"] and left not in (before, after[victim]),
                "orphaned_servers": outcome["orphaned_servers"],
                "run_states_after_rerun": sorted(run_states(work / "prefect", outcome["pid"])),
                "matched": not differing,
                "differing_tables": differing,
            }
        )
        print(cycles[-1], flush=True)
    killed = [c for c in cycles if c["killed_mid_flow"]]
    crashed = [c for c in killed if c["run_states_after_rerun"] == ["CRASHED"]]
    matched = sum(c["matched"] for c in cycles)
    result = {
        "benchmark": "kill -9 a command after its Prefect flow has started, rerun, compare with "
        "an uninterrupted run",
        "cycles_run": len(cycles),
        "cycles_killed_mid_flow": len(killed),
        "cycles_killed_mid_write": sum(c["mid_write"] for c in cycles),
        "cycles_matching_clean_run": matched,
        "orphaned_prefect_servers": sum(c["orphaned_servers"] for c in cycles),
        "killed_runs_marked_crashed": len(crashed),
        "stages": stages,
        "clean_flow_seconds": {k: round(v, 2) for k, v in durations.items()},
        "tables_compared": len(reference),
        "cycles": cycles,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{matched}/{len(cycles)} cycles matched the clean run; {len(killed)} killed mid-flow, "
        f"{result['cycles_killed_mid_write']} mid-write; "
        f"{result['orphaned_prefect_servers']} orphaned Prefect servers; "
        f"{len(crashed)}/{len(killed)} killed runs marked crashed"
    )
    if matched != len(cycles) or result["orphaned_prefect_servers"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
