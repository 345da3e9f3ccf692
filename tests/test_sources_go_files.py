"""GO file readers: OBO ontology, GAF 2.x and NCBI gene2go annotations."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import polars as pl
import pytest

from degae_tools.errors import AnnotationError, OBOError
from degae_tools.sources import Rejection
from degae_tools.sources.gaf import iter_gaf, iter_gene2go
from degae_tools.sources.obo import Ontology, read_obo
from tests.helpers import SHARED_DATA

DATA = SHARED_DATA
SMALL_OBO = """format-version: 1.2
data-version: releases/2099-01-01

[Term]
id: GO:0000001
name: root process
namespace: biological_process
def: "A \\"quoted\\" definition." [GOC:x]

[Term]
id: GO:0000002
name: child process
namespace: biological_process
alt_id: GO:0000099
is_a: GO:0000001 ! root process
relationship: part_of GO:0000003 ! part
relationship: has_part GO:0000001 ! not kept in go-basic

[Term]
id: GO:0000003
name: old process
namespace: biological_process
is_obsolete: true

[Typedef]
id: part_of
name: part of
"""
GAF_LINE = (
    "MGI\tMGI:1\tAbc1\t{qualifier}\tGO:0005634\tPMID:1\tIDA\t\tC\tname\t\tgene\t"
    "taxon:10090\t20200101\tMGI\t\t\n"
)


@pytest.fixture(scope="module")
def go_basic() -> tuple[Ontology, float]:
    start = time.perf_counter()
    ontology = read_obo(DATA / "go-basic.obo.gz")
    return ontology, time.perf_counter() - start


@pytest.fixture
def small_obo(tmp_path: Path) -> Ontology:
    path = tmp_path / "small.obo"
    path.write_text(SMALL_OBO)
    return read_obo(path)


def test_go_basic_has_43558_live_terms(go_basic: tuple[Ontology, float]) -> None:
    ontology, _ = go_basic
    assert ontology.terms.filter(~pl.col("is_obsolete")).height == 43_558
    assert ontology.data_version == "releases/2022-07-01"


def test_go_basic_edges_use_the_go_basic_relations(go_basic: tuple[Ontology, float]) -> None:
    edges = go_basic[0].edges
    assert set(edges["relation"].unique()) == {
        "is_a",
        "part_of",
        "regulates",
        "negatively_regulates",
        "positively_regulates",
    }
    first = edges.filter(pl.col("child") == "GO:0000001")
    assert first.rows() == [
        ("GO:0000001", "GO:0048308", "is_a"),
        ("GO:0000001", "GO:0048311", "is_a"),
    ]


def test_go_basic_parses_in_seconds(go_basic: tuple[Ontology, float]) -> None:
    assert go_basic[1] < 5.0, f"read_obo took {go_basic[1]:.1f} s"


def test_obo_terms_definitions_and_obsolete_flag(small_obo: Ontology) -> None:
    assert small_obo.terms.rows() == [
        ("GO:0000001", "root process", "biological_process", False, 'A "quoted" definition.'),
        ("GO:0000002", "child process", "biological_process", False, None),
        ("GO:0000003", "old process", "biological_process", True, None),
    ]


def test_obo_edges_keep_is_a_and_part_of_but_not_has_part(small_obo: Ontology) -> None:
    assert small_obo.edges.rows() == [
        ("GO:0000002", "GO:0000001", "is_a"),
        ("GO:0000002", "GO:0000003", "part_of"),
    ]


def test_obo_alt_ids_map_to_the_primary_id(small_obo: Ontology) -> None:
    assert small_obo.alt_ids == {"GO:0000099": "GO:0000002"}


def test_obo_term_without_namespace_names_its_stanza(tmp_path: Path) -> None:
    path = tmp_path / "bad.obo"
    path.write_text(SMALL_OBO.replace("namespace: biological_process\nis_obsolete", "is_obsolete"))
    with pytest.raises(OBOError, match="bad.obo line 19: expected id, name and namespace"):
        read_obo(path)


def test_obo_without_header_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.obo"
    path.write_text("[Term]\nid: GO:0000001\n")
    with pytest.raises(OBOError, match="line 1: expected 'format-version"):
        read_obo(path)


def test_mgi_gaf_rejects_rows_without_symbol() -> None:
    rejected: list[Rejection] = []
    rows = pl.concat(list(iter_gaf(DATA / "mgi_sample.gaf", 10, on_reject=rejected.append)))
    assert rows.height == 24  # 26 annotation lines, 2 without a symbol
    assert [(r.line, r.record.split("\t")[0]) for r in rejected] == [(13, "MGI"), (25, "UniProtKB")]
    assert all("empty DB Object Symbol" in r.reason for r in rejected)
    assert rows.columns[:8] == [
        "db",
        "db_object_id",
        "symbol",
        "qualifier",
        "go_id",
        "evidence",
        "aspect",
        "taxon",
    ]
    assert rows.row(0)[:8] == (
        "MGI",
        "MGI:1918911",
        "0610005C13Rik",
        "",
        "GO:0003674",
        "ND",
        "F",
        10090,
    )


def test_gaf_batches_are_bounded() -> None:
    sizes = [batch.height for batch in iter_gaf(DATA / "mgi_sample.gaf", 10)]
    assert sizes == [10, 10, 4]


def test_gaf_keeps_not_qualifiers_for_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "not.gaf"
    path.write_text(
        "!gaf-version: 2.2\n"
        + GAF_LINE.format(qualifier="NOT|located_in")
        + GAF_LINE.format(qualifier="located_in")
    )
    rows = pl.concat(list(iter_gaf(path)))
    assert rows["qualifier"].to_list() == ["NOT|located_in", "located_in"]
    assert rows.filter(~pl.col("qualifier").str.contains("NOT")).height == 1


def test_gaf_needs_its_version_line(tmp_path: Path) -> None:
    path = tmp_path / "x.gaf"
    path.write_text(GAF_LINE.format(qualifier=""))
    with pytest.raises(AnnotationError, match="x.gaf line 1: expected '!gaf-version: 2.x'"):
        list(iter_gaf(path))


def test_gaf_wrong_field_count_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.gaf"
    path.write_text("!gaf-version: 2.1\n!comment\n" + "MGI\tMGI:1\tAbc1\n")
    with pytest.raises(AnnotationError, match="line 3: expected 17 tab-separated fields, got 3"):
        list(iter_gaf(path))


def test_gene2go_human_reads_every_row() -> None:
    sizes = [batch.height for batch in iter_gene2go(DATA / "gene2go_human.tsv.gz", 100_000)]
    assert sum(sizes) == 348_116
    assert max(sizes) == 100_000


def test_gene2go_rows_are_typed_and_dashes_are_empty(tmp_path: Path) -> None:
    path = tmp_path / "gene2go.gz"
    header = "#tax_id\tGeneID\tGO_ID\tEvidence\tQualifier\tGO_term\tPubMed\tCategory\n"
    row = "10090\t11287\tGO:0005515\tIPI\tNOT enables\tprotein binding\t-\tFunction\n"
    bad = "10090\tx\tGO:0005515\tIPI\t-\tprotein binding\t-\tFunction\n"
    path.write_bytes(gzip.compress((header + row + bad).encode()))
    rejected: list[Rejection] = []
    (rows,) = list(iter_gene2go(path, on_reject=rejected.append))
    assert rows.row(0) == (
        10090,
        11287,
        "GO:0005515",
        "IPI",
        "NOT enables",
        "protein binding",
        None,
        "Function",
        2,
    )
    assert [r.line for r in rejected] == [3]


def test_gene2go_wrong_header_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "gene2go"
    path.write_text("tax_id\tGeneID\n")
    with pytest.raises(AnnotationError, match="line 1: expected the header"):
        list(iter_gene2go(path))


def test_gaf_row_with_the_wrong_field_count_is_rejected_alone_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "x.gaf"
    path.write_text("!gaf-version: 2.1\nMGI\tMGI:1\tAbc1\n" + GAF_LINE.format(qualifier=""))
    rejected: list[Rejection] = []
    rows = pl.concat(list(iter_gaf(path, on_reject=rejected.append)))
    assert rows["line"].to_list() == [3]
    assert [(r.line, r.reason) for r in rejected] == [
        (2, "expected 17 tab-separated fields, got 3")
    ]


CYCLIC_OBO = """format-version: 1.2

[Term]
id: GO:0000001
name: a
namespace: biological_process
is_a: GO:0000003

[Term]
id: GO:0000002
name: b
namespace: biological_process
is_a: GO:0000001
is_a: GO:0000002

[Term]
id: GO:0000003
name: c
namespace: biological_process
relationship: part_of GO:0000002
"""


def test_obo_cycles_and_self_loops_are_rejected_naming_their_terms(tmp_path: Path) -> None:
    path = tmp_path / "cyclic.obo"
    path.write_text(CYCLIC_OBO)
    rejected: list[Rejection] = []
    ontology = read_obo(path, on_reject=rejected.append)
    assert ontology.edges.rows() == [
        ("GO:0000001", "GO:0000003", "is_a"),
        ("GO:0000003", "GO:0000002", "part_of"),
    ]
    assert [r.line for r in rejected] == [13, 14]
    assert "is_a cycle GO:0000001 -> GO:0000003 -> GO:0000002 -> GO:0000001" in rejected[0].reason
    assert "self-loop: GO:0000002 is_a GO:0000002" in rejected[1].reason
    with pytest.raises(OBOError, match="cyclic.obo line 13: is_a cycle"):
        read_obo(path)
