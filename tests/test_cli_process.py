"""The CLI as a process a user starts: its temporary Prefect server stops with it, even when it
is killed with SIGKILL, the next command marks the killed command's flow run crashed, and
neither Prefect nor TensorFlow fills the terminal with lines the user cannot act on (for `train`,
tests/test_readme.py checks it on the README's pipeline)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.helpers import REPO, checkout_env, cli_command

# What the Makefile and the test session set, which a user running a command may not have.
NOT_A_USERS = (
    "PREFECT_SERVER_ANALYTICS_ENABLED",
    "TF_CPP_MIN_LOG_LEVEL",
    "PREFECT_API_URL",
    "PREFECT_LOGGING_LEVEL",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
)


def fresh_env(prefect_home: Path) -> dict[str, str]:
    """The environment of a user outside the Makefile: none of its quiet settings."""
    env = checkout_env(PREFECT_HOME=str(prefect_home))
    for name in NOT_A_USERS:
        env.pop(name, None)
    return env


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def run_states(prefect_home: Path, pid: int) -> set[str]:
    """The states of the flow runs that the process `pid` made, from the Prefect database the
    commands share (runs are tagged `degae-pid:<host>:<pid>:<start>`)."""
    try:
        with sqlite3.connect(prefect_home / "prefect.db") as db:
            runs = db.execute("SELECT tags, state_type FROM flow_run").fetchall()
    except sqlite3.Error:  # not made yet
        return set()
    return {state for tags, state in runs if f":{pid}:" in tags}


def test_a_killed_command_leaves_no_prefect_server_and_its_run_is_marked_crashed(
    compendium, tmp_path
):
    home = tmp_path / "prefect"
    env = fresh_env(home)
    ingest = cli_command("ingest", str(compendium), "--db", str(tmp_path / "w.duckdb"))
    command = subprocess.Popen(
        ingest, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    announced = command.stderr.readline()
    assert announced.startswith("started a temporary Prefect server at http://127.0.0.1:")
    assert "PREFECT_API_URL" in announced
    deadline = time.monotonic() + 120
    while "RUNNING" not in run_states(home, command.pid):  # the flow has started
        assert command.poll() is None and time.monotonic() < deadline, "no run started"
        time.sleep(0.05)
    servers = children(command.pid)
    assert servers, "the command runs its temporary server as its child"

    os.kill(command.pid, signal.SIGKILL)
    command.wait()
    deadline = time.monotonic() + 30
    while any(running(p) for p in servers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(running(p) for p in servers), "the server outlived the killed command"
    assert "RUNNING" in run_states(home, command.pid)

    again = subprocess.run(
        ingest, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert again.returncode == 0, again.stdout
    assert run_states(home, command.pid) == {"CRASHED"}
    for noise in ("Traceback", "telemetry", "sqlite3.OperationalError", "temporary server on"):
        assert noise not in again.stdout
