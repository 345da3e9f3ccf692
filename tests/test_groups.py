"""The group-inference rule: from a series' characteristics to groups and contrasts."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from degae_tools.groups import contrasts, infer_groups, slugify
from degae_tools.sources import Rejection
from degae_tools.sources.geo import read_series_matrix


def characteristics(**keys: list[str]) -> pl.DataFrame:
    """One characteristics row per key (in argument order) and sample GSM1, GSM2, ..."""
    rows = [
        (f"GSM{i + 1}", row, key.replace("_", " "), value)
        for row, (key, values) in enumerate(keys.items())
        for i, value in enumerate(values)
        if value
    ]
    return pl.DataFrame(rows, schema=["gsm", "row", "key", "value"], orient="row")


def test_study_mode_splits_first_value_against_all_others() -> None:
    chars = characteristics(treatment=["drug A", "drug A", "drug B", "vehicle", "vehicle"])
    grouping = infer_groups(chars, mode="study", gse="GSE1")
    assert grouping is not None
    assert grouping.groups == {
        "drug A": ["GSM1", "GSM2"],
        "not drug A": ["GSM3", "GSM4", "GSM5"],
    }
    (contrast,) = contrasts(grouping)
    assert contrast.contrast_id == "GSE1:not-drug-a-vs-drug-a"
    assert (contrast.samples_a, contrast.samples_b) == (["GSM1", "GSM2"], ["GSM3", "GSM4", "GSM5"])


def test_study_mode_names_group_b_by_its_value_when_there_is_one() -> None:
    chars = characteristics(genotype=["KO", "KO", "WT", "WT"])
    (contrast,) = contrasts(infer_groups(chars, mode="study", gse="GSE1"))
    assert contrast.contrast_id == "GSE1:wt-vs-ko"


def test_degae_mode_takes_the_control_as_reference_wherever_it_is() -> None:
    chars = characteristics(treatment=["LPS", "LPS", "Vehicle", "Vehicle", "IL4", "IL4"])
    grouping = infer_groups(chars, mode="degae", gse="GSE7")
    assert grouping.reference == "Vehicle"
    assert [c.contrast_id for c in contrasts(grouping)] == [
        "GSE7:lps-vs-vehicle",
        "GSE7:il4-vs-vehicle",
    ]
    assert all(c.group_a == "Vehicle" for c in contrasts(grouping))


def test_degae_reference_prefers_the_value_with_most_control_words() -> None:
    chars = characteristics(
        condition=["WT drug", "WT drug", "WT vehicle", "WT vehicle", "KO vehicle", "KO vehicle"]
    )
    assert infer_groups(chars, gse="GSE1").reference == "WT vehicle"


def test_degae_reference_without_control_word_is_the_first_value() -> None:
    chars = characteristics(strain=["BALB/c", "BALB/c", "C57BL/6", "C57BL/6"])
    assert infer_groups(chars, gse="GSE1").reference == "BALB/c"


def test_control_words_match_whole_words_only() -> None:
    chars = characteristics(phenotype=["abnormal", "abnormal", "normal", "normal"])
    assert infer_groups(chars, gse="GSE1").reference == "normal"


def test_library_and_read_keys_are_dropped() -> None:
    chars = characteristics(
        library_strategy=["polyA", "polyA", "total", "total"],
        treatment=["vehicle", "drug", "vehicle", "drug"],
    )
    assert infer_groups(chars, gse="GSE1").key == "treatment"


def test_keys_with_replicate_values_are_dropped() -> None:
    chars = characteristics(
        sample=["rep1", "rep2", "rep1", "rep2"],
        diet=["chow", "chow", "high fat", "high fat"],
    )
    assert infer_groups(chars, gse="GSE1").key == "diet"


def test_single_valued_keys_are_dropped_and_fewest_values_win() -> None:
    chars = characteristics(
        tissue=["liver"] * 6,
        time=["0h", "2h", "4h", "0h", "2h", "4h"],
        genotype=["WT", "WT", "WT", "KO", "KO", "KO"],
    )
    grouping = infer_groups(chars, gse="GSE1")
    assert grouping.key == "genotype"
    assert grouping.groups == {"WT": ["GSM1", "GSM2", "GSM3"], "KO": ["GSM4", "GSM5", "GSM6"]}


def test_ties_go_to_the_first_key_in_file_order() -> None:
    chars = characteristics(sex=["M", "F", "M", "F"], genotype=["WT", "WT", "KO", "KO"])
    assert infer_groups(chars, gse="GSE1").key == "sex"


def test_samples_without_the_key_are_excluded() -> None:
    chars = characteristics(genotype=["WT", "WT", "KO", "KO", ""])
    chars = pl.concat(
        [chars, pl.DataFrame([("GSM5", 1, "tissue", "liver")], schema=chars.schema, orient="row")]
    )
    grouping = infer_groups(chars, gse="GSE1")
    assert grouping.excluded == ["GSM5"]


def test_small_groups_give_no_contrast_and_a_reason() -> None:
    chars = characteristics(treatment=["control", "control", "drug A", "drug B", "drug B"])
    rejected: list[Rejection] = []
    result = contrasts(infer_groups(chars, gse="GSE9"), min_replicates=2, on_reject=rejected.append)
    assert [c.contrast_id for c in result] == ["GSE9:drug-b-vs-control"]
    assert [r.reason for r in rejected] == ["GSE9: group 'drug A' has 1 samples; needs 2"]
    assert rejected[0].source == "GSE9"


def test_a_small_reference_group_gives_no_contrasts() -> None:
    chars = characteristics(treatment=["control", "drug", "drug"])
    rejected: list[Rejection] = []
    assert contrasts(infer_groups(chars, gse="GSE9"), on_reject=rejected.append) == []
    assert "reference group 'control' has 1 samples" in rejected[0].reason


def test_no_separating_key_gives_none_and_a_reason() -> None:
    chars = characteristics(tissue=["liver"] * 4, run=["a", "b", "c", "d"])
    rejected: list[Rejection] = []
    assert infer_groups(chars, gse="GSE3", on_reject=rejected.append) is None
    assert "no characteristic separates the samples" in rejected[0].reason


def test_gse_comes_from_the_frame_when_not_given() -> None:
    chars = characteristics(genotype=["WT", "WT", "KO", "KO"]).with_columns(gse=pl.lit("GSE5"))
    assert contrasts(infer_groups(chars))[0].contrast_id == "GSE5:ko-vs-wt"


@pytest.mark.parametrize(
    ("label", "slug"),
    [("WT, 8 wk", "wt-8-wk"), ("Ppara−/− (KO)", "ppara-ko"), ("  ", "group"), ("Naïve", "naive")],
)
def test_slugs_are_lower_case_ascii_words(label: str, slug: str) -> None:
    assert slugify(label) == slug


def test_values_differing_only_in_case_or_spacing_are_one_group() -> None:
    chars = characteristics(genotype=["WT", "wt", "KO", " KO "])
    assert infer_groups(chars, gse="GSE1").groups == {
        "WT": ["GSM1", "GSM2"],
        "KO": ["GSM3", "GSM4"],
    }


def test_labels_with_the_same_slug_get_distinct_ids() -> None:
    chars = characteristics(dose=["0 mg", "0 mg", "5-mg", "5-mg", "5 mg", "5 mg"])
    grouping = infer_groups(chars, gse="GSE1")
    assert [c.contrast_id for c in contrasts(grouping)] == [
        "GSE1:5-mg-vs-0-mg",
        "GSE1:5-mg-2-vs-0-mg",
    ]


def test_series_matrix_to_contrasts(tmp_path: Path) -> None:
    path = tmp_path / "GSE42_series_matrix.txt"
    path.write_text(
        '!Series_geo_accession\t"GSE42"\n'
        '!Sample_geo_accession\t"GSM1"\t"GSM2"\t"GSM3"\t"GSM4"\n'
        '!Sample_source_name_ch1\t"liver"\t"liver"\t"liver"\t"liver"\n'
        '!Sample_characteristics_ch1\t"genotype: KO"\t"genotype: KO"\t"genotype: wild-type"'
        '\t"genotype: wild-type"\n'
        "!series_matrix_table_begin\n"
    )
    series = read_series_matrix(path)
    (contrast,) = contrasts(infer_groups(series.characteristics, gse=series.gse))
    assert contrast.contrast_id == "GSE42:ko-vs-wild-type"
    assert contrast.samples_a == ["GSM3", "GSM4"]
