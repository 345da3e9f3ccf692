"""warehouse.export: the split by group, bounded value batches, GO labels, snapshots."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from degae_tools.errors import WarehouseError
from degae_tools.steps.runs import RunRow, write_de_results
from tests.helpers import tiny_warehouse
from warehouse import Warehouse, export


@pytest.fixture
def wh(tmp_path):
    path = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=45, n_genes=120, missing_fraction=0.1)
    handle = Warehouse.open(path, write=True)
    export.ensure_split(handle)
    return handle


def split_rows(wh):
    return wh.rows("SELECT contrast_id, gse, split FROM ml.splits ORDER BY 1")


def stored_values(wh, contrast):
    sql = "SELECT gene_index, log_fc FROM core.de_results WHERE contrast_id = $c"
    return dict(wh.rows(sql, {"c": contrast}))


def test_split_keeps_every_series_in_one_split(wh):
    rows = split_rows(wh)
    splits_of_series = {}
    for _, gse, split in rows:
        splits_of_series.setdefault(gse, set()).add(split)
    assert all(len(s) == 1 for s in splits_of_series.values())
    assert {split for _, _, split in rows} == {"train", "validation", "test"}


def test_split_takes_only_contrasts_with_finished_de(wh):
    ids = {r[0] for r in split_rows(wh)}
    assert len(ids) == 45
    assert "GSE9999:b-vs-a" not in ids


def test_split_is_idempotent_and_never_moves_a_series(wh):
    before = split_rows(wh)
    export.ensure_split(wh)
    assert split_rows(wh) == before
    wh.execute("UPDATE ml.splits SET split = 'test' WHERE gse = 'GSE1000'")
    wh.delete("ml.splits", {"contrast_id": "GSE1000:treated0-vs-control"})
    export.ensure_split(wh)
    restored = dict((r[0], r[2]) for r in split_rows(wh))
    assert restored["GSE1000:treated0-vs-control"] == "test"


def test_batches_hold_at_most_batch_size_rows_in_gene_order(wh):
    batches = list(export.iter_value_batches(wh, "degae", ("train",), batch_size=4))
    assert max(b.num_rows for b in batches) == 4
    first = batches[0]
    contrast = first.column("contrast_id")[0].as_py()
    row = export.batch_matrix(first)[0]
    assert row.shape == (120,)
    for gene, value in stored_values(wh, contrast).items():
        assert row[gene] == pytest.approx(value, rel=1e-6)


def test_missing_genes_are_zero_and_counted(wh):
    stats = export.ExportStats()
    batches = list(
        export.iter_value_batches(wh, "degae", ("train", "validation", "test"), stats=stats)
    )
    n_results = wh.scalar("SELECT count(*) FROM core.de_results")
    assert stats.n_rows == 45
    assert stats.n_missing == 45 * 120 - n_results > 0
    contrast, missing = next(iter(stats.missing_by_contrast.items()))
    row_of = {b.column("contrast_id")[i].as_py(): (b, i) for b in batches for i in range(len(b))}
    batch, i = row_of[contrast]
    present = set(stored_values(wh, contrast))
    absent = sorted(set(range(120)) - present)
    assert len(absent) == missing
    assert np.all(export.batch_matrix(batch)[i, absent] == 0.0)


def test_each_value_kind_reads_its_own_column(wh):
    _, log_fc = export.load_matrix(wh, "degae", ("train",))
    _, t = export.load_matrix(wh, "degae", ("train",), value="t")
    np.testing.assert_allclose(t, 3 * log_fc, rtol=1e-5)  # tiny_warehouse: t = 3 log2FC
    _, z = export.load_matrix(wh, "degae", ("train",), value="z")
    assert not z.any()  # limma's contrasts have no z-score: every cell missing, filled with 0
    with pytest.raises(WarehouseError, match="unknown value kind"):
        export.check_value(wh, "fdr")


def test_a_collection_not_in_the_warehouse_is_refused_with_the_fix(wh):
    with pytest.raises(WarehouseError, match="import-signatures"):
        export.ensure_split(wh, "degae-nope", collection="nope")
    assert export.default_split_name("l1000") == "degae-l1000"
    assert export.default_split_name() == "degae"


def peak_bytes(wh, batch_size):
    tracemalloc.start()
    rows = sum(
        b.num_rows for b in export.iter_value_batches(wh, "degae", export.SPLITS, batch_size)
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rows == 80
    return peak


def test_export_memory_grows_with_the_batch_not_the_matrix(tmp_path):
    path = tiny_warehouse(tmp_path / "wide.duckdb", n_contrasts=80, n_genes=4000, n_terms=2)
    wh = Warehouse.open(path, write=True)
    export.ensure_split(wh)
    matrix_bytes = 80 * 4000 * 4
    with wh.session():
        small, large = peak_bytes(wh, 4), peak_bytes(wh, 40)
    assert small < matrix_bytes / 2
    assert large > 5 * small


def test_go_labels_are_multi_hot_for_the_same_rows(wh):
    ids, matrix = export.load_matrix(wh, "degae", ("test",))
    labels, terms = export.go_label_matrix(wh, ids)
    assert labels.shape == (len(ids), len(terms)) == (matrix.shape[0], len(terms))
    assert labels.dtype == np.uint8
    expected = wh.scalar(
        "SELECT count(*) FROM core.go_enrichment WHERE fwer_over < 0.05 "
        "AND contrast_id IN (SELECT unnest($ids))",
        {"ids": ids},
    )
    assert labels.sum() == expected


def test_go_labels_follow_the_given_term_order(wh):
    ids, _ = export.load_matrix(wh, "degae", ("train",))
    labels, terms = export.go_label_matrix(wh, ids, go_ids=["GO:0000003", "GO:9999999"])
    assert terms == ["GO:0000003", "GO:9999999"]
    assert labels[:, 1].sum() == 0 and labels[:, 0].sum() > 0


def test_snapshot_changes_when_results_change(wh):
    before = export.warehouse_snapshot(wh)
    contrast = split_rows(wh)[0][0]
    values = wh.arrow(
        "SELECT contrast_id, gene_index, log_fc + 1 AS log_fc, t FROM core.de_results "
        "WHERE contrast_id = $c",
        {"c": contrast},
    )
    with wh.transaction():
        write_de_results(wh, values, [RunRow(contrast, "done")], source="degae", config="{}")
    after = export.warehouse_snapshot(wh)
    assert before["de_results"] == after["de_results"]
    assert before["hash"] != after["hash"]
