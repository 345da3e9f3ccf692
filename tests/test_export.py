"""warehouse.export: the series-wise split, bounded log2FC batches, GO labels, snapshots."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import warehouse
from tests.warehouse_fixtures import tiny_warehouse
from warehouse import export


@pytest.fixture
def con(tmp_path):
    path = tiny_warehouse(tmp_path / "w.duckdb", n_contrasts=45, n_genes=120, missing_fraction=0.1)
    connection = warehouse.connect(path, write=True)
    export.ensure_split(connection)
    yield connection
    connection.close()


def split_rows(con):
    return con.execute("SELECT contrast_id, gse, split FROM ml.splits ORDER BY 1").fetchall()


def test_split_keeps_every_series_in_one_split(con):
    rows = split_rows(con)
    splits_of_series = {}
    for _, gse, split in rows:
        splits_of_series.setdefault(gse, set()).add(split)
    assert all(len(s) == 1 for s in splits_of_series.values())
    assert {split for _, _, split in rows} == {"train", "validation", "test"}


def test_split_takes_only_contrasts_with_finished_de(con):
    ids = {r[0] for r in split_rows(con)}
    assert len(ids) == 45
    assert "GSE9999:b-vs-a" not in ids


def test_split_is_idempotent_and_never_moves_a_series(con):
    before = split_rows(con)
    export.ensure_split(con)
    assert split_rows(con) == before
    con.execute("UPDATE ml.splits SET split = 'test' WHERE gse = 'GSE1000'")
    con.execute("DELETE FROM ml.splits WHERE contrast_id = 'GSE1000:treated0-vs-control'")
    export.ensure_split(con)
    restored = dict((r[0], r[2]) for r in split_rows(con))
    assert restored["GSE1000:treated0-vs-control"] == "test"


def test_batches_hold_at_most_batch_size_rows_in_gene_order(con):
    batches = list(export.iter_log2fc_batches(con, "degae", ("train",), batch_size=4))
    assert max(b.num_rows for b in batches) == 4
    first = batches[0]
    contrast = first.column("contrast_id")[0].as_py()
    stored = dict(
        con.execute(
            "SELECT gene_index, log_fc FROM core.de_results WHERE contrast_id = ?", [contrast]
        ).fetchall()
    )
    row = export.batch_matrix(first)[0]
    assert row.shape == (120,)
    for gene, value in stored.items():
        assert row[gene] == pytest.approx(value, rel=1e-6)


def test_missing_genes_are_zero_and_counted(con):
    stats = export.ExportStats()
    batches = list(
        export.iter_log2fc_batches(con, "degae", ("train", "validation", "test"), stats=stats)
    )
    n_results = con.execute("SELECT count(*) FROM core.de_results").fetchall()[0][0]
    assert stats.n_rows == 45
    assert stats.n_missing == 45 * 120 - n_results > 0
    contrast, missing = next(iter(stats.missing_by_contrast.items()))
    row_of = {b.column("contrast_id")[i].as_py(): (b, i) for b in batches for i in range(len(b))}
    batch, i = row_of[contrast]
    present = {
        g
        for (g,) in con.execute(
            "SELECT gene_index FROM core.de_results WHERE contrast_id = ?", [contrast]
        ).fetchall()
    }
    absent = sorted(set(range(120)) - present)
    assert len(absent) == missing
    assert np.all(export.batch_matrix(batch)[i, absent] == 0.0)


def peak_bytes(con, batch_size):
    tracemalloc.start()
    rows = sum(
        b.num_rows for b in export.iter_log2fc_batches(con, "degae", export.SPLITS, batch_size)
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rows == 80
    return peak


def test_export_memory_grows_with_the_batch_not_the_matrix(tmp_path):
    path = tiny_warehouse(tmp_path / "wide.duckdb", n_contrasts=80, n_genes=4000, n_terms=2)
    con = warehouse.connect(path, write=True)
    export.ensure_split(con)
    matrix_bytes = 80 * 4000 * 4
    small, large = peak_bytes(con, 4), peak_bytes(con, 40)
    con.close()
    assert small < matrix_bytes / 2
    assert large > 5 * small


def test_go_labels_are_multi_hot_for_the_same_rows(con):
    ids, matrix = export.load_matrix(con, "degae", ("test",))
    labels, terms = export.go_label_matrix(con, ids)
    assert labels.shape == (len(ids), len(terms)) == (matrix.shape[0], len(terms))
    assert labels.dtype == np.uint8
    expected = con.execute(
        "SELECT count(*) FROM core.go_enrichment WHERE fwer_over < 0.05 "
        "AND contrast_id IN (SELECT unnest(?))",
        [ids],
    ).fetchall()[0][0]
    assert labels.sum() == expected


def test_go_labels_follow_the_given_term_order(con):
    ids, _ = export.load_matrix(con, "degae", ("train",))
    labels, terms = export.go_label_matrix(con, ids, go_ids=["GO:0000003", "GO:9999999"])
    assert terms == ["GO:0000003", "GO:9999999"]
    assert labels[:, 1].sum() == 0 and labels[:, 0].sum() > 0


def test_snapshot_changes_when_results_change(con):
    before = export.warehouse_snapshot(con)
    con.execute("UPDATE core.de_results SET log_fc = log_fc + 1 WHERE gene_index = 0")
    after = export.warehouse_snapshot(con)
    assert before["de_results"] == after["de_results"]
    assert before["hash"] != after["hash"]


def test_tf_dataset_streams_every_row_once_per_pass(con):
    source = [np.full((3, 5), i, dtype=np.float32) for i in range(4)]
    ds = export.tf_dataset(lambda: iter(source), n_genes=5, n_rows=12, batch_size=5)
    batches = [x.numpy() for x, _ in ds]
    assert [len(b) for b in batches] == [5, 5, 2]
    assert np.concatenate(batches)[:, 0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
