"""The warehouse file: migrations, read-only queries, exports and the writer's lock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import warehouse
from degae_tools.cli import main
from degae_tools.errors import WarehouseError


def test_migrations_can_run_twice(tmp_path):
    con = warehouse.connect(tmp_path / "w.duckdb", write=True)
    first = warehouse.migrate(con)
    second = warehouse.migrate(con)
    tables = con.sql(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name IN ('raw','core','ml')"
    )
    assert first == second
    assert tables.fetchall()[0][0] >= 20


def test_init_creates_the_warehouse_where_asked(tmp_path):
    db = tmp_path / "sub" / "w.duckdb"
    result = CliRunner().invoke(main, ["init", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert db.exists()


def test_db_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv("DEGAE_DB", str(db))
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    assert db.exists()


def test_reading_a_missing_warehouse_says_how_to_create_it(tmp_path):
    with pytest.raises(WarehouseError, match="degae-tools init"):
        warehouse.connect(tmp_path / "nothing.duckdb")


def test_a_nearly_full_disk_stops_a_writer_before_it_starts_and_readers_still_read(
    ingested, tmp_path, monkeypatch
):
    monkeypatch.setenv("DEGAE_MIN_FREE_MB", str(10**12))  # more than any disk has free
    db = tmp_path / "new.duckdb"
    result = CliRunner().invoke(main, ["init", "--db", str(db)])
    assert result.exit_code == 2
    assert "MB free on the disk" in result.output
    assert "DEGAE_MIN_FREE_MB" in result.output
    assert not db.exists()
    count = CliRunner().invoke(
        main, ["--json", "sql", "SELECT count(*) AS n FROM core.genes", "--db", str(ingested)]
    )
    assert json.loads(count.output)[0]["n"] == 600
    monkeypatch.setenv("DEGAE_MIN_FREE_MB", "0")
    assert CliRunner().invoke(main, ["init", "--db", str(db)]).exit_code == 0


def test_sql_cannot_write_without_the_flag(ingested):
    result = CliRunner().invoke(main, ["sql", "DELETE FROM core.genes", "--db", str(ingested)])
    assert result.exit_code == 2
    assert "--write" in result.output
    count = CliRunner().invoke(
        main, ["--json", "sql", "SELECT count(*) AS n FROM core.genes", "--db", str(ingested)]
    )
    assert json.loads(count.output)[0]["n"] == 600


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_sql_exports_a_query(ingested, tmp_path, fmt):
    out = tmp_path / f"datasets.{fmt}"
    query = "SELECT gse, n_groups FROM core.included_datasets ORDER BY gse"
    result = CliRunner().invoke(
        main, ["sql", query, "--db", str(ingested), "--format", fmt, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    if fmt == "parquet":
        assert pq.read_table(out).num_rows > 0
    elif fmt == "json":
        assert json.loads(out.read_text())[0]["gse"].startswith("GSE")
    else:
        assert out.read_text().splitlines()[0].replace('"', "") == "gse,n_groups"


def test_a_reader_waits_for_the_writer_then_reads(tmp_path):
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db, write=True)
    warehouse.migrate(con)
    con.close()
    writer = textwrap.dedent(
        f"""
        import time, warehouse
        con = warehouse.connect({str(db)!r}, write=True)
        con.execute("INSERT INTO core.go_terms VALUES ('GO:1', 'x', 'biological_process', false)")
        print("locked", flush=True)
        time.sleep(2)
        con.close()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True, cwd=str(_repo())
    )
    assert proc.stdout.readline().strip() == "locked"
    reader = warehouse.connect(db, wait_s=30)
    assert reader.sql("SELECT count(*) FROM core.go_terms").fetchall() == [(1,)]
    reader.close()
    proc.wait(timeout=30)


def test_a_reader_gives_up_with_a_clear_error(tmp_path):
    db = tmp_path / "w.duckdb"
    holder = warehouse.connect(db, write=True)
    warehouse.migrate(holder)
    code = f"import warehouse; warehouse.connect({str(db)!r}, wait_s=0.5)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=str(_repo())
    )
    holder.close()
    assert result.returncode != 0
    assert "WarehouseError" in result.stderr and "lock" in result.stderr.lower()


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


def test_an_export_to_a_missing_folder_is_one_clear_error(ingested, tmp_path):
    out = tmp_path / "no" / "such" / "folder" / "x.csv"
    result = CliRunner().invoke(
        main, ["sql", "SELECT 1 AS x", "--db", str(ingested), "--format", "csv", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "cannot write" in result.output and "Traceback" not in result.output
