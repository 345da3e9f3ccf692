"""A stage killed with SIGKILL and rerun leaves the same warehouse as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import warehouse
from tests.conftest import copy_warehouse
from warehouse.fingerprint import fingerprint

REPO = Path(__file__).resolve().parents[1]
# limma one series per transaction, announcing each chunk written so the test can kill mid-run.
DIFFERENTIAL = """
from pathlib import Path
import flows.differential as d
write = d.write_chunk
def announce(*args, **kwargs):
    write(*args, **kwargs)
    print("chunk", flush=True)
d.write_chunk = announce
d.differential(Path({db!r}), chunk_size=1)
"""


def of(db: Path) -> dict:
    con = warehouse.connect(db)
    try:
        return fingerprint(con)
    finally:
        con.close()


def contrasts_done(db: Path) -> int:
    con = warehouse.connect(db)
    try:
        return con.sql("SELECT count(*) FROM core.de_runs").fetchall()[0][0]
    finally:
        con.close()


@pytest.mark.parametrize("chunks_before_kill", [1, 3])
def test_killed_limma_resumes_to_the_same_warehouse(
    ingested, analysed, tmp_path, chunks_before_kill
):
    db = copy_warehouse(ingested, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = DIFFERENTIAL.format(db=str(db))
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    for _ in range(chunks_before_kill):
        assert proc.stdout.readline().strip() == "chunk"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    total = contrasts_done(analysed)
    assert 0 < contrasts_done(db) < total, "the kill must land mid-run"
    subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL
    )
    from flows.enrichment import enrichment

    enrichment(db)
    assert of(db) == of(analysed)


def test_fingerprint_sees_a_changed_result(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    before = of(db)
    con = warehouse.connect(db, write=True)
    con.execute("UPDATE core.de_results SET log_fc = log_fc + 1 WHERE gene_index = 0")
    con.close()
    after = of(db)
    assert after["core.de_results"][0] == before["core.de_results"][0]
    assert after["core.de_results"][1] != before["core.de_results"][1]
