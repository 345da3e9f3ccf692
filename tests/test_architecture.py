"""The layout is the architecture: imports run one way, without cycles, SQL files are all used,
and library functions stay short enough to read (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers import REPO
from warehouse.queries import query_names

PACKAGES = ("degae_tools", "warehouse", "flows")
# Modules below every layer, importable from anywhere: errors, file writes, output, thresholds.
LEAVES = {
    "degae_tools",
    "degae_tools.errors",
    "degae_tools.atomic",
    "degae_tools.console",
    "degae_tools.thresholds",
}
# Who may not import whom: (importer prefix, forbidden prefixes).
FORBIDDEN = [
    ("warehouse", ("degae_tools", "flows")),
    ("degae_tools.steps", ("degae_tools.cli", "flows", "prefect")),
    ("degae_tools.sources", ("degae_tools.steps", "degae_tools.cli", "flows", "warehouse")),
    ("degae_tools.models", ("degae_tools.steps", "degae_tools.cli", "flows", "warehouse")),
    ("degae_tools.limma", ("degae_tools.steps", "degae_tools.cli", "flows", "warehouse")),
    ("degae_tools.enrichment", ("degae_tools.steps", "degae_tools.cli", "flows", "warehouse")),
    ("flows", ("degae_tools.cli",)),
]
MAX_LINES = 60
# A function may run longer when a comment at its start says why.
LONG_MARKER = re.compile(r"#\s*long:", re.I)


def modules() -> dict[str, Path]:
    """Every project module by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules (and `prefect`) that `path` imports, at any depth of the file."""
    is_package = path.name == "__init__.py"
    base = name if is_package else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base.split(".")[: len(base.split(".")) - node.level + 1]
                module = ".".join(anchor + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets.add(module)
            targets |= {f"{module}.{alias.name}" for alias in node.names}
    resolved = set()
    for target in targets:
        if target.split(".")[0] == "prefect":
            resolved.add("prefect")
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(path, name, set(found)) for name, path in found.items()}


def test_no_import_cycles_among_the_projects_modules():
    edges = graph()
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if nxt in LEAVES or nxt not in edges:
                continue
            # A package's __init__ importing its own submodules is not a cycle of layers.
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_imports_run_one_way():
    wrong = []
    for name, targets in graph().items():
        for importer, forbidden in FORBIDDEN:
            if name == importer or name.startswith(importer + "."):
                wrong += [
                    f"{name} imports {t}"
                    for t in sorted(targets)
                    if t not in LEAVES and any(t == f or t.startswith(f + ".") for f in forbidden)
                ]
    assert not wrong, "\n".join(wrong)


def test_every_sql_query_file_is_used_and_every_named_query_exists():
    code = "\n".join(p.read_text() for package in PACKAGES for p in (REPO / package).rglob("*.py"))
    named = set(re.findall(r"""Query\(\s*["']([a-z_]+/[a-z0-9_]+)["']\s*\)""", code))
    files = set(query_names())
    assert named - files == set(), "Query names without a file"
    assert files - named == set(), "files in sql/queries that no code names"


def test_library_functions_read_in_one_screen():
    long = []
    for name, path in modules().items():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                head = "\n".join(lines[node.lineno - 1 : node.lineno + 3])
                if length > MAX_LINES and not LONG_MARKER.search(head):
                    long.append(f"{name}.{node.name}: {length} lines")
    assert not long, "functions over 60 lines without a '# long: why' comment:\n" + "\n".join(
        sorted(long)
    )
