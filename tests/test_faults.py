"""A stage killed with SIGKILL, or stopped by a full disk, and rerun leaves the same warehouse as an
uninterrupted run."""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from degae_tools.atomic import atomic_path
from tests.helpers import REPO, checkout_env, cli_command, copy_warehouse, run_go
from warehouse import Warehouse
from warehouse.fingerprint import fingerprint

# limma one series per transaction, announcing each chunk written so the test can kill mid-run.
DIFFERENTIAL = """
import degae_tools.steps.de as d
from warehouse import Warehouse
write = d.write_chunk
def announce(*args, **kwargs):
    write(*args, **kwargs)
    print("chunk", flush=True)
d.write_chunk = announce
with Warehouse.open({db!r}, write=True) as wh:
    d.run(wh, chunk_size=1)
"""


def of(db: Path) -> dict:
    with Warehouse.open(db).session() as con:
        return fingerprint(con)


def contrasts_done(db: Path) -> int:
    return Warehouse.open(db).scalar("SELECT count(*) FROM core.de_runs")


@pytest.mark.parametrize("chunks_before_kill", [1, 3])
def test_killed_limma_resumes_to_the_same_warehouse(
    ingested, analysed, tmp_path, chunks_before_kill
):
    db = copy_warehouse(ingested, tmp_path)
    env = checkout_env()
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
    run_go(db)
    assert of(db) == of(analysed)


def test_fingerprint_sees_a_changed_result(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    before = of(db)
    with Warehouse.open(db, write=True) as wh:
        # core.de_results is a view: its values are stored in core.de_values.
        wh.execute("UPDATE core.de_values SET log_fc = log_fc + 1 WHERE gene_index = 0")
    after = of(db)
    assert after["core.de_values"][0] == before["core.de_values"][0]
    assert after["core.de_values"][1] != before["core.de_values"][1]


def full_disk(limit_bytes: int):
    """A child process whose files cannot grow past `limit_bytes`: writes fail with EFBIG, the way
    they fail with ENOSPC on a full disk (no root or tmpfs needed)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))

    return limit


def test_a_full_disk_stops_limma_with_one_clear_line_and_a_rerun_finishes_it(
    ingested, analysed, tmp_path
):
    db = copy_warehouse(ingested, tmp_path)
    command = cli_command("--quiet", "de", "--db", str(db))
    command += ["--chunk-size", "1", "--task-runner", "none"]
    env = checkout_env()
    stopped = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, preexec_fn=full_disk(500_000)
    )
    assert stopped.returncode == 2, stopped.stderr
    assert "could not write the warehouse" in stopped.stderr
    assert "File too large" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert 0 < contrasts_done(db) < contrasts_done(analysed), "the disk must fill mid-run"

    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
    run_go(db)
    assert of(db) == of(analysed)


def test_a_full_disk_stops_an_export_with_one_clear_line_and_no_half_written_files(
    analysed, tmp_path
):
    out = tmp_path / "parquet"
    command = cli_command("--quiet", "export", "--db", str(analysed))
    stopped = subprocess.run(
        [*command, str(out)],
        cwd=REPO,
        env=checkout_env(),
        capture_output=True,
        text=True,
        preexec_fn=full_disk(20_000),
    )
    assert stopped.returncode == 2, stopped.stderr
    assert stopped.stderr.startswith("error: could not write to disk")
    assert "File too large" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert not any(out.iterdir()), "a table that failed half-way must leave nothing behind"


def test_a_file_written_atomically_is_complete_or_as_it_was(tmp_path):
    target = tmp_path / "table.arrow"
    with atomic_path(target) as part:
        part.write_text("first")
    with pytest.raises(OSError), atomic_path(target) as part:
        part.write_text("half of the sec")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["table.arrow"]


def test_a_full_disk_stops_training_with_one_clear_line_and_registers_nothing(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    model = tmp_path / "model"
    command = cli_command("--quiet", "train", "--db", str(db))
    command += ["--model-dir", str(model), "--neurons", "256", "--layers", "2", "--epochs", "1"]
    stopped = subprocess.run(
        command,
        cwd=REPO,
        env=checkout_env(),
        capture_output=True,
        text=True,
        preexec_fn=full_disk(1_000_000),  # room for the data cache, not for a checkpoint
    )
    assert stopped.returncode == 2, stopped.stderr
    assert "error: could not write to disk" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert not list(model.rglob("*.partial")), "a half-written checkpoint must not stay behind"
    assert Warehouse.open(db).scalar("SELECT count(*) FROM ml.models") == 0


REMOUNT_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


def read_only(folder: Path, command: list[str]) -> list[str]:
    """`command` run where `folder` is a read-only mount (a private user and mount namespace, so
    the rest of the machine still sees it writable); skips where that cannot be set up."""
    if shutil.which("unshare") is None:
        pytest.skip("util-linux's unshare is not installed")
    wrap = ["unshare", "-rm", "sh", "-c", REMOUNT_READ_ONLY]
    probe = subprocess.run([*wrap, str(folder), "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount read-only in a namespace here: {probe.stderr.decode().strip()}")
    return [*wrap, str(folder), *command]


def test_a_warehouse_on_a_read_only_mount_is_queried_and_refuses_writes_in_one_line(
    analysed, tmp_path
):
    folder = tmp_path / "readonly"
    folder.mkdir()
    db = copy_warehouse(analysed, folder)
    before = of(db)
    env = checkout_env()
    query = cli_command(
        "--quiet", "sql", "SELECT count(*) AS n FROM core.contrasts", "--db", str(db)
    )
    answered = subprocess.run(read_only(folder, query), cwd=REPO, env=env, capture_output=True)
    assert answered.returncode == 0, answered.stderr
    assert str(before["core.contrasts"][0]).encode() in answered.stdout

    refused = subprocess.run(
        read_only(folder, cli_command("--quiet", "de", "--db", str(db), "--task-runner", "none")),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: ") and "read-only" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert of(db) == before


def test_training_into_a_read_only_folder_says_where_to_write_and_registers_nothing(
    analysed, tmp_path
):
    db = copy_warehouse(analysed, tmp_path)
    models = tmp_path / "models"
    models.mkdir()
    train = cli_command(
        "--quiet", "train", "--db", str(db), "--model-dir", str(models / "m"), "--neurons", "8"
    )
    stopped = subprocess.run(
        read_only(models, [*train, "--epochs", "1"]),
        cwd=REPO,
        env=checkout_env(),
        capture_output=True,
        text=True,
    )
    assert stopped.returncode == 2, stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("error: could not write to disk (Read-only file system")
    assert "writable place" in last and "Free space" not in last
    assert "Traceback" not in stopped.stderr
    assert Warehouse.open(db).scalar("SELECT count(*) FROM ml.models") == 0
