"""`enrich` with nothing to do says why instead of silently doing nothing; --strict exits 2."""

from __future__ import annotations

from click.testing import CliRunner

from degae_tools.cli import main
from tests.helpers import copy_warehouse, rows
from warehouse import Warehouse


def enrich_cli(db, *args: str):
    return CliRunner().invoke(main, ["enrich", "--db", str(db), "--task-runner", "none", *args])


def test_enrich_without_annotations_says_so(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    with Warehouse.open(db, write=True) as wh:
        wh.execute("DELETE FROM core.go_annotations")
    result = enrich_cli(db, "--strict")
    assert result.exit_code == 2
    assert "nothing done: no GO annotations loaded" in result.output


def test_enrich_without_an_ontology_or_de_results_says_both(ingested, tmp_path):
    db = copy_warehouse(ingested, tmp_path)
    with Warehouse.open(db, write=True) as wh:
        wh.execute("DELETE FROM core.go_edges")
        wh.execute("DELETE FROM core.go_alt_ids")
        wh.execute("DELETE FROM core.go_terms")
    result = enrich_cli(db)
    assert result.exit_code == 0
    assert "nothing done: no GO ontology loaded" in result.output
    assert "  no contrast has DE results: run `degae-tools de`" in result.output.splitlines()[1]


def test_enrich_with_every_contrast_enriched_says_so(analysed, tmp_path):
    db = copy_warehouse(analysed, tmp_path)
    done = rows(db, "SELECT count(*) FROM core.de_runs WHERE status = 'done'")[0][0]
    result = enrich_cli(db)
    assert result.exit_code == 0
    assert f"nothing done: all {done} contrasts with DE results already have GO enrichment" in (
        result.output
    )
    assert enrich_cli(db, "--strict").exit_code == 2
