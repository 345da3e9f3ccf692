"""GEO series matrix reader: series fields, samples, characteristics; stops at the table."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from degae_tools.errors import GEOSeriesMatrixError
from degae_tools.sources.geo import read_series_matrix

HEAD = """!Series_title\t"Liver response to drug X in knockout mice"
!Series_geo_accession\t"GSE123456"
!Series_platform_id\t"GPL19057"
!Series_sample_id\t"GSM1 GSM2 GSM3 GSM4 "

!Sample_title\t"WT vehicle 1"\t"WT vehicle 2"\t"KO drug 1"\t"KO drug 2"
!Sample_geo_accession\t"GSM1"\t"GSM2"\t"GSM3"\t"GSM4"
!Sample_source_name_ch1\t"liver"\t"liver"\t"liver"\t"liver"
!Sample_characteristics_ch1\t"genotype: WT"\t"genotype: WT"\t"genotype: KO"\t"genotype: KO"
!Sample_characteristics_ch1\t"treatment: vehicle"\t"treatment: vehicle"\t"treatment: drug X"\t""
!Sample_characteristics_ch1\t"8 weeks"\t"8 weeks"\t"time: 10:30"\t"8 weeks"
!Sample_platform_id\t"GPL19057"\t"GPL19057"\t"GPL19057"\t"GPL19057"
"""
TABLE = """!series_matrix_table_begin
"ID_REF"\t"GSM1"\t"GSM2"\t"GSM3"\t"GSM4"
this line is not read\x00\xff
!series_matrix_table_end
"""


@pytest.fixture
def series_file(tmp_path: Path) -> Path:
    path = tmp_path / "GSE123456_series_matrix.txt"
    path.write_text(HEAD + TABLE)
    return path


def test_series_fields(series_file: Path) -> None:
    series = read_series_matrix(series_file)
    assert series.gse == "GSE123456"
    assert series.platforms == ["GPL19057"]
    assert series.title == "Liver response to drug X in knockout mice"


def test_samples_in_file_order(series_file: Path) -> None:
    samples = read_series_matrix(series_file).samples
    assert samples.columns == ["gsm", "title", "source_name"]
    assert samples.row(2) == ("GSM3", "KO drug 1", "liver")
    assert samples["gsm"].to_list() == ["GSM1", "GSM2", "GSM3", "GSM4"]


def test_characteristics_split_key_and_value_at_the_first_colon(series_file: Path) -> None:
    chars = read_series_matrix(series_file).characteristics
    gsm3 = chars.filter(pl.col("gsm") == "GSM3").sort("row")
    assert gsm3.rows() == [
        ("GSM3", 0, "source_name", "liver"),
        ("GSM3", 1, "genotype", "KO"),
        ("GSM3", 2, "treatment", "drug X"),
        ("GSM3", 3, "time", "10:30"),
    ]


def test_cells_without_colon_get_a_row_key_and_empty_cells_no_row(series_file: Path) -> None:
    chars = read_series_matrix(series_file).characteristics
    gsm4 = chars.filter(pl.col("gsm") == "GSM4").sort("row")
    assert gsm4.select("row", "key", "value").rows() == [
        (0, "source_name", "liver"),
        (1, "genotype", "KO"),
        (3, "characteristics_3", "8 weeks"),
    ]


def test_reading_stops_at_the_expression_table(series_file: Path) -> None:
    assert read_series_matrix(series_file).samples.height == 4


def test_gzipped_series_matrix(tmp_path: Path, series_file: Path) -> None:
    packed = tmp_path / "GSE123456_series_matrix.txt.gz"
    packed.write_bytes(gzip.compress(series_file.read_bytes()))
    assert read_series_matrix(packed).characteristics.equals(
        read_series_matrix(series_file).characteristics
    )


def test_missing_table_begin_means_a_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "GSE1_series_matrix.txt"
    path.write_text(HEAD)
    with pytest.raises(GEOSeriesMatrixError, match="series_matrix_table_begin"):
        read_series_matrix(path)


def test_wrong_number_of_sample_cells_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "GSE1_series_matrix.txt"
    path.write_text(HEAD.replace('\t"treatment: drug X"\t""', '\t"treatment: drug X"') + TABLE)
    with pytest.raises(GEOSeriesMatrixError) as error:
        read_series_matrix(path)
    assert str(error.value) == (
        "GEOSeriesMatrixError: GSE1_series_matrix.txt line 10: "
        "expected 4 sample cells in !Sample_characteristics_ch1, got 3"
    )


def test_missing_series_accession_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "GSE1_series_matrix.txt"
    path.write_text(HEAD.replace('!Series_geo_accession\t"GSE123456"\n', "") + TABLE)
    with pytest.raises(GEOSeriesMatrixError, match="Series_geo_accession"):
        read_series_matrix(path)


def test_truncated_gzip_raises_the_named_error(tmp_path: Path, series_file: Path) -> None:
    packed = gzip.compress(series_file.read_bytes())
    path = tmp_path / "GSE123456_series_matrix.txt.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(GEOSeriesMatrixError):
        read_series_matrix(path)


def test_a_broken_sample_accession_row_is_named_at_its_own_line(tmp_path: Path) -> None:
    """The other !Sample_ lines agree on four samples, so the accession line is the wrong one."""
    path = tmp_path / "GSE1_series_matrix.txt"
    path.write_text(HEAD.replace('"GSM3"\t"GSM4"', '"GSM3""GSM4"') + TABLE)
    with pytest.raises(GEOSeriesMatrixError) as error:
        read_series_matrix(path)
    assert str(error.value).startswith("GEOSeriesMatrixError: GSE1_series_matrix.txt line 7: ")
    assert "expected 4 GSM accessions" in str(error.value)
