"""The README's CLI reference, generated from the commands' own `--help`.

    python -m degae_tools.cli_reference > /tmp/ref.md   # paste between the README markers

`tests/test_readme.py` fails when the README's copy is out of date.
"""

from __future__ import annotations

import click

from degae_tools.cli import main

START = "<!-- cli-reference:start -->"
END = "<!-- cli-reference:end -->"


def reference() -> str:
    """Markdown: one `--help` block per command, in alphabetical order."""
    parts = [START, ""]
    with click.Context(main, info_name="degae-tools", terminal_width=100) as ctx:
        parts += ["```text", main.get_help(ctx).rstrip(), "```", ""]
        for name in sorted(main.list_commands(ctx)):
            command = main.get_command(ctx, name)
            with click.Context(command, parent=ctx, info_name=name, terminal_width=100) as sub:
                parts += [f"### `degae-tools {name}`", "", "```text"]
                parts += [command.get_help(sub).rstrip(), "```", ""]
    parts.append(END)
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference())
