"""Damaged input: every reader either reads it or raises its own named InputFileError.

``DEGAE_FUZZ_EXAMPLES`` sets hypothesis' examples per reader and strategy (default 50).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from degae_tools.errors import (
    AnnotationError,
    DEE2CountsError,
    DEE2MetadataError,
    GEOSeriesMatrixError,
    InputFileError,
    OBOError,
)
from degae_tools.groups import contrasts, infer_groups
from degae_tools.sources.dee2 import iter_metadata, read_count_matrix, read_gene_info
from degae_tools.sources.gaf import iter_gaf, iter_gene2go
from degae_tools.sources.geo import read_series_matrix
from degae_tools.sources.obo import read_obo
from tests.helpers import SHARED_DATA

EXAMPLES = int(os.environ.get("DEGAE_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

METADATA = (
    "SRR_accession\tQC_summary\tSRX_accession\tSRS_accession\tSRP_accession\t"
    "Experiment_title\tGEO_series\n"
    "SRR1001\tPASS\tSRX1\tSRS1\tSRP1\tGSM11: WT liver\tGSE5;GSE6\n"
    "SRR1002\tWARN(2,6)\tSRX2\tSRS2\tSRP1\tGSM12: KO liver\tGSE5\n"
    "SRR1003\tFAIL(3)\tSRX3\tSRS3\tSRP1\tIllumina HiSeq\t\n"
)
WIDE = "GeneID\tSRR1\tSRR2\nENSMUSG01\t0\t12\nENSMUSG02\t7\t3\nENSMUSG03\t1\t0\n"
LONG = "SRR1\tg1\t4\nSRR1\tg2\t0\nSRR2\tg1\t9\nSRR2\tg2\t1\n"
GENE_INFO = (
    "GeneID\tGeneSymbol\tmean\tmedian\tlongest_isoform\tmerged\n"
    "ENSMUSG01\tGnai3\t3000\t2900\t3262\t3300\nENSMUSG02\tPbsn\t800\t800\t902\t950\n"
)
SERIES = (
    '!Series_title\t"A study"\n!Series_geo_accession\t"GSE5"\n!Series_platform_id\t"GPL1"\n'
    '!Sample_title\t"a"\t"b"\t"c"\t"d"\n'
    '!Sample_geo_accession\t"GSM11"\t"GSM12"\t"GSM13"\t"GSM14"\n'
    '!Sample_source_name_ch1\t"liver"\t"liver"\t"liver"\t"liver"\n'
    '!Sample_characteristics_ch1\t"genotype: WT"\t"genotype: WT"\t"genotype: KO"\t"genotype: KO"\n'
    '!Sample_characteristics_ch1\t"age: 8 wk"\t"8 wk"\t""\t"age: 9 wk"\n'
    '!series_matrix_table_begin\n"ID_REF"\t"GSM11"\n'
)
OBO = (
    "format-version: 1.2\ndata-version: releases/2022-07-01\n\n"
    '[Term]\nid: GO:0000001\nname: a\nnamespace: biological_process\ndef: "x \\" y" []\n\n'
    "[Term]\nid: GO:0000002\nname: b\nnamespace: biological_process\nalt_id: GO:0000009\n"
    "is_a: GO:0000001 ! a\nrelationship: part_of GO:0000001 ! a\n\n"
    "[Term]\nid: GO:0000003\nname: c\nnamespace: cellular_component\nis_obsolete: true\n"
)
GAF = "!gaf-version: 2.1\n" + "".join(
    (SHARED_DATA / "mgi_sample.gaf").read_text().splitlines(keepends=True)[1:8]
)
GENE2GO = (
    "#tax_id\tGeneID\tGO_ID\tEvidence\tQualifier\tGO_term\tPubMed\tCategory\n"
    "10090\t11287\tGO:0005515\tIPI\t-\tprotein binding\t12345\tFunction\n"
    "10090\t11288\tGO:0008150\tND\t-\tbiological_process\t-\tProcess\n"
)


def read_series_and_group(path: Path) -> None:
    series = read_series_matrix(path)
    grouping = infer_groups(series.characteristics, gse=series.gse)
    if grouping is not None:
        contrasts(grouping)


READERS: dict[str, tuple[str, str, Callable[[Path], object], type[InputFileError]]] = {
    "metadata": (
        "mmusculus_metadata.tsv.cut",
        METADATA,
        lambda p: list(iter_metadata(p, 2)),
        DEE2MetadataError,
    ),
    "wide_counts": ("GeneCountMatrix.tsv", WIDE, read_count_matrix, DEE2CountsError),
    "long_counts": ("SRR.se.tsv", LONG, read_count_matrix, DEE2CountsError),
    "gene_info": ("GeneInfo.tsv", GENE_INFO, read_gene_info, DEE2CountsError),
    "series_matrix": (
        "GSE5_series_matrix.txt",
        SERIES,
        read_series_and_group,
        GEOSeriesMatrixError,
    ),
    "obo": ("go-basic.obo", OBO, read_obo, OBOError),
    "gaf": ("mgi.gaf", GAF, lambda p: list(iter_gaf(p, 3)), AnnotationError),
    "gene2go": ("gene2go", GENE2GO, lambda p: list(iter_gene2go(p, 2)), AnnotationError),
}


@st.composite
def damaged(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few bytes flipped, inserted or deleted, maybe gzipped, maybe truncated."""
    data = bytearray(seed)
    edits = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["flip", "insert", "delete"]),
                st.integers(0, len(seed)),
                st.binary(min_size=1, max_size=6)
                | st.sampled_from([b"\t", b"\n", b"\x00", b":", b'"', b"-1", b"\xff"]),
            ),
            max_size=4,
        )
    )
    for kind, position, chunk in edits:
        position = min(position, len(data))
        if kind == "flip" and position < len(data):
            data[position] ^= chunk[0] or 1
        elif kind == "insert":
            data[position:position] = chunk
        else:
            del data[position : position + len(chunk)]
    if draw(st.booleans()):
        data = bytearray(gzip.compress(bytes(data), mtime=0))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def read_or_named_error(directory: Path, reader: str, content: bytes) -> None:
    name, _, read, error = READERS[reader]
    path = directory / name
    path.write_bytes(content)
    try:
        read(path)
    except InputFileError as exc:
        assert isinstance(exc, error), f"{reader} raised {type(exc).__name__}: {exc}"


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("reader", list(READERS))
def test_seed_files_are_valid(directory: Path, reader: str) -> None:
    name, seed, read, _ = READERS[reader]
    (directory / name).write_text(seed)
    read(directory / name)


@pytest.mark.parametrize("reader", list(READERS))
@FUZZ
@given(data=st.data())
def test_damaged_files_raise_only_named_errors(directory: Path, reader: str, data) -> None:
    content = data.draw(damaged(READERS[reader][1].encode()))
    read_or_named_error(directory, reader, content)


@pytest.mark.parametrize("reader", list(READERS))
@FUZZ
@given(content=st.binary(max_size=600))
def test_garbage_raises_only_named_errors(directory: Path, reader: str, content: bytes) -> None:
    read_or_named_error(directory, reader, content)
