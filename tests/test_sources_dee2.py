"""DEE2 readers: metadata (species .tsv.cut and bundle MetadataSummary.tsv), counts, gene info."""

from __future__ import annotations

import gzip
import time
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from degae_tools.errors import DEE2CountsError, DEE2MetadataError
from degae_tools.sources import Rejection
from degae_tools.sources.dee2 import (
    CountMatrix,
    iter_metadata,
    qc_status,
    read_count_matrix,
    read_gene_info,
)
from tests.helpers import SHARED_DATA

BUNDLE = SHARED_DATA / "dee2" / "DEE_count_data.zip"
CUT_HEADER = (
    "SRR_accession\tQC_summary\tSRX_accession\tSRS_accession\tSRP_accession\t"
    "Experiment_title\tGEO_series\n"
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dee2_bundle")
    with zipfile.ZipFile(BUNDLE) as archive:
        archive.extractall(folder)
    return folder


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def cut_file(tmp_path: Path, *rows: str) -> Path:
    return write(tmp_path / "mmusculus_metadata.tsv.cut", CUT_HEADER + "".join(rows))


def test_bundle_metadata_finds_gsm_gse_and_title_by_pattern(bundle: Path) -> None:
    (runs,) = list(iter_metadata(bundle / "MetadataSummary.tsv"))
    assert runs["srr"].to_list() == ["SRR363796", "SRR363797", "SRR363798", "SRR363799"]
    assert runs["gsm"].to_list() == ["GSM829554", "GSM829555", "GSM829556", "GSM829557"]
    assert runs["gse"].unique().to_list() == ["GSE33543"]
    assert runs["srp"].unique().to_list() == ["SRP009256"]
    assert runs["title"][0] == "GSM829554: 4SU_GLD1_PARCLIP_1"
    assert runs["qc_status"].unique().to_list() == ["FAIL"]
    assert runs["qc_summary"][0] == "FAIL(2,3,4,6,7)"
    assert runs["line"].to_list() == [2, 3, 4, 5]
    assert runs["species"].to_list() == [None] * 4


def test_species_cut_file_takes_first_gse_and_gsm_from_title(tmp_path: Path) -> None:
    path = cut_file(
        tmp_path,
        "SRR1000001\tPASS\tSRX1\tSRS1\tSRP1\tGSM111: WT liver rep1\tGSE10;GSE20\n",
        "SRR1000002\tWARN(2,6)\tSRX2\tSRS2\tSRP1\tIllumina HiSeq 2500 sequencing\t\n",
    )
    (runs,) = list(iter_metadata(path))
    assert runs["species"].to_list() == ["mmusculus", "mmusculus"]
    assert runs["gse"].to_list() == ["GSE10", None]
    assert runs["gsm"].to_list() == ["GSM111", None]
    assert runs["qc_status"].to_list() == ["PASS", "WARN"]
    assert runs["title"][1] == "Illumina HiSeq 2500 sequencing"


def test_metadata_comes_in_bounded_batches(tmp_path: Path) -> None:
    rows = [f"SRR{i}\tPASS\tSRX{i}\tSRS{i}\tSRP1\tGSM{i}: x\tGSE1\n" for i in range(5)]
    batches = list(iter_metadata(cut_file(tmp_path, *rows), batch_size=2))
    assert [batch.height for batch in batches] == [2, 2, 1]
    assert pl.concat(batches)["line"].to_list() == [2, 3, 4, 5, 6]


def test_bad_rows_are_rejected_with_their_line_and_skipped(tmp_path: Path) -> None:
    path = cut_file(
        tmp_path,
        "SRR1\tPASS\tSRX1\tSRS1\tSRP1\tGSM1: a\tGSE1\n",
        "XYZ12\tPASS\tSRX2\tSRS2\tSRP1\tGSM2: b\tGSE1\n",
        "SRR3\tBLANK\tSRX3\tSRS3\tSRP1\tGSM3: c\tGSE1\n",
    )
    rejected: list[Rejection] = []
    (runs,) = list(iter_metadata(path, on_reject=rejected.append))
    assert runs["srr"].to_list() == ["SRR1"]
    assert [(r.line, r.record.split("\t")[0]) for r in rejected] == [(3, "XYZ12"), (4, "SRR3")]
    assert "run accession" in rejected[0].reason
    assert "QC summary" in rejected[1].reason


def test_wrong_field_count_names_file_line_and_expectation(tmp_path: Path) -> None:
    path = cut_file(tmp_path, "SRR1\tPASS\tSRX1\tSRS1\tSRP1\tt\tGSE1\n", "SRR2\tPASS\tSRX2\n")
    with pytest.raises(DEE2MetadataError) as error:
        list(iter_metadata(path))
    assert str(error.value) == (
        "DEE2MetadataError: mmusculus_metadata.tsv.cut line 3: "
        "expected 7 tab-separated fields, got 3"
    )


def test_wrong_header_is_a_file_error(tmp_path: Path) -> None:
    path = write(tmp_path / "runs.tsv", "run\tqc\tgse\nSRR1\tPASS\tGSE1\n")
    with pytest.raises(DEE2MetadataError, match="line 1: expected a header starting"):
        list(iter_metadata(path))


def test_empty_metadata_file_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(DEE2MetadataError, match="empty file"):
        list(iter_metadata(write(tmp_path / "mmusculus_metadata.tsv.cut", "")))


def test_gzipped_metadata_reads_like_plain(tmp_path: Path, bundle: Path) -> None:
    plain = bundle / "MetadataSummary.tsv"
    packed = tmp_path / "MetadataSummary.tsv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert list(iter_metadata(packed))[0].equals(list(iter_metadata(plain))[0])


def test_truncated_gzip_metadata_raises_the_named_error(tmp_path: Path, bundle: Path) -> None:
    packed = gzip.compress((bundle / "MetadataSummary.tsv").read_bytes())
    path = tmp_path / "mmusculus_metadata.tsv.cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DEE2MetadataError, match="truncated gzip"):
        list(iter_metadata(path))


@pytest.mark.parametrize(
    ("summary", "status"), [("PASS", "PASS"), ("WARN(2,6)", "WARN"), ("FAIL(3,4,6,7)", "FAIL")]
)
def test_qc_status_is_the_word_before_the_codes(summary: str, status: str) -> None:
    assert qc_status(summary) == status


def test_qc_status_refuses_unknown_values() -> None:
    with pytest.raises(ValueError, match="unknown QC summary"):
        qc_status("BLANK")


def test_bundle_count_matrix_is_genes_by_runs_int32(bundle: Path) -> None:
    matrix = read_count_matrix(bundle / "GeneCountMatrix.tsv")
    assert matrix.counts.shape == (46_739, 4)
    assert matrix.counts.dtype == np.int32
    assert matrix.runs == ["SRR363796", "SRR363797", "SRR363798", "SRR363799"]
    assert matrix.gene_ids[:2] == ["WBGene00197333", "WBGene00198386"]
    assert matrix.counts.sum(axis=0).tolist() == [2214965, 2300399, 2706704, 4722588]


def long_text(matrix: CountMatrix) -> str:
    return "".join(
        f"{run}\t{gene}\t{matrix.counts[i, j]}\n"
        for j, run in enumerate(matrix.runs)
        for i, gene in enumerate(matrix.gene_ids)
    )


def test_long_counts_with_and_without_header_equal_the_wide_matrix(tmp_path: Path) -> None:
    wide = write(tmp_path / "wide.tsv", "GeneID\tSRR1\tSRR2\ng1\t0\t5\ng2\t7\t3\ng3\t1\t0\n")
    expected = read_count_matrix(wide)
    headerless = write(tmp_path / "long.tsv", long_text(expected))
    headed = write(tmp_path / "long_h.tsv", "SRR_accession\tGeneID\tcount\n" + long_text(expected))
    for path in (headerless, headed):
        matrix = read_count_matrix(path)
        assert matrix.runs == ["SRR1", "SRR2"]
        assert matrix.gene_ids == ["g1", "g2", "g3"]
        np.testing.assert_array_equal(matrix.counts, expected.counts)


def test_star_summary_rows_are_not_genes(tmp_path: Path) -> None:
    text = "SRR1\tN_unmapped\t12\nSRR1\tN_ambiguous\t3\nSRR1\tg1\t4\n"
    assert read_count_matrix(write(tmp_path / "star.tsv", text)).gene_ids == ["g1"]


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("g1\t1\t2\ng2\t-3\t4\n", 3, "non-negative integer count, got '-3'"),
        ("g1\t1\t2\ng2\t3\t4\ng3\t1.5\t2\n", 4, "non-negative integer count, got '1.5'"),
        ("g1\t1\t2\ng2\t3\n", 3, "expected 3 tab-separated fields, got 2"),
        ("g1\t1\t2\ng2\t3\t4\t5\n", 3, "expected 3 tab-separated fields, got 4"),
        ("g1\t1\t2\ng1\t3\t4\n", 3, "duplicate gene ID 'g1'"),
    ],
)
def test_bad_wide_counts_name_the_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = write(tmp_path / "GeneCountMatrix.tsv", "GeneID\tSRR1\tSRR2\n" + body)
    with pytest.raises(DEE2CountsError) as error:
        read_count_matrix(path)
    assert f"line {line}: " in str(error.value)
    assert message in str(error.value)


def test_long_counts_must_cover_every_run_and_gene(tmp_path: Path) -> None:
    path = write(tmp_path / "long.tsv", "SRR1\tg1\t1\nSRR1\tg2\t2\nSRR2\tg1\t3\n")
    with pytest.raises(DEE2CountsError, match="SRR2 lacks g2"):
        read_count_matrix(path)


def test_long_counts_refuse_a_repeated_pair(tmp_path: Path) -> None:
    path = write(tmp_path / "long.tsv", "SRR1\tg1\t1\nSRR1\tg1\t2\n")
    with pytest.raises(DEE2CountsError, match="line 2: duplicate run and gene"):
        read_count_matrix(path)


def test_unknown_count_layout_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(DEE2CountsError, match="line 1: expected a header 'GeneID"):
        read_count_matrix(write(tmp_path / "x.tsv", "gene\tsample\ng1\t3\n"))


def test_mouse_sized_matrix_reads_fast(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    counts = rng.negative_binomial(2, 0.01, size=(48_978, 10))
    runs = [f"SRR{100 + j}" for j in range(10)]
    table = pl.DataFrame({"GeneID": [f"ENSMUSG{i:011d}" for i in range(48_978)]}).with_columns(
        pl.Series(run, counts[:, j]) for j, run in enumerate(runs)
    )
    path = tmp_path / "GeneCountMatrix.tsv.gz"
    path.write_bytes(gzip.compress(table.write_csv(separator="\t").encode(), compresslevel=1))
    start = time.perf_counter()
    matrix = read_count_matrix(path)
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(matrix.counts, counts)
    assert elapsed < 30, f"{elapsed:.2f} s for 48,978 genes x 10 runs: something is quadratic"


def test_gene_info_length_is_the_longest_isoform(bundle: Path) -> None:
    info = read_gene_info(bundle / "GeneInfo.tsv")
    assert info.columns == ["gene_id", "symbol", "length"]
    assert info.height == 46_739
    row = info.filter(pl.col("gene_id") == "WBGene00015153").row(0)
    assert row == ("WBGene00015153", "B0348.5", 1178)


def test_gene_info_bad_length_names_the_line(tmp_path: Path) -> None:
    text = "GeneID\tGeneSymbol\tmean\tmedian\tlongest_isoform\tmerged\ng1\tA\t1\t1\tlong\t1\n"
    with pytest.raises(DEE2CountsError, match="line 2: expected a non-negative integer"):
        read_gene_info(write(tmp_path / "GeneInfo.tsv", text))


def test_a_latin1_title_is_read_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "mmusculus_metadata.tsv.cut"
    row = "SRR1\tPASS\tSRX1\tSRS1\tSRP1\tGSM1: liver 37\xb0C\tGSE1\n"
    path.write_bytes(CUT_HEADER.encode() + row.encode("latin-1"))
    (runs,) = list(iter_metadata(path))
    assert runs["title"].to_list() == ["GSM1: liver 37°C"]


def test_binary_garbage_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "mmusculus_metadata.tsv.cut"
    path.write_bytes(CUT_HEADER.encode() + b"SRR1\x00\x01\x02\xff\n")
    with pytest.raises(DEE2MetadataError, match="line 2: binary data"):
        list(iter_metadata(path))


def test_truncated_gzip_counts_raise_the_named_error(tmp_path: Path, bundle: Path) -> None:
    packed = gzip.compress((bundle / "GeneCountMatrix.tsv").read_bytes())
    path = tmp_path / "GeneCountMatrix.tsv.gz"
    path.write_bytes(packed[: len(packed) // 3])
    with pytest.raises(DEE2CountsError, match="truncated gzip"):
        read_count_matrix(path)


def test_empty_count_file_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(DEE2CountsError, match="empty file"):
        read_count_matrix(write(tmp_path / "GeneCountMatrix.tsv", "\n"))


def test_a_row_with_the_wrong_field_count_is_rejected_alone(tmp_path: Path) -> None:
    path = cut_file(
        tmp_path,
        "SRR1\tPASS\tSRX1\tSRS1\tSRP1\tGSM1: a\tGSE1\n",
        "SRR2\tPASS\tSRX2\n",
        "SRR3\tPASS\tSRX3\tSRS3\tSRP1\tGSM3: c\tGSE1\n",
    )
    rejected: list[Rejection] = []
    (runs,) = list(iter_metadata(path, on_reject=rejected.append))
    assert runs["srr"].to_list() == ["SRR1", "SRR3"]
    assert [(r.line, r.reason) for r in rejected] == [(3, "expected 7 tab-separated fields, got 3")]


def test_a_tab_inside_a_gene_id_rejects_that_gene_info_line_only(tmp_path: Path) -> None:
    header = "GeneID\tGeneSymbol\tmean\tmedian\tlongest_isoform\tmerged\n"
    rows = "g1\tA\t1\t1\t10\t1\ng\t2\tB\t1\t1\t20\t1\ng3\tC\t1\t1\t30\t1\ng1\tD\t1\t1\t5\t1\n"
    path = write(tmp_path / "GeneInfo.tsv", header + rows)
    rejected: list[Rejection] = []
    info = read_gene_info(path, on_reject=rejected.append)
    assert info["gene_id"].to_list() == ["g1", "g3"] and info["length"].to_list() == [10, 30]
    assert [(r.line, r.reason) for r in rejected] == [
        (3, "expected 6 tab-separated fields, got 7"),
        (5, "duplicate gene ID 'g1'"),
    ]
    with pytest.raises(DEE2CountsError, match="line 3: expected 6 tab-separated fields"):
        read_gene_info(path)
