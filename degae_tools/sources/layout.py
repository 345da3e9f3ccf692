"""Where each kind of input file lives in a compendium folder, recognised by file name.

A folder written by `degae-tools simulate`, fetched from DEE2/GEO, or assembled by hand:
`*_metadata.tsv[.cut]` / `MetadataSummary.tsv` (DEE2 runs), `GeneInfo.tsv` (genes),
`*_GeneCountMatrix.tsv[.gz]` / `GeneCountMatrix.tsv` / `*.long.tsv[.gz]` (counts),
`*_series_matrix.txt[.gz]` (GEO), `*.obo[.gz]` (GO), `*.gaf[.gz]` / `gene2go*` (annotations),
`*gene_ids*.tsv[.gz]` (Entrez ↔ Ensembl). `ground_truth/` is never read.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

# Load order matters: genes before counts and annotations, the ontology before annotations.
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("gene_info", ("GeneInfo.tsv", "GeneInfo.tsv.gz", "*_GeneInfo.tsv*")),
    ("gene_xrefs", ("*gene_ids*.tsv", "*gene_ids*.tsv.gz")),
    ("ontology", ("*.obo", "*.obo.gz")),
    ("annotations", ("*.gaf", "*.gaf.gz", "gene2go*")),
    (
        "dee2_metadata",
        ("*_metadata.tsv", "*_metadata.tsv.cut", "*_metadata.tsv.gz", "MetadataSummary.tsv"),
    ),
    ("series_matrix", ("*_series_matrix.txt", "*_series_matrix.txt.gz")),
    ("counts", ("*GeneCountMatrix.tsv", "*GeneCountMatrix.tsv.gz", "*.long.tsv", "*.long.tsv.gz")),
)
IGNORED_DIRS = {"ground_truth", ".git", "__pycache__"}


def kind_of(path: Path) -> str | None:
    """The kind of input file `path` is, judged by its name, or None."""
    for kind, patterns in KINDS:
        if any(fnmatch.fnmatch(path.name, p) for p in patterns):
            return kind
    return None


def discover(source_dir: Path) -> dict[str, list[Path]]:
    """Every recognised input file under `source_dir`, by kind, in load order and sorted by path."""
    found: dict[str, list[Path]] = {kind: [] for kind, _ in KINDS}
    for path in sorted(Path(source_dir).rglob("*")):
        if not path.is_file() or IGNORED_DIRS & set(path.relative_to(source_dir).parts):
            continue
        kind = kind_of(path)
        if kind is not None:
            found[kind].append(path)
    return found
