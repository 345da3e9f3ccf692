"""The README tells a new user the truth: two commands first, and the current CLI."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from degae_tools.cli.reference import DOC, document

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_first_section_gives_exactly_two_commands():
    text = README.read_text()
    first = text.split("\n## ", 2)[1]
    block = re.search(r"```bash\n(.*?)```", first, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert [c.split("#")[0].strip() for c in commands] == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci


def test_the_cli_reference_is_up_to_date():
    assert DOC.read_text() == document(), "regenerate: python -m degae_tools.cli.reference"


# --- the README's pipeline block, run as a user types it ------------------------------------------

PIPELINE_MARKER = "<!-- pipeline: run by tests/test_readme.py -->"
# Variables the Makefile, CI or a developer's shell may set that change what a command prints; the
# README's commands must behave without them (the CLI sets its own quiet defaults).
SCRUBBED_PREFIXES = ("PREFECT_", "TF_", "DEGAE_", "PYTEST_", "CUDA_", "DASK_")
# Lines a user cannot act on: tracebacks, errors, Prefect's telemetry and TensorFlow's C++ log
# (its five patterns were checked on `train` alone in tests/test_cli_process.py before).
NOISE = re.compile(
    r"Traceback|\bERROR\b|(?i:telemetry|database is locked|analytics)"
    r"|E0000|I0000|W0000|cpu_feature_guard|absl::InitializeLog"
)


def pipeline_commands(text: str) -> list[str]:
    """The commands of the first ```sh block after the pipeline marker: `\\` continuations joined,
    blank lines and `#` comments dropped."""
    if PIPELINE_MARKER not in text:
        raise AssertionError(f"README.md has no {PIPELINE_MARKER!r} line above its pipeline block")
    block = re.search(r"```sh\n(.*?)```", text.split(PIPELINE_MARKER, 1)[1], re.S)
    assert block, f"no ```sh block after {PIPELINE_MARKER!r}"
    joined = re.sub(r"\\\n", " ", block.group(1))
    return [
        shlex.join(words)
        for line in joined.splitlines()
        if (words := shlex.split(line, comments=True))
    ]


def user_environment(prefect_home: Path) -> dict[str, str]:
    """This process's environment without the variables of SCRUBBED_PREFIXES, with a fresh
    PREFECT_HOME and the venv's scripts first on PATH (where `degae-tools` is installed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env.pop("PYTHONPATH", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PREFECT_HOME"] = str(prefect_home)
    return env


def test_the_pipeline_block_is_read_as_a_shell_reads_it():
    text = (
        f"intro\n```sh\nnot this\n```\n{PIPELINE_MARKER}\n\n```sh\n"
        "# simulate first\n"
        "degae-tools simulate demo/c --datasets 4   # small\n"
        "\n"
        "degae-tools train --db demo/w.duckdb \\\n"
        "  --epochs 5\n"
        "degae-tools sql 'SELECT 1 AS one' --db demo/w.duckdb\n"
        "```\n```sh\ndegae-tools later\n```\n"
    )
    assert pipeline_commands(text) == [
        "degae-tools simulate demo/c --datasets 4",
        "degae-tools train --db demo/w.duckdb --epochs 5",
        "degae-tools sql 'SELECT 1 AS one' --db demo/w.duckdb",
    ]


def test_the_readme_pipeline_runs_quietly_outside_make(tmp_path):
    commands = pipeline_commands(README.read_text())
    assert commands and all(c.startswith("degae-tools ") for c in commands), commands
    run_quietly(commands, tmp_path)


def run_quietly(commands: list[str], tmp_path: Path) -> None:
    """Run each command in a fresh working folder and Prefect home; each must exit 0 and print
    no traceback, no ERROR and no telemetry line, and a command that starts a temporary Prefect
    server says so in one line naming PREFECT_API_URL."""
    env = user_environment(tmp_path / "prefect-home")
    work = tmp_path / "work"
    work.mkdir()
    servers = 0
    for command in commands:
        done = subprocess.run(
            shlex.split(command),
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{command} exited {done.returncode}:\n{output}"
        noise = [line for line in output.splitlines() if NOISE.search(line)]
        assert not noise, f"{command} printed:\n" + "\n".join(noise[:20])
        said = [line for line in output.splitlines() if "temporary Prefect server" in line]
        assert len(said) <= 1 and all("PREFECT_API_URL" in line for line in said), said
        servers += len(said)
    assert servers, "no command said it started a temporary Prefect server"
