"""Reader for the sample annotation of a GEO series matrix (``GSExxx_series_matrix.txt[.gz]``).

A series matrix starts with tab-separated ``!Series_*`` lines (one value each) and ``!Sample_*``
lines (one quoted cell per sample, several ``!Sample_characteristics_ch1`` lines each holding
``key: value`` cells), then the expression table between ``!series_matrix_table_begin`` and
``!series_matrix_table_end`` (GEOquery vignette "Understanding GEO data formats"). Only the
annotation is read; reading stops at the table.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from degae_tools.errors import GEOSeriesMatrixError
from degae_tools.sources import iter_lines

TABLE_BEGIN = "!series_matrix_table_begin"
SAMPLE_FIELDS = ("!Sample_title", "!Sample_source_name_ch1")
CHARACTERISTICS = "!Sample_characteristics_ch1"
SOURCE_NAME_ROW = 0
GSE = re.compile(r"GSE\d+")
GSM = re.compile(r"GSM\d+")
GPL = re.compile(r"GPL\d+")


@dataclass(frozen=True)
class SeriesMatrix:
    """A GEO series' accession, platforms, title, samples and per-sample characteristics.

    ``characteristics`` has one row per non-empty cell: ``row`` 0 is ``source_name_ch1`` (key
    ``source_name``), rows 1.. are the ``!Sample_characteristics_ch1`` lines in file order.
    """

    gse: str
    platforms: list[str]
    title: str | None
    samples: pl.DataFrame
    characteristics: pl.DataFrame


def read_series_matrix(path: str | Path) -> SeriesMatrix:
    """Read the series and sample annotation of a GEO series matrix, not its expression table."""
    series: dict[str, list[str]] = {}
    sample_lines: dict[str, tuple[int, list[str]]] = {}
    characteristic_lines: list[tuple[int, list[str]]] = []
    sample_platforms: list[str] = []
    for number, line in iter_lines(path, GEOSeriesMatrixError):
        if line.startswith(TABLE_BEGIN):
            break
        if not line.strip():
            continue
        if not line.startswith("!"):
            raise GEOSeriesMatrixError(
                path, number, f"expected a '!Series_' or '!Sample_' line, got {line[:60]!r}"
            )
        tag, _, rest = line.partition("\t")
        cells = [_unquote(cell) for cell in rest.split("\t")] if rest else []
        if tag.startswith("!Series_"):
            series.setdefault(tag, []).extend(cells)
        elif tag == CHARACTERISTICS:
            characteristic_lines.append((number, cells))
        elif tag == "!Sample_platform_id":
            sample_platforms.extend(cells)
        elif tag.startswith("!Sample_"):
            sample_lines.setdefault(tag, (number, cells))
    else:
        raise GEOSeriesMatrixError(
            path, None, f"expected {TABLE_BEGIN!r} after the annotation (truncated file?)"
        )
    gse = _series_accession(path, series)
    n_samples = _sample_count(sample_lines, characteristic_lines)
    gsms = _sample_accessions(path, sample_lines, n_samples)
    samples = {"gsm": gsms}
    for tag in SAMPLE_FIELDS:
        number, cells = sample_lines.get(tag, (None, [None] * len(gsms)))
        _check_width(path, number, tag, cells, len(gsms))
        samples[tag.removeprefix("!Sample_").removesuffix("_ch1")] = [
            cell or None for cell in cells
        ]
    records = _characteristics(path, gsms, samples["source_name"], characteristic_lines)
    platforms = series.get("!Series_platform_id") or sample_platforms
    return SeriesMatrix(
        gse=gse,
        platforms=list(dict.fromkeys(p for p in platforms if GPL.fullmatch(p))),
        title=(series.get("!Series_title") or [None])[0],
        samples=pl.DataFrame(
            samples, schema={"gsm": pl.String, "title": pl.String, "source_name": pl.String}
        ),
        characteristics=pl.DataFrame(
            records,
            schema={"gsm": pl.String, "row": pl.Int64, "key": pl.String, "value": pl.String},
            orient="row",
        ),
    )


def _unquote(cell: str) -> str:
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == cell[-1] == '"':
        return cell[1:-1].strip()
    return cell


def _series_accession(path: str | Path, series: dict[str, list[str]]) -> str:
    accessions = series.get("!Series_geo_accession", [])
    if not accessions or not GSE.fullmatch(accessions[0]):
        raise GEOSeriesMatrixError(
            path, None, f"expected a '!Series_geo_accession' line with a GSE, got {accessions[:1]}"
        )
    return accessions[0]


def _sample_count(
    sample_lines: dict[str, tuple[int, list[str]]], characteristic_lines: list[tuple[int, list]]
) -> int | None:
    """How many samples the series has: the cell count most `!Sample_` lines agree on (ties go
    to `!Sample_geo_accession`), so that the one line that differs is the one named wrong."""
    widths = Counter(len(cells) for _, cells in [*sample_lines.values(), *characteristic_lines])
    if not widths:
        return None
    accessions = sample_lines.get("!Sample_geo_accession", (None, []))[1]
    return max(widths, key=lambda w: (widths[w], w == len(accessions)))


def _sample_accessions(
    path: str | Path, sample_lines: dict[str, tuple[int, list[str]]], n_samples: int | None
) -> list[str]:
    if "!Sample_geo_accession" not in sample_lines:
        raise GEOSeriesMatrixError(path, None, "expected a '!Sample_geo_accession' line")
    number, gsms = sample_lines["!Sample_geo_accession"]
    if n_samples is not None and len(gsms) != n_samples:
        raise GEOSeriesMatrixError(
            path,
            number,
            f"expected {n_samples} GSM accessions (the cells of the other !Sample_ lines), "
            f"got {len(gsms)}",
        )
    for gsm in gsms:
        if not GSM.fullmatch(gsm):
            raise GEOSeriesMatrixError(path, number, f"expected GSM accessions, got {gsm[:40]!r}")
    if len(set(gsms)) != len(gsms):
        raise GEOSeriesMatrixError(path, number, "duplicate GSM accessions")
    return gsms


def _check_width(
    path: str | Path, number: int | None, tag: str, cells: list, n_samples: int
) -> None:
    if len(cells) != n_samples:
        raise GEOSeriesMatrixError(
            path, number, f"expected {n_samples} sample cells in {tag}, got {len(cells)}"
        )


def _characteristics(
    path: str | Path,
    gsms: list[str],
    source_names: list[str | None],
    lines: list[tuple[int, list[str]]],
) -> list[tuple[str, int, str, str]]:
    records = [
        (gsm, SOURCE_NAME_ROW, "source_name", name)
        for gsm, name in zip(gsms, source_names, strict=True)
        if name
    ]
    for row, (number, cells) in enumerate(lines, start=1):
        _check_width(path, number, CHARACTERISTICS, cells, len(gsms))
        for gsm, cell in zip(gsms, cells, strict=True):
            key, colon, value = cell.partition(":")
            key, value = key.strip(), value.strip()
            if not colon or not key:
                key, value = f"characteristics_{row}", cell.strip()
            if value:
                records.append((gsm, row, key, value))
    return records
