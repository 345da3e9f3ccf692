"""A warehouse file that cannot be used is named for what is wrong with it: damaged, truncated,
unreadable, locked by another process, in a folder that cannot be written. One line, exit
status 2, and the file is left as it was. `check` finds damage that queries miss."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from degae_tools.cli import main
from tests.helpers import REPO, checkout_env, cli_command, copy_warehouse
from warehouse import Warehouse
from warehouse.check import block_owners

HEADER = 4096  # DuckDB's file header, then two database headers, then the blocks


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def damage(path: Path, offset: int, n: int = 64) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(bytes(range(n)))


def one_error_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ") and "Traceback" not in output
    return lines[0]


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


COMMANDS = {
    "sql": ["sql", "SELECT count(*) FROM core.genes"],
    "de": ["de", "--task-runner", "none"],
    "check": ["check"],
    "ingest": ["ingest", "{source}", "--no-prefect"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("where", "said"),
    [(0, "damaged or not a DuckDB warehouse"), (HEADER, "is damaged")],
    ids=["file_header", "database_header"],
)
def test_a_damaged_header_is_named_and_the_file_left_as_it_was(
    ingested, compendium, tmp_path, command, where, said
):
    db = copy_warehouse(ingested, tmp_path)
    damage(db, where)
    before = digest(db)
    args = [a.format(source=compendium) for a in COMMANDS[command]]
    result = run_cli(*args, "--db", str(db))
    assert result.exit_code == 2, result.output
    line = one_error_line(result.output)
    assert said in line
    if command == "check":  # check cannot send the user to check
        assert "degae-tools check" not in line and "rebuild it" in line
    assert digest(db) == before


@pytest.mark.parametrize("command", ["de", "ingest"])
def test_a_truncated_warehouse_is_named_and_left_as_it_was(ingested, compendium, tmp_path, command):
    db = copy_warehouse(ingested, tmp_path)
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 2)
    before = digest(db)
    args = [a.format(source=compendium) for a in COMMANDS[command]]
    result = run_cli(*args, "--db", str(db))
    assert result.exit_code == 2, result.output
    line = one_error_line(result.output)
    assert "truncated" in line and "free" not in line
    assert digest(db) == before


def corrupt_a_block_of(db: Path, table: str) -> None:
    """Overwrite bytes inside one block that holds `table`'s data."""
    wh = Warehouse.open(db)
    block = wh.scalar(
        "SELECT max(block_id) FROM pragma_storage_info($t) WHERE block_id >= 0", {"t": table}
    )
    block_size = wh.scalar("SELECT block_size FROM pragma_database_size()")
    damage(db, 3 * HEADER + block * block_size + 512, 256)


def test_check_finds_a_corrupt_block_that_queries_miss_and_says_how_to_rebuild(
    analysed, compendium, tmp_path
):
    db = copy_warehouse(analysed, tmp_path)
    corrupt_a_block_of(db, "core.de_values")
    counted = run_cli("--json", "sql", "SELECT count(*) AS n FROM core.contrasts", "--db", str(db))
    assert counted.exit_code == 0, counted.output  # the rest of the file still answers

    result = run_cli("check", "--db", str(db))
    assert result.exit_code == 2, result.output
    damaged = next(line for line in result.output.splitlines() if line.startswith("damaged:"))
    assert "core.de_values" in damaged
    assert f"degae-tools ingest {compendium} --db" in result.output
    assert "degae-tools de --db" in result.output

    every_value = "SELECT sum(hash(log_fc, ave_expr, t, p_value, b, z)) FROM core.de_values"
    reading = run_cli("sql", every_value, "--db", str(db))
    assert reading.exit_code == 2, reading.output
    assert "is damaged" in one_error_line(reading.output)


def blocks_outside_table_data(db: Path) -> list[int]:
    """The file's blocks that hold neither a table's column data nor the catalogue: indexes."""
    wh = Warehouse.open(db)
    tables = [t for (t,) in wh.rows("SELECT schema_name || '.' || table_name FROM duckdb_tables()")]
    known = block_owners(wh, tables)
    total = wh.scalar("SELECT total_blocks FROM pragma_database_size()")
    wh.close()
    return sorted(set(range(total)) - set(known))


def test_check_finds_a_damaged_block_that_holds_no_table_data(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    outside = blocks_outside_table_data(db)
    assert outside, "the warehouse has index blocks"
    block_size = Warehouse.open(db).scalar("SELECT block_size FROM pragma_database_size()")
    location = 3 * HEADER + outside[0] * block_size
    damage(db, location + 1024, 256)

    result = run_cli("check", "--db", str(db))
    assert result.exit_code == 2, result.output
    assert f"block: the block at byte {location} (an index" in result.output
    assert "degae-tools ingest" in result.output


def test_check_passes_an_intact_warehouse(analysed):
    result = run_cli("check", "--db", str(analysed))
    assert result.exit_code == 0, result.output
    assert "damaged" not in result.output


# --- permissions and locks (in a subprocess: file permissions hold for root only without its
# --- capabilities, so root runs the command through setpriv without them) -------------------


def without_root_powers(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without util-linux's setpriv to drop file capabilities")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *command]


def run_as_user(*args: str, **env: str) -> subprocess.CompletedProcess:
    command = without_root_powers(cli_command("--quiet", *args))
    return subprocess.run(
        command, cwd=REPO, env=checkout_env(**env), capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("command", [["sql", "SELECT 1"], ["de", "--task-runner", "none"]])
def test_an_unreadable_warehouse_is_a_permission_error_not_a_full_disk(ingested, tmp_path, command):
    db = copy_warehouse(ingested, tmp_path)
    db.chmod(0)
    result = run_as_user(*command, "--db", str(db))
    db.chmod(0o644)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert "no permission" in line and "disk" not in line
    assert "read-only" not in line  # it cannot be read at all


def test_a_write_ahead_log_the_folder_will_not_let_go_stops_a_writer_before_it_changes_the_file(
    ingested, tmp_path
):
    folder = tmp_path / "locked"
    folder.mkdir()
    db = copy_warehouse(ingested, folder)
    # A writer that stops after a commit and before its checkpoint leaves its log behind.
    stopped = (
        "import duckdb, os, sys; con = duckdb.connect(sys.argv[1]); "
        "con.execute(\"SET checkpoint_threshold = '1TB'\"); "
        "con.execute('CREATE TABLE ml.left_in_the_log AS SELECT 1 AS x'); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", stopped, str(db)], check=True)
    wal = db.with_name(db.name + ".wal")
    assert wal.exists()
    before = (digest(db), digest(wal))
    folder.chmod(0o555)
    try:
        result = run_as_user("de", "--task-runner", "none", "--db", str(db))
        read = run_as_user("sql", "SELECT x FROM ml.left_in_the_log", "--db", str(db))
    finally:
        folder.chmod(0o755)
    assert result.returncode == 2, result.stderr
    assert "write-ahead log" in one_error_line(result.stderr)
    assert (digest(db), digest(wal)) == before
    assert read.returncode == 0 and "1" in read.stdout, read.stderr


def test_a_folder_that_refuses_the_write_ahead_log_is_a_permission_error(ingested, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    db = copy_warehouse(ingested, folder)
    before = digest(db)
    folder.chmod(0o555)
    try:
        result = run_as_user("de", "--task-runner", "none", "--db", str(db))
    finally:
        folder.chmod(0o755)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert "no permission" in line and "Free" not in line
    assert digest(db) == before


def test_init_into_a_folder_it_may_not_write_says_so_in_one_line(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    result = run_as_user("init", "--db", str(folder / "w.duckdb"))
    assert result.returncode == 2, result.stderr
    assert "no permission to write in" in one_error_line(result.stderr)
    assert not any(folder.iterdir())


HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
print("holding", flush=True)
sys.stdin.read()  # until the test closes it
"""


def hold(db: Path, how: str) -> subprocess.Popen:
    """A process that holds `db` open (`read` or `write`) until its stdin is closed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "holding"
    return proc


def release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    proc.wait(timeout=30)


def test_a_writer_gives_up_on_a_locked_warehouse_naming_the_process(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    holder = hold(db, "write")
    try:
        result = subprocess.run(
            cli_command("--quiet", "de", "--task-runner", "none", "--db", str(db)),
            cwd=REPO,
            env=checkout_env(DEGAE_LOCK_WAIT_S="1"),
            capture_output=True,
            text=True,
        )
    finally:
        release(holder)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert f"in use by PID {holder.pid}" in line and "DEGAE_LOCK_WAIT_S" in line


def test_a_writer_waits_for_a_reader_and_says_whom_it_waits_for(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    reader = hold(db, "read")
    writer = subprocess.Popen(
        cli_command("de", "--task-runner", "none", "--db", str(db)),
        cwd=REPO,
        env=checkout_env(DEGAE_LOCK_WAIT_S="300"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = writer.stderr.readline()
    finally:
        release(reader)  # the reader finishes: the writer goes on
    assert said.startswith("waiting up to") and f"PID {reader.pid}" in said
    assert writer.wait(timeout=300) == 0, writer.stderr.read()
    assert Warehouse.open(db).scalar("SELECT count(*) FROM core.de_runs") > 0
