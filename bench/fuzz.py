"""Malformed input for every reader, at bench size: 1,000 hypothesis examples per reader and
strategy (CI runs 50). Only the named InputFileError subclasses may escape a reader.

    python bench/fuzz.py [--examples 1000]

Writes bench/results/fuzz.json: examples, tests run and passed, wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    seconds = time.monotonic() - started
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
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
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if proc.returncode != 0:
        print(proc.stdout[-4000:])
        raise SystemExit(proc.returncode)


if __name__ == "__main__":
    main()
