"""Runs of `de` side by side and runs with nothing to do: a second run leaves the contrasts the
first holds (and takes over those of a killed one); an empty run says why, and --strict exits 2."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

from click.testing import CliRunner

from degae_tools.cli import main
from tests.helpers import REPO, checkout_env, copy_warehouse, rows, run_de
from warehouse import Warehouse

VALUES = "SELECT contrast_id, gene_index, log_fc, t, adj_p_value FROM core.de_results ORDER BY 1, 2"

# A `de` run that stops after writing its first chunk until it reads a line.
PAUSED_RUN = """
import sys
from degae_tools.steps import de
from warehouse import Warehouse

def paused(chunks, **fixed):
    for i, chunk in enumerate(chunks):
        yield de.fit_chunk(chunk, **fixed)
        if i == 0:
            print("chunk", flush=True)
            sys.stdin.readline()

with Warehouse.open(sys.argv[1], write=True) as wh:
    print(de.run(wh, chunk_size=2, map_chunks=paused).done, flush=True)
"""


def paused_run(db) -> subprocess.Popen:
    """A `de` process on `db`, stopped once its first chunk is written (its claims held)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSED_RUN, str(db)],
        cwd=REPO,
        env=checkout_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "chunk"
    return proc


def de_cli(db, *args: str):
    return CliRunner().invoke(main, ["de", "--db", str(db), "--task-runner", "none", *args])


def test_a_second_de_leaves_the_contrasts_the_first_holds(ingested, analysed, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    first = paused_run(db)
    try:
        held = rows(db, "SELECT count(*) FROM core.claims WHERE pid = $pid", {"pid": first.pid})
        second = de_cli(db)
        fitted_by_second = rows(db, "SELECT count(*) FROM core.de_runs")[0][0]
    finally:
        out, _ = first.communicate("\n", timeout=300)
    assert held[0][0] > 0
    assert second.exit_code == 0, second.output
    assert f"contrasts left to the de run that holds them (PID {first.pid}" in second.output
    assert fitted_by_second == fitted_by_first_chunk(db)
    assert int(out.split()[-1]) == rows(db, "SELECT count(*) FROM core.de_runs")[0][0]
    assert rows(db, VALUES) == rows(analysed, VALUES)
    assert rows(db, "SELECT count(*) FROM core.claims") == [(0,)]


def fitted_by_first_chunk(db) -> int:
    """Contrasts of the paused run's first chunk (its first two series)."""
    return rows(
        db,
        "SELECT count(*) FROM core.included_contrasts WHERE gse IN "
        "(SELECT DISTINCT gse FROM core.included_contrasts ORDER BY gse LIMIT 2)",
    )[0][0]


def test_the_contrasts_of_a_killed_de_are_taken_over(ingested, analysed, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    first = paused_run(db)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    left = rows(db, "SELECT count(*) FROM core.claims")[0][0]
    summary = run_de(db)
    assert left > 0 and summary.done == left and summary.held == 0
    assert rows(db, VALUES) == rows(analysed, VALUES)
    assert rows(db, "SELECT count(*) FROM core.claims") == [(0,)]


def test_de_with_every_contrast_done_says_so(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    included = rows(db, "SELECT count(*) FROM core.included_contrasts")[0][0]
    result = de_cli(db)
    assert result.exit_code == 0
    assert f"nothing done: all {included} included contrasts already ran" in result.output
    assert de_cli(db, "--strict").exit_code == 2


def test_de_without_included_contrasts_gives_the_series_reasons(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    with Warehouse.open(db, write=True) as wh:
        wh.execute("UPDATE raw.dee2_runs SET qc_status = 'FAIL'")
        n_series = wh.scalar("SELECT count(*) FROM core.dataset_inclusion")
    result = de_cli(db, "--strict")
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0].startswith("nothing done: no included contrast to test")
    assert any(
        line.startswith(f"  {n_series} series (") and line.endswith("no run passes DEE2 QC")
        for line in lines
    ), lines


def test_a_warehouse_copied_without_its_counts_folder_is_one_clear_error(ingested, tmp_path):
    db = tmp_path / "copied.duckdb"
    shutil.copy(ingested, db)  # the file alone, not `ingested`'s counts folder beside it
    before = db.read_bytes()
    result = de_cli(db)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the counts of"), result.output
    assert f"the folder {tmp_path / 'copied_counts'} does not exist" in lines[0]
    assert db.read_bytes() == before  # refused before any claim is written
    assert rows(db, "SELECT count(*) FROM core.de_runs") == [(0,)]
    assert rows(db, "SELECT count(*) FROM core.claims") == [(0,)]
