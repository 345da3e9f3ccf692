"""A stage killed with SIGKILL and rerun leaves the same warehouse as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import warehouse
from tests.conftest import copy_warehouse
from warehouse.fingerprint import fingerprint

REPO = Path(__file__).resolve().parents[1]
DIFFERENTIAL = (
    "from pathlib import Path; from flows.differential import differential; "
    "differential(Path({db!r}), chunk_size=1)"
)


def of(db: Path) -> dict:
    con = warehouse.connect(db)
    try:
        return fingerprint(con)
    finally:
        con.close()


@pytest.mark.parametrize("kill_after_s", [1.0, 4.0])
def test_killed_limma_resumes_to_the_same_warehouse(ingested, analysed, tmp_path, kill_after_s):
    db = copy_warehouse(ingested, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = DIFFERENTIAL.format(db=str(db))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env)
    time.sleep(kill_after_s)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True)
    from flows.enrichment import enrichment

    enrichment(db)
    clean, resumed = of(analysed), of(db)
    assert resumed == clean


def test_fingerprint_sees_a_changed_result(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    before = of(db)
    con = warehouse.connect(db, write=True)
    con.execute("UPDATE core.de_results SET log_fc = log_fc + 1 WHERE gene_index = 0")
    con.close()
    after = of(db)
    assert after["core.de_results"][0] == before["core.de_results"][0]
    assert after["core.de_results"][1] != before["core.de_results"][1]
