"""The warehouse file: migrations, read-only queries, exports and the writer's lock."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from degae_tools.cli import main
from degae_tools.errors import WarehouseError
from tests.helpers import REPO, copy_warehouse
from warehouse import Warehouse


def test_migrations_can_run_twice(tmp_path):
    wh = Warehouse.open(tmp_path / "w.duckdb", write=True, create=True)
    first = wh.migrate()
    second = wh.migrate()
    tables = wh.scalar(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name IN ('raw','core','ml')"
    )
    assert first == second
    assert tables >= 20


def test_init_creates_the_warehouse_where_asked_in_an_existing_folder_only(tmp_path):
    db = tmp_path / "w.duckdb"
    result = CliRunner().invoke(main, ["init", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert db.exists()
    elsewhere = tmp_path / "sub" / "w.duckdb"
    refused = CliRunner().invoke(main, ["init", "--db", str(elsewhere)])
    assert refused.exit_code == 2
    assert "the folder" in refused.output and "does not exist" in refused.output
    assert not elsewhere.parent.exists()


def test_db_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv("DEGAE_DB", str(db))
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    assert db.exists()


def test_reading_a_missing_warehouse_says_how_to_create_it(tmp_path):
    with pytest.raises(WarehouseError, match="degae-tools init"):
        Warehouse.open(tmp_path / "nothing.duckdb")


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
    Warehouse.open(db, write=True, create=True).close()
    writer = textwrap.dedent(
        f"""
        import time
        from warehouse import Warehouse
        wh = Warehouse.open({str(db)!r}, write=True)
        term = "INSERT INTO core.go_terms VALUES ('GO:1', 'x', 'biological_process', false)"
        with wh.session() as con:
            con.execute(term)
            print("locked", flush=True)
            time.sleep(2)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True, cwd=str(REPO)
    )
    assert proc.stdout.readline().strip() == "locked"
    reader = Warehouse.open(db, wait_s=30)
    assert reader.rows("SELECT count(*) FROM core.go_terms") == [(1,)]
    proc.wait(timeout=30)


def test_a_reader_gives_up_with_a_clear_error(tmp_path):
    db = tmp_path / "w.duckdb"
    holder = Warehouse.open(db, write=True, create=True)
    code = (
        f"from warehouse import Warehouse; Warehouse.open({str(db)!r}, wait_s=0.5).rows('SELECT 1')"
    )
    with holder.session():
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO)
        )
    assert result.returncode != 0
    assert "WarehouseError" in result.stderr and "lock" in result.stderr.lower()


def test_an_export_to_a_missing_folder_is_one_clear_error(ingested, tmp_path):
    out = tmp_path / "no" / "such" / "folder" / "x.csv"
    result = CliRunner().invoke(
        main, ["sql", "SELECT 1 AS x", "--db", str(ingested), "--format", "csv", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "cannot write" in result.output and "Traceback" not in result.output


# --- `sql` without --write is read-only for the machine too -----------------------------------

REFUSED = {
    "copy_to": "COPY (SELECT 1 AS x) TO '{victim}'",
    "export_database": "EXPORT DATABASE '{folder}'",
    "read_csv": "SELECT * FROM read_csv('/etc/passwd')",
    "read_text": "SELECT * FROM read_text('/etc/passwd')",
    "glob": "SELECT * FROM glob('/etc/*')",
    "set_threads": "SET threads = 1",
    "set_memory_limit": "SET memory_limit = '1GB'",
    "set_temp_directory": "SET temp_directory = '{folder}'",
    "pragma_threads": "PRAGMA threads = 1",
    "pragma_profiling_output": "PRAGMA profiling_output = '{victim}'",
    "call_enable_logging": "CALL enable_logging()",
    "load": "LOAD httpfs",
    "install": "INSTALL httpfs",
    "custom_repository_then_install": (
        "SET custom_extension_repository = 'http://127.0.0.1:9'; INSTALL httpfs"
    ),
    "select_then_copy": "SELECT 1; COPY (SELECT 2) TO '{victim}'",
    "attach": "ATTACH '{victim}' AS other",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_sql_without_write_refuses_what_reaches_the_machine(ingested, tmp_path, case):
    victim, folder = tmp_path / "victim.csv", tmp_path / "exported"
    query = REFUSED[case].format(victim=victim, folder=folder)
    result = CliRunner().invoke(main, ["sql", query, "--db", str(ingested)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: query failed")
    assert "Traceback" not in result.output
    assert not victim.exists() and not folder.exists()


def test_allow_files_lets_a_read_only_query_read_and_write_files(ingested, tmp_path):
    out = tmp_path / "genes.csv"
    query = f"COPY (SELECT gene_id FROM core.genes) TO '{out}'"
    copied = CliRunner().invoke(main, ["sql", query, "--db", str(ingested), "--allow-files"])
    assert copied.exit_code == 0, copied.output
    read = CliRunner().invoke(
        main,
        ["--json", "sql", f"SELECT count(*) AS n FROM read_csv('{out}')", "--db", str(ingested)]
        + ["--allow-files"],
    )
    assert json.loads(read.output)[0]["n"] == 600
    still = CliRunner().invoke(main, ["sql", "SET threads = 1", "--db", str(ingested)])
    assert still.exit_code == 2


def test_sql_errors_keep_duckdbs_hints_and_caret(ingested):
    def error(query: str) -> str:
        result = CliRunner().invoke(main, ["sql", query, "--db", str(ingested)])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.output.count("error:") == 1
        return result.output

    assert 'Did you mean "genes"' in error("SELECT * FROM core.gene")
    assert 'Candidate bindings: "gene_id", "gene_index"' in error("SELECT gene_idx FROM core.genes")
    caret = error("SELEC gene_id FROM core.genes")
    assert "LINE 1: SELEC gene_id FROM core.genes" in caret and "^^^^^" in caret


def records(output: str) -> list[dict[str, str]]:
    """The rows of `sql`'s expanded display: one block per row, `│ column │ value │` lines,
    a value wrapped onto lines whose column cell is blank."""
    blocks: list[dict[str, str]] = []
    column = ""
    for line in output.splitlines():
        if line.startswith("row "):
            blocks.append({})
        cells = line.split("│")
        if len(cells) == 4:
            column = cells[1].strip() or column
            blocks[-1][column] = (blocks[-1].get(column, "") + cells[2].strip()).strip()
    return blocks


def test_a_wide_result_is_shown_whole_in_a_narrow_terminal(ingested, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    query = "SELECT * FROM core.contrasts ORDER BY contrast_id LIMIT 2"
    result = CliRunner().invoke(main, ["sql", query, "--db", str(ingested)])
    assert result.exit_code == 0, result.output
    assert max(len(line.rstrip()) for line in result.output.splitlines()) <= 60
    expected = Warehouse.open(ingested).arrow(query).to_pylist()
    shown = records(result.output)
    assert [list(r) for r in shown] == [list(r) for r in expected]  # every column, by name
    for row, want in zip(shown, expected, strict=True):
        for column, value in want.items():
            assert row[column].replace(" ", "") == str(value).replace(" ", ""), column


def test_a_narrow_result_stays_a_table(ingested, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    query = "SELECT gene_index, gene_id FROM core.genes ORDER BY gene_index LIMIT 3"
    result = CliRunner().invoke(main, ["sql", query, "--db", str(ingested)])
    header = next(line for line in result.output.splitlines() if "gene_index" in line)
    assert "gene_id" in header


# --- one rule for --db --------------------------------------------------------------------------

NEEDS_A_WAREHOUSE = {
    "de": ["de", "--task-runner", "none"],
    "enrich": ["enrich", "--task-runner", "none"],
    "train": ["train", "--epochs", "1"],
    "search": ["search", "--n-trials", "1"],
    "sql": ["sql", "SELECT 1"],
    "export": ["export", "{out}"],
    "report": ["report", "--out", "{out}/r.html"],
    "check": ["check"],
}


@pytest.mark.parametrize("command", sorted(NEEDS_A_WAREHOUSE))
def test_a_command_on_a_missing_warehouse_stops_in_one_line_and_creates_nothing(tmp_path, command):
    db = tmp_path / "nope" / "a" / "b.duckdb"
    out = tmp_path / "out"
    args = [a.format(out=out) for a in NEEDS_A_WAREHOUSE[command]]
    result = CliRunner().invoke(main, [*args, "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: no warehouse at {db}")
    assert len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["ingest", "refresh"])
def test_a_loading_command_creates_a_warehouse_only_in_an_existing_folder(
    compendium, tmp_path, command
):
    db = tmp_path / "nope" / "b.duckdb"
    result = CliRunner().invoke(main, [command, str(compendium), "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert "the folder" in result.output and "does not exist" in result.output
    assert not (tmp_path / "nope").exists()


def test_sql_names_what_it_refuses_and_why_a_file_path_is_no_table(ingested, tmp_path):
    def sql(query: str):
        return CliRunner().invoke(main, ["sql", query, "--db", str(ingested)])

    install = sql("INSTALL httpfs")
    assert install.exit_code == 2
    assert install.output.startswith("error: query failed: INSTALL is not allowed")
    path = tmp_path / "genes"  # no extension: DuckDB takes it for a table name
    path.write_text("gene\nA\n")
    as_table = sql(f"SELECT * FROM '{path}'")
    assert as_table.exit_code == 2
    assert as_table.output.strip().endswith("(a file is read as a table only with --allow-files)")
    assert "Did you mean" not in as_table.output


def test_pivot_is_a_read(ingested):
    result = CliRunner().invoke(
        main,
        [
            "--json",
            "sql",
            "PIVOT (SELECT species FROM core.genes) ON species USING count(*)",
            "--db",
            str(ingested),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["mmusculus"] == 600


def test_a_writer_with_nothing_to_do_leaves_the_file_as_it_was(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for command in (["de", "--task-runner", "none"], ["enrich", "--task-runner", "none"]):
        result = CliRunner().invoke(main, [*command, "--db", str(db)])
        assert result.exit_code == 0 and "nothing done" in result.output, result.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
