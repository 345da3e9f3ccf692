"""Per-gene values stored compactly (core.de_values under integer contrast keys, FLOAT where
limma's precision survives it) and read by contrast ID through the view core.de_results."""

from __future__ import annotations

import numpy as np
import polars as pl

from degae_tools.limma import DEConfig
from degae_tools.steps.runs import RunRow, write_de_results
from tests.helpers import copy_warehouse, rows, run_de
from warehouse import Warehouse

STORED_TYPES = (
    "SELECT column_name, data_type FROM duckdb_columns() "
    "WHERE schema_name = 'core' AND table_name = 'de_values'"
)
# Per contrast: its rows, the span of row positions they take, and whether p rises along them.
BLOCKS = (
    "SELECT contrast_key, count(*) AS n, max(rowid) - min(rowid) + 1 AS span, "
    "bool_and(p_value >= previous OR previous IS NULL) AS by_p FROM ("
    "  SELECT contrast_key, p_value, rowid,"
    "         lag(p_value) OVER (PARTITION BY contrast_key ORDER BY rowid) AS previous"
    "  FROM core.de_values) GROUP BY contrast_key"
)
VALUES = "SELECT * FROM core.de_results ORDER BY contrast_id, gene_index"


def test_statistics_are_float_where_limma_precision_survives(analysed):
    types = dict(rows(analysed, STORED_TYPES))
    assert types["contrast_key"] == types["gene_index"] == "INTEGER"
    assert types["t"] == types["ave_expr"] == types["b"] == types["z"] == "FLOAT"
    assert types["p_value"] == types["adj_p_value"] == types["log_fc"] == "DOUBLE"


def test_each_contrast_is_one_run_of_rows_sorted_by_p_value(analysed):
    blocks = rows(analysed, BLOCKS)
    assert blocks
    assert all(n == span and by_p for _, n, span, by_p in blocks)


def test_the_view_reads_every_value_by_contrast_id(analysed):
    n_keys, n_ids = rows(
        analysed, "SELECT count(*), count(DISTINCT contrast_id) FROM core.contrast_keys"
    )[0]
    done = rows(analysed, "SELECT count(*) FROM core.de_runs WHERE status = 'done'")[0][0]
    assert n_keys == n_ids == done
    viewed = rows(analysed, "SELECT count(*) FROM core.de_results")[0][0]
    stored = rows(analysed, "SELECT count(*) FROM core.de_values")[0][0]
    assert viewed == stored > 0


def test_a_refit_keeps_the_contrast_key_and_replaces_the_values(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    keys = rows(db, "SELECT contrast_id, contrast_key FROM core.contrast_keys ORDER BY 1")
    before = Warehouse.open(db).frame(VALUES)
    assert run_de(db, DEConfig(prior_count=2.0)).done > 0
    after = Warehouse.open(db).frame(VALUES)
    assert rows(db, "SELECT contrast_id, contrast_key FROM core.contrast_keys ORDER BY 1") == keys
    assert after.height == before.height
    assert not np.allclose(after["log_fc"].to_numpy(), before["log_fc"].to_numpy())


def test_values_written_gene_by_gene_are_stored_contrast_by_contrast(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    ids = ["sig:a", "sig:b", "sig:c"]
    genes = np.arange(50, dtype=np.int32)
    # A wide matrix unpivoted gene by gene: the contrasts interleave, and only z is given.
    values = pl.DataFrame(
        {
            "contrast_id": ids * len(genes),
            "gene_index": np.repeat(genes, len(ids)),
            "z": np.arange(len(ids) * len(genes), dtype=np.float64) / 10,
        }
    )
    with Warehouse.open(db, write=True) as wh:
        runs = [RunRow(i, "done", n_genes=len(genes)) for i in ids]
        write_de_results(wh, values, runs, stage="import", source="import:sig", config=None)
    stored = Warehouse.open(db).frame(
        "SELECT contrast_id, gene_index, z, t, p_value FROM core.de_results "
        "WHERE contrast_id LIKE 'sig:%' ORDER BY contrast_id, gene_index"
    )
    expected = values.sort("contrast_id", "gene_index")
    assert stored["z"].to_list() == expected["z"].cast(pl.Float32).to_list()
    assert stored["t"].null_count() == stored["p_value"].null_count() == stored.height
    assert all(n == span for _, n, span, _ in rows(db, BLOCKS))


def test_an_old_warehouse_moves_its_values_into_the_compact_table(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    expected = Warehouse.open(db).frame(VALUES)
    with Warehouse.open(db, write=True) as wh, wh.transaction():
        # The layout before core.de_values: one table of text IDs and DOUBLE statistics.
        wh.execute(
            "CREATE TABLE core.legacy AS SELECT contrast_id, gene_index, log_fc, "
            "ave_expr::DOUBLE AS ave_expr, t::DOUBLE AS t, p_value, adj_p_value, "
            "b::DOUBLE AS b FROM core.de_results"
        )
        wh.execute("DROP VIEW core.de_results")
        wh.execute("DELETE FROM core.de_values")
        wh.execute("DELETE FROM core.contrast_keys")
        wh.execute("ALTER TABLE core.legacy RENAME TO de_results")
    with Warehouse.open(db, write=True) as wh:
        kind = wh.scalar(
            "SELECT table_type FROM information_schema.tables "
            "WHERE table_schema = 'core' AND table_name = 'de_results'"
        )
        moved = wh.frame(VALUES)
    assert kind == "VIEW"
    assert moved.equals(expected)
