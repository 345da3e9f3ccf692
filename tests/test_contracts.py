"""Table contracts (sql/contracts.toml), checked by one generic function over every test
warehouse, as dbt's schema tests are."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from degae_tools.cli import main
from tests.helpers import copy_warehouse
from tests.warehouse_fixtures import tiny_warehouse
from warehouse import Warehouse
from warehouse.contracts import load_contracts, violations


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_warehouse(tmp_path_factory.mktemp("tiny") / "w.duckdb")


@pytest.mark.parametrize("name", ["ingested", "analysed", "tiny"])
def test_every_test_warehouse_keeps_its_table_contracts(request, name):
    wh = Warehouse.open(request.getfixturevalue(name))
    assert [str(v) for v in violations(wh)] == []


def test_every_contract_names_columns_its_table_has(analysed):
    wh = Warehouse.open(analysed)
    for contract in load_contracts():
        schema, _, table = contract.table.partition(".")
        columns = {
            row[0]
            for row in wh.rows(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = $s AND table_name = $t",
                {"s": schema, "t": table},
            )
        }
        assert columns, f"{contract.table} is not in the warehouse"
        assert contract.columns() <= columns, contract.table


def test_broken_contracts_are_found_and_named(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    with Warehouse.open(db, write=True) as wh, wh.transaction():
        wh.execute("INSERT INTO core.de_values SELECT * FROM core.de_values LIMIT 1")
        wh.execute("UPDATE core.de_runs SET status = 'half-done' WHERE rowid = 0")
        wh.execute("UPDATE core.go_terms SET namespace = 'biological process' WHERE rowid = 0")
    found = {(v.table, v.rule, v.columns) for v in violations(Warehouse.open(db))}
    assert found == {
        ("core.de_values", "unique", ("contrast_key", "gene_index")),
        ("core.de_results", "unique", ("contrast_id", "gene_index")),
        ("core.de_runs", "accepted", ("status",)),
        ("core.go_terms", "accepted", ("namespace",)),
    }


def test_check_reports_broken_contracts_with_exit_status_2(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    with Warehouse.open(db, write=True) as wh:
        wh.execute("UPDATE core.de_runs SET status = 'half-done' WHERE rowid = 0")
    result = CliRunner().invoke(main, ["check", "--db", str(db)])
    assert result.exit_code == 2
    assert "contract: core.de_runs: 1 rows break accepted(status), e.g. 'half-done'" in (
        result.output
    )
