"""Readers for GO annotation files: GAF 2.x and NCBI ``gene2go``.

GAF 2.x (geneontology.org/docs/go-annotation-file-gaf-format-2.2): a ``!gaf-version: 2.x``
first line, ``!`` comment lines, then 17 tab-separated columns of which degae keeps DB, DB Object
ID, DB Object Symbol, Qualifier, GO ID, Evidence Code, Aspect and Taxon. ``NOT`` qualifiers are
kept in ``qualifier`` (``"NOT|enables"``) so that callers decide to drop them.
NCBI gene2go: header ``#tax_id GeneID GO_ID Evidence Qualifier GO_term PubMed Category``, ``-``
for an empty cell.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl

from degae_tools.errors import AnnotationError
from degae_tools.sources import OnReject, Rejection, iter_lines, reject

GAF_COLUMNS = 17
GAF_VERSION = re.compile(r"!gaf-version:\s*2(\.\d+)?")
GAF_SCHEMA = {
    "db": pl.String,
    "db_object_id": pl.String,
    "symbol": pl.String,
    "qualifier": pl.String,
    "go_id": pl.String,
    "evidence": pl.String,
    "aspect": pl.String,
    "taxon": pl.Int64,
    "line": pl.Int64,
}
GENE2GO_HEADER = (
    "#tax_id",
    "GeneID",
    "GO_ID",
    "Evidence",
    "Qualifier",
    "GO_term",
    "PubMed",
    "Category",
)
GENE2GO_SCHEMA = {
    "tax_id": pl.Int64,
    "gene_id": pl.Int64,
    "go_id": pl.String,
    "evidence": pl.String,
    "qualifier": pl.String,
    "go_term": pl.String,
    "pubmed": pl.String,
    "category": pl.String,
    "line": pl.Int64,
}
GO_ID = re.compile(r"GO:\d{7}")
EVIDENCE = re.compile(r"[A-Z]{2,4}")
TAXON = re.compile(r"taxon:([0-9]{1,18})")
NUMBER = re.compile(r"[0-9]{1,18}")
ASPECTS = ("P", "F", "C")
CATEGORIES = ("Process", "Function", "Component")


def iter_gaf(
    path: str | Path, batch_size: int = 50_000, on_reject: OnReject | None = None
) -> Iterator[pl.DataFrame]:
    """Yield GAF 2.x annotations in batches (columns: GAF_SCHEMA).

    ``qualifier`` is ``""`` when the file has none; rows with an empty symbol, a bad GO ID,
    evidence code, aspect or taxon go to ``on_reject``.
    """
    lines = iter_lines(path, AnnotationError)
    first = next(lines, None)
    if first is None:
        raise AnnotationError(path, None, "empty file; expected '!gaf-version: 2.x'")
    if not GAF_VERSION.match(first[1]):
        raise AnnotationError(path, 1, f"expected '!gaf-version: 2.x', got {first[1][:60]!r}")
    yield from _row_batches(
        path, lines, GAF_COLUMNS, _gaf_row, GAF_SCHEMA, batch_size, on_reject, comments=True
    )


def _gaf_row(fields: list[str]) -> tuple:
    db, object_id, symbol, qualifier, go_id, _, evidence, _, aspect = (
        f.strip() for f in fields[:9]
    )
    if not db or not object_id:
        raise ValueError("empty DB or DB Object ID")
    if not symbol:
        raise ValueError(f"empty DB Object Symbol for {db}:{object_id}")
    if not GO_ID.fullmatch(go_id):
        raise ValueError(f"bad GO ID {go_id!r}; expected GO:nnnnnnn")
    if not EVIDENCE.fullmatch(evidence):
        raise ValueError(f"bad evidence code {evidence!r}")
    if aspect not in ASPECTS:
        raise ValueError(f"bad aspect {aspect!r}; expected P, F or C")
    taxon = TAXON.match(fields[12].strip())
    if taxon is None:
        raise ValueError(f"bad taxon {fields[12][:40]!r}; expected taxon:nnnn")
    return (db, object_id, symbol, qualifier, go_id, evidence, aspect, int(taxon.group(1)))


def iter_gene2go(
    path: str | Path, batch_size: int = 50_000, on_reject: OnReject | None = None
) -> Iterator[pl.DataFrame]:
    """Yield NCBI gene2go rows in batches (columns: GENE2GO_SCHEMA; ``-`` becomes ``""``/null)."""
    lines = iter_lines(path, AnnotationError)
    first = next(lines, None)
    expected = "\t".join(GENE2GO_HEADER)
    if first is None:
        raise AnnotationError(path, None, f"empty file; expected the header {expected!r}")
    if tuple(first[1].split("\t")) != GENE2GO_HEADER:
        raise AnnotationError(path, 1, f"expected the header {expected!r}, got {first[1][:80]!r}")
    yield from _row_batches(
        path, lines, len(GENE2GO_HEADER), _gene2go_row, GENE2GO_SCHEMA, batch_size, on_reject
    )


def _row_batches(
    path: str | Path,
    lines: Iterator[tuple[int, str]],
    n_fields: int,
    parse: Callable[[list[str]], tuple],
    schema: dict,
    batch_size: int,
    on_reject: OnReject | None,
    comments: bool = False,
) -> Iterator[pl.DataFrame]:
    """Batches of parsed tab-separated rows (plus their line number); a row that `parse`
    refuses, or with the wrong field count, goes to `on_reject` (without it, the wrong field
    count raises)."""
    batch: list[tuple] = []
    for number, line in lines:
        if not line.strip() or (comments and line.startswith("!")):
            continue
        fields = line.split("\t")
        if len(fields) != n_fields:
            message = f"expected {n_fields} tab-separated fields, got {len(fields)}"
            reject(on_reject, AnnotationError(path, number, message), line)
            continue
        try:
            row = parse(fields)
        except ValueError as exc:
            if on_reject is not None:
                on_reject(Rejection(str(path), number, str(exc), line))
            continue
        batch.append((*row, number))
        if len(batch) >= batch_size:
            yield pl.DataFrame(batch, schema=schema, orient="row")
            batch = []
    if batch:
        yield pl.DataFrame(batch, schema=schema, orient="row")


def _gene2go_row(fields: list[str]) -> tuple:
    tax_id, gene_id, go_id, evidence, qualifier, go_term, pubmed, category = fields
    if not NUMBER.fullmatch(tax_id) or not NUMBER.fullmatch(gene_id):
        raise ValueError(f"bad tax_id or GeneID ({tax_id[:20]!r}, {gene_id[:20]!r})")
    if not GO_ID.fullmatch(go_id):
        raise ValueError(f"bad GO ID {go_id!r}; expected GO:nnnnnnn")
    if not EVIDENCE.fullmatch(evidence):
        raise ValueError(f"bad evidence code {evidence!r}")
    if category not in CATEGORIES:
        raise ValueError(f"bad category {category!r}; expected Process, Function or Component")
    return (
        int(tax_id),
        int(gene_id),
        go_id,
        evidence,
        "" if qualifier == "-" else qualifier,
        None if go_term == "-" else go_term,
        None if pubmed == "-" else pubmed,
        category,
    )
