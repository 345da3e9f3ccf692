"""The README's CLI reference, generated from the commands' own `--help`.

    python -m degae_tools.cli_reference > /tmp/ref.md   # paste between the README markers

`tests/test_readme.py` fails when the README's copy is out of date.
"""

from __future__ import annotations

from degae_tools.cli import main

START = "<!-- cli-reference:start -->"
END = "<!-- cli-reference:end -->"


def reference() -> str:
    """Markdown: one `--help` block per command, in alphabetical order."""
    parts = [START, ""]
    # make_context applies the group's context_settings (help names, width) as the CLI does.
    with main.make_context("degae-tools", [], resilient_parsing=True) as ctx:
        ctx.terminal_width = 100
        parts += ["```text", main.get_help(ctx).rstrip(), "```", ""]
        for name in sorted(main.list_commands(ctx)):
            command = main.get_command(ctx, name)
            with command.make_context(name, [], parent=ctx, resilient_parsing=True) as sub:
                parts += [f"### `degae-tools {name}`", "", "```text"]
                parts += [command.get_help(sub).rstrip(), "```", ""]
    parts.append(END)
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference())
