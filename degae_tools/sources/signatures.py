"""Reader for wide signature matrices: one row per signature (its name first), one column per
gene (the header names them), as the LINCS L1000 consensus signatures are written; or the
transpose, one row per gene. Tab- or comma-separated, plain or gzip.

A row that cannot be read (wrong number of fields, a value that is not a number, a repeated
name) is reported to ``on_reject`` with its line and left out; empty cells and ``NA`` are
missing values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from degae_tools.errors import SignatureFileError
from degae_tools.sources import OnReject, Rejection, iter_lines

MISSING = {"", "NA", "NaN", "nan", "na", "null", "NULL"}


@dataclass(frozen=True)
class SignatureMatrix:
    """Signatures × genes values as read (NaN where a cell is empty), with where each came from.

    ``lines`` is each signature's line in the file; ``gene_lines`` each gene's (the header, 1,
    unless the file is transposed)."""

    names: list[str]
    lines: list[int]
    genes: list[str]
    gene_lines: list[int]
    values: np.ndarray


def read_signature_matrix(
    path: str | Path, transpose: bool = False, on_reject: OnReject | None = None
) -> SignatureMatrix:
    """The matrix in ``path``; ``transpose`` when its rows are genes and its columns signatures."""
    header, rows = _read_rows(Path(path), on_reject or (lambda r: None))
    names = [name for _, name, _ in rows]
    lines = [line for line, _, _ in rows]
    values = np.array([v for _, _, v in rows], dtype=np.float64).reshape(len(rows), len(header))
    if transpose:
        return SignatureMatrix(header, [1] * len(header), names, lines, values.T.copy())
    return SignatureMatrix(names, lines, header, [1] * len(header), values)


def _read_rows(path: Path, on_reject: OnReject) -> tuple[list[str], list[tuple]]:
    """The header's column names (less the first) and every readable (line, name, values) row."""
    lines = iter_lines(path, SignatureFileError)
    header_line = next((text for _, text in lines if text.strip()), None)
    if header_line is None:
        raise SignatureFileError(path, 1, "empty file: expected a header of gene names")
    sep = "\t" if "\t" in header_line else ","
    header = [c.strip().strip('"') for c in header_line.split(sep)][1:]
    _check_header(path, header)
    rows, seen = [], set()
    for number, text in lines:
        if not text.strip():
            continue
        fields = text.split(sep)
        name = fields[0].strip().strip('"')
        reason = _row_problem(fields, len(header) + 1, name, seen)
        values = None
        if reason is None:
            values, reason = _numbers(fields[1:], header)
        if reason is not None:
            on_reject(Rejection(str(path), number, reason, text[:200]))
            continue
        seen.add(name)
        rows.append((number, name, values))
    if not rows:
        raise SignatureFileError(path, None, "no readable row: expected one row per signature")
    return header, rows


def _check_header(path: Path, header: list[str]) -> None:
    if not header:
        raise SignatureFileError(path, 1, "the header names no column after the first")
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise SignatureFileError(path, 1, f"column names repeated in the header: {repeated[:5]}")


def _row_problem(fields: list[str], expected: int, name: str, seen: set[str]) -> str | None:
    if len(fields) != expected:
        return f"expected {expected} fields as in the header, got {len(fields)}"
    if not name:
        return "no name in the first field"
    if name in seen:
        return f"repeated name {name!r} (the first row with it is kept)"
    return None


def _numbers(fields: list[str], header: list[str]) -> tuple[list[float] | None, str | None]:
    """The row's values (NaN for empty or NA), or the first field that is not a number."""
    try:
        return list(map(float, fields)), None  # the common case: every field a number
    except ValueError:
        pass
    values = []
    for column, text in zip(header, fields, strict=True):
        text = text.strip()
        if text in MISSING:
            values.append(np.nan)
            continue
        try:
            values.append(float(text))
        except ValueError:
            return None, f"not a number in column {column}: {text[:40]!r}"
    return values, None
