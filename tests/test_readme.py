"""The README tells a new user the truth: two commands first, and the current CLI."""

from __future__ import annotations

import re
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
